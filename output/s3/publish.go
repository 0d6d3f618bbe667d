package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets"
)

// MaxObjectBytes is the largest file one PutObject may carry (5 GiB). Publish refuses a run
// with a larger data file before uploading anything.
const MaxObjectBytes = 5 << 30

// maxKey is S3's limit on the length of an object key, in bytes.
const maxKey = 1024

// Content types of the uploaded objects. Data files are not given a Content-Encoding, so clients
// download the gzip bytes the manifest describes instead of decompressing them on the fly.
const (
	dataContentType     = "application/gzip"
	manifestContentType = "application/json"
)

// Result says what Publish uploaded. It holds no secret.
type Result struct {
	Bucket string `json:"bucket"`
	// Prefix is the key prefix of the run: Config.Prefix, then the keyPrefix given to Publish.
	Prefix string `json:"prefix"`
	// Objects are the uploaded objects in upload order: the data files as the manifest lists
	// them, then manifest.json.
	Objects []Object `json:"objects"`
	// Bytes is the total size of Objects.
	Bytes int64 `json:"bytes"`
	// ManifestURL is s3://<bucket>/<key of manifest.json>.
	ManifestURL string `json:"manifestUrl"`
}

// Object is one uploaded object.
type Object struct {
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // hex, as in the manifest
	// VersionID is the object's version when the bucket is versioned.
	VersionID string `json:"versionId,omitempty"`
}

// upload is one object to put.
type upload struct {
	name   string // file name in the run directory
	key    string
	bytes  int64
	sha256 []byte
	data   []byte // the manifest's bytes; nil for data files, which are read from disk
	ctype  string
}

// Publish uploads the finalized run in runDir under <Config.Prefix>/<keyPrefix>/: every data
// file its manifest lists (<kind>.jsonl.gz), each with the manifest's SHA-256 for the store to
// verify, then manifest.json, last. keyPrefix is the run's own path, such as
// "<connector>/<workflowID>/<runID>" with each part escaped by output.SafeComponent; it must be
// non-empty and follow the rules of Config.Prefix.
//
// Publishing a run again replaces the same keys with the same bytes. A failure leaves the
// manifest unwritten (or as an earlier successful Publish wrote it), so it is safe to retry.
// Errors are *secrets.Error; see the package documentation for their kinds.
func (s *Sink) Publish(ctx context.Context, runDir, keyPrefix string) (*Result, error) {
	if msg := checkPrefix(keyPrefix, maxKey); keyPrefix == "" || msg != "" || strings.HasSuffix(keyPrefix, "/") {
		if msg == "" {
			msg = "must be a non-empty relative key path without a trailing \"/\""
		}
		return nil, &secrets.Error{Kind: secrets.InvalidInput,
			Msg: fmt.Sprintf("S3 bucket %q: the run's key prefix %q %s", s.bucket, keyPrefix, msg)}
	}
	base := keyPrefix
	if s.prefix != "" {
		base = s.prefix + "/" + keyPrefix
	}
	uploads, err := s.plan(runDir, base)
	if err != nil {
		return nil, err
	}
	res := &Result{Bucket: s.bucket, Prefix: base, Objects: make([]Object, 0, len(uploads))}
	for _, u := range uploads {
		obj, err := s.put(ctx, runDir, base, u)
		if err != nil {
			return nil, err
		}
		res.Objects = append(res.Objects, obj)
		res.Bytes += obj.Bytes
	}
	res.ManifestURL = "s3://" + s.bucket + "/" + uploads[len(uploads)-1].key
	return res, nil
}

