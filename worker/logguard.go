package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/secure-agent/secure-agent/activities"
)

// The log guard is the result guard's counterpart for log lines: every record the agent's
// logger writes (its own lines and the Temporal SDK's) is searched for the values of the
// sensitive fields of the leases the agents of this process hold, and a record that holds one
// is replaced by a line that names the field and says it was withheld. Nothing the agent logs is
// meant to hold a value; this catches what a bug or a library would otherwise write.

// guardedStores are the lease stores of this process's running agents.
var guardedStores sync.Map // *activities.LeaseStore -> struct{}

func guardLogs(s *activities.LeaseStore)   { guardedStores.Store(s, struct{}{}) }
func unguardLogs(s *activities.LeaseStore) { guardedStores.Delete(s) }

// findLeased reports whether b holds a sensitive value of a lease held in this process.
func findLeased(b []byte) (field string, found bool) {
	guardedStores.Range(func(k, _ any) bool {
		field, found = k.(*activities.LeaseStore).FindAny(b)
		return !found
	})
	return field, found
}

// guardHandler wraps a slog.Handler with the log guard.
type guardHandler struct {
	next  slog.Handler
	root  slog.Handler // next without the attributes and groups added since: withheld lines go there
	attrs []slog.Attr  // attributes added with WithAttrs, searched too
}

func newGuardHandler(next slog.Handler) slog.Handler { return &guardHandler{next: next, root: next} }

func (h *guardHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *guardHandler) Handle(ctx context.Context, r slog.Record) error {
	text := []byte(r.Message)
	add := func(a slog.Attr) bool {
		text = fmt.Appendf(text, " %s=%v", a.Key, a.Value.Resolve())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	field, found := findLeased(text)
	clear(text)
	if !found {
		return h.next.Handle(ctx, r)
	}
	withheld := slog.NewRecord(r.Time, r.Level, "a log line was withheld: it held the value of a sensitive field; please report this bug", r.PC)
	withheld.AddAttrs(slog.String("field", field))
	return h.root.Handle(ctx, withheld)
}

func (h *guardHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &guardHandler{next: h.next.WithAttrs(attrs), root: h.root, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *guardHandler) WithGroup(name string) slog.Handler {
	return &guardHandler{next: h.next.WithGroup(name), root: h.root, attrs: h.attrs}
}
