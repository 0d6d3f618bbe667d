package codec

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/secure-agent/secure-agent/codec/oidctest"
	"github.com/secure-agent/secure-agent/internal/testenv"
)

const (
	testAudience = "secure-agent-codec"
	testGroup    = "codec-readers"
)

// oidcServer is the real codec server (over HTTP) with an OIDC verifier against a local issuer,
// the static token still configured beside it.
type oidcServer struct {
	*testServer
	iss     *oidctest.Issuer
	keyLogs *testenv.SyncBuffer
}

func newOIDCVerifier(t *testing.T, iss *oidctest.Issuer, mutate func(*OIDCOptions)) (*OIDCVerifier, *testenv.SyncBuffer) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	opts := OIDCOptions{
		Issuer:          iss.URL,
		Audience:        testAudience,
		AllowedSubjects: []string{"alice"},
		AllowedGroups:   []string{testGroup},
		HTTPClient:      iss.Client(),
		Logger:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&opts)
	}
	v, err := NewOIDCVerifier(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return v, logs
}

func newOIDCServer(t *testing.T, mutate func(*OIDCOptions)) *oidcServer {
	t.Helper()
	iss := oidctest.NewIssuer(t)
	v, keyLogs := newOIDCVerifier(t, iss, mutate)
	ts := newTestServer(t, func(o *ServerOptions) { o.OIDC = v })
	return &oidcServer{testServer: ts, iss: iss, keyLogs: keyLogs}
}

// decodeWith posts one encrypted payload to /decode with the bearer token and returns the
// status and body.
func (s *oidcServer) decodeWith(t *testing.T, token string, headers ...string) (int, string) {
	t.Helper()
	enc := encode(t, s.keys, samplePayloads(t)[:1])
	body := jsonBody(t, enc)
	h := []string{"Content-Type", "application/json"}
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	resp, got := s.do(t, http.MethodPost, "/decode", body, append(h, headers...)...)
	return resp.StatusCode, string(got)
}

// assertNoTokenInLogs checks both logs for the whole token and its signature.
func (s *oidcServer) assertNoTokenInLogs(t *testing.T, tokens ...string) {
	t.Helper()
	logs := s.logs.String() + s.keyLogs.String()
	for _, tok := range tokens {
		sig := tok[strings.LastIndex(tok, ".")+1:]
		if strings.Contains(logs, tok) || (len(sig) > 16 && strings.Contains(logs, sig)) {
			t.Fatalf("the logs hold a token:\n%s", logs)
		}
	}
}

func TestOIDCDecode(t *testing.T) {
	s := newOIDCServer(t, func(o *OIDCOptions) { o.KeyRefreshInterval = time.Millisecond })
	orig := samplePayloads(t)
	enc := encode(t, s.keys, orig)
	token := s.iss.Token(t, s.iss.Claims("alice", testAudience))

	resp, body := s.do(t, http.MethodPost, "/decode", jsonBody(t, enc), "Authorization", "Bearer "+token, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("decode with a valid token: %d %s", resp.StatusCode, body)
	}
	dec := parsePayloads(t, body)
	for i := range orig {
		if !proto.Equal(dec[i], orig[i]) {
			t.Fatalf("payload %d not decoded: %v", i, dec[i])
		}
	}

	// The static token keeps working beside OIDC.
	if code, body := s.decodeWith(t, testToken); code != http.StatusOK || !proto.Equal(parsePayloads(t, []byte(body))[0], orig[0]) {
		t.Fatalf("static token beside OIDC: %d %s", code, body)
	}

	// Admitted by group, not subject: groups as an array or as one string; aud as an array; an
	// ES256 key; exp 10 s past is within the leeway.
	ec := oidctest.NewECKey(t, "ec-1")
	s.iss.Publish(s.iss.Key(), ec)
	byGroup := s.iss.Claims("bob", testAudience)
	byGroup["groups"] = []string{"staff", testGroup}
	oneGroup := s.iss.Claims("carol", testAudience)
	oneGroup["groups"] = testGroup
	audList := s.iss.Claims("alice", testAudience)
	audList["aud"] = []string{"other-api", testAudience}
	justExpired := s.iss.Claims("alice", testAudience)
	justExpired["exp"] = time.Now().Add(-10 * time.Second).Unix()
	for name, tok := range map[string]string{
		"group array":    s.iss.Token(t, byGroup),
		"group string":   s.iss.Token(t, oneGroup),
		"audience array": s.iss.Token(t, audList),
		"ES256":          oidctest.Sign(t, ec, s.iss.Claims("alice", testAudience)),
		"within leeway":  s.iss.Token(t, justExpired),
	} {
		if code, body := s.decodeWith(t, tok); code != http.StatusOK {
			t.Fatalf("%s: %d %s", name, code, body)
		}
	}

	logs := s.logs.String()
	if !strings.Contains(logs, "auth=oidc") || !strings.Contains(logs, "subject=alice") || !strings.Contains(logs, "subject=bob") || !strings.Contains(logs, "auth=token") {
		t.Fatalf("the log lines do not say who decoded:\n%s", logs)
	}
	if strings.Contains(logs, canary) {
		t.Fatalf("the logs show payloads:\n%s", logs)
	}
	s.assertNoTokenInLogs(t, token)
}

