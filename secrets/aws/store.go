// Package aws reads secrets from AWS Secrets Manager (GetSecretValue, and BatchGetSecretValue for
// batches) in one region.
//
// The agent authenticates with its own AWS credentials, found by the AWS SDK's normal mechanisms
// and never taken from workflow input:
//   - "iam" (the default): the SDK's default credential chain — environment variables, the shared
//     config and credentials files, IRSA web identity (AWS_WEB_IDENTITY_TOKEN_FILE with
//     AWS_ROLE_ARN), ECS container credentials, or the EC2 instance role;
//   - "assume-role": STS AssumeRole of Config.RoleARN (with an optional external id) on top of the
//     default chain;
//   - "access-key": AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN from
//     the agent's environment (for example injected from a Kubernetes secret).
//
// With IRSA, the SDK reads the token file on every credential refresh, so a rotated token is used
// from the next refresh on; temporary credentials (web identity and assume-role alike) are cached
// and refreshed CredentialRefreshWindow before they expire. In the assume-role hop on top of IRSA,
// AssumeRoleWithWebIdentity (unsigned, with the file's token) comes first, then AssumeRole signed
// with its credentials, then Secrets Manager signed with the role's credentials.
//
// The SDK's own retries are off for Secrets Manager and STS: one attempt per Fetch, the caller's
// retry policy decides the rest. Every failure is a *secrets.Error whose Detail is the AWS error
// code; no message ever holds a secret value, a credential or a response body.
package aws

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/secure-agent/secure-agent/internal/awsx"
	"github.com/secure-agent/secure-agent/secrets"
)

// Name is the store's name in errors (secrets.Error.Store) and in workflow input.
const Name = "aws"

// Authentication methods for Config.AuthMethod.
const (
	AuthIAM        = "iam"         // the SDK's default credential chain (the default)
	AuthAssumeRole = "assume-role" // STS AssumeRole of RoleARN on top of the default chain
	AuthAccessKey  = "access-key"  // AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the agent's env
)

// DefaultSessionName is the STS role session name used when Config.SessionName is empty. It
// identifies the agent in CloudTrail.
const DefaultSessionName = "secure-agent"

// DefaultThrottleDelay is Error.RetryAfter for a throttled request whose response carried no
// Retry-After header.
const DefaultThrottleDelay = time.Second

// CredentialRefreshWindow is how long before they expire temporary credentials (IRSA web
// identity, assume-role) are replaced: a request is never signed with credentials about to expire,
// which AWS would refuse as ExpiredToken, a final AuthFailed.
const CredentialRefreshWindow = 5 * time.Minute

// MaxBatchSize is the number of secret ids BatchGetSecretValue accepts in one call.
const MaxBatchSize = 20

// MaxResponseBytes bounds the body read from Secrets Manager or STS. A secret holds at most
// 64 KiB; a batch of 20, base64- or JSON-escaped, stays well below this. A larger response comes
// from a broken or hostile endpoint and is refused without being read to its end.
const MaxResponseBytes = 8 << 20

// HTTPClient sends HTTP requests; *http.Client implements it.
type HTTPClient = awsx.HTTPClient

// Config selects a region and an authentication method. Region, AuthMethod, RoleARN and
// ExternalID come from workflow input and hold identifiers only; the other fields are agent-side
// settings. The agent's credentials never appear here. Config is comparable (when HTTPClient is
// nil or a pointer), so callers can key a cache of Stores by it.
type Config struct {
	Region     string // input, required: e.g. us-east-1
	AuthMethod string // input: "iam" (default when empty), "assume-role" or "access-key"
	RoleARN    string // input: role to assume; required for assume-role, refused otherwise
	ExternalID string // input, optional: external id for assume-role only

	// SessionName is the STS role session name (assume-role, and IRSA when AWS_ROLE_SESSION_NAME
	// is unset); DefaultSessionName when empty.
	SessionName string
	// Endpoint and STSEndpoint override the Secrets Manager and STS base URLs (VPC endpoints,
	// tests). Empty means the SDK's choice, which honours AWS_ENDPOINT_URL_SECRETS_MANAGER and
	// AWS_ENDPOINT_URL_STS. They must be https, or http on a loopback host.
	Endpoint    string
	STSEndpoint string
	// HTTPClient replaces the SDK's HTTP client (tests).
	HTTPClient HTTPClient
}

