package codec

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/secure-agent/secure-agent/internal/testenv"
)

const (
	testToken  = "tok-0123456789abcdef0123456789abcdef"
	testOrigin = "http://127.0.0.1:8233"
)

type testServer struct {
	*httptest.Server
	keys *Keys
	logs *testenv.SyncBuffer
}

func newTestServer(t *testing.T, mutate func(*ServerOptions)) *testServer {
	t.Helper()
	_, k := newKey(t)
	keys := mustKeys(t, "k1:"+k)
	logs := &testenv.SyncBuffer{}
	opts := ServerOptions{
		Token:          testToken,
		AllowedOrigins: []string{testOrigin},
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&opts)
	}
	ts := httptest.NewServer(NewServer(keys, opts))
	t.Cleanup(ts.Close)
	return &testServer{Server: ts, keys: keys, logs: logs}
}

// do sends one request; headers are name, value pairs.
func (ts *testServer) do(t *testing.T, method, path string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// post sends payloads with the token.
func (ts *testServer) post(t *testing.T, path string, payloads []*commonpb.Payload, headers ...string) (*http.Response, []byte) {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	headers = append([]string{"Authorization", "Bearer " + testToken, "Content-Type", "application/json"}, headers...)
	return ts.do(t, http.MethodPost, path, body, headers...)
}

func parsePayloads(t *testing.T, b []byte) []*commonpb.Payload {
	t.Helper()
	var p commonpb.Payloads
	if err := protojson.Unmarshal(b, &p); err != nil {
		t.Fatalf("response is not proto JSON payloads: %v\n%s", err, b)
	}
	return p.Payloads
}

func TestServerEncodeDecode(t *testing.T) {
	ts := newTestServer(t, nil)
	orig := samplePayloads(t)

	resp, body := ts.post(t, "/encode", orig)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("encode: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	if bytes.Contains(body, []byte(canary)) {
		t.Fatal("the encode response contains the canary")
	}
	enc := parsePayloads(t, body)
	if len(enc) != len(orig) || string(enc[0].Metadata[MetadataEncoding]) != EncodingEncrypted {
		t.Fatalf("encode answered %d payloads, first %v", len(enc), enc[0].GetMetadata())
	}
	// What the server encrypts, the worker's codec decrypts (same keys).
	local, err := NewPayloadCodec(ts.keys).Decode(enc)
	if err != nil || !proto.Equal(local[0], orig[0]) {
		t.Fatalf("local decode of server output: %v", err)
	}

	resp, body = ts.post(t, "/decode", enc)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("decode: %d %s", resp.StatusCode, body)
	}
	dec := parsePayloads(t, body)
	for i := range orig {
		if !proto.Equal(dec[i], orig[i]) {
			t.Fatalf("payload %d: got %v want %v", i, dec[i], orig[i])
		}
	}

	// Empty list.
	resp, body = ts.post(t, "/decode", nil)
	if resp.StatusCode != http.StatusOK || len(parsePayloads(t, body)) != 0 {
		t.Fatalf("empty decode: %d %s", resp.StatusCode, body)
	}

	// The SDK's remote codec client (what the temporal CLI uses) against the server.
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: ts.URL + "/some-namespace",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+testToken)
			return nil
		},
	})
	enc2, err := remote.Encode(orig)
	if err != nil {
		t.Fatal(err)
	}
	dec2, err := remote.Decode(enc2)
	if err != nil || !proto.Equal(dec2[0], orig[0]) {
		t.Fatalf("remote codec round trip: %v", err)
	}

	// Nothing of the payloads or the token reached the log.
	logs := ts.logs.String()
	if strings.Contains(logs, canary) || strings.Contains(logs, testToken) {
		t.Fatalf("logs show payload contents or the token:\n%s", logs)
	}
	if !strings.Contains(logs, "path=/decode") || !strings.Contains(logs, "status=200") {
		t.Fatalf("logs miss the request lines:\n%s", logs)
	}
}

func TestServerDecodeErrors(t *testing.T) {
	ts := newTestServer(t, nil)
	_, other := newKey(t)
	enc := encode(t, mustKeys(t, "other:"+other), samplePayloads(t)[:1])
	resp, body := ts.post(t, "/decode", enc)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `key id "other" is not configured`) {
		t.Fatalf("unknown key: %d %s", resp.StatusCode, body)
	}

	// A body that is not proto JSON: 400, and the parser's quote of the body is not echoed.
	for _, bad := range []string{
		`{"payloads":[{"data":"` + canary + `!!"}]}`,
		`{"payloads":[` + canary + `]}`,
		`not json ` + canary,
	} {
		resp, body := ts.do(t, http.MethodPost, "/decode", []byte(bad), "Authorization", "Bearer "+testToken)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad body: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(string(body), canary) {
			t.Fatalf("the error echoes the body: %s", body)
		}
	}
	if logs := ts.logs.String(); strings.Contains(logs, canary) {
		t.Fatalf("logs show request bytes:\n%s", logs)
	}
}

