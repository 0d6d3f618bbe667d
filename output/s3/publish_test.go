package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets"
)

// keyPrefix is the run's key prefix as the Publish activity builds it.
var keyPrefix = output.SafeComponent("sqlite") + "/" + output.SafeComponent("wf/with slash") + "/" + output.SafeComponent("run-1")

// finalizedRun stages a run with the local sink's real part writer and Finalize: schemas and
// tables, and enough random-looking columns for a data file of a few hundred KiB.
func finalizedRun(t *testing.T, columns int) (string, *output.Manifest) {
	t.Helper()
	dir := output.RunDir(t.TempDir(), "", "sqlite", "wf/with slash", "run-1")
	write := func(part string, entities ...connectors.Entity) {
		w, err := output.NewPartWriter(dir, part)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entities {
			if err := w.Write(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	write("batch-0001", connectors.Schema{Name: "main"}, connectors.Table{Schema: "main", Name: "users", Type: "table"})
	var cols []connectors.Entity
	noise := make([]byte, 24)
	for i := range columns {
		_, _ = rand.Read(noise)
		cols = append(cols, connectors.Column{Schema: "main", Table: "users", Name: fmt.Sprintf("c%05d", i), Position: i + 1,
			DataType: "TEXT", Comment: hex.EncodeToString(noise)})
	}
	write("batch-0002", cols...)
	m, err := output.Finalize(dir, output.ManifestMeta{Connector: "sqlite", WorkflowID: "wf/with slash", RunID: "run-1",
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Kinds: []string{"databases"}})
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// wantKeys are the keys of a run's objects in upload order: data files, then the manifest.
func wantKeys(base string, m *output.Manifest) []string {
	var keys []string
	for _, f := range m.Files {
		keys = append(keys, base+"/"+f.Name)
	}
	return append(keys, base+"/manifest.json")
}

func putKeys(puts []seen) []string {
	var keys []string
	for _, p := range puts {
		keys = append(keys, strings.TrimPrefix(p.path, "/"+testBucket+"/"))
	}
	return keys
}

func TestPublishUploadsRunManifestLast(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, m := finalizedRun(t, 6000)
	cfg := f.config()
	cfg.Prefix = "team-a/metadata/"
	sink := f.newSink(t, cfg, staticCreds())

	res, err := sink.Publish(context.Background(), dir, keyPrefix)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// One connection for all uploads: none was dropped under a response.
	if n := f.conns.Load(); n != 1 {
		t.Errorf("the uploads used %d connections, want 1", n)
	}
	base := "team-a/metadata/" + keyPrefix
	want := wantKeys(base, m)
	if len(m.Files) != 4 {
		t.Fatalf("the run has %d files, want 4 (databases, schemas, tables, columns)", len(m.Files))
	}
	// Upload order: every data file as the manifest lists it, the manifest last, once each.
	puts := f.puts()
	if got := putKeys(puts); !slices.Equal(got, want) {
		t.Fatalf("PUT order:\n got %q\nwant %q", got, want)
	}
	manifestRaw, err := os.ReadFile(output.ManifestPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i, f2 := range m.Files {
		local, err := os.ReadFile(filepath.Join(dir, f2.Name))
		if err != nil {
			t.Fatal(err)
		}
		if f2.Name == "columns.jsonl.gz" && len(local) < 64<<10 {
			t.Fatalf("columns.jsonl.gz has %d bytes; the test wants a file of several hundred KiB", len(local))
		}
		// Each PUT carried the manifest's SHA-256, and the store saw exactly those bytes.
		sum, _ := hex.DecodeString(f2.SHA256)
		if puts[i].checksum != base64.StdEncoding.EncodeToString(sum) || puts[i].bodySHA != f2.SHA256 {
			t.Errorf("%s: PUT checksum header %q, body sha %s; manifest sha %s", f2.Name, puts[i].checksum, puts[i].bodySHA, f2.SHA256)
		}
		if puts[i].algorithm != "SHA256" {
			t.Errorf("%s: checksum algorithm header %q, want SHA256", f2.Name, puts[i].algorithm)
		}
		// GET it back: same bytes, same SHA-256 as the manifest.
		got := f.get(t, want[i])
		gotSum := sha256.Sum256(got)
		if !bytes.Equal(got, local) || hex.EncodeToString(gotSum[:]) != f2.SHA256 || int64(len(got)) != f2.Bytes {
			t.Errorf("%s: object read back differs from the staged file or the manifest", f2.Name)
		}
		if o := res.Objects[i]; o.Key != want[i] || o.Bytes != f2.Bytes || o.SHA256 != f2.SHA256 {
			t.Errorf("Result.Objects[%d] = %+v, want key %s, %d bytes, sha %s", i, o, want[i], f2.Bytes, f2.SHA256)
		}
		total += f2.Bytes
	}
	if got := f.get(t, base+"/manifest.json"); !bytes.Equal(got, manifestRaw) {
		t.Errorf("manifest.json read back differs from the staged one")
	}
	manifestSum := sha256.Sum256(manifestRaw)
	last := res.Objects[len(res.Objects)-1]
	if last.Key != base+"/manifest.json" || last.Bytes != int64(len(manifestRaw)) || last.SHA256 != hex.EncodeToString(manifestSum[:]) {
		t.Errorf("last Result object = %+v, want the manifest", last)
	}
	if puts[len(puts)-1].checksum != base64.StdEncoding.EncodeToString(manifestSum[:]) {
		t.Errorf("manifest PUT carried checksum %q", puts[len(puts)-1].checksum)
	}
	if res.Bytes != total+int64(len(manifestRaw)) || len(res.Objects) != len(want) {
		t.Errorf("Result has %d objects, %d bytes; want %d, %d", len(res.Objects), res.Bytes, len(want), total+int64(len(manifestRaw)))
	}
	if res.ManifestURL != "s3://"+testBucket+"/"+base+"/manifest.json" || res.Bucket != testBucket || res.Prefix != base {
		t.Errorf("Result = bucket %q, prefix %q, manifest URL %q", res.Bucket, res.Prefix, res.ManifestURL)
	}
	// The static key signed every request (the store verified each signature with it).
	for _, p := range puts {
		if p.accessKey != keyID || p.token != "" {
			t.Errorf("PUT %s signed by access key %q with token %q, want %q without a token", p.path, p.accessKey, p.token, keyID)
		}
	}
}

func TestPublishAgainReplacesTheSameKeys(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, m := finalizedRun(t, 50)
	sink := f.newSink(t, f.config(), staticCreds())

	first, err := sink.Publish(context.Background(), dir, keyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	keysBefore := f.list(t)
	second, err := sink.Publish(context.Background(), dir, keyPrefix)
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("second Result differs:\n%+v\n%+v", first, second)
	}
	keys := f.list(t)
	want := wantKeys(keyPrefix, m)
	slices.Sort(want)
	if !slices.Equal(keys, keysBefore) || !slices.Equal(keys, want) {
		t.Errorf("bucket keys after two publishes %q, want %q", keys, want)
	}
	if n := len(f.puts()); n != 2*len(want) {
		t.Errorf("%d PUTs, want %d", n, 2*len(want))
	}
}

func TestPublishFailureLeavesNoManifestAndRetrySucceeds(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, m := finalizedRun(t, 50)
	sink := f.newSink(t, f.config(), staticCreds())
	// The third data file fails for good on the first Publish.
	failing := keyPrefix + "/" + m.Files[2].Name
	f.setHook(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if strings.HasSuffix(r.URL.Path, failing) {
			writeS3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied")
			return true
		}
		return false
	})
	_, err := sink.Publish(context.Background(), dir, keyPrefix)
	if !errors.Is(err, secrets.AccessDenied) {
		t.Fatalf("Publish: %v, want AccessDenied", err)
	}
	if got := putKeys(f.puts()); len(got) != 3 || slices.Contains(got, keyPrefix+"/manifest.json") {
		t.Fatalf("PUTs after the failure: %q; want the first three data files and no manifest", got)
	}
	if slices.Contains(f.list(t), keyPrefix+"/manifest.json") {
		t.Fatal("the manifest was uploaded although a data file failed")
	}
	// The activity retries once the policy is fixed.
	f.setHook(nil)
	if _, err := sink.Publish(context.Background(), dir, keyPrefix); err != nil {
		t.Fatalf("retried Publish: %v", err)
	}
	want := wantKeys(keyPrefix, m)
	slices.Sort(want)
	if got := f.list(t); !slices.Equal(got, want) {
		t.Errorf("bucket keys %q, want %q", got, want)
	}
}

func TestAddressingStyles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		pathStyle bool
		wantHost  func(port string) string
		wantPath  string
	}{
		{"path-style", true, func(p string) string { return "localhost:" + p }, "/" + testBucket + "/" + keyPrefix + "/manifest.json"},
		{"virtual-hosted", false, func(p string) string { return testBucket + ".localhost:" + p }, "/" + keyPrefix + "/manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeS3(t)
			dir, m := finalizedRun(t, 10)
			cfg := f.config()
			cfg.PathStyle = tc.pathStyle
			var mu sync.Mutex
			var hosts, paths []string
			f.setHook(func(_ http.ResponseWriter, r *http.Request, _ []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				hosts, paths = append(hosts, r.Host), append(paths, r.URL.EscapedPath())
				return false
			})
			if _, err := f.newSink(t, cfg, staticCreds()).Publish(context.Background(), dir, keyPrefix); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			mu.Lock()
			hosts, paths = slices.Clone(hosts), slices.Clone(paths)
			mu.Unlock()
			if len(hosts) != len(m.Files)+1 {
				t.Fatalf("%d requests, want %d", len(hosts), len(m.Files)+1)
			}
			for _, h := range hosts {
				if h != tc.wantHost(f.port) {
					t.Errorf("Host %q, want %q", h, tc.wantHost(f.port))
				}
			}
			// Keys are escaped once on the wire: SafeComponent's "%" travels as %25.
			wantPath := strings.ReplaceAll(tc.wantPath, "%", "%25")
			if last := paths[len(paths)-1]; last != wantPath {
				t.Errorf("manifest path %q, want %q", last, wantPath)
			}
			f.get(t, keyPrefix+"/manifest.json")
		})
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	t.Run("session token", func(t *testing.T) {
		t.Parallel()
		f := newFakeS3(t)
		dir, _ := finalizedRun(t, 10)
		creds := Credentials{AccessKeyID: secrets.Value(tempKeyID), SecretAccessKey: secrets.Value(tempSecret), SessionToken: secrets.Value(tempToken)}
		if _, err := f.newSink(t, f.config(), creds).Publish(context.Background(), dir, keyPrefix); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		for _, p := range f.puts() {
			if p.accessKey != tempKeyID || p.token != tempToken {
				t.Errorf("PUT signed by %q with token %q, want the temporary key and its token", p.accessKey, p.token)
			}
		}
	})
	for _, tc := range []struct {
		name   string
		creds  Credentials
		detail string
	}{
		{"wrong secret key", Credentials{AccessKeyID: secrets.Value(keyID), SecretAccessKey: secrets.Value("CANARYzqWrongSecret")}, "SignatureDoesNotMatch"},
		{"unknown key id", Credentials{AccessKeyID: secrets.Value("AKIDUNKNOWN00000001"), SecretAccessKey: secrets.Value(secretKey)}, "InvalidAccessKeyId"},
		{"token of another key", Credentials{AccessKeyID: secrets.Value(tempKeyID), SecretAccessKey: secrets.Value(tempSecret), SessionToken: secrets.Value("CANARYzqOldToken")}, "SignatureDoesNotMatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeS3(t)
			dir, _ := finalizedRun(t, 10)
			_, err := f.newSink(t, f.config(), tc.creds).Publish(context.Background(), dir, keyPrefix)
			assertKind(t, err, secrets.AuthFailed, tc.detail)
			assertNoCanary(t, err)
			if !strings.Contains(err.Error(), "output.credentials") {
				t.Errorf("message does not point at output.credentials: %v", err)
			}
			if n := len(f.puts()); n != 1 {
				t.Errorf("%d PUTs, want 1 (an auth failure is not retried)", n)
			}
		})
	}
}

// TestDefaultCredentialChain uses the agent's environment (the first source of the default
// chain) when no credentials are given, and fails with AuthFailed when the chain finds none.
// It sets environment variables, so it does not run in parallel.
func TestDefaultCredentialChain(t *testing.T) {
	f := newFakeS3(t)
	dir, _ := finalizedRun(t, 10)

	_, err := f.newSink(t, f.config(), Credentials{}).Publish(context.Background(), dir, keyPrefix)
	assertKind(t, err, secrets.AuthFailed, "")
	if !strings.Contains(err.Error(), "no AWS credentials") || len(f.puts()) != 0 {
		t.Errorf("no credentials: %v, %d PUTs", err, len(f.puts()))
	}

	t.Setenv("AWS_ACCESS_KEY_ID", tempKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", tempSecret)
	t.Setenv("AWS_SESSION_TOKEN", tempToken)
	if _, err := f.newSink(t, f.config(), Credentials{}).Publish(context.Background(), dir, keyPrefix); err != nil {
		t.Fatalf("Publish with the environment's key: %v", err)
	}
	for _, p := range f.puts() {
		if p.accessKey != tempKeyID || p.token != tempToken {
			t.Errorf("PUT signed by %q, want the environment's key", p.accessKey)
		}
	}
}

func TestSlowDownIsRetriedThreeTimes(t *testing.T) {
	t.Parallel()
	slowDown := func(f *fakeS3, times int64) {
		var n atomic.Int64
		f.setHook(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
			if r.Method == http.MethodPut && n.Add(1) <= times {
				w.Header().Set("Retry-After", "7")
				writeS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
				return true
			}
			return false
		})
	}
	t.Run("recovers within the attempts", func(t *testing.T) {
		t.Parallel()
		f := newFakeS3(t)
		dir, m := finalizedRun(t, 10)
		slowDown(f, MaxAttempts-1)
		if _, err := f.newSink(t, f.config(), staticCreds()).Publish(context.Background(), dir, keyPrefix); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		puts := putKeys(f.puts())
		if len(puts) != len(m.Files)+1+MaxAttempts-1 || puts[0] != puts[MaxAttempts-1] {
			t.Errorf("PUTs %q: want the first file %d times, then the others once", puts, MaxAttempts)
		}
	})
	t.Run("gives up after three attempts", func(t *testing.T) {
		t.Parallel()
		f := newFakeS3(t)
		dir, _ := finalizedRun(t, 10)
		slowDown(f, 100)
		_, err := f.newSink(t, f.config(), staticCreds()).Publish(context.Background(), dir, keyPrefix)
		assertKind(t, err, secrets.OutputUnavailable, "SlowDown")
		if !secrets.Retryable(err) || secrets.RetryAfterOf(err) != 7*time.Second {
			t.Errorf("retryable %v, RetryAfter %s; want retryable after 7s", secrets.Retryable(err), secrets.RetryAfterOf(err))
		}
		if n := len(f.puts()); n != MaxAttempts {
			t.Errorf("%d PUTs, want %d attempts of the first file and nothing after", n, MaxAttempts)
		}
		if !strings.Contains(err.Error(), "after 3 attempts") {
			t.Errorf("message does not say how often it tried: %v", err)
		}
	})
}

func TestChecksumMismatchIsRefusedByTheStore(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, m := finalizedRun(t, 10)
	// The staged file changes after Finalize (same size, one byte differs).
	name := filepath.Join(dir, m.Files[1].Name)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = f.newSink(t, f.config(), staticCreds()).Publish(context.Background(), dir, keyPrefix)
	assertKind(t, err, secrets.OutputUnavailable, "BadDigest")
	if !strings.Contains(err.Error(), m.Files[1].Name) || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("message does not name the file and the checksum: %v", err)
	}
	keys := f.list(t)
	if slices.Contains(keys, keyPrefix+"/"+m.Files[1].Name) || slices.Contains(keys, keyPrefix+"/manifest.json") {
		t.Errorf("the store kept the damaged file or the manifest: %q", keys)
	}
	if n := len(f.puts()); n != 2 {
		t.Errorf("%d PUTs, want 2 (BadDigest is left to the activity's retry)", n)
	}
}

