package gcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/secure-agent/secure-agent/secrets"
)

const testPath = "projects/my-project/secrets/db-creds"

func crc32c64(b []byte) int64 { return int64(crc32.Checksum(b, crc32c)) }

// canary returns a unique marker that must never appear in an error's text.
func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "CANARY-" + hex.EncodeToString(b)
}

// assertNoLeak fails if any printed form of err contains one of the canaries.
func assertNoLeak(t *testing.T, err error, canaries ...string) {
	t.Helper()
	for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%v", err), fmt.Sprintf("%s", err)} {
		for _, c := range canaries {
			if strings.Contains(form, c) {
				t.Fatalf("error text leaks canary %q: %s", c, form)
			}
		}
	}
}

// wantError checks that err is a *secrets.Error of kind from this store.
func wantError(t *testing.T, err error, kind secrets.Kind) *secrets.Error {
	t.Helper()
	var e *secrets.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *secrets.Error", err, err)
	}
	if e.Kind != kind || !errors.Is(err, kind) {
		t.Fatalf("kind = %s, want %s (%v)", e.Kind, kind, err)
	}
	if e.Store != Name {
		t.Fatalf("Store = %q, want %q", e.Store, Name)
	}
	return e
}

func TestFetchValues(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"json object", `{"username":"app","password":"pa\"ss"}`},
		{"single string", "just-a-password"},
		{"bytes as stored", "line1\nline2\x00\xff "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSM(t, respond(tc.value))
			s := newTestStore(t, f)
			sec, err := s.Fetch(context.Background(), secrets.Ref{Path: testPath})
			if err != nil {
				t.Fatal(err)
			}
			if got := sec.Value.Reveal(); got != tc.value {
				t.Fatalf("value = %q, want %q", got, tc.value)
			}
			if sec.Version != "7" {
				t.Fatalf("version = %q, want 7", sec.Version)
			}
			calls := f.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			if want := testPath + "/versions/latest"; calls[0].Name != want {
				t.Fatalf("server saw name %q, want %q", calls[0].Name, want)
			}
			if len(calls[0].Authorization) != 1 || calls[0].Authorization[0] != "Bearer "+testToken {
				t.Fatalf("server saw authorization %q, want the bearer token", calls[0].Authorization)
			}
		})
	}
}

func TestFetchVersions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ref       secrets.Ref
		reqName   string // what the server must see
		respVer   string // version the server reports
		wantVer   string
		wantValue string
	}{
		{"default latest", secrets.Ref{Path: testPath}, testPath + "/versions/latest", "12", "12", "v12"},
		{"version in path", secrets.Ref{Path: testPath + "/versions/5"}, testPath + "/versions/5", "5", "5", "v5"},
		{"version field", secrets.Ref{Path: testPath, Version: "3"}, testPath + "/versions/3", "3", "3", "v3"},
		{"alias field", secrets.Ref{Path: testPath, Version: "prod"}, testPath + "/versions/prod", "9", "9", "v9"},
		{"alias in path", secrets.Ref{Path: testPath + "/versions/prod"}, testPath + "/versions/prod", "9", "9", "v9"},
		{"same version twice", secrets.Ref{Path: testPath + "/versions/4", Version: "4"}, testPath + "/versions/4", "4", "4", "v4"},
		{"project number", secrets.Ref{Path: "projects/123456789012/secrets/s_1"}, "projects/123456789012/secrets/s_1/versions/latest", "1", "1", "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSM(t, func(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
				return okResponse(req.GetName(), tc.respVer, []byte("v"+tc.respVer)), nil
			})
			sec, err := newTestStore(t, f).Fetch(context.Background(), tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Calls()[0].Name; got != tc.reqName {
				t.Fatalf("server saw %q, want %q", got, tc.reqName)
			}
			if sec.Version != tc.wantVer || sec.Value.Reveal() != tc.wantValue {
				t.Fatalf("got version %q value %q, want %q %q", sec.Version, sec.Value.Reveal(), tc.wantVer, tc.wantValue)
			}
		})
	}
}

