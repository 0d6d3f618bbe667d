package custom

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// Canaries are unique strings the test server and environment hand out as secret values, header
// values and error bodies; none may ever appear in an error.
const (
	canaryValue = "CANARYvalue8e41"
	canaryBody  = "CANARYbody2c9d"
	canaryEnv   = "CANARYenv5b17"
	canaryToken = "CANARYtoken0f3a"
	canaryInput = "CANARYinput77e2"
)

var canaries = []string{canaryValue, canaryBody, canaryEnv, canaryToken, canaryInput}

func assertNoCanary(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: expected an error", what)
		return
	}
	for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%v", err), fmt.Sprint(err)} {
		for _, c := range canaries {
			if strings.Contains(form, c) {
				t.Errorf("%s: error leaks canary %s: %s", what, c, form)
			}
		}
	}
}

// canaryServer answers with status, echoing the request's credentials and canaries in its body
// and headers, the way a careless store might.
func canaryServer(t *testing.T, status int, contentType, body string, extra ...string) *testServer {
	return newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+canaryBody+`"`)
		w.Header().Set("Location", "https://elsewhere.example.com/?token="+canaryToken)
		w.Header().Set("X-Debug", r.Header.Get("X-Api-Key")+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", contentType)
		for i := 0; i+1 < len(extra); i += 2 {
			w.Header().Set(extra[i], extra[i+1])
		}
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, body, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
	})
}

