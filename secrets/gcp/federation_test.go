package gcp

// Workload identity federation through Application Default Credentials. The store is built as
// the agent builds it, with no credential option: only the test server's endpoint and TLS trust.
// GOOGLE_APPLICATION_CREDENTIALS names an external_account file whose token_url and
// service_account_impersonation_url point at loopback HTTPS servers speaking the STS token
// exchange and the IAM Credentials generateAccessToken protocols; its credential_source.file is
// a file the tests rewrite. The real Secret Manager client, with whichever auth library it
// uses, must read the file, exchange it, impersonate, and present only the final access token.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/secure-agent/secure-agent/secrets"
)

const (
	wifAudience    = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/agents/providers/k8s"
	jwtTokenType   = "urn:ietf:params:oauth:token-type:jwt"
	impersonatedSA = "secret-reader@my-project.iam.gserviceaccount.com"
	cloudPlatform  = "https://www.googleapis.com/auth/cloud-platform"
	stsPath        = "/v1/token"
	iamPath        = "/v1/projects/-/serviceAccounts/" + impersonatedSA + ":generateAccessToken"
)

// tokenLifetime is how long the fake services' access tokens live. Both auth libraries use a
// cached token until it expires, so sleeping past it forces the next Fetch to exchange again.
const tokenLifetime = time.Second

// newTLSServer starts an HTTPS server on loopback with the test certificate, trusted through
// SSL_CERT_FILE (see TestMain), and closes it when the test ends.
func newTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	cert, _ := testPKI(t)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// fakeSTS is the Security Token Service. An exchange must carry the token-exchange grant, the
// pool audience, the JWT subject token type, the access-token requested type, the
// cloud-platform scope, and a subject token equal to the token file's contents at the moment
// of the request. It answers with a new access token living tokenLifetime.
type fakeSTS struct {
	URL       string // the token_url
	tokenFile string

	mu       sync.Mutex
	requests int
	subjects []string // subject tokens of accepted exchanges, in order
	issued   []string // access tokens issued, in order
	problems []string // why requests were refused
	status   int      // when not 0, answer every request with this status and errorBody
	body     string
}

func newFakeSTS(t *testing.T, tokenFile string) *fakeSTS {
	s := &fakeSTS{tokenFile: tokenFile}
	s.URL = newTLSServer(t, s).URL + stsPath
	return s
}

func (s *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.status != 0 {
		writeJSON(w, s.status, map[string]string{"error": "invalid_grant", "error_description": s.body})
		return
	}
	var problems []string
	if r.Method != http.MethodPost || r.URL.Path != stsPath {
		problems = append(problems, "request "+r.Method+" "+r.URL.Path)
	}
	if err := r.ParseForm(); err != nil {
		problems = append(problems, "form: "+err.Error())
	}
	current, err := os.ReadFile(s.tokenFile)
	if err != nil {
		problems = append(problems, "token file: "+err.Error())
	}
	for k, want := range map[string]string{
		"grant_type":           "urn:ietf:params:oauth:grant-type:token-exchange",
		"audience":             wifAudience,
		"subject_token_type":   jwtTokenType,
		"requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"scope":                cloudPlatform,
		"subject_token":        string(current),
	} {
		if got := r.PostForm.Get(k); got != want {
			problems = append(problems, fmt.Sprintf("%s = %q, want %q", k, got, want))
		}
	}
	if r.PostForm.Get("subject_token") == "" {
		problems = append(problems, "empty subject_token")
	}
	if len(problems) > 0 {
		s.problems = append(s.problems, problems...)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	tok := "sts-access-" + randHex()
	s.subjects = append(s.subjects, r.PostForm.Get("subject_token"))
	s.issued = append(s.issued, tok)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      tok,
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type":        "Bearer",
		"expires_in":        int(tokenLifetime / time.Second),
	})
}

// refuse makes the STS answer every request with code and a body carrying body.
func (s *fakeSTS) refuse(code int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = code, body
}