func TestContextDeadline(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, _ := finalizedRun(t, 10)
	release := make(chan struct{})
	defer close(release)
	f.setHook(func(_ http.ResponseWriter, r *http.Request, _ []byte) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.newSink(t, f.config(), staticCreds()).Publish(ctx, dir, keyPrefix)
	assertKind(t, err, secrets.OutputUnavailable, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Publish returned after %s", d)
	}
	if n := len(f.puts()); n != 1 {
		t.Errorf("%d PUTs, want 1 (no retry after the deadline)", n)
	}
}

func TestUnreachableStore(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, _ := finalizedRun(t, 10)
	cfg := f.config()
	f.srv.Close() // nothing listens on the port any more
	_, err := f.newSink(t, cfg, staticCreds()).Publish(context.Background(), dir, keyPrefix)
	assertKind(t, err, secrets.OutputUnavailable, "")
	if !strings.Contains(err.Error(), "could not reach the store (after 3 attempts)") {
		t.Errorf("message: %v", err)
	}
}

func TestNoSuchBucket(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, _ := finalizedRun(t, 10)
	cfg := f.config()
	cfg.Bucket = "no-such-bucket"
	_, err := f.newSink(t, cfg, staticCreds()).Publish(context.Background(), dir, keyPrefix)
	assertKind(t, err, secrets.InvalidInput, "NoSuchBucket")
	if !strings.Contains(err.Error(), `"no-such-bucket"`) || !strings.Contains(err.Error(), keyPrefix) {
		t.Errorf("message does not name the bucket and key prefix: %v", err)
	}
	if n := len(f.puts()); n != 1 {
		t.Errorf("%d PUTs, want 1", n)
	}
}

// TestErrorAnswers maps every kind of store answer, with a canary in its message, to a kind and
// detail, and checks how often the SDK tried.
func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	type answer func(w http.ResponseWriter)
	s3err := func(status int, code string) answer {
		return func(w http.ResponseWriter) { writeS3Error(w, status, code, "message with CANARYzqInBody inside") }
	}
	raw := func(status int, body string) answer {
		return func(w http.ResponseWriter) { w.WriteHeader(status); _, _ = w.Write([]byte(body)) }
	}
	for _, tc := range []struct {
		name     string
		answer   answer
		kind     secrets.Kind
		detail   string
		attempts int
	}{
		{"AccessDenied", s3err(403, "AccessDenied"), secrets.AccessDenied, "AccessDenied", 1},
		{"AllAccessDisabled", s3err(403, "AllAccessDisabled"), secrets.AccessDenied, "AllAccessDisabled", 1},
		{"InvalidBucketName", s3err(400, "InvalidBucketName"), secrets.InvalidInput, "InvalidBucketName", 1},
		{"NoSuchBucket", s3err(404, "NoSuchBucket"), secrets.InvalidInput, "NoSuchBucket", 1},
		{"wrong region", s3err(301, "PermanentRedirect"), secrets.InvalidInput, "PermanentRedirect", 1},
		{"ExpiredToken", s3err(400, "ExpiredToken"), secrets.AuthFailed, "ExpiredToken", 1},
		{"InvalidAccessKeyId", s3err(403, "InvalidAccessKeyId"), secrets.AuthFailed, "InvalidAccessKeyId", 1},
		{"SignatureDoesNotMatch", s3err(403, "SignatureDoesNotMatch"), secrets.AuthFailed, "SignatureDoesNotMatch", 1},
		{"SlowDown", s3err(503, "SlowDown"), secrets.OutputUnavailable, "SlowDown", 3},
		{"InternalError", s3err(500, "InternalError"), secrets.OutputUnavailable, "InternalError", 3},
		{"503 without body", raw(503, ""), secrets.OutputUnavailable, "ServiceUnavailable", 3},
		{"html 502", raw(502, "<html>CANARYzqHTML</html>"), secrets.OutputUnavailable, "HTTP 502", 3},
		{"RequestTimeout", s3err(400, "RequestTimeout"), secrets.OutputUnavailable, "RequestTimeout", 3},
		{"BadDigest", s3err(400, "BadDigest"), secrets.OutputUnavailable, "BadDigest", 1},
		{"NotImplemented", s3err(501, "NotImplemented"), secrets.InvalidInput, "NotImplemented", 1},
		{"unknown 400 code", s3err(400, "CANARYzqCode"), secrets.InvalidInput, "HTTP 400", 1},
		{"unknown 403 code", s3err(403, "CANARYzqCode"), secrets.AccessDenied, "HTTP 403", 1},
		{"oversize", raw(500, strings.Repeat("CANARYzq", maxResponseBytes/8+10)), secrets.OutputUnavailable, "response too large", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeS3(t)
			dir, _ := finalizedRun(t, 10)
			f.setHook(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
				tc.answer(w)
				return true
			})
			_, err := f.newSink(t, f.config(), staticCreds()).Publish(context.Background(), dir, keyPrefix)
			assertKind(t, err, tc.kind, tc.detail)
			assertNoCanary(t, err)
			if !strings.Contains(err.Error(), `S3 bucket "`+testBucket+`", key prefix "`+keyPrefix+`"`) {
				t.Errorf("message does not name the bucket and key prefix: %v", err)
			}
			if n := len(f.puts()); n != tc.attempts {
				t.Errorf("%d PUTs, want %d", n, tc.attempts)
			}
		})
	}
}