// Store reads secrets from AWS Secrets Manager in one region. It is safe for concurrent use.
type Store struct {
	client secretsAPI
	region string
	method string
}

var (
	_ secrets.Store      = (*Store)(nil)
	_ secrets.BatchStore = (*Store)(nil)
)

// secretsAPI is the part of the Secrets Manager client the store uses.
type secretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	BatchGetSecretValue(context.Context, *secretsmanager.BatchGetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
}

var (
	regionRE      = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]{2,10})?-[a-z]{2,10}-[0-9]{1,2}$`)
	roleARNRE     = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	externalIDRE  = regexp.MustCompile(`^[\w+=,.@:/-]+$`) // 2 to 1224 characters, checked apart
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	partitionRE   = regexp.MustCompile(`^aws(-[a-z]+){0,2}$`)
	accountRE     = regexp.MustCompile(`^[0-9]{12}$`)
	secretNameRE  = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
)

// Validate checks every field of c without network or environment access and reports all
// problems at once, as one *secrets.Error of Kind InvalidInput.
func (c Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch {
	case c.Region == "":
		add("region is required: give the AWS region that holds the secret, such as us-east-1")
	case !regionRE.MatchString(c.Region):
		add("region is not an AWS region: it looks like us-east-1, eu-central-2, us-gov-west-1 or cn-north-1")
	}
	switch cmp.Or(c.AuthMethod, AuthIAM) {
	case AuthIAM, AuthAccessKey:
		if c.RoleARN != "" {
			add("roleArn is only used with authMethod %q: remove it, or set authMethod to %q", AuthAssumeRole, AuthAssumeRole)
		}
		if c.ExternalID != "" {
			add("externalId is only used with authMethod %q: remove it, or set authMethod to %q", AuthAssumeRole, AuthAssumeRole)
		}
	case AuthAssumeRole:
		switch {
		case c.RoleARN == "":
			add("roleArn is required with authMethod %q: give the ARN of the role to assume, like arn:aws:iam::123456789012:role/secret-reader", AuthAssumeRole)
		case !roleARNRE.MatchString(c.RoleARN):
			add("roleArn is not an IAM role ARN: it looks like arn:aws:iam::123456789012:role/path/name (partition aws, aws-cn or aws-us-gov, a 12-digit account)")
		case regionRE.MatchString(c.Region) && partitionOf(c.RoleARN) != regionPartition(c.Region):
			add("roleArn is in partition %s but region %s is in partition %s: use a role and region of the same partition", partitionOf(c.RoleARN), c.Region, regionPartition(c.Region))
		}
		if c.ExternalID != "" && (len(c.ExternalID) < 2 || len(c.ExternalID) > 1224 || !externalIDRE.MatchString(c.ExternalID)) {
			add("externalId must be 2 to 1224 characters of letters, digits and +=,.@:/-_")
		}
	default:
		add("authMethod must be %q (the agent's default AWS credential chain, the default), %q or %q", AuthIAM, AuthAssumeRole, AuthAccessKey)
	}
	if c.SessionName != "" && !sessionNameRE.MatchString(c.SessionName) {
		add("the agent's AWS session name must be 2 to 64 characters of letters, digits and +=,.@-_")
	}
	if msg := checkEndpoint(c.Endpoint); msg != "" {
		add("the agent's Secrets Manager endpoint %s", msg)
	}
	if msg := checkEndpoint(c.STSEndpoint); msg != "" {
		add("the agent's STS endpoint %s", msg)
	}
	if len(problems) == 0 {
		return nil
	}
	return &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Msg: strings.Join(problems, "; ")}
}

// checkEndpoint returns what is wrong with an endpoint override, or "". It never echoes the URL,
// which could carry credentials.
func checkEndpoint(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "is not an absolute URL like https://secretsmanager.us-east-1.amazonaws.com"
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "must not carry user information, a query or a fragment"
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

// partitionOf returns the partition of a validated ARN.
func partitionOf(arn string) string {
	partition, _, _ := strings.Cut(strings.TrimPrefix(arn, "arn:"), ":")
	return partition
}

// regionPartition returns the partition of a validated region name.
func regionPartition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "eusc-"):
		return "aws-eusc"
	default:
		return "aws"
	}
}

// New validates cfg and builds the Secrets Manager client, once. The caller keeps the Store for
// as long as cfg is in use. New makes no network call; missing credentials of the default chain
// show up at the first Fetch as AuthFailed. With AuthMethod "access-key", New fails with
// AuthFailed when AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not set.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	method := cmp.Or(cfg.AuthMethod, AuthIAM)
	// One bounded HTTP client for every AWS call; it wraps the SDK's (which applies
	// AWS_CA_BUNDLE) once the configuration is loaded.
	httpClient := &awsx.Client{Max: MaxResponseBytes}
	awsCfg, err := loadConfig(ctx, cfg, method, httpClient)
	if err != nil {
		return nil, err
	}
	httpClient.Next = cmp.Or[HTTPClient](awsCfg.HTTPClient, awshttp.NewBuildableClient())

	if method == AuthAssumeRole {
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			noRetries(&o.Retryer, &o.RetryMaxAttempts)
			o.HTTPClient = httpClient
			if cfg.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.STSEndpoint)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, cfg.RoleARN,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = cmp.Or(cfg.SessionName, DefaultSessionName)
				if cfg.ExternalID != "" {
					o.ExternalID = aws.String(cfg.ExternalID)
				}
			}), refreshEarly)
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = awsx.CredentialSource{CredentialsProvider: awsCfg.Credentials}
	}
	client := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
		noRetries(&o.Retryer, &o.RetryMaxAttempts)
		o.HTTPClient = httpClient
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Store{client: client, region: cfg.Region, method: method}, nil
}

// loadConfig loads the agent's AWS configuration: region, no retries, no logging, and the
// credentials of method (the default chain, or the static access key from the environment).
//
// When the default chain finds IRSA (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), its
// AssumeRoleWithWebIdentity call goes through an STS client of the store's own: the bounded HTTP
// client, no retries, and cfg.STSEndpoint, else AWS_ENDPOINT_URL_STS, else the region's STS
// endpoint. Temporary credentials of the chain are refreshed CredentialRefreshWindow early. The
// defaults mode stays "legacy" whatever AWS_DEFAULTS_MODE says, because "auto" asks the EC2
// instance metadata service for the region.
func loadConfig(ctx context.Context, cfg Config, method string, httpClient HTTPClient) (aws.Config, error) {
	webIdentity := &webIdentitySTS{}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithLogger(logging.Nop{}), // the resolver audits; the backend logs nothing
		config.WithDefaultsMode(aws.DefaultsModeLegacy),
		config.WithCredentialsCacheOptions(refreshEarly),
		config.WithWebIdentityRoleCredentialOptions(func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = cmp.Or(o.RoleSessionName, cfg.SessionName, DefaultSessionName)
			o.Client = webIdentity
			o.TokenRetriever = tokenFile{next: o.TokenRetriever}
		}),
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	}
	if method == AuthAccessKey {
		provider, err := accessKeyFromEnv()
		if err != nil {
			return aws.Config{}, err
		}
		opts = append(opts, config.WithCredentialsProvider(provider))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Cause: err,
			Msg: "the agent's AWS configuration could not be loaded: check AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE and AWS_CA_BUNDLE in the agent's environment, and that AWS_ROLE_ARN is set wherever AWS_WEB_IDENTITY_TOKEN_FILE is"}
	}
	webIdentity.client = sts.NewFromConfig(awsCfg, func(o *sts.Options) {
		noRetries(&o.Retryer, &o.RetryMaxAttempts)
		o.HTTPClient = httpClient
		if cfg.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.STSEndpoint)
		}
	})
	return awsCfg, nil
}

// refreshEarly makes a credentials cache replace temporary credentials CredentialRefreshWindow
// before they expire.
func refreshEarly(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = CredentialRefreshWindow }

// webIdentitySTS is the STS client of the default chain's web identity (IRSA) provider. The SDK
// builds that provider while it loads the configuration, before an STS client can be built from
// that configuration; loadConfig sets client right after.
type webIdentitySTS struct{ client *sts.Client }

func (w *webIdentitySTS) AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return w.client.AssumeRoleWithWebIdentity(ctx, in, optFns...)
}

// tokenFile reads the agent's web identity token with the SDK's reader, which reads the file named
// by AWS_WEB_IDENTITY_TOKEN_FILE anew on every call, that is on every credential refresh. It
// refuses an empty file, and marks its failures as tokenFileError.
type tokenFile struct {
	next stscreds.IdentityTokenRetriever
}

func (f tokenFile) GetIdentityToken() ([]byte, error) {
	token, err := f.next.GetIdentityToken()
	if err == nil && len(bytes.TrimSpace(token)) == 0 {
		err = errors.New("the web identity token file is empty")
	}
	if err != nil {
		clear(token)
		return nil, &tokenFileError{err: err}
	}
	return token, nil
}

// tokenFileError is a failure to read the web identity token file. It never holds the token.
type tokenFileError struct{ err error }

func (e *tokenFileError) Error() string { return "read the web identity token file: " + e.err.Error() }
func (e *tokenFileError) Unwrap() error { return e.err }

// noRetries makes a client try each operation once.
func noRetries(retryer *aws.Retryer, maxAttempts *int) {
	*retryer = aws.NopRetryer{}
	*maxAttempts = 0 // keeps the SDK from wrapping the retryer with AWS_MAX_ATTEMPTS
}

// accessKeyFromEnv reads the agent's static access key. Its error names the variables, never
// their values.
func accessKeyFromEnv() (aws.CredentialsProvider, error) {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return nil, &secrets.Error{Kind: secrets.AuthFailed, Store: Name,
			Msg: "authMethod access-key needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys) in the agent's environment, for example from a Kubernetes secret"}
	}
	return credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN")), nil
}

// SecretID is a parsed secretPath: a secret name, or a secret ARN split into its parts.
type SecretID struct {
	// Name is the secret's name, or the resource part of an ARN (which may end in the 6-character
	// suffix Secrets Manager appends).
	Name string
	// ARN is the whole path when it is an ARN, else empty. Partition, Region and Account are set
	// for ARNs only.
	ARN       string
	Partition string
	Region    string
	Account   string
}

// ParsePath parses a secretPath: a full secret ARN
// arn:<partition>:secretsmanager:<region>:<account>:secret:<name>, or a secret name of 1 to 512
// characters of letters, digits and /_+=.@-. It needs no network, never panics, and returns a
// *secrets.Error of Kind InvalidInput that says what a valid path looks like.
func ParsePath(path string) (SecretID, error) {
	invalid := func(msg string) (SecretID, error) {
		return SecretID{}, &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Ref: path, Msg: msg}
	}
	if path == "" {
		return invalid("secretPath is required: give the secret's name or its ARN")
	}
	if !strings.HasPrefix(path, "arn:") {
		if !secretNameRE.MatchString(path) {
			return invalid("secretPath is neither a secret name (1 to 512 characters of letters, digits and /_+=.@-) nor a secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)")
		}
		return SecretID{Name: path}, nil
	}
	parts := strings.SplitN(path, ":", 7)
	if len(parts) != 7 || parts[2] != "secretsmanager" || parts[5] != "secret" {
		return invalid("secretPath is not a Secrets Manager secret ARN: it looks like arn:aws:secretsmanager:us-east-1:123456789012:secret:name")
	}
	id := SecretID{ARN: path, Partition: parts[1], Region: parts[3], Account: parts[4], Name: parts[6]}
	var problems []string
	if !partitionRE.MatchString(id.Partition) {
		problems = append(problems, "its partition is not an AWS partition such as aws, aws-cn or aws-us-gov")
	}
	if !regionRE.MatchString(id.Region) {
		problems = append(problems, "its region is not an AWS region such as us-east-1")
	}
	if !accountRE.MatchString(id.Account) {
		problems = append(problems, "its account is not 12 digits")
	}
	if !secretNameRE.MatchString(id.Name) {
		problems = append(problems, "its secret name is not 1 to 512 characters of letters, digits and /_+=.@-")
	}
	if len(problems) > 0 {
		return invalid("secretPath is not a valid secret ARN: " + strings.Join(problems, "; "))
	}
	return id, nil
}

// ValidateRef checks a whole reference without network access: the path (see ParsePath), a
// VersionId of 32 to 64 printable characters, a VersionStage of 1 to 256 printable characters,
// and, when region is not empty, that an ARN names that region. Errors are *secrets.Error of
// Kind InvalidInput.
func ValidateRef(ref secrets.Ref, region string) error {
	id, err := ParsePath(ref.Path)
	if err != nil {
		var e *secrets.Error
		if errors.As(err, &e) {
			e.Ref = ref.String()
		}
		return err
	}
	var problems []string
	if ref.Version != "" && !printable(ref.Version, 32, 64) {
		problems = append(problems, "versionId must be 32 to 64 printable characters without spaces (a Secrets Manager VersionId), or empty for the current version")
	}
	if ref.Stage != "" && !printable(ref.Stage, 1, 256) {
		problems = append(problems, "versionStage must be 1 to 256 printable characters without spaces, such as AWSCURRENT or AWSPREVIOUS")
	}
	if id.ARN != "" && region != "" && id.Region != region {
		problems = append(problems, fmt.Sprintf("the secret ARN is in region %s but the store is configured for region %s: set region to %s, or use the ARN of a replica in %s", id.Region, region, id.Region, region))
	}
	if len(problems) > 0 {
		return &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Ref: ref.String(), Msg: strings.Join(problems, "; ")}
	}
	return nil
}

// printable reports whether s has min to max characters, all printable ASCII other than space.
func printable(s string, min, max int) bool {
	return len(s) >= min && len(s) <= max && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e })
}

// Fetch reads one secret with GetSecretValue: the current version, or the one named by
// ref.Version (VersionId) and/or ref.Stage (VersionStage). The value is the SecretString or the
// SecretBinary bytes exactly as stored; Version is the VersionId. Errors are *secrets.Error.
func (s *Store) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	if err := ValidateRef(ref, s.region); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, ref, err)
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(ref.Path)}
	if ref.Version != "" {
		in.VersionId = aws.String(ref.Version)
	}
	if ref.Stage != "" {
		in.VersionStage = aws.String(ref.Stage)
	}
	out, err := s.client.GetSecretValue(ctx, in)
	if err != nil {
		return nil, s.classify(ctx, ref, err, false)
	}
	sec := newSecret(out.SecretString, out.SecretBinary, out.VersionId)
	if sec == nil {
		return nil, malformed(ref, "the response held neither SecretString nor SecretBinary")
	}
	return sec, nil
}

// newSecret builds a Secret from a response, taking ownership of binary, or returns nil when the
// response holds no value.
func newSecret(str *string, binary []byte, version *string) *secrets.Secret {
	var v secrets.Value
	switch {
	case binary != nil:
		v = secrets.Value(binary)
	case str != nil:
		v = secrets.Value(*str)
	default:
		return nil
	}
	return &secrets.Secret{Value: v, Version: aws.ToString(version)}
}

func malformed(ref secrets.Ref, what string) *secrets.Error {
	return &secrets.Error{Kind: secrets.StoreUnavailable, Store: Name, Ref: ref.String(), Detail: "malformed response",
		Msg: "Secrets Manager's response could not be used (" + what + "); if it persists, check the agent's Secrets Manager endpoint"}
}

// FetchBatch reads several secrets. Refs without Version and Stage go through BatchGetSecretValue
// in groups of MaxBatchSize ids (following NextToken); refs with a Version or Stage, and every
// ref when the agent may not call secretsmanager:BatchGetSecretValue, go through GetSecretValue.
// A per-secret failure is that Result's Err; a ref the store returned nothing for is
// SecretNotFound. The call as a whole fails (nil results, every fetched value zeroed) only when a
// BatchGetSecretValue request fails for a reason other than access denied, or ctx ends.
func (s *Store) FetchBatch(ctx context.Context, refs []secrets.Ref) ([]secrets.Result, error) {
	results := make([]secrets.Result, len(refs))
	var single []int
	byPath := map[string][]int{}
	var paths []string
	for i, ref := range refs {
		results[i].Ref = ref
		if err := ValidateRef(ref, s.region); err != nil {
			results[i].Err = err
			continue
		}
		if ref.Version != "" || ref.Stage != "" {
			single = append(single, i)
			continue
		}
		if _, ok := byPath[ref.Path]; !ok {
			paths = append(paths, ref.Path)
		}
		byPath[ref.Path] = append(byPath[ref.Path], i)
	}

	fail := func(err error) ([]secrets.Result, error) {
		for i := range results {
			results[i].Secret.Zero()
		}
		return nil, err
	}
	for start := 0; start < len(paths); start += MaxBatchSize {
		chunk := paths[start:min(start+MaxBatchSize, len(paths))]
		got, err := s.fetchChunk(ctx, chunk)
		if err != nil {
			return fail(err)
		}
		for _, path := range chunk {
			got[path].assign(results, byPath[path])
		}
	}
	for _, i := range single {
		sec, err := s.Fetch(ctx, refs[i])
		if ctxErr := ctx.Err(); ctxErr != nil {
			sec.Zero()
			return fail(secrets.ContextError(Name, refs[i], ctxErr))
		}
		results[i].Secret, results[i].Err = sec, err
	}
	return results, nil
}

// outcome is what the store said about one secret id of a batch.
type outcome struct {
	secret *secrets.Secret
	errFor func(secrets.Ref) error
}

// assign gives the outcome to the results at idx: the first gets the secret itself, the others
// copies, so each caller can zero its own.
func (o outcome) assign(results []secrets.Result, idx []int) {
	for n, i := range idx {
		switch {
		case o.errFor != nil:
			results[i].Err = o.errFor(results[i].Ref)
		case n == 0:
			results[i].Secret = o.secret
		default:
			v := make(secrets.Value, len(o.secret.Value))
			copy(v, o.secret.Value)
			results[i].Secret = &secrets.Secret{Value: v, Version: o.secret.Version}
		}
	}
}

// fetchChunk calls BatchGetSecretValue for at most MaxBatchSize ids, following NextToken, and
// returns an outcome for every id. When the call itself is denied it falls back to
// GetSecretValue per id.
func (s *Store) fetchChunk(ctx context.Context, ids []string) (map[string]outcome, error) {
	got := make(map[string]outcome, len(ids))
	zero := func() {
		for _, o := range got {
			o.secret.Zero()
		}
	}
	in := &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}
	seen := map[string]bool{}
	for page := 0; ; page++ {
		out, err := s.client.BatchGetSecretValue(ctx, in)
		if err != nil {
			classified := s.classify(ctx, secrets.Ref{Path: ids[0]}, err, true)
			if classified.Kind == secrets.AccessDenied && page == 0 {
				return s.fetchEach(ctx, ids)
			}
			zero()
			return nil, classified
		}
		s.collect(out, ids, got)
		token := aws.ToString(out.NextToken)
		if token == "" || len(got) == len(ids) {
			break
		}
		if seen[token] || page >= len(ids) {
			for _, id := range ids {
				if _, ok := got[id]; !ok {
					got[id] = outcome{errFor: func(ref secrets.Ref) error {
						return malformed(ref, "BatchGetSecretValue kept returning a NextToken without this secret")
					}}
				}
			}
			break
		}
		seen[token] = true
		next := *in
		next.NextToken = aws.String(token)
		in = &next
	}
	for _, id := range ids {
		if _, ok := got[id]; !ok {
			got[id] = outcome{errFor: func(ref secrets.Ref) error {
				return &secrets.Error{Kind: secrets.SecretNotFound, Store: Name, Ref: ref.String(),
					Msg: "BatchGetSecretValue returned neither a value nor an error for this secret: check the secret's name or ARN and the region"}
			}}
		}
	}
	return got, nil
}

// collect matches the values and errors of one BatchGetSecretValue page to ids.
func (s *Store) collect(out *secretsmanager.BatchGetSecretValueOutput, ids []string, got map[string]outcome) {
	for _, v := range out.SecretValues {
		arn, name := aws.ToString(v.ARN), aws.ToString(v.Name)
		sec := newSecret(v.SecretString, v.SecretBinary, v.VersionId)
		used := false
		for _, id := range ids {
			if _, done := got[id]; done || !matchesSecret(id, arn, name) {
				continue
			}
			switch {
			case sec == nil:
				got[id] = outcome{errFor: func(ref secrets.Ref) error {
					return malformed(ref, "the batch entry held neither SecretString nor SecretBinary")
				}}
			case !used:
				got[id], used = outcome{secret: sec}, true
			default:
				got[id] = outcome{secret: &secrets.Secret{Value: append(secrets.Value(nil), sec.Value...), Version: sec.Version}}
			}
		}
		if !used {
			sec.Zero()
		}
	}
	for _, e := range out.Errors {
		secretID := aws.ToString(e.SecretId)
		for _, id := range ids {
			if _, done := got[id]; done || !(id == secretID || matchesSecret(id, secretID, secretID)) {
				continue
			}
			got[id] = outcome{errFor: func(ref secrets.Ref) error { return s.batchItemError(ref, e) }}
		}
	}
}

// matchesSecret reports whether a requested id (a name, a full ARN or an ARN without the random
// suffix) names the secret with the given ARN and name.
func matchesSecret(id, arn, name string) bool {
	if !strings.HasPrefix(id, "arn:") {
		return id == name
	}
	return id == arn || (len(arn) == len(id)+7 && strings.HasPrefix(arn, id+"-"))
}

// fetchEach reads ids one by one with GetSecretValue.
func (s *Store) fetchEach(ctx context.Context, ids []string) (map[string]outcome, error) {
	got := make(map[string]outcome, len(ids))
	for _, id := range ids {
		sec, err := s.Fetch(ctx, secrets.Ref{Path: id})
		if ctxErr := ctx.Err(); ctxErr != nil {
			sec.Zero()
			for _, o := range got {
				o.secret.Zero()
			}
			return nil, secrets.ContextError(Name, secrets.Ref{Path: id}, ctxErr)
		}
		var e *secrets.Error
		if errors.As(err, &e) {
			got[id] = outcome{errFor: func(ref secrets.Ref) error { c := *e; c.Ref = ref.String(); return &c }}
			continue
		}
		got[id] = outcome{secret: sec}
	}
	return got, nil
}

// ValidRegion reports whether s is written as an AWS region (what Config.Validate accepts).
func ValidRegion(s string) bool { return regionRE.MatchString(s) }

// ValidRoleARN reports whether arn is an IAM role ARN in region's partition (as Config.Validate
// requires of roleArn).
func ValidRoleARN(arn, region string) bool {
	return roleARNRE.MatchString(arn) && regionRE.MatchString(region) && partitionOf(arn) == regionPartition(region)
}

// ValidExternalID reports whether s is an external id STS accepts (as Config.Validate requires).
func ValidExternalID(s string) bool {
	return len(s) >= 2 && len(s) <= 1224 && externalIDRE.MatchString(s)
}