func TestFetchChecksum(t *testing.T) {
	t.Run("absent is accepted", func(t *testing.T) {
		f := newFakeSM(t, func(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
			r := okResponse(req.GetName(), "2", []byte("no-crc"))
			r.Payload.DataCrc32C = nil
			return r, nil
		})
		sec, err := newTestStore(t, f).Fetch(context.Background(), secrets.Ref{Path: testPath})
		if err != nil || sec.Value.Reveal() != "no-crc" {
			t.Fatalf("Fetch = %v, %v", sec, err)
		}
	})
	t.Run("mismatch is StoreUnavailable", func(t *testing.T) {
		value := canary(t)
		f := newFakeSM(t, func(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
			r := okResponse(req.GetName(), "2", []byte(value))
			*r.Payload.DataCrc32C ^= 1
			return r, nil
		})
		sec, err := newTestStore(t, f).Fetch(context.Background(), secrets.Ref{Path: testPath})
		if sec != nil {
			t.Fatal("got a secret despite the checksum mismatch")
		}
		e := wantError(t, err, secrets.StoreUnavailable)
		if !strings.Contains(e.Msg, "CRC32C") || !secrets.Retryable(err) {
			t.Fatalf("message %q should name the checksum and be retryable", e.Msg)
		}
		assertNoLeak(t, err, value)
	})
}

// statusWithCanary builds a status whose message and details carry c.
func statusWithCanary(t *testing.T, code codes.Code, c string, extra ...protoadapt.MessageV1) error {
	t.Helper()
	details := append([]protoadapt.MessageV1{
		&errdetails.ErrorInfo{Reason: c, Domain: "secretmanager.googleapis.com", Metadata: map[string]string{"value": c}},
		&errdetails.LocalizedMessage{Locale: "en-US", Message: c},
		&errdetails.DebugInfo{Detail: c, StackEntries: []string{c}},
	}, extra...)
	st, err := status.New(code, "server says "+c).WithDetails(details...)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// TestErrorMapping drives every mapped gRPC code. It is also the canary test for status
// messages and details: none of them may reach the error text.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		kind secrets.Kind
		hint string // a word the message must contain
	}{
		{codes.NotFound, secrets.SecretNotFound, "does not exist"},
		{codes.PermissionDenied, secrets.AccessDenied, "roles/secretmanager.secretAccessor"},
		{codes.Unauthenticated, secrets.AuthFailed, "credentials"},
		{codes.ResourceExhausted, secrets.Throttled, "quota"},
		{codes.Unavailable, secrets.StoreUnavailable, "reached"},
		{codes.DeadlineExceeded, secrets.StoreUnavailable, "in time"},
		{codes.Internal, secrets.StoreUnavailable, "reached"},
		{codes.Unknown, secrets.StoreUnavailable, "reached"},
		{codes.Aborted, secrets.StoreUnavailable, "reached"},
		{codes.DataLoss, secrets.StoreUnavailable, "reached"},
		{codes.InvalidArgument, secrets.InvalidInput, "invalid"},
		{codes.OutOfRange, secrets.InvalidInput, "invalid"},
		{codes.FailedPrecondition, secrets.SecretNotFound, "enable"},
		{codes.Unimplemented, secrets.InvalidInput, "endpoint"},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			c := canary(t)
			stErr := statusWithCanary(t, tc.code, c)
			f := newFakeSM(t, func(context.Context, *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
				return nil, stErr
			})
			ref := secrets.Ref{Path: testPath, Version: "3"}
			_, err := newTestStore(t, f).Fetch(context.Background(), ref)
			e := wantError(t, err, tc.kind)
			if want := "grpc " + tc.code.String(); e.Detail != want {
				t.Fatalf("Detail = %q, want %q", e.Detail, want)
			}
			if e.Ref != ref.String() || !strings.Contains(e.Msg, tc.hint) {
				t.Fatalf("Ref %q Msg %q: want ref %q and hint %q", e.Ref, e.Msg, ref.String(), tc.hint)
			}
			if status.Code(e.Cause) != tc.code {
				t.Fatalf("Cause code = %v, want %v", status.Code(e.Cause), tc.code)
			}
			if n := len(f.Calls()); n != 1 {
				t.Fatalf("%d requests for one Fetch, want exactly 1", n)
			}
			assertNoLeak(t, err, c)
		})
	}
}

