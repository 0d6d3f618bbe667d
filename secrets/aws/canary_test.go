package aws

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// canary returns a unique marker that must never appear in an error.
func canary(n int) string { return fmt.Sprintf("CANARYzq%03dSECRET", n) }

// assertNoCanary fails if any printed form of err holds a canary.
func assertNoCanary(t *testing.T, label string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", label)
		return
	}
	for _, form := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%s", err), fmt.Sprintf("%q", err)} {
		if strings.Contains(form, "CANARYzq") || strings.Contains(strings.ToLower(form), "canaryzq") {
			t.Errorf("%s: error leaks a canary: %s", label, form)
		}
	}
}

// TestNoCanaryInErrors drives every error path with canaries in secret values, error messages,
// error codes and raw bodies, and checks that no error prints one.
func TestNoCanaryInErrors(t *testing.T) {
	type answer func(w http.ResponseWriter, n int)
	jsonErr := func(status int, code string) answer {
		return func(w http.ResponseWriter, n int) {
			writeJSONError(w, status, code, "message with "+canary(n)+" inside")
		}
	}
	raw := func(status int, body string) answer {
		return func(w http.ResponseWriter, n int) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(strings.ReplaceAll(body, "%C", canary(n))))
		}
	}
	smAnswers := map[string]answer{
		"not found":     jsonErr(400, "ResourceNotFoundException"),
		"deleted":       jsonErr(400, "InvalidRequestException"),
		"invalid param": jsonErr(400, "InvalidParameterException"),
		"denied":        jsonErr(400, "AccessDeniedException"),
		"decryption":    jsonErr(400, "DecryptionFailure"),
		"throttled":     jsonErr(400, "ThrottlingException"),
		"internal":      jsonErr(500, "InternalServiceError"),
		"unavailable":   jsonErr(503, "ServiceUnavailable"),
		"auth":          jsonErr(400, "UnrecognizedClientException"),
		"expired":       jsonErr(400, "ExpiredTokenException"),
		"unknown code":  func(w http.ResponseWriter, n int) { writeJSONError(w, 400, "Canaryzq"+canary(n), canary(n)) },
		"unknown 5xx":   func(w http.ResponseWriter, n int) { writeJSONError(w, 502, canary(n)+"Exception", canary(n)) },
		"header code": func(w http.ResponseWriter, n int) {
			w.Header().Set("X-Amzn-ErrorType", canary(n))
			raw(400, "%C")(w, n)
		},
		"html 503":        raw(503, "<html>%C</html>"),
		"malformed 200":   raw(200, `{"SecretString":"%C`),
		"wrong type 200":  raw(200, `{"SecretString":{"%C":1}}`),
		"no value 200":    raw(200, `{"Name":"%C"}`),
		"body 400 as xml": raw(400, "<Error><Code>%C</Code><Message>%C</Message></Error>"),
		"oversize": func(w http.ResponseWriter, n int) {
			_, _ = w.Write([]byte(`{"SecretString":"` + strings.Repeat(canary(n), MaxResponseBytes/len(canary(n))+10) + `"}`))
		},
	}
	n := 0
	for name, ans := range smAnswers {
		t.Run(name, func(t *testing.T) {
			n++
			id := n
			f := newFakeAWS(t)
			f.addString("app", canary(900+id), "v-00000000000000000000000000000000001")
			f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
				ans(w, id)
				return true
			})
			s := newStore(t, f, Config{})
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			assertNoCanary(t, "Fetch", err)
			results, err := s.FetchBatch(ctxBG, []secrets.Ref{{Path: "app"}})
			if err == nil {
				err = results[0].Err // a per-secret failure
			}
			assertNoCanary(t, "FetchBatch", err)
		})
	}

	t.Run("batch item errors", func(t *testing.T) {
		f := newFakeAWS(t)
		f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
			var errs []map[string]any
			for i, code := range []string{"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InternalServiceError", canary(1), "InvalidRequestException"} {
				errs = append(errs, map[string]any{"SecretId": fmt.Sprintf("s%d", i), "ErrorCode": code, "Message": canary(10 + i)})
			}
			writeJSON(w, map[string]any{"SecretValues": []map[string]any{{"Name": "s6", "ARN": secretARN("s6"), "VersionId": canary(2)}}, "Errors": errs})
			return true
		})
		s := newStore(t, f, Config{})
		var refs []secrets.Ref
		for i := 0; i < 8; i++ {
			refs = append(refs, secrets.Ref{Path: fmt.Sprintf("s%d", i)})
		}
		results, err := s.FetchBatch(ctxBG, refs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			assertNoCanary(t, r.Ref.Path, r.Err)
		}
	})

	stsAnswers := map[string]func(w http.ResponseWriter){
		"sts denied":    func(w http.ResponseWriter) { writeSTSError(w, 403, "AccessDenied", canary(50)) },
		"sts throttled": func(w http.ResponseWriter) { writeSTSError(w, 400, "Throttling", canary(51)) },
		"sts unknown":   func(w http.ResponseWriter) { writeSTSError(w, 400, canary(52), canary(53)) },
		"sts html":      func(w http.ResponseWriter) { w.WriteHeader(500); _, _ = w.Write([]byte(canary(54))) },
		"sts bad 200":   func(w http.ResponseWriter) { _, _ = w.Write([]byte("<AssumeRoleResponse>" + canary(55))) },
		"sts creds in ok": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte("<x><SecretAccessKey>" + canary(56) + "</SecretAccessKey></x>"))
		},
	}
	for name, ans := range stsAnswers {
		t.Run(name, func(t *testing.T) {
			f := newFakeAWS(t)
			f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
				if !strings.HasPrefix(op, "sts.") {
					return false
				}
				ans(w)
				return true
			})
			s := newStore(t, f, Config{AuthMethod: AuthAssumeRole, RoleARN: testRoleARN})
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			assertNoCanary(t, "assume-role", err)
		})
	}

	t.Run("irsa token rejected", func(t *testing.T) {
		f := newFakeAWS(t)
		setupIRSA(t, f)
		f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
			writeSTSError(w, 400, "InvalidIdentityToken", canary(60))
			return true
		})
		s, err := New(ctxBG, Config{Region: testRegion})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Fetch(ctxBG, secrets.Ref{Path: "app"})
		assertNoCanary(t, "irsa", err)
	})

	t.Run("credentials in env never printed", func(t *testing.T) {
		f := newFakeAWS(t)
		isolateEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", canary(70))
		t.Setenv("AWS_SECRET_ACCESS_KEY", canary(71))
		t.Setenv("AWS_SESSION_TOKEN", canary(72))
		for _, method := range []string{AuthIAM, AuthAccessKey} {
			s := mustNew(t, f, Config{AuthMethod: method})
			_, err := s.Fetch(ctxBG, secrets.Ref{Path: "app"})
			assertNoCanary(t, method, err) // unknown key: the server answers InvalidSignatureException
		}
	})

	t.Run("deadline", func(t *testing.T) {
		f := newFakeAWS(t)
		f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
			_, _ = w.Write([]byte(`{"SecretString":"` + canary(80)))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return true
		})
		s := newStore(t, f, Config{})
		ctx, cancel := context.WithTimeout(ctxBG, 100*time.Millisecond)
		defer cancel()
		_, err := s.Fetch(ctx, secrets.Ref{Path: "app"})
		assertNoCanary(t, "deadline", err)
	})
}
