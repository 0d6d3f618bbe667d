package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/internal/awsx"
	"github.com/secure-agent/secure-agent/secrets"
)

var ctxBG = context.Background()

// asError returns err as a *secrets.Error or fails the test.
func asError(t *testing.T, err error) *secrets.Error {
	t.Helper()
	var e *secrets.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *secrets.Error", err, err)
	}
	return e
}

// wantKind fails the test unless err is a *secrets.Error of kind from the aws store.
func wantKind(t *testing.T, err error, kind secrets.Kind) *secrets.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", kind)
	}
	e := asError(t, err)
	if e.Kind != kind {
		t.Fatalf("kind %s (%v), want %s", e.Kind, err, kind)
	}
	if e.Store != Name {
		t.Errorf("Store %q, want %q", e.Store, Name)
	}
	return e
}

func TestFetchJSONObjectSecret(t *testing.T) {
	f := newFakeAWS(t)
	value := `{"username":"app","password":"p@ss w0rd\n"}`
	f.addString("prod/db", value, "v-json-00000000000000000000000000000001")
	s := newStore(t, f, Config{})

	sec, err := s.Fetch(ctxBG, secrets.Ref{Path: "prod/db"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got := sec.Value.Reveal(); got != value {
		t.Errorf("value %q, want %q", got, value)
	}
	if sec.Version != "v-json-00000000000000000000000000000001" {
		t.Errorf("version %q", sec.Version)
	}
	reqs := f.recorded("secretsmanager.GetSecretValue")
	if len(reqs) != 1 {
		t.Fatalf("%d GetSecretValue requests, want 1", len(reqs))
	}
	if reqs[0].accessKey != baseKeyID || reqs[0].token != "" {
		t.Errorf("signed with key %q token %q, want the base key and no token", reqs[0].accessKey, reqs[0].token)
	}
	var body map[string]string
	if err := json.Unmarshal(reqs[0].body, &body); err != nil || body["SecretId"] != "prod/db" || len(body) != 1 {
		t.Errorf("request body %s, want only SecretId prod/db", reqs[0].body)
	}
}

func TestFetchSingleStringAndBinary(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("token", "just-a-token", "v-str-000000000000000000000000000000001")
	bin := []byte{0x00, 0xff, 0x10, '"', '\\', 0x80}
	f.mu.Lock()
	f.secrets = append(f.secrets, &fakeSecret{name: "blob", arn: secretARN("blob"),
		versions: []fakeVersion{{id: "v-bin-000000000000000000000000000000001", stages: []string{"AWSCURRENT"}, bin: bin}}})
	f.mu.Unlock()
	s := newStore(t, f, Config{})

	sec, err := s.Fetch(ctxBG, secrets.Ref{Path: "token"})
	if err != nil || sec.Value.Reveal() != "just-a-token" {
		t.Fatalf("string secret: %v %q", err, sec.Value.Reveal())
	}
	sec, err = s.Fetch(ctxBG, secrets.Ref{Path: "blob"})
	if err != nil {
		t.Fatalf("binary secret: %v", err)
	}
	if !bytes.Equal(sec.Value, bin) {
		t.Errorf("binary value %x, want %x", []byte(sec.Value), bin)
	}
	sec.Zero()
	if sec.Value != nil {
		t.Error("Zero kept the value")
	}
}

func TestFetchVersions(t *testing.T) {
	f := newFakeAWS(t)
	cur, prev := "current-value", "previous-value"
	curID, prevID := "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"
	f.mu.Lock()
	f.secrets = append(f.secrets, &fakeSecret{name: "rotated", arn: secretARN("rotated"), versions: []fakeVersion{
		{id: curID, stages: []string{"AWSCURRENT"}, str: &cur},
		{id: prevID, stages: []string{"AWSPREVIOUS"}, str: &prev},
	}})
	f.mu.Unlock()
	s := newStore(t, f, Config{})

	tests := []struct {
		ref       secrets.Ref
		value, id string
	}{
		{secrets.Ref{Path: "rotated"}, cur, curID},
		{secrets.Ref{Path: "rotated", Version: prevID}, prev, prevID},
		{secrets.Ref{Path: "rotated", Stage: "AWSPREVIOUS"}, prev, prevID},
		{secrets.Ref{Path: "rotated", Stage: "AWSCURRENT"}, cur, curID},
		{secrets.Ref{Path: "rotated", Version: curID, Stage: "AWSCURRENT"}, cur, curID},
	}
	for _, tt := range tests {
		sec, err := s.Fetch(ctxBG, tt.ref)
		if err != nil {
			t.Errorf("%s: %v", tt.ref, err)
			continue
		}
		if sec.Value.Reveal() != tt.value || sec.Version != tt.id {
			t.Errorf("%s: got %q@%s, want %q@%s", tt.ref, sec.Value.Reveal(), sec.Version, tt.value, tt.id)
		}
	}
	reqs := f.recorded("secretsmanager.GetSecretValue")
	var body map[string]string
	_ = json.Unmarshal(reqs[1].body, &body)
	if body["VersionId"] != prevID || body["VersionStage"] != "" {
		t.Errorf("versioned request body %s", reqs[1].body)
	}
	_ = json.Unmarshal(reqs[2].body, &body)
	if body["VersionStage"] != "AWSPREVIOUS" {
		t.Errorf("staged request body %s", reqs[2].body)
	}

	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "rotated", Version: "bbbbbbbb-0000-0000-0000-000000000009"})
	e := wantKind(t, err, secrets.SecretNotFound)
	if !strings.Contains(e.Msg, "versionId") || e.Detail != "ResourceNotFoundException" {
		t.Errorf("missing version: %v", err)
	}
}