func TestNoSDKRetries(t *testing.T) {
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.Internal} {
		t.Run(code.String(), func(t *testing.T) {
			f := newFakeSM(t, func(context.Context, *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
				return nil, status.Error(code, "try again")
			})
			s := newTestStore(t, f)
			start := time.Now()
			// The deadline only bounds a broken build, whose client would back off for 60 s.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for i := 1; i <= 3; i++ {
				if _, err := s.Fetch(ctx, secrets.Ref{Path: testPath}); !secrets.Retryable(err) {
					t.Fatalf("err = %v, want a retryable kind", err)
				}
				if n := len(f.Calls()); n != i {
					t.Fatalf("after %d Fetch calls the server saw %d requests", i, n)
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("three failing Fetch calls took %s: the client is backing off", d)
			}
		})
	}
}

func TestThrottledRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay *durationpb.Duration
		want  time.Duration
	}{
		{"retry info", durationpb.New(7 * time.Second), 7 * time.Second},
		{"fractional", durationpb.New(1500 * time.Millisecond), 1500 * time.Millisecond},
		{"capped", durationpb.New(time.Hour), secrets.MaxRetryAfter},
		{"negative uses default", durationpb.New(-time.Second), DefaultRetryAfter},
		{"absent uses default", nil, DefaultRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := canary(t)
			stErr := statusWithCanary(t, codes.ResourceExhausted, c)
			if tc.delay != nil {
				stErr = statusWithCanary(t, codes.ResourceExhausted, c, &errdetails.RetryInfo{RetryDelay: tc.delay})
			}
			f := newFakeSM(t, func(context.Context, *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
				return nil, stErr
			})
			_, err := newTestStore(t, f).Fetch(context.Background(), secrets.Ref{Path: testPath})
			e := wantError(t, err, secrets.Throttled)
			if e.RetryAfter != tc.want || secrets.RetryAfterOf(err) != tc.want {
				t.Fatalf("RetryAfter = %s, want %s", e.RetryAfter, tc.want)
			}
			assertNoLeak(t, err, c)
		})
	}
}

// TestMalformedResponses covers responses that do not fit the protocol; the canary is the
// secret value, which must never reach the error.
func TestMalformedResponses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ref    secrets.Ref
		mutate func(r *secretmanagerpb.AccessSecretVersionResponse, value string) *secretmanagerpb.AccessSecretVersionResponse
		hint   string
	}{
		{"no payload", secrets.Ref{Path: testPath}, func(r *secretmanagerpb.AccessSecretVersionResponse, _ string) *secretmanagerpb.AccessSecretVersionResponse {
			r.Payload = nil
			return r
		}, "no payload"},
		{"empty response", secrets.Ref{Path: testPath}, func(*secretmanagerpb.AccessSecretVersionResponse, string) *secretmanagerpb.AccessSecretVersionResponse {
			return &secretmanagerpb.AccessSecretVersionResponse{}
		}, "no payload"},
		{"no name", secrets.Ref{Path: testPath}, func(r *secretmanagerpb.AccessSecretVersionResponse, _ string) *secretmanagerpb.AccessSecretVersionResponse {
			r.Name = ""
			return r
		}, "does not name"},
		{"name carries the value", secrets.Ref{Path: testPath}, func(r *secretmanagerpb.AccessSecretVersionResponse, v string) *secretmanagerpb.AccessSecretVersionResponse {
			r.Name = v
			return r
		}, "does not name"},
		{"alias instead of number", secrets.Ref{Path: testPath}, func(r *secretmanagerpb.AccessSecretVersionResponse, _ string) *secretmanagerpb.AccessSecretVersionResponse {
			r.Name = testPath + "/versions/latest"
			return r
		}, "does not name"},
		{"other secret", secrets.Ref{Path: testPath}, func(r *secretmanagerpb.AccessSecretVersionResponse, _ string) *secretmanagerpb.AccessSecretVersionResponse {
			r.Name = "projects/1/secrets/other/versions/7"
			return r
		}, "different"},
		{"other version", secrets.Ref{Path: testPath, Version: "6"}, func(r *secretmanagerpb.AccessSecretVersionResponse, _ string) *secretmanagerpb.AccessSecretVersionResponse {
			return r // respond() reports version 7
		}, "different"},
		{"regional answer to global request", secrets.Ref{Path: testPath}, func(r *secretmanagerpb.AccessSecretVersionResponse, _ string) *secretmanagerpb.AccessSecretVersionResponse {
			r.Name = "projects/1/locations/us-east1/secrets/db-creds/versions/7"
			return r
		}, "different"},
		{"oversize", secrets.Ref{Path: testPath}, func(r *secretmanagerpb.AccessSecretVersionResponse, v string) *secretmanagerpb.AccessSecretVersionResponse {
			big := []byte(strings.Repeat(v, MaxResponseBytes/len(v)+1))
			crc := crc32c64(big)
			r.Payload = &secretmanagerpb.SecretPayload{Data: big, DataCrc32C: &crc}
			return r
		}, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value := canary(t)
			f := newFakeSM(t, func(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
				r, _ := respond(value)(ctx, req)
				return tc.mutate(r, value), nil
			})
			sec, err := newTestStore(t, f).Fetch(context.Background(), tc.ref)
			if sec != nil {
				t.Fatal("got a secret from a malformed response")
			}
			e := wantError(t, err, secrets.StoreUnavailable)
			if !strings.Contains(e.Msg, tc.hint) {
				t.Fatalf("Msg %q does not contain %q", e.Msg, tc.hint)
			}
			if n := len(f.Calls()); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
			assertNoLeak(t, err, value)
		})
	}
}

