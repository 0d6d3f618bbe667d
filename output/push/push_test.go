package push

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func endpoint(t *testing.T, srv *httptest.Server, token string) Endpoint {
	t.Helper()
	u, err := url.Parse(srv.URL + "/api/v1/lineage?secret-path")
	if err != nil {
		t.Fatal(err)
	}
	return Endpoint{Catalog: "OpenLineage", URL: u, Token: token}
}

func records(n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = Record{Key: string(rune('a' + i)), Digest: "d", Body: []byte(`{}`)}
	}
	return out
}

var fast = Options{Backoff: time.Millisecond, MaxWait: 10 * time.Millisecond}

// TestSendRetriesWhatMayPass: 503 and 429 (with Retry-After) and 500 are retried; every record
// arrives once.
func TestSendRetriesWhatMayPass(t *testing.T) {
	var calls, failures atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch failures.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 3:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", r.Header)
			}
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	ledger := NewLedger(nil)
	res, err := Send(context.Background(), srv.Client(), endpoint(t, srv, "tok"), records(5), ledger, fast)
	if err != nil || res.Sent != 5 || calls.Load() != 8 {
		t.Fatalf("sent %+v in %d calls: %v", res, calls.Load(), err)
	}
	if len(ledger.Snapshot()) != 5 {
		t.Errorf("ledger %v", ledger.Snapshot())
	}
}

// TestSendSkipsWhatTheLedgerHolds: a record already sent with the same content is not sent; one
// whose content changed is.
func TestSendSkipsWhatTheLedgerHolds(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	ledger := NewLedger(map[string]string{"a": "d", "b": "old"})
	res, err := Send(context.Background(), srv.Client(), endpoint(t, srv, ""), records(3), ledger, fast)
	if err != nil || res.Sent != 2 || res.Skipped != 1 || calls.Load() != 2 {
		t.Fatalf("%+v in %d calls: %v", res, calls.Load(), err)
	}
	if !ledger.Has("b", "d") {
		t.Errorf("the changed record is not recorded with its new digest")
	}
}

// TestRefusalsAreFinalAndSayNothingSecret: 401 is ErrUnauthorized, 400 and a redirect
// ErrRefused, none retried; a record that keeps failing fails after its attempts. No error holds
// the URL (its path here) or the token.
func TestRefusalsAreFinalAndSayNothingSecret(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
		calls  int64
	}{
		{http.StatusUnauthorized, ErrUnauthorized, 1},
		{http.StatusForbidden, ErrUnauthorized, 1},
		{http.StatusBadRequest, ErrRefused, 1},
		{http.StatusFound, ErrRefused, 1},
		{http.StatusBadGateway, nil, 5},
	} {
		var calls atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if tc.status == http.StatusFound {
				w.Header().Set("Location", "http://elsewhere.example/")
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte("echo: tok-canary"))
		}))
		client := srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		_, err := Send(context.Background(), client, endpoint(t, srv, "tok-canary"), records(1), NewLedger(nil), fast)
		srv.Close()
		switch {
		case err == nil:
			t.Errorf("%d: no error", tc.status)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%d: %v, want %v", tc.status, err, tc.want)
		case tc.want == nil && errors.Is(err, ErrRefused):
			t.Errorf("%d: refused, want retried: %v", tc.status, err)
		case strings.Contains(err.Error(), "tok-canary") || strings.Contains(err.Error(), "secret-path") || strings.Contains(err.Error(), "127.0.0.1"):
			t.Errorf("%d: the error repeats the token, the URL or the body: %v", tc.status, err)
		}
		if calls.Load() != tc.calls {
			t.Errorf("%d: %d calls, want %d", tc.status, calls.Load(), tc.calls)
		}
	}
}

// TestUnreachableSaysNoURL: a transport error names neither the host nor the path.
func TestUnreachableSaysNoURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	ep := endpoint(t, srv, "")
	srv.Close()
	_, err := Send(context.Background(), http.DefaultClient, ep, records(1), NewLedger(nil), Options{Attempts: 2, Backoff: time.Millisecond})
	if err == nil || strings.Contains(err.Error(), ep.URL.Host) || strings.Contains(err.Error(), "secret-path") {
		t.Errorf("unreachable: %v", err)
	}
}

// TestOpenLineageRecordsIgnoreEventTime: the same event at another time has the same digest.
func TestOpenLineageRecordsIgnoreEventTime(t *testing.T) {
	a := []byte(`{"eventTime":"2026-01-01T00:00:00Z","dataset":{"namespace":"postgres://x","name":"d.s.t"},"producer":"p"}`)
	b := []byte(`{"producer":"p","eventTime":"2026-02-01T00:00:00Z","dataset":{"namespace":"postgres://x","name":"d.s.t"}}`)
	c := []byte(`{"eventTime":"2026-01-01T00:00:00Z","dataset":{"namespace":"postgres://x","name":"d.s.t","facets":{}},"producer":"p"}`)
	rs, err := OpenLineageRecords([][]byte{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Key != "postgres://x\nd.s.t" || rs[0].Digest != rs[1].Digest || rs[0].Digest == rs[2].Digest {
		t.Errorf("records %+v", rs)
	}
}
