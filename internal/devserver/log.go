package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.uber.org/zap/zapcore"
)

// serverLogger adapts a *slog.Logger to the Temporal server's log.Logger.
//
// Records below min are dropped before their tags are evaluated (some tags
// format lazily). DPanic, Panic and Fatal are logged at error level. DPanic
// then returns; Panic and Fatal panic with a *serverFatal, because the code
// after them assumes it does not run (the server's own logger would exit).
// Start recovers that panic, raised while it builds and starts the server,
// into an error: a failure during start-up (such as a port taken in the
// meantime) does not take the calling process down. The adapter never calls
// os.Exit.
type serverLogger struct {
	log *slog.Logger
	min slog.Level
}

var (
	_ log.Logger     = serverLogger{}
	_ log.WithLogger = serverLogger{}
)

// newServerLogger returns the adapter; a nil logger discards everything.
func newServerLogger(l *slog.Logger, min slog.Level) serverLogger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return serverLogger{log: l, min: min}
}

func (l serverLogger) Debug(msg string, tags ...tag.Tag) { l.emit(slog.LevelDebug, msg, tags) }
func (l serverLogger) Info(msg string, tags ...tag.Tag)  { l.emit(slog.LevelInfo, msg, tags) }
func (l serverLogger) Warn(msg string, tags ...tag.Tag)  { l.emit(slog.LevelWarn, msg, tags) }
func (l serverLogger) Error(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }

func (l serverLogger) DPanic(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }
func (l serverLogger) Panic(msg string, tags ...tag.Tag)  { l.fail(msg, tags) }
func (l serverLogger) Fatal(msg string, tags ...tag.Tag)  { l.fail(msg, tags) }

// serverFatal is the panic value of serverLogger.Panic and Fatal: the
// server's message and tags, wrapping the error among the tags, if any.
type serverFatal struct {
	msg   string
	attrs []slog.Attr
	cause error
}

func (f *serverFatal) Error() string {
	var b strings.Builder
	b.WriteString(f.msg)
	for _, a := range f.attrs {
		fmt.Fprintf(&b, "; %s=%v", a.Key, a.Value)
	}
	return b.String()
}

func (f *serverFatal) Unwrap() error { return f.cause }

func (l serverLogger) fail(msg string, tags []tag.Tag) {
	attrs := attrsOfTags(tags)
	l.log.LogAttrs(context.Background(), slog.LevelError, msg, attrs...)
	panic(&serverFatal{msg: msg, attrs: attrs, cause: errorOf(tags)})
}

// With returns a logger that adds tags to every record. The tags are
// evaluated once, now, as the server expects of With.
func (l serverLogger) With(tags ...tag.Tag) log.Logger {
	return serverLogger{log: l.log.With(attrsOf(tags)...), min: l.min}
}

func (l serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if level < l.min || !l.log.Enabled(ctx, level) {
		return
	}
	l.log.LogAttrs(ctx, level, msg, attrsOfTags(tags)...)
}

// errorOf returns the first error among tags: tag.Error keeps it in a zap
// field, whose Value() is only its text.
func errorOf(tags []tag.Tag) error {
	for _, t := range tags {
		if zt, ok := t.(tag.ZapTag); ok {
			if f := zt.Field(); f.Type == zapcore.ErrorType {
				if err, ok := f.Interface.(error); ok {
					return err
				}
			}
		}
		if err, ok := t.Value().(error); ok {
			return err
		}
	}
	return nil
}

func attrsOfTags(tags []tag.Tag) []slog.Attr {
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	return attrs
}

func attrsOf(tags []tag.Tag) []any {
	attrs := make([]any, len(tags))
	for i, a := range attrsOfTags(tags) {
		attrs[i] = a
	}
	return attrs
}