func TestFetchByARN(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app/key", "arn-value", "v-arn-000000000000000000000000000000001")
	s := newStore(t, f, Config{})
	for _, path := range []string{secretARN("app/key"), strings.TrimSuffix(secretARN("app/key"), "-AbCdEf")} {
		sec, err := s.Fetch(ctxBG, secrets.Ref{Path: path})
		if err != nil || sec.Value.Reveal() != "arn-value" {
			t.Errorf("%s: %v", path, err)
		}
	}

	before := f.count("secretsmanager.GetSecretValue")
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/key-AbCdEf"})
	e := wantKind(t, err, secrets.InvalidInput)
	if !strings.Contains(e.Msg, "set region to eu-west-1") {
		t.Errorf("region mismatch message %q does not say which region to use", e.Msg)
	}
	if f.count("secretsmanager.GetSecretValue") != before {
		t.Error("a request was sent for an ARN of another region")
	}
}

func TestFetchErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		code       string // __type and x-amzn-ErrorType; "" sends neither
		message    string
		retryAfter string
		rawBody    string // replaces the JSON error body when set
		kind       secrets.Kind
		detail     string
		delay      time.Duration
		msgHas     string
	}{
		{name: "not found", status: 400, code: "ResourceNotFoundException", kind: secrets.SecretNotFound, detail: "ResourceNotFoundException", msgHas: "us-east-1"},
		{name: "namespaced type", status: 400, code: "com.amazonaws.secretsmanager#ResourceNotFoundException", kind: secrets.SecretNotFound, detail: "ResourceNotFoundException"},
		{name: "marked for deletion", status: 400, code: "InvalidRequestException", message: "You can't perform this operation on the secret because it was marked for deletion.", kind: secrets.SecretNotFound, detail: "InvalidRequestException", msgHas: "marked for deletion"},
		{name: "invalid request", status: 400, code: "InvalidRequestException", message: "other", kind: secrets.InvalidInput, detail: "InvalidRequestException"},
		{name: "invalid parameter", status: 400, code: "InvalidParameterException", kind: secrets.InvalidInput, detail: "InvalidParameterException"},
		{name: "validation", status: 400, code: "ValidationException", kind: secrets.InvalidInput, detail: "ValidationException"},
		{name: "access denied", status: 400, code: "AccessDeniedException", kind: secrets.AccessDenied, detail: "AccessDeniedException", msgHas: "secretsmanager:GetSecretValue"},
		{name: "decryption", status: 400, code: "DecryptionFailure", kind: secrets.DecryptionFailed, detail: "DecryptionFailure", msgHas: "kms:Decrypt"},
		{name: "throttled with header", status: 400, code: "ThrottlingException", retryAfter: "7", kind: secrets.Throttled, detail: "ThrottlingException", delay: 7 * time.Second},
		{name: "too many requests", status: 400, code: "TooManyRequestsException", kind: secrets.Throttled, detail: "TooManyRequestsException", delay: DefaultThrottleDelay},
		{name: "request limit", status: 400, code: "RequestLimitExceeded", kind: secrets.Throttled, detail: "RequestLimitExceeded", delay: DefaultThrottleDelay},
		{name: "429 without code", status: 429, rawBody: "{}", retryAfter: "3", kind: secrets.Throttled, detail: "HTTP 429", delay: 3 * time.Second},
		{name: "internal error", status: 500, code: "InternalServiceError", kind: secrets.StoreUnavailable, detail: "InternalServiceError"},
		{name: "internal failure", status: 500, code: "InternalFailure", kind: secrets.StoreUnavailable, detail: "InternalFailure"},
		{name: "unavailable", status: 503, code: "ServiceUnavailable", kind: secrets.StoreUnavailable, detail: "ServiceUnavailable"},
		{name: "502 html", status: 502, rawBody: "<html>bad gateway</html>", kind: secrets.StoreUnavailable, detail: "HTTP 502"},
		{name: "unknown 5xx code", status: 504, code: "GatewayTimeoutException", kind: secrets.StoreUnavailable, detail: "HTTP 504"},
		{name: "unrecognized client", status: 400, code: "UnrecognizedClientException", kind: secrets.AuthFailed, detail: "UnrecognizedClientException", msgHas: "default chain"},
		{name: "expired token", status: 400, code: "ExpiredTokenException", kind: secrets.AuthFailed, detail: "ExpiredTokenException", msgHas: "expired"},
		{name: "invalid token id", status: 403, code: "InvalidClientTokenId", kind: secrets.AuthFailed, detail: "InvalidClientTokenId"},
		{name: "missing auth token", status: 400, code: "MissingAuthenticationToken", kind: secrets.AuthFailed, detail: "MissingAuthenticationToken"},
		{name: "unknown 4xx code", status: 400, code: "NoSuchThingHere", kind: secrets.InvalidInput, detail: "HTTP 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t)
			f.addString("app", "value", "v-00000000000000000000000000000000001")
			f.setHook(func(w http.ResponseWriter, r *http.Request, op string, body []byte) bool {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.rawBody != "" {
					w.WriteHeader(tt.status)
					_, _ = w.Write([]byte(tt.rawBody))
					return true
				}
				writeJSONError(w, tt.status, tt.code, tt.message)
				return true
			})
			s := newStore(t, f, Config{})
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			e := wantKind(t, err, tt.kind)
			if e.Detail != tt.detail {
				t.Errorf("Detail %q, want %q", e.Detail, tt.detail)
			}
			if e.RetryAfter != tt.delay {
				t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tt.delay)
			}
			if tt.msgHas != "" && !strings.Contains(e.Msg, tt.msgHas) {
				t.Errorf("message %q lacks %q", e.Msg, tt.msgHas)
			}
			if e.Ref != "app" || e.Cause == nil {
				t.Errorf("Ref %q, Cause %v", e.Ref, e.Cause)
			}
			// One attempt per Fetch: the SDK would retry 5xx and throttling three times.
			if n := f.count("secretsmanager.GetSecretValue"); n != 1 {
				t.Errorf("%d requests, want exactly 1 (SDK retries must be off)", n)
			}
		})
	}
}

