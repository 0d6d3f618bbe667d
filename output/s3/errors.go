package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/secure-agent/secure-agent/internal/awsx"
	"github.com/secure-agent/secure-agent/secrets"
)

// codeKinds maps the S3 error codes the sink knows to a Kind. Only these codes are shown in
// Error.Detail; any other code could be whatever a broken or hostile endpoint sent and is
// replaced by the HTTP status.
var codeKinds = map[string]secrets.Kind{
	// The bucket, its name or its region.
	"NoSuchBucket":                       secrets.InvalidInput,
	"InvalidBucketName":                  secrets.InvalidInput,
	"PermanentRedirect":                  secrets.InvalidInput,
	"AuthorizationHeaderMalformed":       secrets.InvalidInput,
	"IllegalLocationConstraintException": secrets.InvalidInput,
	// Requests S3 will never accept as sent.
	"EntityTooLarge":       secrets.InvalidInput,
	"KeyTooLongError":      secrets.InvalidInput,
	"InvalidArgument":      secrets.InvalidInput,
	"InvalidRequest":       secrets.InvalidInput,
	"MissingContentLength": secrets.InvalidInput,
	"NotImplemented":       secrets.InvalidInput,
	// The identity may not write.
	"AccessDenied":      secrets.AccessDenied,
	"AllAccessDisabled": secrets.AccessDenied,
	"AccountProblem":    secrets.AccessDenied,
	// The credentials themselves.
	"InvalidAccessKeyId":    secrets.AuthFailed,
	"SignatureDoesNotMatch": secrets.AuthFailed,
	"ExpiredToken":          secrets.AuthFailed,
	"InvalidToken":          secrets.AuthFailed,
	"TokenRefreshRequired":  secrets.AuthFailed,
	"InvalidSecurity":       secrets.AuthFailed,
	"RequestTimeTooSkewed":  secrets.AuthFailed,
	// Transient.
	"SlowDown":           secrets.OutputUnavailable,
	"ServiceUnavailable": secrets.OutputUnavailable,
	"InternalError":      secrets.OutputUnavailable,
	"RequestTimeout":     secrets.OutputUnavailable,
	"OperationAborted":   secrets.OutputUnavailable,
	"TemporaryRedirect":  secrets.OutputUnavailable,
	// The bytes that arrived are not the bytes the manifest describes.
	"BadDigest":                   secrets.OutputUnavailable,
	"InvalidDigest":               secrets.OutputUnavailable,
	"XAmzContentChecksumMismatch": secrets.OutputUnavailable,
	"XAmzContentSHA256Mismatch":   secrets.OutputUnavailable,
	"IncompleteBody":              secrets.OutputUnavailable,
}

// checksumCodes are the codes of a store that refused bytes that do not match their checksum.
var checksumCodes = map[string]bool{
	"BadDigest": true, "InvalidDigest": true, "XAmzContentChecksumMismatch": true,
	"XAmzContentSHA256Mismatch": true, "IncompleteBody": true,
}

// where names the bucket and key prefix (never the endpoint or a credential) for messages.
func (s *Sink) where(base string) string {
	return fmt.Sprintf("S3 bucket %q, key prefix %q", s.bucket, base)
}

// contextError is the error of an upload stopped by ctx: OutputUnavailable wrapping ctxErr.
func (s *Sink) contextError(base string, u upload, ctxErr error) *secrets.Error {
	msg := "the upload was cancelled"
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		msg = "the upload did not finish before the deadline: check that the store is reachable from the agent and fast enough, or raise the activity's timeout"
	}
	return &secrets.Error{Kind: secrets.OutputUnavailable, Cause: ctxErr,
		Msg: fmt.Sprintf("%s: uploading %s: %s", s.where(base), u.name, msg)}
}

// classify turns an error of PutObject into a *secrets.Error.
func (s *Sink) classify(ctx context.Context, base string, u upload, err error) *secrets.Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return s.contextError(base, u, ctxErr)
	}
	e := &secrets.Error{Cause: err}
	var what string
	e.Kind, e.Detail, what = s.kindOf(err)
	if e.Kind == secrets.OutputUnavailable {
		if _, header := responseOf(err); header != nil {
			e.RetryAfter = secrets.ParseRetryAfter(header.Get("Retry-After"), time.Now())
		}
	}
	e.Msg = fmt.Sprintf("%s: uploading %s: %s", s.where(base), u.name, what)
	return e
}

// kindOf classifies err and says what to fix.
func (s *Sink) kindOf(err error) (kind secrets.Kind, detail, what string) {
	var credErr *awsx.CredentialError
	if errors.As(err, &credErr) {
		return s.credentialFailure(credErr)
	}
	if errors.Is(err, awsx.ErrResponseTooLarge) {
		return secrets.OutputUnavailable, "response too large",
			fmt.Sprintf("the store sent a response larger than %d bytes, which S3 never does: check output.endpoint", maxResponseBytes)
	}
	status, _ := responseOf(err)
	code := ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	kind, known := codeKinds[code]
	if !known {
		code = ""
	}
	switch {
	case known:
		detail = code
	case status != 0:
		kind, detail = kindForStatus(status), "HTTP "+strconv.Itoa(status)
	case errors.Is(err, context.DeadlineExceeded) || isNetwork(err):
		return secrets.OutputUnavailable, "", "could not reach the store" + attempts(err) + ": check the agent's network, DNS and proxy, and output.endpoint and output.region; the upload will be retried"
	default:
		return secrets.OutputUnavailable, "", "the upload failed before the store answered" + attempts(err) + "; if it persists, check the agent's AWS settings (AWS_CA_BUNDLE, AWS_ENDPOINT_URL_S3) and output.endpoint"
	}
	return kind, detail, s.explain(kind, code, status, err)
}