func TestServerNamespaces(t *testing.T) {
	t.Run("any namespace", func(t *testing.T) {
		ts := newTestServer(t, nil)
		enc := encode(t, ts.keys, samplePayloads(t)[:1])
		for _, path := range []string{"/decode", "/ns1/decode", "/ns.acct-1/decode", "//decode", "/decode?preserveStorageRefs=true"} {
			if resp, body := ts.post(t, path, enc); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
			}
		}
		if resp, _ := ts.post(t, "/ns1/encode", samplePayloads(t)[:1]); resp.StatusCode != http.StatusOK {
			t.Fatalf("/ns1/encode: %d", resp.StatusCode)
		}
		for _, path := range []string{"/", "/a/b/decode", "/ns1/decodex", "/encode/ns1", "/download"} {
			if resp, _ := ts.post(t, path, enc); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s: %d, want 404", path, resp.StatusCode)
			}
		}
	})
	t.Run("restricted", func(t *testing.T) {
		ts := newTestServer(t, func(o *ServerOptions) { o.Namespaces = []string{"ns1", "ns2"} })
		enc := encode(t, ts.keys, samplePayloads(t)[:1])
		cases := []struct {
			path, header string
			want         int
		}{
			{"/ns1/decode", "", http.StatusOK},
			{"/ns2/encode", "", http.StatusOK},
			{"/decode", "ns2", http.StatusOK},
			{"/ns1/decode", "ns1", http.StatusOK},
			{"/ns3/decode", "", http.StatusForbidden},
			{"/decode", "ns3", http.StatusForbidden},
			{"/decode", "", http.StatusForbidden},
			{"/ns1/decode", "ns2", http.StatusBadRequest},
		}
		for _, c := range cases {
			var h []string
			if c.header != "" {
				h = []string{NamespaceHeader, c.header}
			}
			if resp, body := ts.post(t, c.path, enc, h...); resp.StatusCode != c.want {
				t.Fatalf("%s with X-Namespace %q: %d %s, want %d", c.path, c.header, resp.StatusCode, body, c.want)
			}
		}
	})
}

func TestServerAuth(t *testing.T) {
	ts := newTestServer(t, nil)
	enc := encode(t, ts.keys, samplePayloads(t)[:1])
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	for _, auth := range []string{
		"",
		"Bearer",
		"Bearer ",
		"Bearer wrong",
		"Bearer " + testToken[:len(testToken)-1],
		"Bearer " + testToken + "x",
		"Basic " + testToken,
		testToken,
	} {
		for _, path := range []string{"/decode", "/encode", "/ns1/decode"} {
			var h []string
			if auth != "" {
				h = []string{"Authorization", auth}
			}
			resp, got := ts.do(t, http.MethodPost, path, body, h...)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s with %q: %d, want 401", path, auth, resp.StatusCode)
			}
			if string(got) != "unauthorized\n" {
				t.Fatalf("401 body %q, want no details", got)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// The scheme is case-insensitive (RFC 6750).
	if resp, _ := ts.do(t, http.MethodPost, "/decode", body, "Authorization", "bearer "+testToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("lowercase bearer: %d", resp.StatusCode)
	}
	if logs := ts.logs.String(); strings.Contains(logs, testToken[:12]) {
		t.Fatalf("logs show the token:\n%s", logs)
	}
}

// TestServerCORS sends what a browser sends: a preflight OPTIONS with Origin and
// Access-Control-Request-Method/-Headers (lower-case, comma-separated), then the POST with Origin.
func TestServerCORS(t *testing.T) {
	ts := newTestServer(t, func(o *ServerOptions) {
		o.AllowedOrigins = []string{testOrigin + "/", "https://ui.example.com:443"}
	})
	preflight := func(path, origin string) *http.Response {
		resp, _ := ts.do(t, http.MethodOptions, path, nil,
			"Origin", origin,
			"Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization,content-type,x-namespace",
			"Sec-Fetch-Mode", "cors",
		)
		return resp
	}

	for _, c := range []struct{ path, origin string }{
		{"/decode", testOrigin},
		{"/encode", testOrigin},
		{"/ns1/decode", testOrigin},
		{"/decode?preserveStorageRefs=true", testOrigin},
		{"/decode", "https://ui.example.com"},
	} {
		resp := preflight(c.path, c.origin)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight %s from %s: %d", c.path, c.origin, resp.StatusCode)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":      c.origin,
			"Access-Control-Allow-Methods":     "POST",
			"Access-Control-Allow-Credentials": "true",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Fatalf("preflight %s: %s = %q, want %q", c.path, k, got, v)
			}
		}
		allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"authorization", "content-type", "x-namespace"} {
			if !strings.Contains(allowed, h) {
				t.Fatalf("Access-Control-Allow-Headers %q lacks %s", allowed, h)
			}
		}
		if strings.Contains(allowed, "*") || resp.Header.Get("Access-Control-Allow-Origin") == "*" {
			t.Fatal("wildcard in a CORS answer")
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Fatal("no Vary: Origin")
		}
	}

	for _, origin := range []string{"http://evil.example", "http://127.0.0.1:8234", "https://127.0.0.1:8233", "null", "http://127.0.0.1:8233.evil.example"} {
		resp := preflight("/decode", origin)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("preflight from %s: %d, want 403", origin, resp.StatusCode)
		}
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Fatalf("preflight from %s answered %s", origin, k)
			}
		}
	}

	// The actual requests.
	enc := encode(t, ts.keys, samplePayloads(t)[:1])
	resp, body := ts.post(t, "/decode", enc, "Origin", testOrigin, NamespaceHeader, "default")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != testOrigin ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("POST from the UI: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, _ = ts.post(t, "/decode", enc, "Origin", "http://evil.example")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("POST from another origin: %d %v", resp.StatusCode, resp.Header)
	}
	// The UI sees a 401 as a 401 (not a network error): CORS headers on it too.
	resp, _ = ts.do(t, http.MethodPost, "/decode", []byte(`{}`), "Origin", testOrigin)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != testOrigin {
		t.Fatalf("401 from the UI's origin: %d %v", resp.StatusCode, resp.Header)
	}

	// No allowed origins: no browser at all.
	closed := newTestServer(t, func(o *ServerOptions) { o.AllowedOrigins = nil })
	resp, _ = closed.do(t, http.MethodOptions, "/decode", nil, "Origin", testOrigin, "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight without allowed origins: %d", resp.StatusCode)
	}
}

