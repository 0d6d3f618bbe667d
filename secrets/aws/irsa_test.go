package aws

// IRSA (EKS IAM roles for service accounts): the default chain's web identity, alone (authMethod
// iam) and under the assume-role hop, against the fake STS, which checks every token against the
// file's current contents, and the fake Secrets Manager, which accepts only the final credentials.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secure-agent/secure-agent/secrets"
)

// irsaToken is the projected service account token setupIRSA writes first.
const irsaToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.sig-1"

// setupIRSA isolates the environment and gives it IRSA, as the EKS pod identity webhook does:
// AWS_ROLE_ARN (the agent's role), AWS_WEB_IDENTITY_TOKEN_FILE (a projected token), and the
// endpoint variables pointing at f. It returns the token file's path.
func setupIRSA(t *testing.T, f *fakeAWS) string {
	t.Helper()
	isolateEnv(t)
	path := filepath.Join(t.TempDir(), "token")
	writeToken(t, path, irsaToken)
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path)
	t.Setenv("AWS_ROLE_ARN", agentRoleARN)
	t.Setenv("AWS_ENDPOINT_URL_STS", f.srv.URL)
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f.srv.URL)
	f.useWebIdentity(path, agentRoleARN)
	return path
}

// writeToken replaces the token file the way the kubelet rotates a projected token: a new file
// renamed over the old one.
func writeToken(t *testing.T, path, token string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newIRSAStore returns a store for cfg that finds every endpoint through the environment.
func newIRSAStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	cfg.Region = testRegion
	s, err := New(ctxBG, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// fetchValue fetches "app" and checks its value.
func fetchValue(t *testing.T, s *Store, want string) {
	t.Helper()
	sec, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got := sec.Value.Reveal(); got != want {
		t.Fatalf("Fetch = %q, want %q", got, want)
	}
}

// wantOps fails unless the server received exactly these operations, in this order.
func wantOps(t *testing.T, f *fakeAWS, want ...string) {
	t.Helper()
	if got := f.ops(); !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestIRSAWebIdentityThroughDefaultChain(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "irsa-value", "v-00000000000000000000000000000000001")
	setupIRSA(t, f)
	f.acceptOnly([]string{webKeyID(1)}, nil, "")
	// No endpoint overrides in Config: the SDK takes both from AWS_ENDPOINT_URL_*.
	s := newIRSAStore(t, Config{})
	fetchValue(t, s, "irsa-value")
	fetchValue(t, s, "irsa-value") // the web identity credentials are cached

	wantOps(t, f, "sts.AssumeRoleWithWebIdentity", "secretsmanager.GetSecretValue", "secretsmanager.GetSecretValue")
	form := f.recorded("sts.AssumeRoleWithWebIdentity")[0].form
	if form.Get("WebIdentityToken") != irsaToken || form.Get("RoleArn") != agentRoleARN || form.Get("RoleSessionName") != DefaultSessionName {
		t.Errorf("AssumeRoleWithWebIdentity form %v", form)
	}
	for _, r := range f.recorded("secretsmanager.GetSecretValue") {
		if r.accessKey != webKeyID(1) || r.token != "web-session-token-1" {
			t.Errorf("GetSecretValue signed with %q/%q, want the web identity credentials", r.accessKey, r.token)
		}
	}
}

func TestIRSASessionNameFromEnvironment(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "v", "v-00000000000000000000000000000000001")
	setupIRSA(t, f)
	t.Setenv("AWS_ROLE_SESSION_NAME", "pod-agent-0")
	s := newIRSAStore(t, Config{SessionName: "from-settings"})
	fetchValue(t, s, "v")
	if got := f.recorded("sts.AssumeRoleWithWebIdentity")[0].form.Get("RoleSessionName"); got != "pod-agent-0" {
		t.Errorf("RoleSessionName %q, want AWS_ROLE_SESSION_NAME's", got)
	}
}

func TestIRSAWithSTSEndpointSetting(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "irsa-value", "v-00000000000000000000000000000000001")
	setupIRSA(t, f)
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1") // overridden by Config.STSEndpoint
	s := mustNew(t, f, Config{SessionName: "custom-session"})
	fetchValue(t, s, "irsa-value")
	reqs := f.recorded("sts.AssumeRoleWithWebIdentity")
	if len(reqs) != 1 || reqs[0].form.Get("RoleSessionName") != "custom-session" {
		t.Errorf("web identity requests %v", reqs)
	}
}