// explain says what to fix for an error the store answered.
func (s *Sink) explain(kind secrets.Kind, code string, status int, err error) string {
	switch {
	case code == "NoSuchBucket" || (code == "" && status == http.StatusNotFound):
		return "the bucket does not exist: create it, or correct output.bucket (and output.region or output.endpoint)"
	case code == "InvalidBucketName":
		return "the store refused the bucket name: correct output.bucket"
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException" ||
		(code == "" && status >= 300 && status < 400):
		return "the bucket is in another region than output.region: set output.region to the bucket's region"
	case code == "NotImplemented":
		return "the store does not implement a feature the upload needs (PutObject with an x-amz-checksum-sha256 checksum): use a store that verifies SHA-256 checksums"
	case code == "AllAccessDisabled":
		return "all access to the bucket is disabled by its owner"
	case code == "RequestTimeTooSkewed":
		return "the agent's clock differs too much from the store's: synchronise the agent's clock (NTP)"
	case checksumCodes[code]:
		return fmt.Sprintf("the store received bytes whose SHA-256 differs from the run's manifest (the staged file changed after it was finalized, or was damaged in transit)%s; the upload will be retried", attempts(err))
	case code == "SlowDown" || status == http.StatusTooManyRequests:
		return "the store asked the agent to slow down" + attempts(err) + "; the upload will be retried after a delay, and a lasting problem needs fewer concurrent runs per bucket prefix"
	}
	switch kind {
	case secrets.AccessDenied:
		return s.identity() + " may not write here: allow s3:PutObject on arn:aws:s3:::" + s.bucket + "/* (or the prefix) in its IAM policy and the bucket policy, and kms:GenerateDataKey if the bucket uses a customer-managed KMS key"
	case secrets.AuthFailed:
		return s.rejected(code)
	case secrets.OutputUnavailable:
		return "the store failed on its side or is unavailable" + attempts(err) + "; the upload will be retried"
	default:
		return "the store refused the upload as invalid: check output.bucket, output.prefix and output.endpoint"
	}
}

// identity names the credentials in use, without their values.
func (s *Sink) identity() string {
	if s.static {
		return "the access key in output.credentials"
	}
	return "the agent's AWS identity (its default credential chain)"
}

// rejected says how to fix credentials the store rejected.
func (s *Sink) rejected(code string) string {
	var what string
	switch code {
	case "InvalidAccessKeyId":
		what = "the store does not know the access key id"
	case "SignatureDoesNotMatch", "InvalidSecurity":
		what = "the store rejected the request signature: the secret access key does not belong to the access key id"
	case "ExpiredToken", "TokenRefreshRequired", "InvalidToken":
		what = "the store rejected the session token as expired or invalid"
	default:
		what = "the store did not accept the credentials"
	}
	if s.static {
		return what + "; check accessKeyId, secretAccessKey and sessionToken in output.credentials (and the secret they come from) belong together and are current"
	}
	return what + "; check which source of the default chain the agent uses (environment, shared files, IRSA, ECS or EC2 role) and that it is current"
}

// credentialFailure classifies a failure to obtain the agent's credentials.
func (s *Sink) credentialFailure(credErr *awsx.CredentialError) (secrets.Kind, string, string) {
	var op *smithy.OperationError
	if errors.As(credErr.Err, &op) && op.ServiceID == "STS" {
		status, _ := responseOf(credErr.Err)
		if isNetwork(credErr.Err) || status >= 500 || status == http.StatusTooManyRequests {
			return secrets.OutputUnavailable, "", "STS could not issue the agent's credentials (web identity); it will be retried"
		}
		return secrets.AuthFailed, "", "STS refused the agent's web identity (IRSA) token: check that AWS_ROLE_ARN names a role whose trust policy allows the cluster's OIDC provider and this service account"
	}
	return secrets.AuthFailed, "", "the agent found no AWS credentials: give output.credentials (accessKeyId and secretAccessKey from the secret store), or give the agent an identity through IRSA, an ECS task role, an EC2 instance role, a shared credentials file or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment"
}

// kindForStatus maps the HTTP status of an answer without a known S3 error code.
func kindForStatus(status int) secrets.Kind {
	switch {
	case status == http.StatusUnauthorized:
		return secrets.AuthFailed
	case status == http.StatusForbidden:
		return secrets.AccessDenied
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500, status < 300:
		return secrets.OutputUnavailable
	default:
		return secrets.InvalidInput
	}
}

// attempts says how often the SDK tried, when it gave up after more than one attempt.
func attempts(err error) string {
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) && maxErr.Attempt > 1 {
		return fmt.Sprintf(" (after %d attempts)", maxErr.Attempt)
	}
	return ""
}

// responseOf returns the HTTP status and headers of the response an SDK error came with.
func responseOf(err error) (int, http.Header) {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Response != nil {
		return re.Response.StatusCode, re.Response.Header
	}
	return 0, nil
}

func isNetwork(err error) bool {
	var send *smithyhttp.RequestSendError
	var netErr net.Error
	return errors.As(err, &send) || errors.As(err, &netErr)
}