func TestFetchErrorFromHeaderWithUnreadableBody(t *testing.T) {
	f := newFakeAWS(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, body []byte) bool {
		w.Header().Set("X-Amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/")
		w.WriteHeader(400)
		_, _ = w.Write([]byte("not json at all"))
		return true
	})
	s := newStore(t, f, Config{})
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	e := wantKind(t, err, secrets.Throttled)
	if e.Detail != "ThrottlingException" || e.RetryAfter != DefaultThrottleDelay {
		t.Errorf("Detail %q RetryAfter %v", e.Detail, e.RetryAfter)
	}
}

func TestFetchMalformedResponses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":  "<html>hello</html>",
		"truncated": `{"ARN":"x","SecretString":"abc`,
		"no value":  `{"ARN":"x","Name":"app","VersionId":"v"}`,
		"bad type":  `{"SecretString": 42}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeAWS(t)
			f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				_, _ = w.Write([]byte(body))
				return true
			})
			s := newStore(t, f, Config{})
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			e := wantKind(t, err, secrets.StoreUnavailable)
			if e.Detail != "malformed response" {
				t.Errorf("Detail %q", e.Detail)
			}
			if n := f.count("secretsmanager.GetSecretValue"); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestFetchOversizeResponse(t *testing.T) {
	f := newFakeAWS(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{"SecretString":"`))
		chunk := bytes.Repeat([]byte("a"), 1<<16)
		for written := 0; written <= MaxResponseBytes; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return true // the client stopped reading
			}
		}
		_, _ = w.Write([]byte(`"}`))
		return true
	})
	s := newStore(t, f, Config{})
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	e := wantKind(t, err, secrets.StoreUnavailable)
	if e.Detail != "response too large" || !errors.Is(err, awsx.ErrResponseTooLarge) {
		t.Errorf("Detail %q, cause %v", e.Detail, e.Cause)
	}
}