func TestCanariesNeverInErrors(t *testing.T) {
	env := map[string]string{"API_KEY": canaryEnv, "TOKEN": canaryToken}
	withCreds := func(cfg Config) Config {
		cfg.Headers = map[string]string{"X-Api-Key": "API_KEY"}
		cfg.BearerTokenEnv = "TOKEN"
		return cfg
	}
	errBody := `{"error":"denied for %s %s","secret":"` + canaryValue + `","detail":"` + canaryBody + `"}`

	t.Run("success carries the canary", func(t *testing.T) {
		ts := canaryServer(t, 200, "application/json", `{"data":{"password":"`+canaryValue+`","echo":"%s %s"}}`)
		cfg := withCreds(ts.config())
		cfg.ValuePath = "data"
		sec, err := fetch(t, mustNew(t, cfg, testOptions(env)), secrets.Ref{Path: "s"})
		if err != nil || !strings.Contains(sec.Value.Reveal(), canaryValue) || !strings.Contains(sec.Value.Reveal(), canaryEnv) {
			t.Fatalf("the server did not deliver the canaries: %v", err)
		}
		if s := fmt.Sprintf("%v %+v %s", sec, sec, sec.Value); strings.Contains(s, canaryValue) {
			t.Errorf("formatted secret leaks: %s", s)
		}
	})

	for _, status := range []int{201, 204, 301, 302, 307, 400, 401, 403, 404, 405, 408, 410, 418, 429, 500, 502, 503, 504} {
		ts := canaryServer(t, status, "application/json", errBody, "Retry-After", canaryBody)
		_, err := fetch(t, mustNew(t, withCreds(ts.config()), testOptions(env)), secrets.Ref{Path: "s"})
		assertNoCanary(t, fmt.Sprintf("HTTP %d", status), err)
	}

	for _, tc := range []struct {
		name, contentType, body, valuePath, versionPath string
		extra                                           []string
		maxBytes                                        int64
	}{
		{name: "invalid JSON", contentType: "application/json", body: `{"v":"` + canaryValue + `" %s %s`},
		{name: "value_path on text", contentType: "text/plain", body: canaryValue + "%s%s", valuePath: "v"},
		{name: "missing value_path", contentType: "application/json", body: `{"other":"` + canaryValue + `","e":"%s %s"}`, valuePath: "v"},
		{name: "version_path on object", contentType: "application/json", body: `{"v":"x","m":{"k":"` + canaryValue + `%s%s"}}`, valuePath: "v", versionPath: "m"},
		{name: "null", contentType: "application/json", body: `{"v":null,"x":"` + canaryValue + `%s%s"}`, valuePath: "v"},
		{name: "oversize", contentType: "text/plain", body: strings.Repeat(canaryValue, 100) + "%s%s", maxBytes: 100},
		{name: "bad version header", contentType: "text/plain", body: canaryValue + "%s%s", extra: []string{VersionHeader, strings.Repeat(canaryValue, 30)}},
		{name: "compressed", contentType: "text/plain", body: canaryValue + "%s%s", extra: []string{"Content-Encoding", "gzip"}},
	} {
		ts := canaryServer(t, 200, tc.contentType, tc.body, tc.extra...)
		cfg := withCreds(ts.config())
		cfg.ValuePath = tc.valuePath
		opts := testOptions(env)
		opts.VersionPath = versionAt(tc.versionPath)
		opts.MaxResponseBytes = tc.maxBytes
		_, err := fetch(t, mustNew(t, cfg, opts), secrets.Ref{Path: "s"})
		assertNoCanary(t, tc.name, err)
	}

	t.Run("environment", func(t *testing.T) {
		ts := canaryServer(t, 200, "text/plain", "%s%s")
		cfg := withCreds(ts.config())
		for name, env := range map[string]map[string]string{
			"one missing": {"API_KEY": canaryEnv},
			"newline":     {"API_KEY": canaryEnv + "\n" + canaryInput, "TOKEN": canaryToken},
			"control":     {"API_KEY": canaryEnv, "TOKEN": canaryToken + "\x00"},
		} {
			_, err := fetch(t, mustNew(t, cfg, testOptions(env)), secrets.Ref{Path: "s"})
			assertNoCanary(t, name, err)
		}
		if n := ts.requests.Load(); n != 0 {
			t.Errorf("requests sent with broken credentials: %d", n)
		}
	})

	t.Run("deadline during body", func(t *testing.T) {
		ts := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(canaryValue + r.Header.Get("X-Api-Key")))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		s := mustNew(t, withCreds(ts.config()), testOptions(env))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := s.Fetch(ctx, secrets.Ref{Path: "s"})
		assertNoCanary(t, "deadline", err)
	})

	t.Run("TLS failure", func(t *testing.T) {
		ts := canaryServer(t, 200, "text/plain", "%s%s")
		opts := testOptions(env)
		opts.CAFile = nil
		_, err := fetch(t, mustNew(t, withCreds(ts.config()), opts), secrets.Ref{Path: "s"})
		assertNoCanary(t, "TLS", err)
	})

	t.Run("configuration input", func(t *testing.T) {
		for _, raw := range []string{
			`{"store_url":"https://user:` + canaryInput + `@example.com","secret_name":"a"}`,
			`{"store_url":"https://example.com/?token=` + canaryInput + `","secret_name":"a"}`,
			`{"store_url":"https://example.com/#` + canaryInput + `","secret_name":"a"}`,
			`{"store_url":"http://` + canaryInput + `.example.com","secret_name":"a"}`,
			`{"store_url":"https://example.com/ ` + canaryInput + `","secret_name":"a"}`,
			`{"store_url":"https://a","secret_name":"a","headers":{"X-Vault-Token":"hvs.` + canaryInput + `"}}`,
			`{"store_url":"https://a","secret_name":"a","bearer_token_env":"Bearer ` + canaryInput + `"}`,
			`{"store_url":"https://a","secret_name":"a","timeout":"` + canaryInput + `"}`,
			`{"store_url":"https://a","secret_name":"a","version":"` + canaryInput + `\u0000"}`,
			`{"store_url":"https://a","secret_name":"a/../` + canaryInput + `"}`,
			`{"store_url":"https://a","secret_name":"a","value_path":"` + canaryInput + `..x","version_path":"` + canaryInput + `."}`,
			`{"store_url":"https://a","secret_name":"a","version_param":"` + canaryInput + `!"}`,
			`{"store_url":"https://a","secret_name":"a","headers":["` + canaryInput + `"]}`,
			`{"store_url":"https://a","secret_name":"a","ca_file":"` + canaryInput + `"}`,
			`{"store_url":"https://a","secret_name":` + `"` + canaryInput + `` + `,`,
		} {
			_, _, err := ParseConfig([]byte(raw))
			assertNoCanary(t, raw, err)
		}
	})
}
