// Package s3 publishes finalized runs to S3 or an S3-compatible object store (MinIO and the like).
//
// A run is first staged on the agent by the local sink (package output): one
// <kind>.jsonl.gz file per entity kind and a manifest.json that lists each file with its size and
// SHA-256. Sink.Publish uploads that run directory:
//
//	<Config.Prefix>/<keyPrefix>/<kind>.jsonl.gz   every data file the manifest lists, then
//	<Config.Prefix>/<keyPrefix>/manifest.json     the manifest, last
//
// Each data file goes up in one PutObject carrying ChecksumAlgorithm SHA256 and the manifest's
// SHA-256, so the store itself refuses bytes that differ from the manifest (BadDigest). The
// manifest is uploaded only after every data file was accepted, so a reader that finds
// manifest.json finds the whole run. Publishing the same run again writes the same keys with the
// same bytes, so a retried activity is safe.
//
// Retries: each PutObject is tried at most MaxAttempts (3) times with the SDK's standard retryer
// (exponential backoff with jitter, no client-side retry quota). Uploads are idempotent PUTs of a
// seekable local file, so retrying one object is safe and cheap, whereas failing the whole
// activity would upload every file of the run again. What still fails after three attempts is
// returned as a retried OutputUnavailable error, and the activity's retry policy takes over.
//
// Credentials come from the agent, never from workflow input: either the static key the agent
// resolved from its secret store (Credentials), or the agent's default AWS credential chain
// (environment, shared files, IRSA web identity, ECS task role, EC2 instance role).
//
// Every failure is a *secrets.Error whose message names the bucket and key prefix and says what to
// fix; Detail is the S3 error code (or "HTTP <status>" for a code the sink does not know). No
// error ever holds a credential or a response body.
//   - InvalidInput (final): invalid Config or Credentials; NoSuchBucket, InvalidBucketName, a
//     bucket in another region (PermanentRedirect, AuthorizationHeaderMalformed), a request the
//     store will never accept (InvalidArgument, EntityTooLarge, NotImplemented, other 4xx); a run
//     directory that is not finalized or whose manifest is invalid.
//   - AccessDenied (final): AccessDenied, AllAccessDisabled, AccountProblem, other 403.
//   - AuthFailed (final): InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken, InvalidToken,
//     TokenRefreshRequired, RequestTimeTooSkewed, 401; no credentials in the default chain.
//   - OutputUnavailable (retried): SlowDown, 5xx, RequestTimeout, 429, network errors and
//     timeouts (after MaxAttempts), with RetryAfter when the store sent Retry-After; BadDigest and
//     other checksum mismatches; ctx ending (wrapping ctx.Err()); a staged file that cannot be
//     read or no longer has the manifest's size.
package s3

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/secure-agent/secure-agent/internal/awsx"
	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
)

// MaxAttempts is how many times the SDK tries one PutObject before Publish gives up with
// OutputUnavailable (SlowDown, 5xx, RequestTimeout, connection errors). Other failures are not
// retried by the SDK.
const MaxAttempts = 3

// DefaultRegion is the signing region used with an Endpoint when Config.Region is empty (the
// region MinIO and most S3-compatible stores expect).
const DefaultRegion = "us-east-1"

// HTTPClient sends HTTP requests; *http.Client implements it.
type HTTPClient = awsx.HTTPClient

// Config is the S3 output of a run, as given in workflow input. It holds no secret.
type Config struct {
	// Bucket is the bucket name, required; it must follow the S3 bucket naming rules.
	Bucket string `json:"bucket"`
	// Region is the bucket's region, such as eu-west-1. Required for AWS S3; with an Endpoint it
	// defaults to us-east-1 and may be any lower-case name the store expects (such as "auto").
	Region string `json:"region,omitempty"`
	// Endpoint overrides the S3 endpoint for S3-compatible stores: an https URL, or http on a
	// loopback host, without user information, path, query or fragment.
	Endpoint string `json:"endpoint,omitempty"`
	// PathStyle forces path-style addressing (https://host/bucket/key) instead of virtual-hosted
	// style (https://bucket.host/key). Most MinIO deployments need it.
	PathStyle bool `json:"pathStyle,omitempty"`
	// Prefix is an optional key prefix under which runs are written, such as "team-a/metadata":
	// no leading "/", no empty, "." or ".." segments, no control characters. A trailing "/" is
	// ignored.
	Prefix string `json:"prefix,omitempty"`
}

// Credentials are the sink's own AWS credentials, resolved by the agent from its secret store.
// All empty means the agent's default AWS credential chain. AccessKeyID and SecretAccessKey go
// together; SessionToken is only for temporary keys.
type Credentials struct {
	AccessKeyID     secrets.Value
	SecretAccessKey secrets.Value
	SessionToken    secrets.Value
}