// rawJWT builds a compact JWS by hand, for tokens no honest signer makes.
func rawJWT(t *testing.T, header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func hs256(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

func TestOIDCRejects(t *testing.T) {
	s := newOIDCServer(t, nil)
	iss := s.iss
	good := iss.Claims("alice", testAudience)
	with := func(changes map[string]any) map[string]any {
		c := iss.Claims("alice", testAudience)
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	now := time.Now()
	pubDER, err := x509.MarshalPKIXPublicKey(iss.Key().Private.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, err := json.Marshal(iss.Key().JWK())
	if err != nil {
		t.Fatal(err)
	}
	impostor := oidctest.NewRSAKey(t, "key-1") // same key id as the issuer's, another key
	stranger := oidctest.NewRSAKey(t, "key-unknown")
	other := oidctest.NewIssuer(t) // another issuer, whose key is also "key-1"
	valid := iss.Token(t, good)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, with(map[string]any{"sub": "mallory"}))) + "." + parts[2]

	cases := []struct {
		name, token string
		want        int
		reason      string
	}{
		{"no token", "", http.StatusUnauthorized, "missing or wrong token"},
		{"not a JWT", "not-a-jwt", http.StatusUnauthorized, "oidc: not a JWT"},
		{"expired", iss.Token(t, with(map[string]any{"exp": now.Add(-10 * time.Minute).Unix()})), http.StatusUnauthorized, "oidc: token expired"},
		{"no exp", iss.Token(t, with(map[string]any{"exp": nil})), http.StatusUnauthorized, "oidc: token has no exp"},
		{"not yet valid", iss.Token(t, with(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), http.StatusUnauthorized, "oidc: token not valid yet"},
		{"wrong issuer", iss.Token(t, with(map[string]any{"iss": "https://evil.example"})), http.StatusUnauthorized, "oidc: issuer does not match"},
		{"issuer with a trailing slash", iss.Token(t, with(map[string]any{"iss": iss.URL + "/"})), http.StatusUnauthorized, "oidc: issuer does not match"},
		{"wrong audience", iss.Token(t, with(map[string]any{"aud": "another-api"})), http.StatusUnauthorized, "oidc: audience does not match"},
		{"no audience", iss.Token(t, with(map[string]any{"aud": nil})), http.StatusUnauthorized, "oidc: audience does not match"},
		{"signed by another key with the same key id", oidctest.Sign(t, impostor, good), http.StatusUnauthorized, "oidc: signature does not verify"},
		{"another issuer's token", other.Token(t, with(map[string]any{"iss": other.URL})), http.StatusUnauthorized, "oidc: signature does not verify"},
		{"payload changed after signing", tampered, http.StatusUnauthorized, "oidc: signature does not verify"},
		{"unknown key id", oidctest.Sign(t, stranger, good), http.StatusUnauthorized, "oidc: unknown signing key"},
		{"alg none", rawJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, good, func([]byte) []byte { return nil }), http.StatusUnauthorized, "oidc: malformed token or signature algorithm not allowed"},
		{"alg none with kid", rawJWT(t, map[string]any{"alg": "none", "kid": "key-1"}, good, func([]byte) []byte { return []byte("x") }), http.StatusUnauthorized, "oidc: malformed token or signature algorithm not allowed"},
		{"HS256 keyed with the public key PEM", rawJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "key-1"}, good, hs256(pubPEM)), http.StatusUnauthorized, "oidc: malformed token or signature algorithm not allowed"},
		{"HS256 keyed with the public key DER", rawJWT(t, map[string]any{"alg": "HS256", "kid": "key-1"}, good, hs256(pubDER)), http.StatusUnauthorized, "oidc: malformed token or signature algorithm not allowed"},
		{"HS256 keyed with the public JWK", rawJWT(t, map[string]any{"alg": "HS256", "kid": "key-1"}, good, hs256(pubJWK)), http.StatusUnauthorized, "oidc: malformed token or signature algorithm not allowed"},
		{"RS256 header on an HMAC signature", rawJWT(t, map[string]any{"alg": "RS256", "kid": "key-1"}, good, hs256(pubPEM)), http.StatusUnauthorized, "oidc: signature does not verify"},
		{"subject not allowed", iss.Token(t, with(map[string]any{"sub": "mallory"})), http.StatusForbidden, "oidc: subject and groups not allowed"},
		{"group not allowed", iss.Token(t, with(map[string]any{"sub": "mallory", "groups": []string{"staff"}})), http.StatusForbidden, "oidc: subject and groups not allowed"},
		{"group claim of the wrong type", iss.Token(t, with(map[string]any{"sub": "mallory", "groups": map[string]any{testGroup: true}})), http.StatusForbidden, "oidc: subject and groups not allowed"},
		{"allowed group name in another claim", iss.Token(t, with(map[string]any{"sub": "mallory", "roles": []string{testGroup}})), http.StatusForbidden, "oidc: subject and groups not allowed"},
		{"allowed subject name in the wrong claim", iss.Token(t, with(map[string]any{"sub": "mallory", "preferred_username": "alice"})), http.StatusForbidden, "oidc: subject and groups not allowed"},
	}
	var tokens []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.logs.String()
			code, body := s.decodeWith(t, c.token)
			if code != c.want {
				t.Fatalf("%d %q, want %d", code, body, c.want)
			}
			wantBody := "unauthorized\n"
			if c.want == http.StatusForbidden {
				wantBody = "forbidden\n"
			}
			if body != wantBody {
				t.Fatalf("body %q, want %q: no detail for the client", body, wantBody)
			}
			line := strings.TrimPrefix(s.logs.String(), before)
			if !strings.Contains(line, c.reason) {
				t.Fatalf("the log line does not give the reason %q:\n%s", c.reason, line)
			}
			if c.want == http.StatusForbidden && !strings.Contains(line, "subject=mallory") {
				t.Fatalf("a refused valid token's log line does not name its subject:\n%s", line)
			}
		})
		if c.token != "" && c.token != "not-a-jwt" {
			tokens = append(tokens, c.token)
		}
	}
	// Nothing was decoded: no answer held the canary (each was one of the two bodies above), and
	// the log holds no token nor any claim the attacker chose without a valid signature.
	s.assertNoTokenInLogs(t, tokens...)
	if logs := s.logs.String(); strings.Contains(logs, "evil.example") || strings.Contains(logs, "another-api") {
		t.Fatalf("the logs echo unverified claims:\n%s", logs)
	}
}

