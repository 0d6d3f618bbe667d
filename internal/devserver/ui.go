package devserver

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// uiServer is the running Temporal Web UI.
type uiServer struct {
	srv      *uiserver.Server
	done     chan struct{} // closed when srv.Start has returned
	dialAddr string
}

// uiConfig is the Web UI's configuration: the embedded assets, the frontend
// as its gRPC backend, the configured namespace as its default, and browser
// settings for plain HTTP on this machine.
func uiConfig(cfg Config, a address, frontendAddr string, id *internalIdentity) *uiconfig.Config {
	dialHost := a.dialIP().String()
	port := strconv.Itoa(a.port)
	origins := []string{"http://" + net.JoinHostPort(dialHost, port)}
	if a.dialIP().IsLoopback() {
		origins = append(origins, "http://"+net.JoinHostPort("localhost", port))
	}
	host := a.ip.String()
	if a.ip.To4() == nil {
		host = "[" + host + "]" // the UI server formats "host:port" itself
	}
	c := &uiconfig.Config{
		TemporalGRPCAddress: frontendAddr,
		Host:                host,
		Port:                a.port,
		EnableUI:            true,
		DefaultNamespace:    cfg.Namespace,
		// The UI calls its own API on the same origin; these are the
		// origins a browser uses for it. The CSRF cookie must work over
		// plain HTTP, hence CookieInsecure.
		CORS:  uiconfig.CORS{AllowOrigins: origins, CookieInsecure: true},
		Codec: uiconfig.Codec{Endpoint: cfg.UICodecEndpoint},
		// No request log on stdout, and no calls home from the browser.
		HideLogs:           true,
		DisableNewsFetch:   true,
		NotifyOnNewVersion: false,
	}
	if id != nil {
		// A TLS frontend: the UI dials it with the internal client
		// certificate, over loopback, without verifying the server's.
		c.TLS.CertData = base64.StdEncoding.EncodeToString(id.certPEM)
		c.TLS.KeyData = base64.StdEncoding.EncodeToString(id.keyPEM)
		c.TLS.EnableHostVerification = false
	}
	return c
}

// startUI starts the Web UI on the address held by l and waits until it
// answers its health check. l is closed just before the UI binds the port.
func startUI(ctx context.Context, cfg Config, a address, frontendAddr string, id *internalIdentity, l net.Listener) (*uiServer, error) {
	defer func() { _ = l.Close() }()
	uc := uiConfig(cfg, a, frontendAddr, id)
	if err := uc.Validate(); err != nil {
		return nil, fmt.Errorf("devserver: Web UI configuration: %w", err)
	}
	srv, err := newUIServer(uc)
	if err != nil {
		return nil, err
	}

	u := &uiServer{srv: srv, done: make(chan struct{}), dialAddr: net.JoinHostPort(a.dialIP().String(), strconv.Itoa(a.port))}
	// The UI server's Start blocks until Stop, and binds the port itself (it
	// exits the process if it cannot: that is why the port was held until
	// now and is free at this point).
	_ = l.Close()
	go func() {
		defer close(u.done)
		_ = srv.Start()
	}()

	if err := waitForHTTP(ctx, "http://"+u.dialAddr+"/healthz"); err != nil {
		_ = u.stop(uiStopTimeout)
		return nil, fmt.Errorf("devserver: the Web UI at %s did not become ready: %w", u.dialAddr, err)
	}
	return u, nil
}

// newUIServer builds the UI server, turning its panics into errors.
func newUIServer(uc *uiconfig.Config) (srv *uiserver.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("devserver: building the Web UI: %v", r)
		}
	}()
	return uiserver.NewServer(uioptions.WithConfigProvider(uc)), nil
}

// stop closes the UI's listener and connections and waits for its serve
// loop to end.
func (u *uiServer) stop(timeout time.Duration) error {
	u.srv.Stop()
	select {
	case <-u.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("devserver: the Web UI did not stop within %s", timeout)
	}
}

// waitForHTTP polls url until it answers 200 OK or ctx ends.
func waitForHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
