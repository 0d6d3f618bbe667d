package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

// readyCheckTimeout bounds the Temporal health check behind /readyz.
const readyCheckTimeout = 3 * time.Second

// httpServer is the agent's metrics and health endpoint (SECURE_AGENT_HTTP_ADDRESS):
//
//	/metrics  Prometheus text: the agent's own metrics, the Temporal SDK's, Go runtime and process
//	/healthz  200 while the process runs
//	/readyz   200 when the workers are started and the Temporal client reaches the server,
//	          otherwise 503 with a one-line reason
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// startHTTP listens on addr and serves the endpoints until stopHTTP.
func (a *Agent) startHTTP(addr string, reg *prometheus.Registry) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s_HTTP_ADDRESS: listening on %s: %w", EnvPrefix, addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeLine(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", a.serveReady)
	h := &httpServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("the metrics and health endpoint stopped", "error", err)
		}
	}()
	a.http = h
	a.logger.Info("serving metrics and health", "address", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return nil
}

// stopHTTP shuts the endpoint down, letting a scrape in progress finish.
func (a *Agent) stopHTTP() {
	if a.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.http.srv.Shutdown(ctx); err != nil {
		_ = a.http.srv.Close()
	}
	<-a.http.done
}

// HTTPAddr returns the address the metrics and health endpoint listens on (useful with port 0),
// or "" when SECURE_AGENT_HTTP_ADDRESS is not set.
func (a *Agent) HTTPAddr() string {
	if a.http == nil {
		return ""
	}
	return a.http.ln.Addr().String()
}

// Ready reports whether the agent can take work: Start has returned, Stop has not been called,
// and the Temporal client reaches the server. When not, the reason is one line for an operator.
func (a *Agent) Ready(ctx context.Context) (bool, string) {
	select {
	case <-a.stop:
		return false, "the agent is stopping"
	default:
	}
	if !a.started.Load() {
		return false, "the workers are not started yet"
	}
	ctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
	defer cancel()
	if _, err := a.client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		a.logger.Warn("readiness: the Temporal health check failed", "error", err)
		return false, "the Temporal server does not answer health checks (see the agent log)"
	}
	return true, "ready"
}

func (a *Agent) serveReady(w http.ResponseWriter, r *http.Request) {
	if ok, reason := a.Ready(r.Context()); !ok {
		writeLine(w, http.StatusServiceUnavailable, reason)
		return
	}
	writeLine(w, http.StatusOK, "ok")
}

func writeLine(w http.ResponseWriter, code int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, line)
}