// TestIRSATokenRotation rotates the token file between two fetches. Credentials that expire
// within CredentialRefreshWindow are refreshed before use, and each refresh reads the file anew:
// the fake STS refuses any token but the file's current one.
func TestIRSATokenRotation(t *testing.T) {
	t.Run("iam", func(t *testing.T) {
		f := newFakeAWS(t)
		f.addString("app", "v", "v-00000000000000000000000000000000001")
		path := setupIRSA(t, f)
		f.setLifetimes(CredentialRefreshWindow-time.Minute, 0) // still valid, but due for refresh
		s := newIRSAStore(t, Config{})

		f.acceptOnly([]string{webKeyID(1)}, nil, "")
		fetchValue(t, s, "v")
		writeToken(t, path, strings.Replace(irsaToken, "sig-1", "sig-2", 1))
		f.acceptOnly([]string{webKeyID(2)}, nil, "")
		fetchValue(t, s, "v")

		wantOps(t, f, "sts.AssumeRoleWithWebIdentity", "secretsmanager.GetSecretValue",
			"sts.AssumeRoleWithWebIdentity", "secretsmanager.GetSecretValue")
		web := f.recorded("sts.AssumeRoleWithWebIdentity")
		if len(web) == 2 && (web[0].form.Get("WebIdentityToken") != irsaToken || !strings.HasSuffix(web[1].form.Get("WebIdentityToken"), "sig-2")) {
			t.Errorf("tokens sent %q then %q, want the file's contents at each refresh", web[0].form.Get("WebIdentityToken"), web[1].form.Get("WebIdentityToken"))
		}
		sm := f.recorded("secretsmanager.GetSecretValue")
		if len(sm) == 2 && (sm[0].accessKey != webKeyID(1) || sm[1].accessKey != webKeyID(2)) {
			t.Errorf("GetSecretValue signed with %q then %q, want each refresh's credentials", sm[0].accessKey, sm[1].accessKey)
		}
	})

	t.Run("fresh credentials are kept", func(t *testing.T) {
		// Credentials far from expiry are not refreshed: a rotated token is used at the next
		// refresh, not at once (the old credentials stay valid until they expire).
		f := newFakeAWS(t)
		f.addString("app", "v", "v-00000000000000000000000000000000001")
		path := setupIRSA(t, f)
		f.setLifetimes(CredentialRefreshWindow+time.Minute, 0)
		s := newIRSAStore(t, Config{})
		fetchValue(t, s, "v")
		writeToken(t, path, "rotated")
		fetchValue(t, s, "v")
		wantOps(t, f, "sts.AssumeRoleWithWebIdentity", "secretsmanager.GetSecretValue", "secretsmanager.GetSecretValue")
	})

	t.Run("assume-role hop", func(t *testing.T) {
		// Both hops due for refresh: the second fetch assumes the web identity again with the
		// rotated token, then the role with the new web identity credentials.
		f := newFakeAWS(t)
		f.addString("app", "v", "v-00000000000000000000000000000000001")
		path := setupIRSA(t, f)
		f.setLifetimes(CredentialRefreshWindow-time.Minute, CredentialRefreshWindow-time.Minute)
		s := newIRSAStore(t, Config{AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: "ext-42"})

		f.acceptOnly([]string{tempKeyID}, []string{webKeyID(1)}, "ext-42")
		fetchValue(t, s, "v")
		writeToken(t, path, "rotated-token")
		f.acceptOnly([]string{tempKeyID}, []string{webKeyID(2)}, "ext-42")
		fetchValue(t, s, "v")

		wantOps(t, f,
			"sts.AssumeRoleWithWebIdentity", "sts.AssumeRole", "secretsmanager.GetSecretValue",
			"sts.AssumeRoleWithWebIdentity", "sts.AssumeRole", "secretsmanager.GetSecretValue")
		web := f.recorded("sts.AssumeRoleWithWebIdentity")
		if len(web) == 2 && web[1].form.Get("WebIdentityToken") != "rotated-token" {
			t.Errorf("second web identity token %q, want the rotated one", web[1].form.Get("WebIdentityToken"))
		}
		roles := f.recorded("sts.AssumeRole")
		if len(roles) == 2 && (roles[0].accessKey != webKeyID(1) || roles[1].accessKey != webKeyID(2)) {
			t.Errorf("AssumeRole signed with %q then %q, want each web identity refresh's credentials", roles[0].accessKey, roles[1].accessKey)
		}
	})
}