func TestServerMethodsAndLimits(t *testing.T) {
	ts := newTestServer(t, nil)
	auth := []string{"Authorization", "Bearer " + testToken}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead} {
		resp, _ := ts.do(t, m, "/decode", nil, auth...)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s /decode: %d, want 405", m, resp.StatusCode)
		}
		if m != http.MethodHead && !strings.Contains(resp.Header.Get("Allow"), "POST") {
			t.Fatalf("%s: Allow = %q", m, resp.Header.Get("Allow"))
		}
	}
	// OPTIONS that is not a preflight.
	if resp, _ := ts.do(t, http.MethodOptions, "/decode", nil, auth...); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("OPTIONS without Origin: %d", resp.StatusCode)
	}
	if resp, _ := ts.do(t, http.MethodGet, "/", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}

	// Over the default 4 MiB, with a Content-Length.
	big := append([]byte(`{"payloads":[{"data":"`), bytes.Repeat([]byte("A"), DefaultMaxBodyBytes)...)
	big = append(big, `"}]}`...)
	if resp, body := ts.do(t, http.MethodPost, "/decode", big, auth...); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body: %d %s", resp.StatusCode, body)
	}
	// Just under the limit is served.
	under := encode(t, ts.keys, []*commonpb.Payload{{Data: bytes.Repeat([]byte("a"), 2<<20)}})
	if resp, body := ts.post(t, "/decode", under); resp.StatusCode != http.StatusOK {
		t.Fatalf("2 MiB payload: %d %s", resp.StatusCode, body)
	}

	// Over a configured limit, without a Content-Length (chunked).
	small := newTestServer(t, func(o *ServerOptions) { o.MaxBodyBytes = 1024 })
	req, _ := http.NewRequest(http.MethodPost, small.URL+"/decode", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte(" "), 2048)), strings.NewReader("{}")))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.ContentLength = -1
	resp, err := small.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize body: %d", resp.StatusCode)
	}
}

func TestServerOptionsValidate(t *testing.T) {
	bad := []ServerOptions{
		{},
		{Token: "has space"},
		{Token: "tok\n"},
		{Token: "==="},
		{Token: testToken, AllowedOrigins: []string{"*"}},
		{Token: testToken, AllowedOrigins: []string{"http://*.example.com"}},
		{Token: testToken, AllowedOrigins: []string{"127.0.0.1:8233"}},
		{Token: testToken, AllowedOrigins: []string{"http://127.0.0.1:8233/ui"}},
		{Token: testToken, AllowedOrigins: []string{"ftp://example.com"}},
		{Token: testToken, AllowedOrigins: []string{"null"}},
		{Token: testToken, Namespaces: []string{""}},
		{Token: testToken, Namespaces: []string{"a/b"}},
		{Token: testToken, MaxBodyBytes: -1},
	}
	_, k := newKey(t)
	keys := mustKeys(t, "k1:"+k)
	for i, o := range bad {
		if err := o.Validate(); err == nil {
			t.Fatalf("case %d (%+v): no error", i, o)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("case %d: NewServer did not panic", i)
				}
			}()
			NewServer(keys, o)
		}()
	}
	good := ServerOptions{Token: "Zm9vYmFy+/-._~==", AllowedOrigins: []string{"https://UI.example.com/", testOrigin}, Namespaces: []string{"default"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (ServerOptions{Token: "x"}).Validate(); err != nil {
		t.Fatal(err)
	}
}