func TestFetchSlowServerHonoursDeadline(t *testing.T) {
	f := newFakeAWS(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return true
	})
	s := newStore(t, f, Config{})
	ctx, cancel := context.WithTimeout(ctxBG, 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Fetch(ctx, secrets.Ref{Path: "app"})
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Fetch took %v against a 150ms deadline", elapsed)
	}
	wantKind(t, err, secrets.StoreUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if n := f.count("secretsmanager.GetSecretValue"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestFetchCancelledContextSendsNothing(t *testing.T) {
	f := newFakeAWS(t)
	s := newStore(t, f, Config{})
	ctx, cancel := context.WithCancel(ctxBG)
	cancel()
	_, err := s.Fetch(ctx, secrets.Ref{Path: "app"})
	wantKind(t, err, secrets.StoreUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if n := f.count("secretsmanager.GetSecretValue"); n != 0 {
		t.Errorf("%d requests after cancellation", n)
	}
}

func TestFetchUnreachableEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	isolateEnv(t)
	useBaseKeys(t)
	s, err := New(ctxBG, Config{Region: testRegion, Endpoint: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	e := wantKind(t, err, secrets.StoreUnavailable)
	if !strings.Contains(e.Msg, "could not reach Secrets Manager") || strings.Contains(err.Error(), addr) {
		t.Errorf("network error message: %v", err)
	}
}

func TestInvalidRefSendsNothing(t *testing.T) {
	f := newFakeAWS(t)
	s := newStore(t, f, Config{})
	for _, ref := range []secrets.Ref{
		{Path: ""}, {Path: "has space"}, {Path: "app", Version: "short"}, {Path: "app", Stage: strings.Repeat("S", 257)},
	} {
		_, err := s.Fetch(ctxBG, ref)
		wantKind(t, err, secrets.InvalidInput)
	}
	if n := f.count("secretsmanager.GetSecretValue"); n != 0 {
		t.Errorf("%d requests for invalid refs", n)
	}
}

func TestAuthNoCredentials(t *testing.T) {
	f := newFakeAWS(t)
	isolateEnv(t) // no keys, no files, no IMDS, no container credentials
	s := mustNew(t, f, Config{})
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	e := wantKind(t, err, secrets.AuthFailed)
	if !strings.Contains(e.Msg, "AWS_ACCESS_KEY_ID") || !strings.Contains(e.Msg, "AWS_WEB_IDENTITY_TOKEN_FILE") {
		t.Errorf("message does not say how to give the agent credentials: %q", e.Msg)
	}
	if n := f.count("secretsmanager.GetSecretValue"); n != 0 {
		t.Errorf("%d unsigned requests sent", n)
	}
}

func TestAuthWrongSecretKeyIsRejected(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "value", "v-00000000000000000000000000000000001")
	isolateEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", baseKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-right-secret")
	s := mustNew(t, f, Config{})
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	e := wantKind(t, err, secrets.AuthFailed)
	if e.Detail != "InvalidSignatureException" || !strings.Contains(e.Msg, "clock") {
		t.Errorf("bad signature: %v", err)
	}
}

func TestAccessKeyMethod(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "value", "v-00000000000000000000000000000000001")
	isolateEnv(t)

	_, err := New(ctxBG, Config{Region: testRegion, AuthMethod: AuthAccessKey, Endpoint: f.srv.URL})
	e := wantKind(t, err, secrets.AuthFailed)
	if !strings.Contains(e.Msg, "AWS_ACCESS_KEY_ID") || !strings.Contains(e.Msg, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("message does not name the variables: %q", e.Msg)
	}

	// Only the secret key missing: the id must not be echoed.
	t.Setenv("AWS_ACCESS_KEY_ID", tempKeyID)
	_, err = New(ctxBG, Config{Region: testRegion, AuthMethod: AuthAccessKey, Endpoint: f.srv.URL})
	wantKind(t, err, secrets.AuthFailed)
	if strings.Contains(fmt.Sprintf("%+v", err), tempKeyID) {
		t.Errorf("error echoes the access key id: %v", err)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", tempSecretKey)
	t.Setenv("AWS_SESSION_TOKEN", tempToken)
	s := mustNew(t, f, Config{AuthMethod: AuthAccessKey})
	if _, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"}); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	req := f.recorded("secretsmanager.GetSecretValue")[0]
	if req.accessKey != tempKeyID || req.token != tempToken {
		t.Errorf("signed with %q/%q, want the env keys with their session token", req.accessKey, req.token)
	}
}

func TestAssumeRole(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "role-value", "v-00000000000000000000000000000000001")
	s := newStore(t, f, Config{AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: "ext-id:42", SessionName: "agent-7"})

	for i := 0; i < 2; i++ {
		sec, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
		if err != nil || sec.Value.Reveal() != "role-value" {
			t.Fatalf("Fetch %d: %v", i, err)
		}
	}
	stsReqs := f.recorded("sts.AssumeRole")
	if len(stsReqs) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1 (credentials are cached)", len(stsReqs))
	}
	form := stsReqs[0].form
	if form.Get("RoleArn") != testRoleARN || form.Get("ExternalId") != "ext-id:42" || form.Get("RoleSessionName") != "agent-7" {
		t.Errorf("AssumeRole form %v", form)
	}
	if stsReqs[0].accessKey != baseKeyID {
		t.Errorf("AssumeRole signed with %q, want the base key", stsReqs[0].accessKey)
	}
	for _, r := range f.recorded("secretsmanager.GetSecretValue") {
		if r.accessKey != tempKeyID || r.token != tempToken {
			t.Errorf("GetSecretValue signed with %q/%q, want the role's temporary credentials", r.accessKey, r.token)
		}
	}
}