func TestFetchContext(t *testing.T) {
	slow := func(ctx context.Context, _ *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(10 * time.Second):
			return nil, status.Error(codes.Internal, "test server was not cancelled")
		}
	}
	t.Run("deadline", func(t *testing.T) {
		f := newFakeSM(t, slow)
		s := newTestStore(t, f)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.Fetch(ctx, secrets.Ref{Path: testPath})
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Fetch returned after %s, want soon after the 200ms deadline", d)
		}
		wantError(t, err, secrets.StoreUnavailable)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want errors.Is(err, context.DeadlineExceeded)", err)
		}
		if n := len(f.Calls()); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		s := newTestStore(t, newFakeSM(t, slow))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := s.Fetch(ctx, secrets.Ref{Path: testPath})
		wantError(t, err, secrets.StoreUnavailable)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want errors.Is(err, context.Canceled)", err)
		}
	})
	t.Run("already done", func(t *testing.T) {
		f := newFakeSM(t, respond("x"))
		s := newTestStore(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Fetch(ctx, secrets.Ref{Path: testPath})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, secrets.StoreUnavailable) {
			t.Fatalf("err = %v", err)
		}
		if n := len(f.Calls()); n != 0 {
			t.Fatalf("%d requests with a done context, want 0", n)
		}
	})
}

// errTokenSource fails with a message carrying a canary.
type errTokenSource struct{ msg string }

func (e errTokenSource) Token() (*oauth2.Token, error) { return nil, errors.New(e.msg) }

