package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/worker"
)

// runCodecServer serves Temporal's remote codec protocol, so the Web UI and
// `temporal ... --codec-endpoint` can show decrypted payloads to the people who hold its token.
func runCodecServer(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	origins := fs.String("origins", "http://127.0.0.1:8233,http://localhost:8233", "comma-separated Web UI origins allowed to call (CORS)")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces served (default: any)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	settings, err := worker.LoadSettings()
	if err != nil {
		return err
	}
	keys, err := settings.Codec()
	if err != nil {
		return err
	}
	if keys == nil {
		return errors.New("no keys: set SECURE_AGENT_CODEC_KEYS or SECURE_AGENT_CODEC_KEYS_FILE to the agent's keys")
	}
	token := os.Getenv("SECURE_AGENT_CODEC_SERVER_TOKEN")
	if token == "" {
		return errors.New("set SECURE_AGENT_CODEC_SERVER_TOKEN: the codec server always requires a bearer token (for example `openssl rand -hex 32`)")
	}
	opts := codec.ServerOptions{
		Token: token, AllowedOrigins: splitList(*origins), Namespaces: splitList(*namespaces), Logger: settings.NewLogger(),
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	handler := codec.NewServer(keys, opts)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "codec server on http://%s (origins %s)\n", ln.Addr(), *origins)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