// jsonBody is a codec request body: payloads in Temporal's proto JSON.
func jsonBody(t *testing.T, payloads []*commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOIDCKeyRotation(t *testing.T) {
	t.Run("new key, then old key withdrawn", func(t *testing.T) {
		s := newOIDCServer(t, func(o *OIDCOptions) {
			o.KeyRefreshInterval = time.Millisecond
			o.KeyMaxAge = 300 * time.Millisecond
		})
		old := s.iss.Key()
		oldToken := s.iss.Token(t, s.iss.Claims("alice", testAudience))
		if code, body := s.decodeWith(t, oldToken); code != http.StatusOK {
			t.Fatalf("before rotation: %d %s", code, body)
		}
		fetches := s.iss.JWKSRequests()

		// The issuer publishes a new key beside the old one and signs with it.
		next := oidctest.NewRSAKey(t, "key-2")
		s.iss.Publish(next, old)
		newToken := s.iss.Token(t, s.iss.Claims("alice", testAudience))
		if code, body := s.decodeWith(t, newToken); code != http.StatusOK {
			t.Fatalf("a token signed with the new key: %d %s", code, body)
		}
		if got := s.iss.JWKSRequests(); got != fetches+1 {
			t.Fatalf("key set fetched %d times for the new key id, want 1", got-fetches)
		}
		if code, _ := s.decodeWith(t, oldToken); code != http.StatusOK {
			t.Fatalf("the old key during the overlap: %d", code)
		}

		// The issuer withdraws the old key: once the cached set is older than KeyMaxAge, it is
		// fetched again and the old key's tokens stop passing.
		s.iss.Publish(next)
		time.Sleep(400 * time.Millisecond)
		if code, _ := s.decodeWith(t, oldToken); code != http.StatusUnauthorized {
			t.Fatalf("a withdrawn key's token: %d, want 401", code)
		}
		if code, _ := s.decodeWith(t, newToken); code != http.StatusOK {
			t.Fatalf("the new key after the old one left: %d", code)
		}
		if logs := s.keyLogs.String(); !strings.Contains(logs, "key set fetched") {
			t.Fatalf("key set fetches are not logged:\n%s", logs)
		}
	})

	t.Run("unknown key ids fetch the set at most once per interval", func(t *testing.T) {
		s := newOIDCServer(t, func(o *OIDCOptions) { o.KeyRefreshInterval = time.Hour })
		fetches := s.iss.JWKSRequests()
		for i := 0; i < 20; i++ {
			tok := oidctest.Sign(t, oidctest.NewECKey(t, "made-up-"+string(rune('a'+i))), s.iss.Claims("alice", testAudience))
			if code, _ := s.decodeWith(t, tok); code != http.StatusUnauthorized {
				t.Fatalf("unknown key id: %d", code)
			}
		}
		if got := s.iss.JWKSRequests(); got != fetches {
			t.Fatalf("20 tokens with unknown key ids fetched the key set %d times; the interval allows none yet", got-fetches)
		}
		// Known keys keep working meanwhile.
		if code, _ := s.decodeWith(t, s.iss.Token(t, s.iss.Claims("alice", testAudience))); code != http.StatusOK {
			t.Fatalf("valid token: %d", code)
		}
	})

	t.Run("an unreachable issuer keeps the keys already fetched", func(t *testing.T) {
		s := newOIDCServer(t, func(o *OIDCOptions) {
			o.KeyRefreshInterval = time.Millisecond
			o.KeyMaxAge = time.Millisecond
		})
		tok := s.iss.Token(t, s.iss.Claims("alice", testAudience))
		s.iss.Close()
		time.Sleep(5 * time.Millisecond)
		if code, body := s.decodeWith(t, tok); code != http.StatusOK {
			t.Fatalf("valid token while the issuer is down: %d %s", code, body)
		}
		if logs := s.keyLogs.String(); !strings.Contains(logs, "key set fetch failed") || !strings.Contains(logs, "keys_kept=1") {
			t.Fatalf("the failed fetch is not logged:\n%s", logs)
		}
	})
}

// TestOIDCWebUIRequest sends what the Temporal Web UI's browser code sends with
// codec.passAccessToken (ui-server v2.55.0, ui/assets/local/_app/immutable/chunks/CSjjsQNi.js):
// a CORS preflight, then POST <endpoint>/decode?preserveStorageRefs=true with Content-Type,
// X-Namespace, "Authorization: Bearer <access token>" and "Authorization-Extras: <ID token>". The
// UI sends the token only to an https endpoint, so the codec server here speaks TLS.
func TestOIDCWebUIRequest(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	v, keyLogs := newOIDCVerifier(t, iss, nil)
	_, k := newKey(t)
	keys := mustKeys(t, "k1:"+k)
	logs := &testenv.SyncBuffer{}
	codecTLS := httptest.NewTLSServer(NewServer(keys, ServerOptions{
		OIDC:           v, // no static token: OIDC alone
		AllowedOrigins: []string{"https://temporal-ui.example.com"},
		Namespaces:     []string{"default"},
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
	}))
	defer codecTLS.Close()
	s := &oidcServer{testServer: &testServer{Server: codecTLS, keys: keys, logs: logs}, iss: iss, keyLogs: keyLogs}

	origin := "https://temporal-ui.example.com"
	resp, _ := s.do(t, http.MethodOptions, "/decode?preserveStorageRefs=true", nil,
		"Origin", origin,
		"Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,authorization-extras,content-type,x-namespace",
	)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "authorization-extras", "content-type", "x-namespace"} {
		if !strings.Contains(allowed, h) {
			t.Fatalf("the preflight does not allow %s (%q): the browser would not send the request", h, allowed)
		}
	}

	access := iss.Token(t, iss.Claims("alice", testAudience))
	idClaims := iss.Claims("alice", "temporal-ui")
	idClaims["email"] = "alice@example.com"
	idToken := iss.Token(t, idClaims)
	orig := samplePayloads(t)[:2]
	resp, body := s.do(t, http.MethodPost, "/decode?preserveStorageRefs=true", jsonBody(t, encode(t, keys, orig)),
		"Origin", origin,
		"Content-Type", "application/json",
		NamespaceHeader, "default",
		"Authorization", "Bearer "+access,
		"Authorization-Extras", idToken,
	)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("the UI's decode: %d %s", resp.StatusCode, body)
	}
	if dec := parsePayloads(t, body); !proto.Equal(dec[0], orig[0]) || !proto.Equal(dec[1], orig[1]) {
		t.Fatal("the UI's decode did not decrypt")
	}

	// The ID token alone (its audience is the UI's client id) does not open the server, and a
	// static token is not configured here, so no other string does.
	if code, _ := s.decodeWith(t, idToken, NamespaceHeader, "default"); code != http.StatusUnauthorized {
		t.Fatalf("the ID token as the bearer: %d, want 401", code)
	}
	if code, _ := s.decodeWith(t, testToken, NamespaceHeader, "default"); code != http.StatusUnauthorized {
		t.Fatalf("a static token on an OIDC-only server: %d, want 401", code)
	}
	s.assertNoTokenInLogs(t, access, idToken)
	if strings.Contains(logs.String(), "alice@example.com") {
		t.Fatal("the log shows the ID token's claims")
	}
}