// TestIRSAAssumeRoleHop: with IRSA as the default chain, assume-role assumes the agent's web
// identity first, then roleArn with those credentials and the external id, and reads the secret
// with the role's credentials.
func TestIRSAAssumeRoleHop(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "hop-value", "v-00000000000000000000000000000000001")
	setupIRSA(t, f)
	f.acceptOnly([]string{tempKeyID}, []string{webKeyID(1)}, "ext-id:42")
	s := newIRSAStore(t, Config{AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: "ext-id:42", SessionName: "agent-7"})
	fetchValue(t, s, "hop-value")
	fetchValue(t, s, "hop-value") // both credentials are cached

	wantOps(t, f, "sts.AssumeRoleWithWebIdentity", "sts.AssumeRole",
		"secretsmanager.GetSecretValue", "secretsmanager.GetSecretValue")
	web := f.recorded("sts.AssumeRoleWithWebIdentity")[0]
	if web.form.Get("WebIdentityToken") != irsaToken || web.form.Get("RoleArn") != agentRoleARN || web.form.Get("RoleSessionName") != "agent-7" {
		t.Errorf("AssumeRoleWithWebIdentity form %v", web.form)
	}
	role := f.recorded("sts.AssumeRole")[0]
	if role.accessKey != webKeyID(1) || role.token != "web-session-token-1" {
		t.Errorf("AssumeRole signed with %q/%q, want the web identity credentials", role.accessKey, role.token)
	}
	if role.form.Get("RoleArn") != testRoleARN || role.form.Get("ExternalId") != "ext-id:42" || role.form.Get("RoleSessionName") != "agent-7" {
		t.Errorf("AssumeRole form %v", role.form)
	}
	for _, r := range f.recorded("secretsmanager.GetSecretValue") {
		if r.accessKey != tempKeyID || r.token != tempToken {
			t.Errorf("GetSecretValue signed with %q/%q, want the role's credentials", r.accessKey, r.token)
		}
	}
}

