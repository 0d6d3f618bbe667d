package aws

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Test identities. The fake server knows every key it accepts and verifies each SigV4
// signature by recomputing it.
const (
	testRegion    = "us-east-1"
	testAccount   = "123456789012"
	baseKeyID     = "AKIDBASEKEY0000001"
	baseSecretKey = "base-secret-access-key"
	tempKeyID     = "ASIATEMPKEY0000001"
	tempSecretKey = "temp-secret-access-key"
	tempToken     = "temp-session-token"
	testRoleARN   = "arn:aws:iam::123456789012:role/team/secret-reader"
	// agentRoleARN is the agent's own IRSA role (AWS_ROLE_ARN), apart from the role an input's
	// roleArn names.
	agentRoleARN = "arn:aws:iam::123456789012:role/eks/secure-agent"
)

// fakeVersion is one version of a fake secret.
type fakeVersion struct {
	id     string
	stages []string
	str    *string
	bin    []byte
}

// fakeSecret is a secret held by the fake Secrets Manager.
type fakeSecret struct {
	name     string
	arn      string
	versions []fakeVersion // versions[0] carries AWSCURRENT
}

// request is what the fake server saw of one request.
type request struct {
	op        string // "secretsmanager.GetSecretValue", "sts.AssumeRole", ...
	accessKey string // from the signature's credential scope; "" when unsigned
	token     string // X-Amz-Security-Token
	body      []byte
	form      url.Values // STS only
	issued    string     // STS only: the access key id of the credentials answered, if any
}

// fakeAWS is an in-process Secrets Manager (AWS JSON 1.1) and STS (awsQuery) endpoint.
type fakeAWS struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	keys     map[string]aws.Credentials // access key id -> credentials it signs with
	secrets  []*fakeSecret
	requests []request
	// hook, when set, may answer a request itself (after signature checks) by returning true.
	hook func(w http.ResponseWriter, r *http.Request, op string, body []byte) bool
	// pageSize, when > 0, splits BatchGetSecretValue answers into pages.
	pageSize int

	// Web identity (IRSA). AssumeRoleWithWebIdentity answers only a request whose
	// WebIdentityToken equals the contents of webTokenFile at that moment and whose RoleArn is
	// webRoleARN, each time with new credentials (webKeyID(n)) that expire webLifetime later (an
	// hour when zero).
	webTokenFile string
	webRoleARN   string
	webLifetime  time.Duration
	webIssued    int
	// assumeRoleSigners, when set, are the only access keys AssumeRole accepts a signature of;
	// externalID, when set, is the only ExternalId it accepts ("-" for none). Its credentials
	// (always tempKeyID) expire roleLifetime later (an hour when zero).
	assumeRoleSigners map[string]bool
	externalID        string
	roleLifetime      time.Duration
	// smAccepts, when set, are the only access keys Secrets Manager accepts.
	smAccepts map[string]bool
}

// webKeyID is the access key id of the n-th credentials AssumeRoleWithWebIdentity issued.
func webKeyID(n int) string { return fmt.Sprintf("ASIAWEBIDENTITY%05d", n) }

// useWebIdentity makes the fake STS serve AssumeRoleWithWebIdentity for the token in tokenFile
// and the role roleARN.
func (f *fakeAWS) useWebIdentity(tokenFile, roleARN string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.webTokenFile, f.webRoleARN = tokenFile, roleARN
}

// setLifetimes sets how long the credentials of AssumeRoleWithWebIdentity and of AssumeRole stay
// valid (zero: an hour).
func (f *fakeAWS) setLifetimes(web, role time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.webLifetime, f.roleLifetime = web, role
}