func TestAssumeRoleDefaultSessionName(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("app", "v", "v-00000000000000000000000000000000001")
	s := newStore(t, f, Config{AuthMethod: AuthAssumeRole, RoleARN: testRoleARN})
	if _, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"}); err != nil {
		t.Fatal(err)
	}
	form := f.recorded("sts.AssumeRole")[0].form
	if form.Get("RoleSessionName") != DefaultSessionName || form.Has("ExternalId") {
		t.Errorf("AssumeRole form %v", form)
	}
}

func TestAssumeRoleErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		kind   secrets.Kind
		msgHas string
	}{
		{"access denied", 403, "AccessDenied", secrets.AuthFailed, "trust policy"},
		{"region disabled", 403, "RegionDisabledException", secrets.AuthFailed, "activate"},
		{"throttled", 400, "Throttling", secrets.Throttled, "STS"},
		{"unavailable", 503, "ServiceUnavailable", secrets.StoreUnavailable, "STS"},
		{"expired base token", 403, "ExpiredToken", secrets.AuthFailed, "roleArn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t)
			f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
				if op != "sts.AssumeRole" {
					return false
				}
				writeSTSError(w, tt.status, tt.code, "User is not authorized to perform: sts:AssumeRole")
				return true
			})
			s := newStore(t, f, Config{AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: "ext"})
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			e := wantKind(t, err, tt.kind)
			if e.Detail != tt.code || !strings.Contains(e.Msg, tt.msgHas) {
				t.Errorf("Detail %q Msg %q", e.Detail, e.Msg)
			}
			if n := f.count("sts.AssumeRole"); n != 1 {
				t.Errorf("%d AssumeRole calls, want exactly 1 (STS retries must be off)", n)
			}
			if n := f.count("secretsmanager.GetSecretValue"); n != 0 {
				t.Errorf("%d GetSecretValue calls without credentials", n)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	valid := []struct {
		path string
		want SecretID
	}{
		{"db", SecretID{Name: "db"}},
		{"prod/db/password_1+=.@-", SecretID{Name: "prod/db/password_1+=.@-"}},
		{strings.Repeat("n", 512), SecretID{Name: strings.Repeat("n", 512)}},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
			SecretID{Name: "prod/db-AbCdEf", ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf", Partition: "aws", Region: "us-east-1", Account: "123456789012"}},
		{"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x",
			SecretID{Name: "x", ARN: "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x", Partition: "aws-cn", Region: "cn-north-1", Account: "123456789012"}},
		{"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x",
			SecretID{Name: "x", ARN: "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x", Partition: "aws-us-gov", Region: "us-gov-west-1", Account: "123456789012"}},
	}
	for _, tt := range valid {
		got, err := ParsePath(tt.path)
		if err != nil || got != tt.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tt.path, got, err, tt.want)
		}
	}
	invalid := []struct{ path, msgHas string }{
		{"", "required"},
		{"has space", "secret name"},
		{"semi;colon", "secret name"},
		{"new\nline", "secret name"},
		{"ünicode", "secret name"},
		{strings.Repeat("n", 513), "secret name"},
		{"arn:", "not a Secrets Manager secret ARN"},
		{"arn:aws:s3:::bucket", "not a Secrets Manager secret ARN"},
		{"arn:aws:secretsmanager:us-east-1:123456789012:parameter:x", "not a Secrets Manager secret ARN"},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:", "secret name"},
		{"arn:aws:secretsmanager:useast1:123456789012:secret:x", "region"},
		{"arn:aws:secretsmanager:us-east-1:12345:secret:x", "12 digits"},
		{"arn:gcp:secretsmanager:us-east-1:123456789012:secret:x", "partition"},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:a:b", "secret name"},
	}
	for _, tt := range invalid {
		_, err := ParsePath(tt.path)
		e := wantKind(t, err, secrets.InvalidInput)
		if !strings.Contains(e.Msg, tt.msgHas) {
			t.Errorf("ParsePath(%q): message %q lacks %q", tt.path, e.Msg, tt.msgHas)
		}
	}
}