// TestIRSAFailures: an unreadable token file or a refusal by STS is a final AuthFailed that names
// what to check, never the token, and the secret is not read.
func TestIRSAFailures(t *testing.T) {
	secretToken := "eyJ." + canary(90) + ".sig"
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *fakeAWS, path string)
		method string
		detail string
		msgHas []string
		web    int // AssumeRoleWithWebIdentity calls
		role   int // AssumeRole calls
	}{
		{
			name:   "token file missing",
			setup:  func(t *testing.T, _ *fakeAWS, path string) { os.Remove(path) },
			msgHas: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "mounted"},
		},
		{
			name:   "token file empty",
			setup:  func(t *testing.T, _ *fakeAWS, path string) { writeToken(t, path, "") },
			msgHas: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "empty"},
		},
		{
			name:   "token file missing, assume-role",
			setup:  func(t *testing.T, _ *fakeAWS, path string) { os.Remove(path) },
			method: AuthAssumeRole,
			msgHas: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "roleArn"},
		},
		{
			name: "token refused",
			setup: func(t *testing.T, f *fakeAWS, _ string) {
				f.setHook(func(w http.ResponseWriter, _ *http.Request, op string, _ []byte) bool {
					if op != "sts.AssumeRoleWithWebIdentity" {
						return false
					}
					writeSTSError(w, http.StatusBadRequest, "InvalidIdentityToken", "No OpenIDConnect provider found in your account for "+canary(91))
					return true
				})
			},
			detail: "InvalidIdentityToken", msgHas: []string{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "trust policy"}, web: 1,
		},
		{
			name: "token expired",
			setup: func(t *testing.T, f *fakeAWS, _ string) {
				f.setHook(stsAnswer("sts.AssumeRoleWithWebIdentity", 400, "ExpiredTokenException"))
			},
			detail: "ExpiredTokenException", msgHas: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "current"}, web: 1,
		},
		{
			name:   "role does not trust the identity",
			setup:  func(t *testing.T, f *fakeAWS, path string) { f.useWebIdentity(path, testRoleARN) },
			detail: "AccessDenied", msgHas: []string{"AWS_ROLE_ARN", "trust policy"}, web: 1,
		},
		{
			name: "token refused, assume-role",
			setup: func(t *testing.T, f *fakeAWS, _ string) {
				f.setHook(stsAnswer("sts.AssumeRoleWithWebIdentity", 400, "InvalidIdentityToken"))
			},
			method: AuthAssumeRole,
			detail: "InvalidIdentityToken", msgHas: []string{"AWS_ROLE_ARN", "before roleArn"}, web: 1,
		},
		{
			name:   "assume-role refused: wrong external id",
			setup:  func(t *testing.T, f *fakeAWS, _ string) { f.acceptOnly(nil, []string{webKeyID(1)}, "another-id") },
			method: AuthAssumeRole,
			detail: "AccessDenied", msgHas: []string{"roleArn", "externalId", "AWS_ROLE_ARN"}, web: 1, role: 1,
		},
		{
			name:   "assume-role refused: role does not trust the agent's role",
			setup:  func(t *testing.T, f *fakeAWS, _ string) { f.acceptOnly(nil, []string{baseKeyID}, "") },
			method: AuthAssumeRole,
			detail: "AccessDenied", msgHas: []string{"trust policy", "AWS_ROLE_ARN"}, web: 1, role: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t)
			f.addString("app", "never-read", "v-00000000000000000000000000000000001")
			path := setupIRSA(t, f)
			writeToken(t, path, secretToken)
			tt.setup(t, f, path)
			cfg := Config{AuthMethod: tt.method}
			if tt.method == AuthAssumeRole {
				cfg.RoleARN, cfg.ExternalID = testRoleARN, "ext-id"
			}
			s := newIRSAStore(t, cfg)
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			e := wantKind(t, err, secrets.AuthFailed)
			if secrets.Retryable(err) {
				t.Errorf("%v is retried, want final", err)
			}
			if e.Detail != tt.detail {
				t.Errorf("Detail %q, want %q", e.Detail, tt.detail)
			}
			for _, want := range tt.msgHas {
				if !strings.Contains(e.Msg, want) {
					t.Errorf("message does not name %q: %q", want, e.Msg)
				}
			}
			assertNoCanary(t, tt.name, err)
			if strings.Contains(fmt.Sprintf("%+v", err), "eyJ.") {
				t.Errorf("error holds the token: %v", err)
			}
			if n := f.count("sts.AssumeRoleWithWebIdentity"); n != tt.web {
				t.Errorf("%d AssumeRoleWithWebIdentity calls, want %d (no retries)", n, tt.web)
			}
			if n := f.count("sts.AssumeRole"); n != tt.role {
				t.Errorf("%d AssumeRole calls, want %d", n, tt.role)
			}
			if n := f.count("secretsmanager.GetSecretValue"); n != 0 {
				t.Errorf("%d GetSecretValue calls without credentials", n)
			}
		})
	}
}

