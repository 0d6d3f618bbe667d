package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/secure-agent/secure-agent/secrets"
)

// Test identities. The fake store verifies every SigV4 signature by recomputing it with the
// secret key it holds for the request's access key id.
const (
	testBucket = "agent-output"
	testRegion = "us-east-1"
	keyID      = "AKIDSINKTEST0000001"
	secretKey  = "CANARYzqSecretAccessKey0001"
	tempKeyID  = "ASIASINKTEST0000001"
	tempSecret = "CANARYzqTempSecretKey0002"
	tempToken  = "CANARYzqSessionToken0003"
)

// TestMain keeps the tests away from the machine's AWS settings: no shared files, no profile, no
// endpoint or retry overrides, no instance metadata, and no AWS_CA_BUNDLE (which the SDK can only
// apply to its own HTTP client, not to the test's).
func TestMain(m *testing.M) {
	for _, name := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS",
		"AWS_RETRY_MODE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"} {
		_ = os.Unsetenv(name)
	}
	_ = os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	_ = os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	_ = os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

// seen is what the fake store saw of one request.
type seen struct {
	method    string
	host      string
	path      string // unescaped URL path, as the store routes it
	accessKey string // from the signature's credential scope
	token     string // X-Amz-Security-Token
	checksum  string // X-Amz-Checksum-Sha256
	algorithm string // X-Amz-Sdk-Checksum-Algorithm
	bodySHA   string // hex SHA-256 of the body received
}

// fakeS3 is gofakes3 (in-memory backend) behind a wrapper that verifies signatures and
// SHA-256 checksums like S3, records every request, and lets a test answer requests itself.
type fakeS3 struct {
	t       *testing.T
	srv     *httptest.Server
	backend *s3mem.Backend
	gofakes http.Handler
	port    string
	conns   atomic.Int64 // connections accepted

	mu   sync.Mutex
	keys map[string]aws.Credentials
	reqs []seen
	// hook, when set, may answer a request itself (after signature checks) by returning true.
	hook func(w http.ResponseWriter, r *http.Request, body []byte) bool
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{t: t, backend: s3mem.New(), keys: map[string]aws.Credentials{
		keyID:     {AccessKeyID: keyID, SecretAccessKey: secretKey},
		tempKeyID: {AccessKeyID: tempKeyID, SecretAccessKey: tempSecret, SessionToken: tempToken},
	}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	_, f.port, _ = net.SplitHostPort(f.srv.Listener.Addr().String())
	// Virtual-hosted requests arrive for <bucket>.localhost:<port>.
	f.gofakes = gofakes3.New(f.backend, gofakes3.WithHostBucketBase("localhost:"+f.port)).Server()
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	if err := f.backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	return f
}

// endpoint is the store's URL with the host name localhost (so virtual-hosted addressing is
// possible); client dials the store whatever host a request names.
func (f *fakeS3) endpoint() string { return "http://localhost:" + f.port }

func (f *fakeS3) client() *http.Client {
	addr := f.srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (f *fakeS3) setHook(h func(w http.ResponseWriter, r *http.Request, body []byte) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// puts returns the PUT requests the store saw, in order.
func (f *fakeS3) puts() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seen
	for _, r := range f.reqs {
		if r.method == http.MethodPut {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeS3) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read request body: %v", err)
		return
	}
	sum := sha256.Sum256(body)
	key, sigErr := f.verify(r, body)
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{method: r.Method, host: r.Host, path: r.URL.Path, accessKey: key,
		token: r.Header.Get("X-Amz-Security-Token"), checksum: r.Header.Get("X-Amz-Checksum-Sha256"),
		algorithm: r.Header.Get("X-Amz-Sdk-Checksum-Algorithm"), bodySHA: hex.EncodeToString(sum[:])})
	hook := f.hook
	f.mu.Unlock()
	switch {
	case errors.Is(sigErr, errUnknownKey):
		writeS3Error(w, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		return
	case sigErr != nil:
		writeS3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		return
	}
	if hook != nil && hook(w, r, body) {
		return
	}
	if want := r.Header.Get("X-Amz-Checksum-Sha256"); r.Method == http.MethodPut && want != "" && want != base64.StdEncoding.EncodeToString(sum[:]) {
		writeS3Error(w, http.StatusBadRequest, "BadDigest", "The SHA256 you specified did not match the calculated checksum.")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.gofakes.ServeHTTP(w, r)
}

var errUnknownKey = errors.New("unknown access key")

// verify checks the request's SigV4 signature (as S3 computes it: no double path escaping, the
// payload hash from X-Amz-Content-Sha256) and returns the access key id.
func (f *fakeS3) verify(r *http.Request, body []byte) (string, error) {
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
	if scope[2] != testRegion || scope[3] != "s3" || scope[4] != "aws4_request" {
		f.t.Errorf("credential scope %v, want region %s, service s3", scope[1:], testRegion)
	}
	f.mu.Lock()
	creds, ok := f.keys[key]
	f.mu.Unlock()
	if !ok {
		return key, errUnknownKey
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != creds.SessionToken {
		return key, errors.New("security token does not match the key")
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if sum := sha256.Sum256(body); payload != "UNSIGNED-PAYLOAD" && payload != hex.EncodeToString(sum[:]) {
		return key, errors.New("payload hash does not match the body")
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return key, fmt.Errorf("bad X-Amz-Date: %w", err)
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
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), creds, again, payload, "s3", testRegion, signingTime); err != nil {
		return key, err
	}
	if again.Header.Get("Authorization") != auth {
		return key, errors.New("signature mismatch")
	}
	return key, nil
}

// writeS3Error answers with an S3 REST-XML error document.
func writeS3Error(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><RequestId>4442587FB7D0A2F9</RequestId><HostId>host-id</HostId></Error>`, code, message)
}

// noBackoff makes SDK retries immediate, so retry tests stay fast.
var noBackoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })

// testConfig is a path-style Config for f.
func (f *fakeS3) config() Config {
	return Config{Bucket: testBucket, Region: testRegion, Endpoint: f.endpoint(), PathStyle: true}
}

func staticCreds() Credentials {
	return Credentials{AccessKeyID: secrets.Value(keyID), SecretAccessKey: secrets.Value(secretKey)}
}

// newSink builds a Sink for f with fast retries.
func (f *fakeS3) newSink(t *testing.T, cfg Config, creds Credentials) *Sink {
	t.Helper()
	s, err := New(context.Background(), cfg, creds, Options{HTTPClient: f.client(), backoff: noBackoff})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// reader is a plain SDK client for reading objects back.
func (f *fakeS3) reader() *s3api.Client {
	return s3api.New(s3api.Options{Region: testRegion, BaseEndpoint: aws.String(f.endpoint()), UsePathStyle: true,
		HTTPClient: f.client(), Credentials: credentials.NewStaticCredentialsProvider(keyID, secretKey, "")})
}

// get reads an object back through the S3 API.
func (f *fakeS3) get(t *testing.T, key string) []byte {
	t.Helper()
	out, err := f.reader().GetObject(context.Background(), &s3api.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer func() { _ = out.Body.Close() }()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	return b
}

// keys lists the bucket's keys, sorted.
func (f *fakeS3) list(t *testing.T) []string {
	t.Helper()
	out, err := f.reader().ListObjectsV2(context.Background(), &s3api.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