func TestOIDCOptionsValidate(t *testing.T) {
	ok := OIDCOptions{Issuer: "https://login.example.com/realms/ops", Audience: testAudience, AllowedGroups: []string{testGroup}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, issuer := range []string{"http://127.0.0.1:8080", "http://localhost:8080/realms/x", "http://[::1]:9000"} {
		o := ok
		o.Issuer = issuer
		if err := o.Validate(); err != nil {
			t.Fatalf("loopback http issuer %s: %v", issuer, err)
		}
	}
	cases := []struct {
		option, problem string
		mutate          func(*OIDCOptions)
	}{
		{"Issuer", "is required", func(o *OIDCOptions) { o.Issuer = "" }},
		{"Issuer", "is not https", func(o *OIDCOptions) { o.Issuer = "http://login.example.com" }},
		{"Issuer", "is not https", func(o *OIDCOptions) { o.Issuer = "http://10.0.0.5:8080" }},
		{"Issuer", "is not https", func(o *OIDCOptions) { o.Issuer = "http://127.0.0.1.evil.example" }},
		{"Issuer", "not an https URL", func(o *OIDCOptions) { o.Issuer = "ftp://login.example.com" }},
		{"Issuer", "not an absolute URL", func(o *OIDCOptions) { o.Issuer = "login.example.com" }},
		{"Issuer", "carries credentials", func(o *OIDCOptions) { o.Issuer = "https://user:pw@login.example.com" }},
		{"Issuer", "has a query", func(o *OIDCOptions) { o.Issuer = "https://login.example.com?x=1" }},
		{"Audience", "is required", func(o *OIDCOptions) { o.Audience = "" }},
		{"AllowedSubjects", "would admit every user", func(o *OIDCOptions) { o.AllowedGroups = nil }},
		{"AllowedGroups", "empty entry", func(o *OIDCOptions) { o.AllowedGroups = []string{" "} }},
		{"GroupsClaim", "registered claim", func(o *OIDCOptions) { o.GroupsClaim = "iss" }},
		{"GroupsClaim", "registered claim", func(o *OIDCOptions) { o.GroupsClaim = "aud" }},
		{"JWKSURL", "is not https", func(o *OIDCOptions) { o.JWKSURL = "http://login.example.com/jwks" }},
		{"KeyRefreshInterval", "negative", func(o *OIDCOptions) { o.KeyRefreshInterval = -1 }},
	}
	for _, c := range cases {
		o := ok
		c.mutate(&o)
		err := o.Validate()
		var oe *OIDCOptionError
		if !errors.As(err, &oe) || oe.Option != c.option || !strings.Contains(err.Error(), c.problem) {
			t.Fatalf("%s %q: err = %v", c.option, c.problem, err)
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Fatalf("the error shows credentials: %v", err)
		}
		if _, err := NewOIDCVerifier(context.Background(), o); err == nil {
			t.Fatalf("NewOIDCVerifier accepted %+v", o)
		}
	}
	// Every problem at once.
	err := OIDCOptions{Issuer: "http://idp.example.com"}.Validate()
	for _, want := range []string{"Issuer", "Audience", "AllowedSubjects"} {
		if !strings.Contains(err.Error(), "OIDC "+want) {
			t.Fatalf("missing %s in %v", want, err)
		}
	}

	// The server takes OIDC instead of a static token, never neither.
	if err := (ServerOptions{OIDC: &OIDCVerifier{}}).Validate(); err != nil {
		t.Fatalf("OIDC without a static token: %v", err)
	}
	if err := (ServerOptions{}).Validate(); err == nil || !strings.Contains(err.Error(), "token or OIDC") {
		t.Fatalf("neither token nor OIDC: %v", err)
	}
}

// TestOIDCStartupErrors: what NewOIDCVerifier refuses at start, against real servers.
func TestOIDCStartupErrors(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	base := func() OIDCOptions {
		return OIDCOptions{Issuer: iss.URL, Audience: testAudience, AllowedSubjects: []string{"alice"}, HTTPClient: iss.Client()}
	}
	start := func(o OIDCOptions) error {
		_, err := NewOIDCVerifier(context.Background(), o)
		return err
	}

	t.Run("discovery names another issuer", func(t *testing.T) {
		iss.SetDiscoveryIssuer("https://other.example")
		defer iss.SetDiscoveryIssuer("")
		if err := start(base()); err == nil || !strings.Contains(err.Error(), "did not match") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("issuer given with a trailing slash", func(t *testing.T) {
		o := base()
		o.Issuer += "/"
		if err := start(o); err == nil || !strings.Contains(err.Error(), "did not match") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("issuer's certificate not trusted", func(t *testing.T) {
		o := base()
		o.HTTPClient = nil // the system's CAs do not know the test issuer's
		if err := start(o); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("issuer unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		o := base()
		o.Issuer = "https://" + addr
		if err := start(o); err == nil || !strings.Contains(err.Error(), "discovery at https://"+addr+"/.well-known/openid-configuration") {
			t.Fatalf("err = %v", err)
		}
	})

	jwks := func(t *testing.T, handler http.HandlerFunc) string {
		srv := httptest.NewUnstartedServer(handler)
		srv.TLS = &tls.Config{Certificates: iss.TLS.Certificates} // trusted by iss.Client()
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	t.Run("key set with only symmetric and weak keys", func(t *testing.T) {
		o := base()
		o.JWKSURL = jwks(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","kid":"key-1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},` +
				`{"kty":"RSA","kid":"small","n":"wVnPnbRJPUl-Kb3Fx7bO1lnzLgS2qKrEJ0c5cW7xVlFQeUqcCJT2LhYGdYzUOgmF6nkbfJ5xQc7hB5Uy7RZ2Qw","e":"AQAB"},` +
				`{"kty":"OKP","crv":"X448","x":"AAAA"}]}`))
		})
		if err := start(o); err == nil || !strings.Contains(err.Error(), "no usable signing key") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("key set redirects to http", func(t *testing.T) {
		o := base()
		o.JWKSURL = jwks(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://idp.example.com/jwks", http.StatusFound)
		})
		if err := start(o); err == nil || !strings.Contains(err.Error(), "is not https") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("key set answers an error", func(t *testing.T) {
		o := base()
		o.JWKSURL = jwks(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "internal detail "+canary, http.StatusInternalServerError)
		})
		err := start(o)
		if err == nil || !strings.Contains(err.Error(), "500") || strings.Contains(err.Error(), canary) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("explicit key set URL skips discovery", func(t *testing.T) {
		iss.SetDiscoveryIssuer("https://other.example") // discovery would fail
		defer iss.SetDiscoveryIssuer("")
		o := base()
		o.JWKSURL = iss.URL + "/jwks"
		v, err := NewOIDCVerifier(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res := v.verify(context.Background(), iss.Token(t, iss.Claims("alice", testAudience))); res.status != 0 {
			t.Fatalf("verify: %+v", res)
		}
	})
}