func (s *fakeSTS) snapshot() (requests int, subjects, issued, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, slices.Clone(s.subjects), slices.Clone(s.issued), slices.Clone(s.problems)
}

// fakeIAM is IAM Credentials' generateAccessToken for impersonatedSA. A request must present
// the STS's latest access token and ask for the cloud-platform scope; it answers with a new
// access token living tokenLifetime.
type fakeIAM struct {
	URL string // the service_account_impersonation_url
	sts *fakeSTS

	mu       sync.Mutex
	requests int
	bearers  []string // the STS tokens presented by accepted requests
	issued   []string
	problems []string
	status   int
	body     string
}

func newFakeIAM(t *testing.T, sts *fakeSTS) *fakeIAM {
	s := &fakeIAM{sts: sts}
	s.URL = newTLSServer(t, s).URL + iamPath
	return s
}

func (s *fakeIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _, stsIssued, _ := s.sts.snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.status != 0 {
		writeJSON(w, s.status, map[string]any{"error": map[string]any{"code": s.status, "message": s.body}})
		return
	}
	var problems []string
	if r.Method != http.MethodPost || r.URL.Path != iamPath {
		problems = append(problems, "request "+r.Method+" "+r.URL.Path)
	}
	auth := r.Header.Get("Authorization")
	if len(stsIssued) == 0 || auth != "Bearer "+stsIssued[len(stsIssued)-1] {
		problems = append(problems, "Authorization is not the STS's latest token")
	}
	var req struct {
		Scope    []string `json:"scope"`
		Lifetime string   `json:"lifetime"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		problems = append(problems, "body: "+err.Error())
	}
	if !slices.Equal(req.Scope, []string{cloudPlatform}) {
		problems = append(problems, fmt.Sprintf("scope = %q", req.Scope))
	}
	if len(problems) > 0 {
		s.problems = append(s.problems, problems...)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request"})
		return
	}
	tok := "iam-access-" + randHex()
	s.bearers = append(s.bearers, strings.TrimPrefix(auth, "Bearer "))
	s.issued = append(s.issued, tok)
	writeJSON(w, http.StatusOK, map[string]string{
		"accessToken": tok,
		"expireTime":  time.Now().Add(tokenLifetime).UTC().Format(time.RFC3339),
	})
}

func (s *fakeIAM) refuse(code int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = code, body
}

func (s *fakeIAM) snapshot() (requests int, bearers, issued, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, slices.Clone(s.bearers), slices.Clone(s.issued), slices.Clone(s.problems)
}

// fakeMetadata is a stand-in GCE metadata server that records every request and serves none.
type fakeMetadata struct {
	mu    sync.Mutex
	paths []string
}

func (m *fakeMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.paths = append(m.paths, r.URL.Path)
	m.mu.Unlock()
	http.NotFound(w, r)
}

func (m *fakeMetadata) Paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.paths)
}

// useFakeMetadata points the metadata client (GCE_METADATA_HOST) at a new stand-in.
func useFakeMetadata(t *testing.T) *fakeMetadata {
	t.Helper()
	m := &fakeMetadata{}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	t.Setenv("GCE_METADATA_HOST", host)
	t.Setenv("GCE_METADATA_IP", host)
	return m
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func randHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeTokenFile replaces path's contents atomically, as the kubelet swaps a projected token.
func writeTokenFile(t *testing.T, path, contents string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// authLibraries are the two credential paths of google.golang.org/api: the Secret Manager
// client enables cloud.google.com/go/auth, and GOOGLE_API_GO_EXPERIMENTAL_DISABLE_NEW_AUTH_LIB
// switches it back to golang.org/x/oauth2/google.
var authLibraries = []struct{ name, disableNewAuth string }{
	{"auth", ""},
	{"oauth2", "true"},
}

// knobs are environment variables of the client libraries that would change what is tested.
var knobs = []string{
	"GOOGLE_API_GO_EXPERIMENTAL_DISABLE_NEW_AUTH_LIB", "GOOGLE_API_GO_EXPERIMENTAL_ENABLE_NEW_AUTH_LIB",
	"GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED", "EXPERIMENTAL_GOOGLE_API_USE_S2A",
	"GOOGLE_API_USE_CLIENT_CERTIFICATE", "GOOGLE_API_USE_MTLS_ENDPOINT", "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
	"GOOGLE_CLOUD_QUOTA_PROJECT", "GOOGLE_SDK_GO_LOGGING_LEVEL",
}

// wif is one federation setup: token file, credential file, token services, metadata stand-in
// and Secret Manager.
type wif struct {
	tokenFile string
	credFile  string
	sts       *fakeSTS
	iam       *fakeIAM // nil without impersonation
	md        *fakeMetadata
	sm        *fakeSM
	value     string
}

type wifOptions struct {
	disableNewAuth string // GOOGLE_API_GO_EXPERIMENTAL_DISABLE_NEW_AUTH_LIB
	impersonate    bool
	subject        string // the token file's first contents
	tokenURL       string // overrides the fake STS's URL
}

// setupWIF isolates the environment from the machine's own credentials, starts the servers
// and writes the external_account file that GOOGLE_APPLICATION_CREDENTIALS names.
func setupWIF(t *testing.T, o wifOptions) *wif {
	t.Helper()
	noADC(t)
	for _, k := range knobs {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	if o.disableNewAuth != "" {
		t.Setenv("GOOGLE_API_GO_EXPERIMENTAL_DISABLE_NEW_AUTH_LIB", o.disableNewAuth)
	}
	dir := t.TempDir()
	w := &wif{tokenFile: filepath.Join(dir, "token"), credFile: filepath.Join(dir, "wif.json"), value: "value-" + randHex()}
	w.md = useFakeMetadata(t)
	w.sts = newFakeSTS(t, w.tokenFile)
	if o.impersonate {
		w.iam = newFakeIAM(t, w.sts)
	}
	w.sm = newFakeSM(t, func(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		final := w.finalTokens()
		if got := md.Get("authorization"); len(final) == 0 || len(got) != 1 || got[0] != "Bearer "+final[len(final)-1] {
			return nil, status.Error(codes.Unauthenticated, "not the latest final access token")
		}
		return okResponse(req.GetName(), "7", []byte(w.value)), nil
	})
	if o.subject != "" {
		writeTokenFile(t, w.tokenFile, o.subject)
	}
	cred := map[string]any{
		"type":               "external_account",
		"audience":           wifAudience,
		"subject_token_type": jwtTokenType,
		"token_url":          w.sts.URL,
		"credential_source":  map[string]any{"file": w.tokenFile, "format": map[string]string{"type": "text"}},
	}
	if o.tokenURL != "" {
		cred["token_url"] = o.tokenURL
	}
	if w.iam != nil {
		cred["service_account_impersonation_url"] = w.iam.URL
	}
	b, err := json.Marshal(cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.credFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(credsEnv, w.credFile)
	return w
}

// finalTokens are the access tokens Secret Manager accepts: the IAM tokens with
// impersonation, the STS tokens without.
func (w *wif) finalTokens() []string {
	if w.iam != nil {
		_, _, issued, _ := w.iam.snapshot()
		return issued
	}
	_, _, issued, _ := w.sts.snapshot()
	return issued
}

// newStore builds the store as the agent does, plus only the endpoint and TLS trust of the
// test Secret Manager.
func (w *wif) newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{ClientOptions: []option.ClientOption{option.WithEndpoint(w.sm.Addr), tlsOption(t)}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// noProblems fails if a fake service refused a request for a protocol reason.
func (w *wif) noProblems(t *testing.T) {
	t.Helper()
	if _, _, _, p := w.sts.snapshot(); len(p) > 0 {
		t.Fatalf("STS refused requests: %q", p)
	}
	if w.iam != nil {
		if _, _, _, p := w.iam.snapshot(); len(p) > 0 {
			t.Fatalf("IAM refused requests: %q", p)
		}
	}
}

func TestWorkloadIdentityFederation(t *testing.T) {
	for _, lib := range authLibraries {
		for _, imp := range []bool{false, true} {
			name := lib.name + "/direct"
			if imp {
				name = lib.name + "/impersonation"
			}
			t.Run(name, func(t *testing.T) {
				first := "subject-1-" + randHex()
				w := setupWIF(t, wifOptions{disableNewAuth: lib.disableNewAuth, impersonate: imp, subject: first})
				s := w.newStore(t)

				fetch := func(round int) string {
					t.Helper()
					sec, err := s.Fetch(context.Background(), secrets.Ref{Path: testPath})
					w.noProblems(t)
					if err != nil {
						t.Fatalf("Fetch %d: %v", round, err)
					}
					if got := sec.Value.Reveal(); got != w.value {
						t.Fatalf("Fetch %d: value %q, want %q", round, got, w.value)
					}
					calls := w.sm.Calls()
					final := w.finalTokens()
					if len(calls) != round || len(final) != round {
						t.Fatalf("after Fetch %d: %d Secret Manager calls, %d final tokens", round, len(calls), len(final))
					}
					if got := calls[round-1].Authorization; !slices.Equal(got, []string{"Bearer " + final[round-1]}) {
						t.Fatalf("Fetch %d presented %q, want the final token %q", round, got, final[round-1])
					}
					return final[round-1]
				}

				final1 := fetch(1)
				n, subjects, stsTokens, _ := w.sts.snapshot()
				if n != 1 || !slices.Equal(subjects, []string{first}) {
					t.Fatalf("STS saw %d requests with subjects %q, want one with the file's contents", n, subjects)
				}
				if imp {
					n, bearers, _, _ := w.iam.snapshot()
					if n != 1 || !slices.Equal(bearers, stsTokens) {
						t.Fatalf("IAM saw %d requests bearing %q, want one bearing the STS token", n, bearers)
					}
					if final1 == stsTokens[0] {
						t.Fatal("Secret Manager got the STS token, not the impersonated one")
					}
				}

				// The token file rotates; once the access token expires, the next Fetch must
				// exchange the file's new contents.
				second := "subject-2-" + randHex()
				writeTokenFile(t, w.tokenFile, second)
				time.Sleep(tokenLifetime + 200*time.Millisecond)
				final2 := fetch(2)
				if final2 == final1 {
					t.Fatal("the second Fetch reused the first access token")
				}
				n, subjects, stsTokens, _ = w.sts.snapshot()
				if n != 2 || !slices.Equal(subjects, []string{first, second}) {
					t.Fatalf("STS saw %d requests with subjects %q, want the rotated file's contents second", n, subjects)
				}
				if imp {
					if n, bearers, _, _ := w.iam.snapshot(); n != 2 || !slices.Equal(bearers, stsTokens) {
						t.Fatalf("IAM saw %d requests bearing %q, want each new STS token %q", n, bearers, stsTokens)
					}
				}
				if p := w.md.Paths(); len(p) != 0 {
					t.Fatalf("the metadata server got %d requests (%q), want none", len(p), p)
				}
			})
		}
	}
}

// TestMetadataStandInIsOnTheADCPath shows that the metadata stand-in counts what it should:
// without a credential file, Application Default Credentials do ask it for a token.
func TestMetadataStandInIsOnTheADCPath(t *testing.T) {
	for _, lib := range authLibraries {
		t.Run(lib.name, func(t *testing.T) {
			w := setupWIF(t, wifOptions{disableNewAuth: lib.disableNewAuth, subject: "unused"})
			t.Setenv(credsEnv, "")
			s := w.newStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, err := s.Fetch(ctx, secrets.Ref{Path: testPath})
			wantError(t, err, secrets.AuthFailed)
			if len(w.md.Paths()) == 0 {
				t.Fatal("the metadata stand-in got no request: GCE_METADATA_HOST is not what the libraries use")
			}
			if n, _, _, _ := w.sts.snapshot(); n != 0 {
				t.Fatalf("STS got %d requests without a federation file", n)
			}
		})
	}
}

// assertChainNoLeak fails if err, or any error it wraps, prints one of the canaries.
func assertChainNoLeak(t *testing.T, err error, canaries ...string) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		assertNoLeak(t, e, canaries...)
	}
}

func TestWorkloadIdentityFederationFailures(t *testing.T) {
	type failure struct {
		name    string
		imp     bool
		arrange func(t *testing.T, w *wif, body string) // make the setup fail
		kind    secrets.Kind
		msg     func(w *wif) []string // what Msg must contain
		detail  string
		sts     int // STS requests expected
	}
	// Every message names the credential file and its setting; a final one also names the
	// subject token file and its setting, so the operator knows what to fix.
	final := func(more ...string) func(w *wif) []string {
		return func(w *wif) []string {
			return append([]string{credsEnv, w.credFile, "credential_source.file", w.tokenFile}, more...)
		}
	}
	transient := func(more ...string) func(w *wif) []string {
		return func(w *wif) []string {
			return append([]string{credsEnv, w.credFile, w.stsHost()}, more...)
		}
	}
	for _, lib := range authLibraries {
		for _, tc := range []failure{
			{name: "subject token file missing", kind: secrets.AuthFailed,
				arrange: func(t *testing.T, w *wif, _ string) {
					if err := os.Remove(w.tokenFile); err != nil {
						t.Fatal(err)
					}
				},
				msg: final("does not exist", "projected service account token")},
			{name: "subject token file empty", kind: secrets.AuthFailed,
				arrange: func(t *testing.T, w *wif, _ string) { writeTokenFile(t, w.tokenFile, "\n") },
				msg:     final("is empty"), detail: "token service HTTP 400", sts: 1},
			{name: "STS refuses", kind: secrets.AuthFailed,
				arrange: func(_ *testing.T, w *wif, body string) { w.sts.refuse(http.StatusBadRequest, body) },
				msg: func(w *wif) []string {
					return final("refused", w.stsHost(), "issuer, audience")(w)
				},
				detail: "token service HTTP 400", sts: 1},
			{name: "impersonation refused", imp: true, kind: secrets.AuthFailed,
				arrange: func(_ *testing.T, w *wif, body string) { w.iam.refuse(http.StatusForbidden, body) },
				msg: func(w *wif) []string {
					return final("refused", w.stsHost(), w.iamHost(), "roles/iam.workloadIdentityUser")(w)
				},
				detail: "token service HTTP 403", sts: 1},
			{name: "STS unavailable", kind: secrets.StoreUnavailable,
				arrange: func(_ *testing.T, w *wif, body string) { w.sts.refuse(http.StatusServiceUnavailable, body) },
				msg:     transient("failed on its side"), detail: "token service HTTP 503", sts: 1},
			{name: "STS throttles", kind: secrets.Throttled,
				arrange: func(_ *testing.T, w *wif, body string) { w.sts.refuse(http.StatusTooManyRequests, body) },
				msg:     transient("throttling"), detail: "token service HTTP 429", sts: 1},
		} {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				subject, body := canary(t), canary(t)
				w := setupWIF(t, wifOptions{disableNewAuth: lib.disableNewAuth, impersonate: tc.imp, subject: subject})
				s := w.newStore(t)
				tc.arrange(t, w, body)
				_, err := s.Fetch(context.Background(), secrets.Ref{Path: testPath})
				e := wantError(t, err, tc.kind)
				for _, m := range tc.msg(w) {
					if !strings.Contains(e.Msg, m) {
						t.Errorf("Msg %q does not contain %q", e.Msg, m)
					}
				}
				if e.Detail != tc.detail {
					t.Errorf("Detail = %q, want %q", e.Detail, tc.detail)
				}
				if secrets.Retryable(err) != tc.kind.Retryable() {
					t.Errorf("Retryable = %v for %s", secrets.Retryable(err), tc.kind)
				}
				if n, _, _, _ := w.sts.snapshot(); n != tc.sts {
					t.Errorf("STS got %d requests, want %d", n, tc.sts)
				}
				if n := len(w.sm.Calls()); n != 0 {
					t.Errorf("Secret Manager got %d calls without a token, want 0", n)
				}
				if p := w.md.Paths(); len(p) != 0 {
					t.Errorf("the metadata server got requests %q", p)
				}
				_, _, stsTokens, _ := w.sts.snapshot()
				assertChainNoLeak(t, err, append(stsTokens, subject, body)...)
			})
		}
	}
}

func (w *wif) stsHost() string { return hostOf(w.sts.URL, "") }
func (w *wif) iamHost() string { return hostOf(w.iam.URL, "") }

func TestWorkloadIdentityFederationMissingFileIsNotExist(t *testing.T) {
	w := setupWIF(t, wifOptions{})
	s := w.newStore(t)
	_, err := s.Fetch(context.Background(), secrets.Ref{Path: testPath})
	wantError(t, err, secrets.AuthFailed)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want errors.Is fs.ErrNotExist", err)
	}
}

func TestWorkloadIdentityFederationSTSUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	_ = lis.Close()
	for _, lib := range authLibraries {
		t.Run(lib.name, func(t *testing.T) {
			w := setupWIF(t, wifOptions{disableNewAuth: lib.disableNewAuth, subject: canary(t), tokenURL: "https://" + closed + stsPath})
			s := w.newStore(t)
			_, err := s.Fetch(context.Background(), secrets.Ref{Path: testPath})
			e := wantError(t, err, secrets.StoreUnavailable)
			if !strings.Contains(e.Msg, closed) || !strings.Contains(e.Msg, "could not be reached") {
				t.Fatalf("Msg = %q, want the token service's host and that it was not reached", e.Msg)
			}
			if n := len(w.sm.Calls()); n != 0 {
				t.Fatalf("Secret Manager got %d calls", n)
			}
		})
	}
}

// TestClientLibraryLoggingSilenced sets the client libraries' own debug logging, which writes
// every request and response to stderr, and checks that nothing of a federated Fetch reaches
// stderr. The control subtest shows that a client built without the store's options does log.
func TestClientLibraryLoggingSilenced(t *testing.T) {
	capture := func(t *testing.T, run func()) string {
		t.Helper()
		f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		orig := os.Stderr
		os.Stderr = f
		defer func() { os.Stderr = orig }()
		run()
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Run("store", func(t *testing.T) {
		subject := canary(t)
		w := setupWIF(t, wifOptions{impersonate: true, subject: subject})
		t.Setenv("GOOGLE_SDK_GO_LOGGING_LEVEL", "debug")
		out := capture(t, func() {
			s := w.newStore(t)
			if _, err := s.Fetch(context.Background(), secrets.Ref{Path: testPath}); err != nil {
				t.Errorf("Fetch: %v", err)
			}
		})
		w.noProblems(t)
		_, _, stsTokens, _ := w.sts.snapshot()
		_, _, iamTokens, _ := w.iam.snapshot()
		leaks := append(append([]string{subject, w.value, base64.StdEncoding.EncodeToString([]byte(w.value))}, stsTokens...), iamTokens...)
		for _, c := range leaks {
			if strings.Contains(out, c) {
				t.Fatalf("stderr holds %q:\n%s", c, out)
			}
		}
	})
	t.Run("control", func(t *testing.T) {
		w := setupWIF(t, wifOptions{impersonate: true, subject: canary(t)})
		t.Setenv("GOOGLE_SDK_GO_LOGGING_LEVEL", "debug")
		out := capture(t, func() {
			c, err := secretmanager.NewClient(context.Background(), option.WithEndpoint(w.sm.Addr), tlsOption(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.AccessSecretVersion(context.Background(), &secretmanagerpb.AccessSecretVersionRequest{Name: testPath + "/versions/latest"}); err != nil {
				t.Errorf("AccessSecretVersion: %v", err)
			}
		})
		if !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(w.value))) {
			t.Fatalf("the client without the store's options did not log the payload; the store subtest proves nothing. stderr:\n%s", out)
		}
	})
}