// TestEarlyErrorAnswersKeepTheirCode uploads a few hundred KiB to a store that answers quickly
// with an error whose body is larger than net/http's read buffer. Without bodyClient, an upload
// body with WriteTo (the manifest's bytes.Reader) makes net/http probe the SDK's already-closed
// body, fail, and close the connection under the response: uploads then fail with "use of closed
// network connection" instead of AccessDenied, and connections are not reused. Data files go up
// through a section reader, which has no WriteTo; both paths are checked.
func TestEarlyErrorAnswersKeepTheirCode(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, _ := finalizedRun(t, 6000)
	long := strings.Repeat("x", 64<<10)
	f.setHook(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied "+long)
		return true
	})
	sink := f.newSink(t, f.config(), staticCreds())
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	const rounds = 60
	for i := range 2 * rounds {
		u := upload{name: "columns.jsonl.gz", key: keyPrefix + "/columns.jsonl.gz",
			bytes: fileSize(t, filepath.Join(dir, "columns.jsonl.gz")), sha256: make([]byte, 32), ctype: dataContentType}
		if i%2 == 1 { // in memory, like the manifest
			u = upload{name: output.ManifestName, key: keyPrefix + "/" + output.ManifestName, bytes: int64(len(data)),
				sha256: make([]byte, 32), data: data, ctype: manifestContentType}
		}
		_, err := sink.put(context.Background(), dir, keyPrefix, u)
		if secrets.KindOf(err) != secrets.AccessDenied {
			t.Fatalf("upload %d: %v, want AccessDenied", i, err)
		}
	}
	if n := f.conns.Load(); n != 1 {
		t.Errorf("%d connections for %d uploads, want 1 (none dropped)", n, 2*rounds)
	}
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func assertKind(t *testing.T, err error, kind secrets.Kind, detail string) {
	t.Helper()
	var e *secrets.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a *secrets.Error of kind %s", err, err, kind)
	}
	if e.Kind != kind || e.Detail != detail {
		t.Errorf("kind %s, detail %q, want %s, %q: %v", e.Kind, e.Detail, kind, detail, err)
	}
}