func TestValidateRef(t *testing.T) {
	uuid := "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
	for _, ref := range []secrets.Ref{
		{Path: "db"}, {Path: "db", Version: uuid}, {Path: "db", Stage: "AWSPREVIOUS"},
		{Path: "db", Version: strings.Repeat("v", 64), Stage: strings.Repeat("s", 256)},
		{Path: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"},
	} {
		if err := ValidateRef(ref, "us-east-1"); err != nil {
			t.Errorf("ValidateRef(%v): %v", ref, err)
		}
	}
	for _, tt := range []struct {
		ref    secrets.Ref
		msgHas string
	}{
		{secrets.Ref{Path: "db", Version: strings.Repeat("v", 31)}, "versionId"},
		{secrets.Ref{Path: "db", Version: strings.Repeat("v", 65)}, "versionId"},
		{secrets.Ref{Path: "db", Version: strings.Repeat("v", 31) + " x"}, "versionId"},
		{secrets.Ref{Path: "db", Stage: strings.Repeat("s", 257)}, "versionStage"},
		{secrets.Ref{Path: "db", Stage: "AWS CURRENT"}, "versionStage"},
		{secrets.Ref{Path: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"}, "set region to eu-west-1"},
		{secrets.Ref{Path: "bad path", Version: uuid}, "secret name"},
	} {
		err := ValidateRef(tt.ref, "us-east-1")
		e := wantKind(t, err, secrets.InvalidInput)
		if !strings.Contains(e.Msg, tt.msgHas) || e.Ref != tt.ref.String() {
			t.Errorf("ValidateRef(%v): %v (want %q, Ref %q)", tt.ref, err, tt.msgHas, tt.ref.String())
		}
	}
	// Without a region, ARNs of any region pass.
	if err := ValidateRef(secrets.Ref{Path: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"}, ""); err != nil {
		t.Errorf("ValidateRef without region: %v", err)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, seed := range []string{"", "db", "arn:", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
		"arn:::::::", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x:y:z", "\xff\x00", strings.Repeat("a", 600)} {
		f.Add(seed, "", "")
	}
	f.Fuzz(func(t *testing.T, path, version, stage string) {
		id, err := ParsePath(path)
		if err == nil && id.Name == "" {
			t.Errorf("ParsePath(%q) accepted a path without a name", path)
		}
		if err != nil && (secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "") {
			t.Errorf("ParsePath(%q): kind %s: %q", path, secrets.KindOf(err), err)
		}
		if err := ValidateRef(secrets.Ref{Path: path, Version: version, Stage: stage}, "us-east-1"); err != nil && (secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "") {
			t.Errorf("ValidateRef: kind %s: %q", secrets.KindOf(err), err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	valid := []Config{
		{Region: "us-east-1"},
		{Region: "eu-central-2", AuthMethod: AuthIAM},
		{Region: "us-gov-west-1", AuthMethod: AuthAccessKey},
		{Region: "cn-north-1", AuthMethod: AuthAssumeRole, RoleARN: "arn:aws-cn:iam::123456789012:role/r"},
		{Region: "ap-southeast-4", AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: "Ext_id+=,.@:/-9"},
		{Region: "us-east-1", SessionName: "agent@host", Endpoint: "https://vpce-1.secretsmanager.us-east-1.vpce.amazonaws.com", STSEndpoint: "http://127.0.0.1:8080"},
		{Region: "us-east-1", Endpoint: "http://localhost:4566", STSEndpoint: "http://[::1]:4566/"},
	}
	for _, c := range valid {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	invalid := []struct {
		cfg    Config
		msgHas string
	}{
		{Config{}, "region is required"},
		{Config{Region: "us-east1"}, "looks like us-east-1"},
		{Config{Region: "US-EAST-1"}, "looks like us-east-1"},
		{Config{Region: "us-east-1.evil.com"}, "looks like us-east-1"},
		{Config{Region: "us-east-1", AuthMethod: "password"}, `"iam"`},
		{Config{Region: "us-east-1", AuthMethod: "IAM"}, `"assume-role"`},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole}, "roleArn is required"},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole, RoleARN: "arn:aws:iam::123:role/r"}, "not an IAM role ARN"},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole, RoleARN: "arn:aws:iam::123456789012:user/u"}, "not an IAM role ARN"},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole, RoleARN: "arn:aws-iso:iam::123456789012:role/r"}, "not an IAM role ARN"},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole, RoleARN: "arn:aws:iam::123456789012:role/" + strings.Repeat("r", 65)}, "not an IAM role ARN"},
		{Config{Region: "cn-north-1", AuthMethod: AuthAssumeRole, RoleARN: testRoleARN}, "partition"},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: "x"}, "externalId must be"},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: "has space"}, "externalId must be"},
		{Config{Region: "us-east-1", AuthMethod: AuthAssumeRole, RoleARN: testRoleARN, ExternalID: strings.Repeat("e", 1225)}, "externalId must be"},
		{Config{Region: "us-east-1", RoleARN: testRoleARN}, "roleArn is only used"},
		{Config{Region: "us-east-1", AuthMethod: AuthAccessKey, ExternalID: "ext-id"}, "externalId is only used"},
		{Config{Region: "us-east-1", SessionName: "x"}, "session name"},
		{Config{Region: "us-east-1", SessionName: "has space"}, "session name"},
		{Config{Region: "us-east-1", Endpoint: "secretsmanager.amazonaws.com"}, "absolute URL"},
		{Config{Region: "us-east-1", Endpoint: "http://secretsmanager.example.com"}, "https"},
		{Config{Region: "us-east-1", Endpoint: "https://user:pass@example.com"}, "user information"},
		{Config{Region: "us-east-1", STSEndpoint: "https://example.com/?token=abc"}, "query"},
		{Config{Region: "us-east-1", STSEndpoint: "ftp://example.com"}, "https"},
	}
	for _, tt := range invalid {
		err := tt.cfg.Validate()
		e := wantKind(t, err, secrets.InvalidInput)
		if !strings.Contains(e.Msg, tt.msgHas) {
			t.Errorf("%+v: message %q lacks %q", tt.cfg, e.Msg, tt.msgHas)
		}
		if _, err := New(ctxBG, tt.cfg); secrets.KindOf(err) != secrets.InvalidInput {
			t.Errorf("New(%+v) = %v, want InvalidInput", tt.cfg, err)
		}
	}

	// Every problem at once, and no echo of what could be a credential.
	bad := Config{Region: "nowhere", AuthMethod: AuthAssumeRole, RoleARN: "AKIAIOSFODNN7EXAMPLE", ExternalID: "s", Endpoint: "https://u:hunter2@x"}
	err := bad.Validate()
	msg := wantKind(t, err, secrets.InvalidInput).Msg
	for _, want := range []string{"region", "roleArn", "externalId", "endpoint"} {
		if !strings.Contains(msg, want) {
			t.Errorf("combined message %q lacks %q", msg, want)
		}
	}
	for _, leak := range []string{"AKIAIOSFODNN7EXAMPLE", "hunter2"} {
		if strings.Contains(fmt.Sprintf("%+v", err), leak) {
			t.Errorf("message echoes %q: %v", leak, err)
		}
	}
}