// acceptOnly restricts Secrets Manager to the given access keys, and AssumeRole to the given
// signers and external id (when not empty).
func (f *fakeAWS) acceptOnly(smKeys, assumeRoleSigners []string, externalID string) {
	set := func(keys []string) map[string]bool {
		if keys == nil {
			return nil
		}
		m := map[string]bool{}
		for _, k := range keys {
			m[k] = true
		}
		return m
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.smAccepts, f.assumeRoleSigners, f.externalID = set(smKeys), set(assumeRoleSigners), externalID
}

func newFakeAWS(t *testing.T) *fakeAWS {
	t.Helper()
	f := &fakeAWS{t: t, keys: map[string]aws.Credentials{
		baseKeyID: {AccessKeyID: baseKeyID, SecretAccessKey: baseSecretKey},
		tempKeyID: {AccessKeyID: tempKeyID, SecretAccessKey: tempSecretKey, SessionToken: tempToken},
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func secretARN(name string) string {
	return "arn:aws:secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + name + "-AbCdEf"
}

// addString adds a secret with one current string version and returns it.
func (f *fakeAWS) addString(name, value, version string) *fakeSecret {
	s := &fakeSecret{name: name, arn: secretARN(name), versions: []fakeVersion{{id: version, stages: []string{"AWSCURRENT"}, str: &value}}}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets = append(f.secrets, s)
	return s
}

func (f *fakeAWS) setHook(h func(w http.ResponseWriter, r *http.Request, op string, body []byte) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// count returns how many requests of op the server received.
func (f *fakeAWS) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.op == op {
			n++
		}
	}
	return n
}

// ops returns the operation of every request, in the order the server received them.
func (f *fakeAWS) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.requests))
	for i, r := range f.requests {
		out[i] = r.op
	}
	return out
}