// stsAnswer returns a hook that answers op with an STS error.
func stsAnswer(op string, status int, code string) func(http.ResponseWriter, *http.Request, string, []byte) bool {
	return func(w http.ResponseWriter, _ *http.Request, got string, _ []byte) bool {
		if got != op {
			return false
		}
		writeSTSError(w, status, code, "refused")
		return true
	}
}

func TestIRSANoRetriesWithRetryEnvironment(t *testing.T) {
	f := newFakeAWS(t)
	setupIRSA(t, f)
	t.Setenv("AWS_MAX_ATTEMPTS", "5")
	t.Setenv("AWS_RETRY_MODE", "standard")
	f.setHook(stsAnswer("sts.AssumeRoleWithWebIdentity", 503, "ServiceUnavailable"))
	s := newIRSAStore(t, Config{})
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	wantKind(t, err, secrets.StoreUnavailable)
	if n := f.count("sts.AssumeRoleWithWebIdentity"); n != 1 {
		t.Errorf("%d AssumeRoleWithWebIdentity calls with AWS_MAX_ATTEMPTS=5, want 1", n)
	}
}

func TestIRSAResponseIsBounded(t *testing.T) {
	f := newFakeAWS(t)
	setupIRSA(t, f)
	f.setHook(func(w http.ResponseWriter, _ *http.Request, op string, _ []byte) bool {
		if op != "sts.AssumeRoleWithWebIdentity" {
			return false
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Provider>"))
		_, _ = w.Write([]byte(strings.Repeat("x", MaxResponseBytes)))
		return true
	})
	s := newIRSAStore(t, Config{})
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	e := wantKind(t, err, secrets.StoreUnavailable)
	if e.Detail != "response too large" {
		t.Errorf("Detail %q, want response too large", e.Detail)
	}
}

func TestIRSAWithoutRoleARN(t *testing.T) {
	f := newFakeAWS(t)
	setupIRSA(t, f)
	os.Unsetenv("AWS_ROLE_ARN")
	_, err := New(ctxBG, Config{Region: testRegion})
	e := wantKind(t, err, secrets.AuthFailed)
	if !strings.Contains(e.Msg, "AWS_ROLE_ARN") || !strings.Contains(e.Msg, "AWS_WEB_IDENTITY_TOKEN_FILE") {
		t.Errorf("message %q", e.Msg)
	}
}

// credentialStandIn is an EC2 instance metadata service and ECS container credentials endpoint
// that counts the requests it gets and serves nothing.
type credentialStandIn struct {
	srv  *httptest.Server
	mu   sync.Mutex
	imds int
	ecs  int
}

func newCredentialStandIn(t *testing.T) *credentialStandIn {
	c := &credentialStandIn{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if strings.HasPrefix(r.URL.Path, "/latest/") {
			c.imds++
		} else {
			c.ecs++
		}
		c.mu.Unlock()
		http.NotFound(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *credentialStandIn) counts() (imds, ecs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.imds, c.ecs
}

// enableIMDS points the SDK's instance metadata client at the stand-in, and turns it on.
func (c *credentialStandIn) enableIMDS(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	os.Unsetenv("AWS_EC2_METADATA_DISABLED")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", c.srv.URL)
}

// writeSharedCredentials gives the shared credentials and config files a default profile whose
// key the fake server knows (so its signatures verify) but Secrets Manager and STS refuse.
func writeSharedCredentials(t *testing.T, f *fakeAWS) {
	const fileKeyID, fileSecret = "AKIDSHAREDFILE00001", "shared-file-secret"
	f.mu.Lock()
	f.keys[fileKeyID] = aws.Credentials{AccessKeyID: fileKeyID, SecretAccessKey: fileSecret}
	f.mu.Unlock()
	creds := "[default]\naws_access_key_id = " + fileKeyID + "\naws_secret_access_key = " + fileSecret + "\n"
	if err := os.WriteFile(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte("[default]\nregion = "+testRegion+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestIRSANoOtherCredentialSource: with IRSA configured, neither the instance metadata service nor
// the container credentials endpoint nor the shared files are consulted, when IRSA works and when
// it fails (there is no fallback).
func TestIRSANoOtherCredentialSource(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		breakIt func(t *testing.T, f *fakeAWS, path string)
		want    secrets.Kind
	}{
		{name: "iam", method: AuthIAM},
		{name: "assume-role", method: AuthAssumeRole},
		{name: "token file missing", method: AuthIAM, breakIt: func(t *testing.T, _ *fakeAWS, path string) { os.Remove(path) }, want: secrets.AuthFailed},
		{name: "token refused", method: AuthAssumeRole, want: secrets.AuthFailed,
			breakIt: func(t *testing.T, f *fakeAWS, _ string) {
				f.setHook(stsAnswer("sts.AssumeRoleWithWebIdentity", 400, "InvalidIdentityToken"))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAWS(t)
			f.addString("app", "v", "v-00000000000000000000000000000000001")
			path := setupIRSA(t, f)
			standIn := newCredentialStandIn(t)
			standIn.enableIMDS(t)
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", standIn.srv.URL+"/v2/credentials")
			t.Setenv("AWS_DEFAULTS_MODE", "auto") // would ask IMDS for the region
			writeSharedCredentials(t, f)
			cfg := Config{AuthMethod: tc.method}
			final := webKeyID(1)
			if tc.method == AuthAssumeRole {
				cfg.RoleARN, final = testRoleARN, tempKeyID
				f.acceptOnly([]string{final}, []string{webKeyID(1)}, "")
			} else {
				f.acceptOnly([]string{final}, nil, "")
			}
			if tc.breakIt != nil {
				tc.breakIt(t, f, path)
			}
			s := newIRSAStore(t, cfg)
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			if tc.want == "" && err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if tc.want != "" {
				wantKind(t, err, tc.want)
			}
			if imds, ecs := standIn.counts(); imds != 0 || ecs != 0 {
				t.Errorf("instance metadata got %d requests, container endpoint %d, want none", imds, ecs)
			}
			for _, r := range f.recorded("secretsmanager.GetSecretValue") {
				if r.accessKey != final {
					t.Errorf("GetSecretValue signed with %q, want %q", r.accessKey, final)
				}
			}
		})
	}

	// The controls: without IRSA the same stand-ins are asked, so the zero counts above mean
	// something.
	t.Run("control: instance metadata without IRSA", func(t *testing.T) {
		f := newFakeAWS(t)
		isolateEnv(t)
		standIn := newCredentialStandIn(t)
		standIn.enableIMDS(t)
		s := mustNew(t, f, Config{})
		_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
		wantKind(t, err, secrets.AuthFailed)
		if imds, _ := standIn.counts(); imds == 0 {
			t.Error("the instance metadata stand-in got no request")
		}
	})
	t.Run("control: container endpoint without IRSA", func(t *testing.T) {
		f := newFakeAWS(t)
		isolateEnv(t)
		standIn := newCredentialStandIn(t)
		t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", standIn.srv.URL+"/v2/credentials")
		s := mustNew(t, f, Config{})
		_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
		if err == nil {
			t.Fatal("Fetch succeeded without credentials")
		}
		if _, ecs := standIn.counts(); ecs == 0 {
			t.Error("the container credentials stand-in got no request")
		}
	})
}

// TestIRSAEnvironmentKeysComeFirst pins the SDK's order: static keys in the environment win over
// IRSA, and STS is not called.
func TestIRSAEnvironmentKeysComeFirst(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "v", "v-00000000000000000000000000000000001")
	setupIRSA(t, f)
	useBaseKeys(t)
	s := newIRSAStore(t, Config{})
	fetchValue(t, s, "v")
	wantOps(t, f, "secretsmanager.GetSecretValue")
	if r := f.recorded("secretsmanager.GetSecretValue")[0]; r.accessKey != baseKeyID {
		t.Errorf("GetSecretValue signed with %q, want the environment's key", r.accessKey)
	}
}