// Options are agent-side settings of a Sink.
type Options struct {
	// HTTPClient replaces the SDK's HTTP client (tests). The SDK applies AWS_CA_BUNDLE only to
	// its own client, so New fails with a replaced client while AWS_CA_BUNDLE is set.
	HTTPClient HTTPClient
	// Dialer, when set, judges and makes every connection of the sink (see
	// netguard.GuardTransport): a redirect or a proxy cannot take the upload anywhere its Check
	// refuses. It needs the SDK's own HTTP client (no HTTPClient).
	Dialer *netguard.Dialer

	// backoff replaces the retryer's backoff between attempts (tests only).
	backoff retry.BackoffDelayer
}

// Sink uploads finalized runs to one bucket. It is safe for concurrent use.
type Sink struct {
	client putAPI
	bucket string
	prefix string // Config.Prefix without its trailing "/"
	static bool   // credentials came from Credentials, not the default chain
}

// putAPI is the part of the S3 client the sink uses.
type putAPI interface {
	PutObject(context.Context, *s3api.PutObjectInput, ...func(*s3api.Options)) (*s3api.PutObjectOutput, error)
}

var (
	awsRegionRE   = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]{2,10})?-[a-z]{2,10}-[0-9]{1,2}$`)
	otherRegionRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)
	bucketRE      = regexp.MustCompile(`^[a-z0-9.-]{3,63}$`)
	ipv4RE        = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)
)

// Reserved bucket name prefixes and suffixes (S3 general purpose bucket naming rules).
var (
	reservedBucketPrefixes = []string{"xn--", "sthree-", "amzn-s3-demo-"}
	reservedBucketSuffixes = []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}
)

// maxPrefix bounds Config.Prefix, leaving room in S3's 1024-byte keys for the run's own path.
const maxPrefix = 512

// Validate checks c without network access and returns every problem at once, each saying what
// to fix, or nil. It never echoes the endpoint, which could carry credentials.
func (c Config) Validate() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if msg := checkBucket(c.Bucket); msg != "" {
		add("%s", msg)
	}
	switch {
	case c.Region == "" && c.Endpoint == "":
		add("region is required: give the bucket's AWS region, such as us-east-1")
	case c.Region == "":
	case c.Endpoint == "" && !awsRegionRE.MatchString(c.Region):
		add("region %q is not an AWS region: it looks like us-east-1 or eu-central-2 (with a custom endpoint, any lower-case name the store expects)", c.Region)
	case !otherRegionRE.MatchString(c.Region):
		add("region %q must be lower-case letters, digits and hyphens, such as us-east-1", c.Region)
	}
	if msg := checkEndpoint(c.Endpoint); msg != "" {
		add("endpoint %s", msg)
	}
	if msg := checkPrefix(c.Prefix, maxPrefix); msg != "" {
		add("prefix %q %s", c.Prefix, msg)
	}
	return problems
}

// checkBucket returns what is wrong with a bucket name, or "".
func checkBucket(b string) string {
	const rules = "bucket names are 3 to 63 characters of lower-case letters, digits, dots and hyphens, and start and end with a letter or digit"
	switch {
	case b == "":
		return "bucket is required: give the name of the bucket to write to"
	case !bucketRE.MatchString(b):
		return fmt.Sprintf("bucket %q is not a valid S3 bucket name: %s", b, rules)
	case ipv4RE.MatchString(b):
		return fmt.Sprintf("bucket %q is not a valid S3 bucket name: it must not look like an IP address", b)
	}
	for _, label := range strings.Split(b, ".") {
		if label == "" || !isAlnum(label[0]) || !isAlnum(label[len(label)-1]) {
			return fmt.Sprintf("bucket %q is not a valid S3 bucket name: %s, and no dot may be next to another dot or a hyphen", b, rules)
		}
	}
	for _, p := range reservedBucketPrefixes {
		if strings.HasPrefix(b, p) {
			return fmt.Sprintf("bucket %q is not a valid S3 bucket name: the prefix %q is reserved", b, p)
		}
	}
	for _, s := range reservedBucketSuffixes {
		if strings.HasSuffix(b, s) {
			return fmt.Sprintf("bucket %q is not a valid S3 bucket name: the suffix %q is reserved", b, s)
		}
	}
	return ""
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkEndpoint returns what is wrong with an endpoint override, or "". It never echoes the URL.
func checkEndpoint(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "" || u.Hostname() == "":
		return "is not an absolute URL like https://minio.example.com:9000"
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "must not carry user information, a query or a fragment: give credentials in output.credentials instead"
	case u.Path != "" && u.Path != "/":
		return "must not have a path: give the store's base URL, like https://minio.example.com:9000"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	default:
		return "must use https (plain http is allowed only on a loopback host)"
	}
}

func isLoopback(host string) bool {
	return host == "localhost" || net.ParseIP(host).IsLoopback()
}

// checkPrefix returns what is wrong with a key prefix (Config.Prefix, or the run's key prefix
// given to Publish) of at most limit bytes, or "".
func checkPrefix(p string, limit int) string {
	if p == "" {
		return ""
	}
	switch {
	case len(p) > limit:
		return fmt.Sprintf("is longer than %d bytes", limit)
	case !utf8.ValidString(p):
		return "is not valid UTF-8"
	case strings.HasPrefix(p, "/"):
		return "must not start with \"/\": keys are relative to the bucket"
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "must not contain control characters"
	case strings.Contains(p, ".."):
		return "must not contain \"..\""
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		switch seg {
		case "":
			return "must not contain empty segments (\"//\")"
		case ".":
			return "must not contain \".\" segments"
		}
	}
	return ""
}

// check validates the credentials without echoing them. It returns the static provider, or nil
// for the default chain.
func (c Credentials) check() (aws.CredentialsProvider, []string) {
	var problems []string
	id, key, token := len(c.AccessKeyID) > 0, len(c.SecretAccessKey) > 0, len(c.SessionToken) > 0
	switch {
	case !id && !key && !token:
		return nil, nil
	case id != key:
		problems = append(problems, "output.credentials needs both accessKeyId and secretAccessKey, or neither (to use the agent's own AWS identity)")
	case token && !id:
		problems = append(problems, "output.credentials has a sessionToken without accessKeyId and secretAccessKey")
	}
	for _, f := range []struct {
		name string
		v    secrets.Value
	}{{"accessKeyId", c.AccessKeyID}, {"secretAccessKey", c.SecretAccessKey}, {"sessionToken", c.SessionToken}} {
		s := f.v.Reveal()
		if strings.TrimSpace(s) != s || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			problems = append(problems, fmt.Sprintf("output.credentials.%s has leading or trailing whitespace or control characters (often a newline at the end of the secret): remove them from the secret", f.name))
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID.Reveal(), c.SecretAccessKey.Reveal(), c.SessionToken.Reveal()), nil
}

// New validates cfg and creds and builds the S3 client. It makes no network call: missing
// credentials of the default chain show up at Publish as AuthFailed. Invalid cfg or creds give
// InvalidInput.
func New(ctx context.Context, cfg Config, creds Credentials, opts Options) (*Sink, error) {
	problems := cfg.Validate()
	static, credProblems := creds.check()
	problems = append(problems, credProblems...)
	if len(problems) > 0 {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Msg: "the S3 output is not valid: " + strings.Join(problems, "; ")}
	}

	httpClient := &awsx.Client{Max: maxResponseBytes}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(cmp.Or(cfg.Region, DefaultRegion)),
		config.WithLogger(logging.Nop{}),
	}
	if opts.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(opts.HTTPClient))
	}
	if static != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(static))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, &secrets.Error{Kind: secrets.AuthFailed, Cause: err,
			Msg: fmt.Sprintf("S3 bucket %q: the agent's AWS configuration could not be loaded: check AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE and AWS_CA_BUNDLE in the agent's environment", cfg.Bucket)}
	}
	httpClient.Next = cmp.Or[HTTPClient](awsCfg.HTTPClient, awshttp.NewBuildableClient())
	if opts.Dialer != nil {
		bc, ok := httpClient.Next.(*awshttp.BuildableClient)
		if !ok {
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Msg: "the S3 output's connections cannot be guarded with a replaced HTTP client"}
		}
		httpClient.Next = bc.WithTransportOptions(func(t *http.Transport) { netguard.GuardTransport(t, opts.Dialer) })
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = awsx.CredentialSource{CredentialsProvider: awsCfg.Credentials}
	}
	client := s3api.NewFromConfig(awsCfg, func(o *s3api.Options) {
		o.HTTPClient = httpClient
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.Retryer = newRetryer(opts.backoff)
		o.RetryMaxAttempts = 0 // keeps AWS_MAX_ATTEMPTS from replacing MaxAttempts
		o.Logger = logging.Nop{}
		o.ClientLogMode = 0
	})
	return &Sink{client: client, bucket: cfg.Bucket, prefix: strings.TrimSuffix(cfg.Prefix, "/"), static: static != nil}, nil
}

// newRetryer is the SDK's standard retryer with MaxAttempts attempts and no retry quota (a
// long-lived agent must not stop retrying because earlier runs spent a shared token bucket).
func newRetryer(backoff retry.BackoffDelayer) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.RateLimiter = ratelimit.None
		if backoff != nil {
			o.Backoff = backoff
		}
	})
}