func TestTokenSourceFailure(t *testing.T) {
	c := canary(t)
	f := newFakeSM(t, respond("x"))
	s, err := New(context.Background(), Config{ClientOptions: []option.ClientOption{
		option.WithEndpoint(f.Addr), tlsOption(t), option.WithTokenSource(errTokenSource{"token endpoint said " + c}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Fetch(context.Background(), secrets.Ref{Path: testPath})
	e := wantError(t, err, secrets.AuthFailed)
	if !strings.Contains(e.Msg, "could not obtain a Google access token") {
		t.Fatalf("Msg = %q, want the token-acquisition message", e.Msg)
	}
	if n := len(f.Calls()); n != 0 {
		t.Fatalf("server saw %d requests without a token, want 0", n)
	}
	assertNoLeak(t, err, c)
}

// noADC points every Application Default Credentials source at nothing, without leaving
// loopback: an empty HOME and gcloud config, and a metadata server on a closed loopback port.
func noADC(t *testing.T) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	_ = lis.Close()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("CLOUDSDK_CONFIG", filepath.Join(home, "gcloud"))
	t.Setenv("GCE_METADATA_HOST", closed)
	t.Setenv("GCE_METADATA_IP", closed)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
}

func TestADCMissing(t *testing.T) {
	t.Run("key file missing fails New", func(t *testing.T) {
		noADC(t)
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing-key.json"))
		start := time.Now()
		s, err := New(context.Background(), Config{})
		if s != nil {
			t.Fatal("New returned a store without credentials")
		}
		e := wantError(t, err, secrets.AuthFailed)
		if !strings.Contains(e.Msg, "GOOGLE_APPLICATION_CREDENTIALS") || !strings.Contains(e.Msg, "gcloud auth application-default login") {
			t.Fatalf("Msg %q does not say how to provide credentials", e.Msg)
		}
		if e.Cause == nil {
			t.Fatal("Cause is nil")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("New took %s", d)
		}
	})
	t.Run("metadata server unreachable fails Fetch", func(t *testing.T) {
		noADC(t)
		f := newFakeSM(t, respond("x"))
		// Endpoint and TLS only: credentials come from ADC, which finds only the metadata host.
		s, err := New(context.Background(), Config{ClientOptions: []option.ClientOption{option.WithEndpoint(f.Addr), tlsOption(t)}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err = s.Fetch(ctx, secrets.Ref{Path: testPath})
		if e := wantError(t, err, secrets.AuthFailed); !strings.Contains(e.Msg, "could not obtain a Google access token") {
			t.Fatalf("Msg = %q, want the token-acquisition message", e.Msg)
		}
		if n := len(f.Calls()); n != 0 {
			t.Fatalf("server saw %d requests without a token, want 0", n)
		}
	})
}

func TestRegionalSecrets(t *testing.T) {
	f := newFakeSM(t, respond("regional-value"))
	var mu sync.Mutex
	dialed := map[string]int{}
	// No endpoint option: the dialer routes every host to the test server and records it, so
	// the test sees which endpoint the store chose without touching DNS.
	dialer := option.WithGRPCDialOption(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		dialed[addr]++
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, "tcp", f.Addr)
	}))
	s, err := New(context.Background(), Config{ClientOptions: []option.ClientOption{tlsOption(t), tokenOption(), dialer}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, loc := range testLocations {
		path := "projects/my-project/locations/" + loc + "/secrets/db-creds"
		for range 2 {
			sec, err := s.Fetch(context.Background(), secrets.Ref{Path: path, Version: "7"})
			if err != nil {
				t.Fatalf("%s: %v", loc, err)
			}
			if sec.Value.Reveal() != "regional-value" || sec.Version != "7" {
				t.Fatalf("%s: got %q version %q", loc, sec.Value.Reveal(), sec.Version)
			}
		}
		calls := f.Calls()
		last := calls[len(calls)-1]
		if last.Name != path+"/versions/7" {
			t.Fatalf("server saw %q", last.Name)
		}
		if want := RegionalEndpoint(loc); len(last.Authority) != 1 || last.Authority[0] != want {
			t.Fatalf("authority %q, want %q", last.Authority, want)
		}
	}
	if _, err := s.Fetch(context.Background(), secrets.Ref{Path: testPath}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if dialed["secretmanager.googleapis.com:443"] != 1 {
		t.Fatalf("global endpoint dialed %d times, want 1 (%v)", dialed["secretmanager.googleapis.com:443"], dialed)
	}
	for i, loc := range testLocations {
		n := dialed[RegionalEndpoint(loc)]
		if i < maxRegionalClients && n != 1 {
			t.Fatalf("cached location %s dialed %d times, want 1", loc, n)
		}
		if i >= maxRegionalClients && n != 2 {
			t.Fatalf("uncached location %s dialed %d times, want one client per Fetch (2)", loc, n)
		}
	}
	if len(s.regional) != maxRegionalClients {
		t.Fatalf("%d cached regional clients, want %d", len(s.regional), maxRegionalClients)
	}
}

func TestConcurrentFetch(t *testing.T) {
	f := newFakeSM(t, respond("v"))
	dialer := option.WithGRPCDialOption(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", f.Addr)
	}))
	s, err := New(context.Background(), Config{ClientOptions: []option.ClientOption{tlsOption(t), tokenOption(), dialer}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	paths := []string{testPath}
	for _, loc := range testLocations[:3] {
		paths = append(paths, "projects/my-project/locations/"+loc+"/secrets/db-creds")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			sec, err := s.Fetch(context.Background(), secrets.Ref{Path: paths[i%len(paths)]})
			if err == nil && sec.Value.Reveal() != "v" {
				err = fmt.Errorf("value %q", sec.Value.Reveal())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(s.regional) != 3 {
		t.Fatalf("%d cached regional clients, want 3", len(s.regional))
	}
}

func TestFetchInvalidRef(t *testing.T) {
	f := newFakeSM(t, respond("x"))
	s := newTestStore(t, f)
	for _, ref := range []secrets.Ref{
		{Path: "my-secret"},
		{Path: testPath, Stage: "AWSCURRENT"},
		{Path: testPath + "/versions/1", Version: "2"},
	} {
		_, err := s.Fetch(context.Background(), ref)
		e := wantError(t, err, secrets.InvalidInput)
		if e.Ref != ref.String() {
			t.Fatalf("Ref = %q, want %q", e.Ref, ref.String())
		}
	}
	if n := len(f.Calls()); n != 0 {
		t.Fatalf("server saw %d requests for invalid refs", n)
	}
}

func TestClose(t *testing.T) {
	f := newFakeSM(t, respond("x"))
	s := newTestStore(t, f)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, path := range []string{testPath, "projects/my-project/locations/us-east1/secrets/s"} {
		_, err := s.Fetch(context.Background(), secrets.Ref{Path: path})
		wantError(t, err, secrets.StoreUnavailable)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("empty Config: %v", err)
	}
	if err := (Config{ClientOptions: []option.ClientOption{option.WithEndpoint("x:443")}}).Validate(); err != nil {
		t.Fatalf("endpoint option: %v", err)
	}
	cfg := Config{ClientOptions: []option.ClientOption{nil, option.WithEndpoint("x:443"), nil}}
	e := wantError(t, cfg.Validate(), secrets.InvalidInput)
	if !strings.Contains(e.Msg, "index 0, 2") {
		t.Fatalf("Msg %q should list every nil entry", e.Msg)
	}
	if _, err := New(context.Background(), cfg); !errors.Is(err, secrets.InvalidInput) {
		t.Fatalf("New with nil options: %v", err)
	}
}

func TestNewContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(ctx, Config{})
	wantError(t, err, secrets.StoreUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func TestParsePathValid(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Path
	}{
		{"projects/my-project/secrets/db", Path{Project: "my-project", Secret: "db"}},
		{"projects/abcdef/secrets/a", Path{Project: "abcdef", Secret: "a"}},
		{"projects/" + strings.Repeat("a", 30) + "/secrets/S_x-1", Path{Project: strings.Repeat("a", 30), Secret: "S_x-1"}},
		{"projects/123456789012/secrets/db", Path{Project: "123456789012", Secret: "db"}},
		{"projects/1/secrets/db", Path{Project: "1", Secret: "db"}},
		{"projects/my-project/secrets/db/versions/latest", Path{Project: "my-project", Secret: "db", Version: "latest"}},
		{"projects/my-project/secrets/db/versions/42", Path{Project: "my-project", Secret: "db", Version: "42"}},
		{"projects/my-project/secrets/db/versions/prod_v-2", Path{Project: "my-project", Secret: "db", Version: "prod_v-2"}},
		{"projects/my-project/secrets/" + strings.Repeat("s", 255), Path{Project: "my-project", Secret: strings.Repeat("s", 255)}},
		{"projects/my-project/secrets/db/versions/A" + strings.Repeat("b", 62), Path{Project: "my-project", Secret: "db", Version: "A" + strings.Repeat("b", 62)}},
		{"projects/my-project/locations/us-east1/secrets/db", Path{Project: "my-project", Location: "us-east1", Secret: "db"}},
		{"projects/my-project/locations/europe-west4/secrets/db/versions/3", Path{Project: "my-project", Location: "europe-west4", Secret: "db", Version: "3"}},
		{"projects/secrets/secrets/secrets", Path{Project: "secrets", Secret: "secrets"}},
	} {
		got, err := ParsePath(tc.path)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.path, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
		if got.Name() != tc.path {
			t.Errorf("Name() = %q, want %q", got.Name(), tc.path)
		}
	}
}

func TestParsePathInvalid(t *testing.T) {
	for _, tc := range []struct{ path, hint string }{
		{"", "empty"},
		{"db-creds", "projects/PROJECT/secrets/SECRET"},
		{"projects/my-project", "projects/PROJECT/secrets/SECRET"},
		{"projects/my-project/secrets", "projects/PROJECT/secrets/SECRET"},
		{"projects/my-project/secrets/", "secret id"},
		{"projects//secrets/db", "project"},
		{"/projects/my-project/secrets/db", "projects/PROJECT/secrets/SECRET"},
		{"projects/my-project/secrets/db/", "after the secret id"},
		{"projects/my-project/secrets/db/versions", "after the secret id"},
		{"projects/my-project/secrets/db/versions/", "version"},
		{"projects/my-project/secrets/db/versions/1/extra", "after the secret id"},
		{"projects/my-project/secrets/db/aliases/x", "after the secret id"},
		{"projects/abcde/secrets/db", "project"},
		{"projects/" + strings.Repeat("a", 31) + "/secrets/db", "project"},
		{"projects/My-Project/secrets/db", "project"},
		{"projects/1project/secrets/db", "project"},
		{"projects/my-project-/secrets/db", "project"},
		{"projects/my_project/secrets/db", "project"},
		{"projects/0123/secrets/db", "project"},
		{"projects/12345678901234567890/secrets/db", "project"},
		{"projects/example.com:proj/secrets/db", "project"},
		{"projects/my-project/secrets/" + strings.Repeat("s", 256), "secret id"},
		{"projects/my-project/secrets/db.prod", "secret id"},
		{"projects/my-project/secrets/d b", "secret id"},
		{"projects/my-project/secrets/db/versions/0", "version"},
		{"projects/my-project/secrets/db/versions/007", "version"},
		{"projects/my-project/secrets/db/versions/-1", "version"},
		{"projects/my-project/secrets/db/versions/1a", "version"},
		{"projects/my-project/secrets/db/versions/_x", "version"},
		{"projects/my-project/secrets/db/versions/A" + strings.Repeat("b", 63), "version"},
		{"projects/my-project/secrets/db/versions/" + strings.Repeat("9", 20), "version"},
		{"projects/my-project/locations/global/secrets/db", "global"},
		{"projects/my-project/locations/US-EAST1/secrets/db", "location"},
		{"projects/my-project/locations/us-east1-/secrets/db", "location"},
		{"projects/my-project/locations/x/secrets/db", "location"},
		{"projects/my-project/locations/us.east1/secrets/db", "location"},
		{"projects/my-project/locations//secrets/db", "location"},
		{"projects/my-project/locations/us-east1/secrets/db/versions/1/x", "after the secret id"},
		{"//secretmanager.googleapis.com/projects/my-project/secrets/db", "without the service host"},
		{"https://secretmanager.googleapis.com/v1/projects/p/secrets/db", "without the service host"},
		{" projects/my-project/secrets/db", "projects/PROJECT/secrets/SECRET"},
		{"projects/my-project/secrets/db\n", "secret id"},
		{"projects/MY/secrets/d.b/versions/0", "project"}, // several problems at once
		{"projects/my-project/secrets/" + strings.Repeat("x", 600), "longer than"},
		{"projects/my-project/secrets/db\xff", "secret id"},
	} {
		_, err := ParsePath(tc.path)
		if err == nil {
			t.Errorf("ParsePath(%q) succeeded", tc.path)
			continue
		}
		var e *secrets.Error
		if !errorsAs(err, &e) || e.Kind != secrets.InvalidInput || e.Store != Name {
			t.Errorf("ParsePath(%q) = %v, want an InvalidInput *secrets.Error", tc.path, err)
			continue
		}
		if !strings.Contains(e.Msg, tc.hint) {
			t.Errorf("ParsePath(%q) message %q does not contain %q", tc.path, e.Msg, tc.hint)
		}
		if len(e.Error()) > 2000 {
			t.Errorf("ParsePath(%q) message is %d bytes", tc.path, len(e.Error()))
		}
	}
}

func TestParsePathReportsAllProblems(t *testing.T) {
	_, err := ParsePath("projects/MY/secrets/d.b/versions/0")
	msg := err.Error()
	for _, part := range []string{"project", "secret id", "version"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q misses the %s problem", msg, part)
		}
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		ref  secrets.Ref
		want string // resource name, or "" for an error
		hint string
	}{
		{secrets.Ref{Path: "projects/p-1234/secrets/s"}, "projects/p-1234/secrets/s/versions/latest", ""},
		{secrets.Ref{Path: "projects/p-1234/secrets/s", Version: "3"}, "projects/p-1234/secrets/s/versions/3", ""},
		{secrets.Ref{Path: "projects/p-1234/secrets/s", Version: "latest"}, "projects/p-1234/secrets/s/versions/latest", ""},
		{secrets.Ref{Path: "projects/p-1234/secrets/s/versions/3", Version: "3"}, "projects/p-1234/secrets/s/versions/3", ""},
		{secrets.Ref{Path: "projects/p-1234/secrets/s/versions/3"}, "projects/p-1234/secrets/s/versions/3", ""},
		{secrets.Ref{Path: "projects/p-1234/locations/us-east1/secrets/s", Version: "blue"}, "projects/p-1234/locations/us-east1/secrets/s/versions/blue", ""},
		{secrets.Ref{Path: "projects/p-1234/secrets/s/versions/3", Version: "4"}, "", "give the version once"},
		{secrets.Ref{Path: "projects/p-1234/secrets/s/versions/latest", Version: "4"}, "", "give the version once"},
		{secrets.Ref{Path: "projects/p-1234/secrets/s", Version: "0"}, "", "is not a positive version number"},
		{secrets.Ref{Path: "projects/p-1234/secrets/s", Version: "a/b"}, "", "is not a positive version number"},
		{secrets.Ref{Path: "projects/p-1234/secrets/s", Stage: "AWSCURRENT"}, "", "AWS"},
		{secrets.Ref{Path: "bad", Version: "0", Stage: "X"}, "", "AWS"},
	} {
		p, err := ParseRef(tc.ref)
		if tc.want != "" {
			if err != nil || p.Name() != tc.want {
				t.Errorf("ParseRef(%+v) = %q, %v; want %q", tc.ref, p.Name(), err, tc.want)
			}
			continue
		}
		var e *secrets.Error
		if !errorsAs(err, &e) || e.Kind != secrets.InvalidInput || !strings.Contains(e.Msg, tc.hint) {
			t.Errorf("ParseRef(%+v) = %v; want InvalidInput containing %q", tc.ref, err, tc.hint)
			continue
		}
		if e.Ref != tc.ref.String() {
			t.Errorf("Ref = %q, want %q", e.Ref, tc.ref.String())
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"projects/my-project/secrets/db", "projects/1/locations/us-east1/secrets/s/versions/2",
		"projects/p/secrets/s/versions/", "//secretmanager.googleapis.com/projects/x", "\xff/\x00",
		"projects/" + strings.Repeat("é", 300),
	} {
		f.Add(s, "")
		f.Add(s, "latest")
	}
	f.Fuzz(func(t *testing.T, path, version string) {
		p, err := ParsePath(path)
		if err == nil {
			// A valid path round-trips.
			if p.Name() != path {
				t.Fatalf("Name() = %q for %q", p.Name(), path)
			}
		} else if secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "" {
			t.Fatalf("ParsePath(%q): %T of kind %s: %q", path, err, secrets.KindOf(err), err)
		}
		r, err := ParseRef(secrets.Ref{Path: path, Version: version})
		if err == nil && (r.Version == "" || !validVersion(r.Version)) {
			t.Fatalf("ParseRef(%q, %q) gave version %q", path, version, r.Version)
		}
		if err != nil && (secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "") {
			t.Fatalf("ParseRef(%q, %q): kind %s: %q", path, version, secrets.KindOf(err), err)
		}
	})
}
