package main

import (
	"context"
	"errors"
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

// codecServerTokenVar holds the bearer token the codec server requires. It is the codec server's
// own setting, not one of the agent's (worker.Settings).
const codecServerTokenVar = "SECURE_AGENT_CODEC_SERVER_TOKEN"

var codecServerHelp = helpText{
	usage: "secure-agent codec-server [--listen ADDR] [--origins URLS] [--namespaces NAMES] [--tls-cert FILE --tls-key FILE]",
	about: "Serve Temporal's remote codec protocol, so the Web UI (Settings > Codec Server) and " +
		"`temporal ... --codec-endpoint` can show the payloads the agent encrypts to the people who hold the token, " +
		"or, with the OIDC settings, to the Web UI's signed-in users whose subject or group is allowed.",
	settings: settingsOf(agentSettings("CODEC_KEYS", "CODEC_KEYS_FILE"), []setting{
		{codecServerTokenVar, "bearer token that opens every request (required unless the OIDC settings are given; e.g. `openssl rand -hex 32`)"},
	}, codecOIDCSettings, agentSettings("LOG_LEVEL", "LOG_FORMAT")),
}

// runCodecServer serves Temporal's remote codec protocol, so the Web UI and
// `temporal ... --codec-endpoint` can show decrypted payloads to the people who hold its token.
func runCodecServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("codec-server")
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	origins := fs.String("origins", "http://127.0.0.1:8233,http://localhost:8233", "comma-separated Web UI origins allowed to call (CORS)")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces served (default: any)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) to serve https with; the Web UI sends access tokens only to https")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := parseFlags(fs, args, codecServerHelp, stdout, stderr); err != nil {
		return err
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
	useTLS, err := codecTLS(*tlsCert, *tlsKey)
	if err != nil {
		return codecConfigExit(stderr, err)
	}
	logger := settings.NewLogger()
	token := os.Getenv(codecServerTokenVar)
	verifier, err := codecAuth(ctx, token, logger)
	if err != nil {
		return codecConfigExit(stderr, err)
	}
	opts := codec.ServerOptions{
		Token: token, OIDC: verifier, AllowedOrigins: splitList(*origins), Namespaces: splitList(*namespaces), Logger: logger,
	}
	if err := opts.Validate(); err != nil {
		return codecConfigExit(stderr, configError{err})
	}
	handler := codec.NewServer(keys, opts)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	fmt.Fprintf(stderr, "codec server on %s://%s (origins %s; %s)\n", scheme, ln.Addr(), *origins, codecAuthSummary(token, verifier))
	if verifier != nil && !useTLS {
		fmt.Fprintln(stderr, "note: the Web UI sends its users' access tokens only to an https codec endpoint: serve with --tls-cert and --tls-key, or behind a TLS-terminating proxy")
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if useTLS {
		err = srv.ServeTLS(ln, *tlsCert, *tlsKey)
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// codecConfigExit reports a configError on stderr and exits 2; other errors go up as they are.
func codecConfigExit(stderr io.Writer, err error) error {
	var ce configError
	if !errors.As(err, &ce) {
		return err
	}
	fmt.Fprintf(stderr, "secure-agent codec-server: %v\n", err)
	return exitError{2}
}

// codecAuthSummary says, for the start line, what opens the server (never the token itself).
func codecAuthSummary(token string, verifier *codec.OIDCVerifier) string {
	var parts []string
	if token != "" {
		parts = append(parts, "static token")
	}
	if verifier != nil {
		parts = append(parts, "OIDC issuer "+verifier.Issuer())
	}
	return "auth: " + strings.Join(parts, " or ")
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