// assertNoCanary fails if any printed form of err, or of any error in its chain, holds a canary:
// a secret key, a session token, or text from the store's answer.
func assertNoCanary(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Error("no error")
		return
	}
	forms := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err)}
	for _, form := range forms {
		if strings.Contains(strings.ToLower(form), "canaryzq") {
			t.Errorf("error leaks a canary: %s", form)
		}
	}
	// The SDK's own errors never see the secret key or the token either.
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{secretKey, tempSecret, tempToken, "CANARYzqWrongSecret", "CANARYzqOldToken"} {
			if strings.Contains(e.Error(), s) {
				t.Errorf("an error in the chain holds a credential: %T", e)
			}
		}
	}
}

// TestLongIDs publishes a run whose connector, workflow id and run id each reach
// SafeComponent's 200-byte cap, and refuses keys beyond S3's 1024 bytes before uploading.
func TestLongIDs(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t)
	dir, m := finalizedRun(t, 5)
	long := output.SafeComponent(strings.Repeat("w/", 300))
	prefix := long + "/" + long + "/" + long
	res, err := f.newSink(t, f.config(), staticCreds()).Publish(context.Background(), dir, prefix)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(res.Objects) != len(m.Files)+1 {
		t.Errorf("%d objects", len(res.Objects))
	}
	cfg := f.config()
	cfg.Prefix = strings.Repeat("p", maxPrefix)
	_, err = f.newSink(t, cfg, staticCreds()).Publish(context.Background(), dir, prefix)
	assertKind(t, err, secrets.InvalidInput, "")
	if !strings.Contains(err.Error(), "more than S3's 1024") {
		t.Errorf("error %v", err)
	}
	if n := len(f.puts()); n != len(m.Files)+1 {
		t.Errorf("%d PUTs, want %d (none for the refused run)", n, len(m.Files)+1)
	}
}