// recorded returns the requests of op.
func (f *fakeAWS) recorded(op string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.requests {
		if r.op == op {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		f.t.Errorf("read request body: %v", err)
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		f.serveSTS(w, r, body)
		return
	}
	f.serveSecretsManager(w, r, body)
}

func (f *fakeAWS) serveSecretsManager(w http.ResponseWriter, r *http.Request, body []byte) {
	op := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		f.t.Errorf("Secrets Manager request %s %s, want POST /", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		f.t.Errorf("%s: Content-Type %q, want application/x-amz-json-1.1", op, ct)
	}
	key, sigErr := f.verify(r, body, "secretsmanager")
	f.record(request{op: op, accessKey: key, token: r.Header.Get("X-Amz-Security-Token"), body: body})
	if sigErr != nil {
		writeJSONError(w, http.StatusBadRequest, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
		return
	}
	if f.runHook(w, r, op, body) {
		return
	}
	f.mu.Lock()
	refused := f.smAccepts != nil && !f.smAccepts[key]
	f.mu.Unlock()
	if refused {
		writeJSONError(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	switch op {
	case "secretsmanager.GetSecretValue":
		f.getSecretValue(w, body)
	case "secretsmanager.BatchGetSecretValue":
		f.batchGetSecretValue(w, body)
	default:
		f.t.Errorf("unexpected X-Amz-Target %q", op)
		writeJSONError(w, http.StatusBadRequest, "UnknownOperationException", "")
	}
}

func (f *fakeAWS) runHook(w http.ResponseWriter, r *http.Request, op string, body []byte) bool {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	return h != nil && h(w, r, op, body)
}

func (f *fakeAWS) record(r request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
}

// verify checks the request's SigV4 signature by recomputing it with the credentials the server
// holds for its access key, and returns that key.
func (f *fakeAWS) verify(r *http.Request, body []byte, service string) (string, error) {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "", errors.New("request is not SigV4-signed")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 {
		return "", fmt.Errorf("malformed credential scope %q", fields["Credential"])
	}
	key := scope[0]
	if scope[2] != testRegion || scope[3] != service || scope[4] != "aws4_request" {
		f.t.Errorf("credential scope %v, want region %s, service %s", scope[1:], testRegion, service)
	}
	f.mu.Lock()
	creds, ok := f.keys[key]
	f.mu.Unlock()
	if !ok {
		return key, fmt.Errorf("unknown access key")
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != creds.SessionToken {
		return key, fmt.Errorf("security token does not match the key")
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return key, fmt.Errorf("bad X-Amz-Date: %w", err)
	}
	if scope[1] != signingTime.Format("20060102") {
		return key, fmt.Errorf("scope date differs from X-Amz-Date")
	}
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return key, err
	}
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host", "x-amz-date", "x-amz-security-token", "content-length":
			continue // set by NewRequest or by the signer
		}
		again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), service, testRegion, signingTime)
	if err != nil {
		return key, err
	}
	if again.Header.Get("Authorization") != auth {
		return key, errors.New("signature mismatch")
	}
	return key, nil
}

func (f *fakeAWS) find(id string) *fakeSecret {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.secrets {
		if id == s.name || id == s.arn || strings.TrimSuffix(s.arn, "-AbCdEf") == id {
			return s
		}
	}
	return nil
}

func (f *fakeAWS) getSecretValue(w http.ResponseWriter, body []byte) {
	var in struct{ SecretId, VersionId, VersionStage string }
	if err := json.Unmarshal(body, &in); err != nil {
		f.t.Errorf("GetSecretValue body: %v", err)
	}
	s := f.find(in.SecretId)
	if s == nil {
		writeJSONError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	v := s.version(in.VersionId, in.VersionStage)
	if v == nil {
		writeJSONError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId or VersionStage")
		return
	}
	writeJSON(w, s.entry(*v))
}

func (s *fakeSecret) version(id, stage string) *fakeVersion {
	if id == "" && stage == "" {
		stage = "AWSCURRENT"
	}
	for i, v := range s.versions {
		if (id == "" || v.id == id) && (stage == "" || contains(v.stages, stage)) {
			return &s.versions[i]
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// entry is the JSON of a GetSecretValue answer or a SecretValueEntry.
func (s *fakeSecret) entry(v fakeVersion) map[string]any {
	m := map[string]any{
		"ARN": s.arn, "Name": s.name, "VersionId": v.id, "VersionStages": v.stages,
		"CreatedDate": 1.7e9,
	}
	if v.str != nil {
		m["SecretString"] = *v.str
	}
	if v.bin != nil {
		m["SecretBinary"] = v.bin // encoding/json writes base64, as AWS does
	}
	return m
}

func (f *fakeAWS) batchGetSecretValue(w http.ResponseWriter, body []byte) {
	var in struct {
		SecretIdList []string
		NextToken    string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		f.t.Errorf("BatchGetSecretValue body: %v", err)
	}
	if len(in.SecretIdList) == 0 || len(in.SecretIdList) > MaxBatchSize {
		f.t.Errorf("BatchGetSecretValue with %d ids, want 1 to %d", len(in.SecretIdList), MaxBatchSize)
	}
	start := 0
	if in.NextToken != "" {
		fmt.Sscanf(in.NextToken, "page-%d", &start)
	}
	ids := in.SecretIdList[start:]
	next := ""
	f.mu.Lock()
	size := f.pageSize
	f.mu.Unlock()
	if size > 0 && len(ids) > size {
		ids, next = ids[:size], fmt.Sprintf("page-%d", start+size)
	}
	values, errs := []map[string]any{}, []map[string]any{}
	for _, id := range ids {
		s := f.find(id)
		if s == nil {
			errs = append(errs, map[string]any{"SecretId": id, "ErrorCode": "ResourceNotFoundException", "Message": "Secrets Manager can't find the specified secret."})
			continue
		}
		values = append(values, s.entry(s.versions[0]))
	}
	out := map[string]any{"SecretValues": values, "Errors": errs}
	if next != "" {
		out["NextToken"] = next
	}
	writeJSON(w, out)
}

// serveSTS answers the STS Query API (form-encoded POST, XML answers) as STS does.
// AssumeRoleWithWebIdentity must be unsigned and carry the token file's current contents and the
// configured role; AssumeRole must be SigV4-signed with a key the server knows (and, when
// restricted, one of assumeRoleSigners) and carry the expected ExternalId.
func (f *fakeAWS) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		f.t.Errorf("STS form: %v", err)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		f.t.Errorf("STS request %s %s, want POST /", r.Method, r.URL.Path)
	}
	action := form.Get("Action")
	if form.Get("Version") != "2011-06-15" {
		f.t.Errorf("STS %s: Version %q, want 2011-06-15", action, form.Get("Version"))
	}
	op := "sts." + action
	rec := request{op: op, form: form, body: body}
	var sigErr error
	switch action {
	case "AssumeRole":
		rec.accessKey, sigErr = f.verify(r, body, "sts")
		rec.token = r.Header.Get("X-Amz-Security-Token")
	case "AssumeRoleWithWebIdentity":
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Security-Token") != "" {
			f.t.Errorf("AssumeRoleWithWebIdentity was signed; it must be anonymous")
		}
	default:
		f.t.Errorf("unexpected STS action %q", action)
	}
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	idx := len(f.requests) - 1
	f.mu.Unlock()
	if sigErr != nil {
		writeSTSError(w, http.StatusForbidden, "SignatureDoesNotMatch", "signature mismatch")
		return
	}
	if f.runHook(w, r, op, body) {
		return
	}
	var c stsCredentials
	var refusal *stsRefusal
	if action == "AssumeRole" {
		c, refusal = f.assumeRole(rec)
	} else {
		c, refusal = f.assumeRoleWithWebIdentity(form)
	}
	if refusal != nil {
		writeSTSError(w, refusal.status, refusal.code, refusal.message)
		return
	}
	f.mu.Lock()
	f.requests[idx].issued = c.AccessKeyID
	f.mu.Unlock()
	f.writeSTSCredentials(w, action, form, c)
}

// stsCredentials is the Credentials element of an STS answer.
type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// stsRefusal is an STS error answer.
type stsRefusal struct {
	status        int
	code, message string
}

var (
	assumeRoleDenied  = &stsRefusal{http.StatusForbidden, "AccessDenied", "User is not authorized to perform: sts:AssumeRole"}
	webIdentityDenied = &stsRefusal{http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
	invalidToken      = &stsRefusal{http.StatusBadRequest, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider"}
)

// assumeRole checks an AssumeRole request against the server's rules and returns the role's
// credentials (always tempKeyID), or a refusal to send.
func (f *fakeAWS) assumeRole(rec request) (stsCredentials, *stsRefusal) {
	f.mu.Lock()
	signers, externalID, lifetime := f.assumeRoleSigners, f.externalID, cmp.Or(f.roleLifetime, time.Hour)
	f.mu.Unlock()
	if signers != nil && !signers[rec.accessKey] {
		return stsCredentials{}, assumeRoleDenied
	}
	got := rec.form.Get("ExternalId")
	if !rec.form.Has("ExternalId") {
		got = "-"
	}
	if externalID != "" && got != externalID {
		return stsCredentials{}, assumeRoleDenied
	}
	return stsCredentials{tempKeyID, tempSecretKey, tempToken, time.Now().Add(lifetime).UTC().Format(time.RFC3339)}, nil
}

// assumeRoleWithWebIdentity checks the token against the token file's current contents and the
// role against the configured one, and issues new credentials, or returns a refusal to send.
func (f *fakeAWS) assumeRoleWithWebIdentity(form url.Values) (stsCredentials, *stsRefusal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.webTokenFile == "" {
		f.t.Errorf("AssumeRoleWithWebIdentity without a web identity set up")
		return stsCredentials{}, invalidToken
	}
	current, err := os.ReadFile(f.webTokenFile)
	if err != nil || len(current) == 0 || form.Get("WebIdentityToken") != string(current) {
		return stsCredentials{}, invalidToken
	}
	if form.Get("RoleArn") != f.webRoleARN {
		return stsCredentials{}, webIdentityDenied
	}
	f.webIssued++
	n, lifetime := f.webIssued, cmp.Or(f.webLifetime, time.Hour)
	c := aws.Credentials{AccessKeyID: webKeyID(n), SecretAccessKey: fmt.Sprintf("web-secret-%d", n), SessionToken: fmt.Sprintf("web-session-token-%d", n)}
	f.keys[c.AccessKeyID] = c
	return stsCredentials{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, time.Now().Add(lifetime).UTC().Format(time.RFC3339)}, nil
}

// writeSTSCredentials writes the XML answer STS gives to action.
func (f *fakeAWS) writeSTSCredentials(w http.ResponseWriter, action string, form url.Values, c stsCredentials) {
	type assumedRoleUser struct {
		AssumedRoleID string `xml:"AssumedRoleId"`
		Arn           string
	}
	session := form.Get("RoleSessionName")
	role := form.Get("RoleArn")
	user := assumedRoleUser{
		AssumedRoleID: "AROA3XFRBF535PLBIFPI4:" + session,
		Arn:           "arn:aws:sts::" + testAccount + ":assumed-role/" + role[strings.LastIndex(role, "/")+1:] + "/" + session,
	}
	type metadata struct {
		RequestID string `xml:"RequestId"`
	}
	meta := metadata{"c6104cbe-af31-11e0-8154-cbc7ccf896c7"}
	w.Header().Set("Content-Type", "text/xml")
	enc := xml.NewEncoder(w)
	var err error
	if action == "AssumeRole" {
		err = enc.Encode(struct {
			XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
			Result  struct {
				Credentials      stsCredentials
				AssumedRoleUser  assumedRoleUser
				PackedPolicySize int
			} `xml:"AssumeRoleResult"`
			Meta metadata `xml:"ResponseMetadata"`
		}{Result: struct {
			Credentials      stsCredentials
			AssumedRoleUser  assumedRoleUser
			PackedPolicySize int
		}{c, user, 6}, Meta: meta})
	} else {
		err = enc.Encode(struct {
			XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
			Result  struct {
				SubjectFromWebIdentityToken string
				Audience                    string
				AssumedRoleUser             assumedRoleUser
				Credentials                 stsCredentials
				Provider                    string
			} `xml:"AssumeRoleWithWebIdentityResult"`
			Meta metadata `xml:"ResponseMetadata"`
		}{Result: struct {
			SubjectFromWebIdentityToken string
			Audience                    string
			AssumedRoleUser             assumedRoleUser
			Credentials                 stsCredentials
			Provider                    string
		}{"system:serviceaccount:secure-agent:secure-agent", "sts.amazonaws.com", user, c,
			"arn:aws:iam::" + testAccount + ":oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"}, Meta: meta})
	}
	if err != nil {
		f.t.Errorf("encode STS answer: %v", err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "11111111-2222-3333-4444-555555555555")
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError answers as Secrets Manager does: a status, an x-amzn-ErrorType header and a
// {"__type", "message"} body.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code+":http://internal.amazon.com/coral/com.amazonaws.secretsmanager/")
	w.Header().Set("X-Amzn-RequestId", "11111111-2222-3333-4444-555555555555")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": message})
}

// writeSTSError answers as STS does: an awsQuery XML ErrorResponse.
func writeSTSError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Error   struct {
			Type    string
			Code    string
			Message string
		}
		RequestID string `xml:"RequestId"`
	}{Error: struct {
		Type    string
		Code    string
		Message string
	}{"Sender", code, message}, RequestID: "req-1"})
}

// awsEnvVars are the variables the SDK reads that a test must not inherit from the machine.
var awsEnvVars = []string{
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
	"AWS_ENDPOINT_URL_STS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_USE_FIPS_ENDPOINT",
	"AWS_USE_DUALSTACK_ENDPOINT", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_DEFAULTS_MODE", "AWS_SDK_LOAD_CONFIG",
}

// isolateEnv gives the test an AWS environment of its own: no inherited variables, empty shared
// config and credentials files, and no EC2 instance metadata.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, k := range awsEnvVars {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	for name, env := range map[string]string{"config": "AWS_CONFIG_FILE", "credentials": "AWS_SHARED_CREDENTIALS_FILE"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(env, p)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// useBaseKeys puts the base test identity into the environment, where the default chain finds it.
func useBaseKeys(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", baseKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", baseSecretKey)
}

// newStore isolates the environment, gives it the base keys, and returns a store talking to f.
func newStore(t *testing.T, f *fakeAWS, cfg Config) *Store {
	t.Helper()
	isolateEnv(t)
	useBaseKeys(t)
	return mustNew(t, f, cfg)
}

// mustNew returns a store for cfg whose endpoints are f's, in testRegion unless cfg says else.
func mustNew(t *testing.T, f *fakeAWS, cfg Config) *Store {
	t.Helper()
	if cfg.Region == "" {
		cfg.Region = testRegion
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = f.srv.URL
	}
	if cfg.STSEndpoint == "" {
		cfg.STSEndpoint = f.srv.URL
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}