// plan reads the manifest and lists the uploads: the data files (and an incremental run's
// removed.jsonl.gz), then the manifest. It checks
// what can be checked locally, so a run that cannot be published fails before any upload.
func (s *Sink) plan(runDir, base string) ([]upload, error) {
	fail := func(kind secrets.Kind, cause error, format string, args ...any) ([]upload, error) {
		return nil, &secrets.Error{Kind: kind, Cause: cause,
			Msg: fmt.Sprintf("S3 bucket %q, key prefix %q: ", s.bucket, base) + fmt.Sprintf(format, args...)}
	}
	raw, err := os.ReadFile(output.ManifestPath(runDir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(secrets.InvalidInput, err, "the run directory has no %s: the run must be finalized before it is published", output.ManifestName)
	case err != nil:
		return fail(secrets.OutputUnavailable, err, "the run's %s could not be read from the agent's staging directory", output.ManifestName)
	}
	var m output.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail(secrets.InvalidInput, err, "the run's %s is not valid JSON", output.ManifestName)
	}
	if m.FormatVersion != output.FormatVersion {
		return fail(secrets.InvalidInput, nil, "the run's %s has format version %d; this agent publishes version %d", output.ManifestName, m.FormatVersion, output.FormatVersion)
	}

	uploads := make([]upload, 0, len(m.Files)+2)
	seen := map[string]bool{}
	files := m.Files
	if m.Changes != nil {
		files = append(slices.Clone(files), m.Changes.RemovedFile) // an incremental run's removed objects
	}
	for _, f := range files {
		if !dataFileName(f.Name) || seen[f.Name] {
			return fail(secrets.InvalidInput, nil, "the run's %s lists an invalid or repeated file name %q", output.ManifestName, f.Name)
		}
		seen[f.Name] = true
		sum, err := hex.DecodeString(f.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return fail(secrets.InvalidInput, nil, "the run's %s gives %s an invalid sha256", output.ManifestName, f.Name)
		}
		if f.Bytes > MaxObjectBytes {
			return fail(secrets.InvalidInput, nil, "%s has %d bytes, more than the %d bytes one S3 upload may carry: narrow the extraction with filters", f.Name, f.Bytes, int64(MaxObjectBytes))
		}
		st, err := os.Stat(filepath.Join(runDir, f.Name))
		switch {
		case err != nil:
			return fail(secrets.OutputUnavailable, err, "%s, listed in the run's %s, could not be read from the agent's staging directory", f.Name, output.ManifestName)
		case !st.Mode().IsRegular() || st.Size() != f.Bytes:
			return fail(secrets.OutputUnavailable, nil, "%s in the agent's staging directory has %d bytes, but the run's %s says %d: the staged run changed after it was finalized", f.Name, st.Size(), output.ManifestName, f.Bytes)
		}
		uploads = append(uploads, upload{name: f.Name, key: base + "/" + f.Name, bytes: f.Bytes, sha256: sum, ctype: dataContentType})
	}
	sum := sha256.Sum256(raw)
	uploads = append(uploads, upload{name: output.ManifestName, key: base + "/" + output.ManifestName, bytes: int64(len(raw)),
		sha256: sum[:], data: raw, ctype: manifestContentType})
	for _, u := range uploads {
		if len(u.key) > maxKey {
			return fail(secrets.InvalidInput, nil, "the key of %s would be %d bytes, more than S3's %d: shorten the prefix", u.name, len(u.key), maxKey)
		}
	}
	return uploads, nil
}

// dataFileName reports whether name is a plain "<kind>.jsonl.gz" file name.
func dataFileName(name string) bool {
	kind, ok := strings.CutSuffix(name, output.FileSuffix)
	if !ok || kind == "" || len(kind) > 100 {
		return false
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// put uploads one object with its SHA-256 for the store to verify.
func (s *Sink) put(ctx context.Context, runDir, base string, u upload) (Object, error) {
	if err := ctx.Err(); err != nil {
		return Object{}, s.contextError(base, u, err)
	}
	var body io.ReadSeeker
	if u.data != nil {
		body = bytes.NewReader(u.data)
	} else {
		f, err := os.Open(filepath.Join(runDir, u.name))
		if err != nil {
			return Object{}, &secrets.Error{Kind: secrets.OutputUnavailable, Cause: err,
				Msg: fmt.Sprintf("S3 bucket %q, key prefix %q: %s could not be read from the agent's staging directory", s.bucket, base, u.name)}
		}
		defer func() { _ = f.Close() }()
		// Exactly the bytes the manifest describes; a section reader is seekable, so the SDK can
		// rewind it for a retry.
		body = io.NewSectionReader(f, 0, u.bytes)
	}
	out, err := s.client.PutObject(ctx, &s3api.PutObjectInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(u.key),
		Body:              body,
		ContentLength:     aws.Int64(u.bytes),
		ContentType:       aws.String(u.ctype),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(u.sha256)),
	})
	if err != nil {
		return Object{}, s.classify(ctx, base, u, err)
	}
	return Object{Key: u.key, Bytes: u.bytes, SHA256: hex.EncodeToString(u.sha256), VersionID: aws.ToString(out.VersionId)}, nil
}
