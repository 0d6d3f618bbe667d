package stores_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

func customSpec(config string) *stores.Spec {
	return &stores.Spec{Type: "custom", Config: json.RawMessage(config)}
}

func TestAgentConfigurationKeysAreNotInput(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"password":"pw-value","v":"1"}`))
	}))
	defer srv.Close()
	bad := customSpec(`{"store_url":"` + srv.URL + `","secret_name":"db","version_path":"password","ca_file":"/etc/passwd"}`)
	wrapped := &stores.Spec{Type: "custom", Config: json.RawMessage(`"{\"store_url\":\"` + srv.URL + `\",\"secret_name\":\"db\",\"version_path\":\"password\",\"ca_file\":\"/etc/passwd\"}"`)}
	good := customSpec(`{"store_url":"` + srv.URL + `","secret_name":"db","value_path":"password"}`)

	for name, spec := range map[string]*stores.Spec{"object": bad, "string": wrapped} {
		// Recorded histories replay through Validate: it must not change for existing inputs.
		if problems := stores.Validate(*spec); len(problems) > 0 {
			t.Errorf("%s: Validate now refuses it: %v", name, problems)
		}
		problems := stores.BoundaryProblems(*spec)
		if len(problems) != 2 || !strings.Contains(problems[0], "version_path is agent configuration") ||
			!strings.Contains(problems[0], "customStores.versionPaths") || !strings.Contains(problems[0], "SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS") ||
			!strings.Contains(problems[1], "ca_file is agent configuration") ||
			!strings.Contains(problems[1], "customStores.caFiles") || !strings.Contains(problems[1], "SECURE_AGENT_CUSTOM_STORE_CA_FILES") {
			t.Errorf("%s: BoundaryProblems = %q", name, problems)
		}
	}
	for _, spec := range []stores.Spec{*good, {Type: "aws", SecretPath: "x", Region: "eu-west-1"}, {Type: "env"}, {Type: "custom"}, {}} {
		if problems := stores.BoundaryProblems(spec); problems != nil {
			t.Errorf("%+v: BoundaryProblems = %q, want none", spec, problems)
		}
	}

	o, err := stores.NewOpener(stores.Options{CustomStoreHosts: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	for _, spec := range []*stores.Spec{bad, wrapped, customSpec(`{"store_url":"` + srv.URL + `","secret_name":"db","version_path":"v"}`)} {
		_, _, err := o.Open(ctx, spec)
		if !errors.Is(err, secrets.InvalidInput) || !strings.Contains(err.Error(), "version_path is agent configuration") {
			t.Errorf("Open: %v", err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the store saw %d requests", hits.Load())
	}
	src, ref, err := o.Open(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := src.Store.Fetch(ctx, *ref); err != nil || s.Value.Reveal() != "pw-value" || s.Version != "" {
		t.Fatalf("fetch: %v", err)
	}
}

// vaultTLS serves a KV v2 answer over TLS and writes its CA to a file.
func vaultTLS(t *testing.T) (*httptest.Server, string, int) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"data":{"password":"pw"},"metadata":{"version":3}}}`))
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca, srv.Listener.Addr().(*net.TCPAddr).Port
}

func TestAgentSideCustomSettingsReachTheStore(t *testing.T) {
	srv, ca, port := vaultTLS(t)
	ctx := context.Background()
	spec := customSpec(`{"store_url":"` + srv.URL + `","secret_name":"db","value_path":"data.data"}`)
	type call struct {
		host string
		port int
	}
	var asked []call
	o, err := stores.NewOpener(stores.Options{
		CustomStoreHosts: []string{"127.0.0.1:*"},
		CustomCAFile: func(host string, p int) string {
			asked = append(asked, call{host, p})
			if host == "127.0.0.1" && p == port {
				return ca
			}
			return ""
		},
		CustomVersionPath: func(host string, p int) string {
			if host == "127.0.0.1" && p == port {
				return "data.metadata.version"
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	src, ref, err := o.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Store.Fetch(ctx, *ref)
	if err != nil || s.Value.Reveal() != `{"password":"pw"}` || s.Version != "3" {
		t.Fatalf("fetch: %v, version %q", err, s.Version)
	}
	if len(asked) != 1 || asked[0] != (call{"127.0.0.1", port}) {
		t.Errorf("CustomCAFile asked for %v", asked)
	}

	// Without the agent's CA file the TLS error is what it always was.
	plain, err := stores.NewOpener(stores.Options{CustomStoreHosts: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	src, ref, err = plain.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Store.Fetch(ctx, *ref)
	var se *secrets.Error
	if !errors.As(err, &se) || se.Kind != secrets.InvalidInput || se.Detail != "TLS unknown authority" {
		t.Fatalf("without CA: %v", err)
	}
}

// countConns listens on addr and counts accepted connections.
func countConns(t *testing.T, addr string) (int, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, &n
}

func TestCustomStoreHostsJudgeWhatIsDialled(t *testing.T) {
	t.Setenv("STORE_TOKEN", "tok-123")
	o, err := stores.NewOpener(stores.Options{CustomStoreHosts: []string{"*.internal", "localhost:*"}, CustomStoreEnvAllow: []string{"STORE_*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	spec := func(storeURL string) *stores.Spec {
		return customSpec(`{"store_url":"` + storeURL + `","secret_name":"db","headers":{"X-Token":"STORE_TOKEN"}}`)
	}

	v4, v4Conns := countConns(t, "127.0.0.1:0")
	urls := []string{fmt.Sprintf("https://[::ffff:127.0.0.1%%25.internal]:%d/", v4)}
	var v6Conns *atomic.Int32
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		var v6 int
		v6, v6Conns = countConns(t, "[::1]:0")
		urls = append(urls, fmt.Sprintf("https://[::1%%25.internal]:%d/", v6), fmt.Sprintf("https://[::1%%25lo]:%d/", v6))
	} else {
		t.Log("no IPv6 loopback: skipping the ::1 listener")
	}
	for _, u := range urls {
		_, _, err := o.Open(ctx, spec(u))
		if !errors.Is(err, secrets.InvalidInput) || !strings.Contains(err.Error(), "store_url") {
			t.Errorf("%s: Open: %v", u, err)
			continue
		}
		if strings.Contains(err.Error(), ".internal") || strings.Contains(err.Error(), "::1") {
			t.Errorf("%s: the refusal quotes the host: %v", u, err)
		}
	}
	if n := v4Conns.Load(); n != 0 {
		t.Errorf("127.0.0.1 listener accepted %d connections", n)
	}
	if v6Conns != nil && v6Conns.Load() != 0 {
		t.Errorf("::1 listener accepted %d connections", v6Conns.Load())
	}

	// A name the patterns allow is resolved by the agent (/etc/hosts: localhost) and dialled at
	// the address it resolved to; the numeric form of that address is not on the list.
	var remote atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remote.Store(r.RemoteAddr)
		if r.Header.Get("X-Token") != "tok-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("pw"))
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	src, ref, err := o.Open(ctx, spec(fmt.Sprintf("http://localhost:%d", port)))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := src.Store.Fetch(ctx, *ref); err != nil || s.Value.Reveal() != "pw" {
		t.Fatalf("fetch from localhost: %v", err)
	}
	if r, _ := remote.Load().(string); !strings.HasPrefix(r, "127.0.0.1:") {
		t.Errorf("request came from %q", r)
	}
	_, _, err = o.Open(ctx, spec(srv.URL))
	if !errors.Is(err, secrets.PolicyDenied) {
		t.Errorf("numeric form of an allowed name: %v", err)
	}
}