func TestNewReportsBrokenSharedConfig(t *testing.T) {
	isolateEnv(t)
	t.Setenv("AWS_PROFILE", "no-such-profile")
	_, err := New(ctxBG, Config{Region: testRegion})
	e := wantKind(t, err, secrets.AuthFailed)
	if !strings.Contains(e.Msg, "AWS_PROFILE") {
		t.Errorf("message %q", e.Msg)
	}
}

func TestRetriesStayOffWithRetryEnvironment(t *testing.T) {
	f := newFakeAWS(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
		writeJSONError(w, 503, "ServiceUnavailable", "")
		return true
	})
	isolateEnv(t)
	useBaseKeys(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "5")
	t.Setenv("AWS_RETRY_MODE", "adaptive")
	s := mustNew(t, f, Config{})
	_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
	wantKind(t, err, secrets.StoreUnavailable)
	if n := f.count("secretsmanager.GetSecretValue"); n != 1 {
		t.Errorf("%d requests with AWS_MAX_ATTEMPTS=5, want 1", n)
	}
}

func TestConcurrentFetches(t *testing.T) {
	f := newFakeAWS(t)
	for i := 0; i < 8; i++ {
		f.addString(fmt.Sprintf("c%d", i), fmt.Sprintf("value-%d", i), fmt.Sprintf("v-c%d-0000000000000000000000000000000001", i))
	}
	s := newStore(t, f, Config{AuthMethod: AuthAssumeRole, RoleARN: testRoleARN})
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			sec, err := s.Fetch(ctxBG, secrets.Ref{Path: fmt.Sprintf("c%d", i)})
			if err == nil && sec.Value.Reveal() != fmt.Sprintf("value-%d", i) {
				err = fmt.Errorf("c%d: wrong value", i)
			}
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := f.count("sts.AssumeRole"); n != 1 {
		t.Errorf("%d AssumeRole calls for concurrent fetches, want 1", n)
	}
}
