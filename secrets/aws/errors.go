package aws

// The mapping from AWS SDK errors to secrets.Error kinds and the messages that say what to fix.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/secure-agent/secure-agent/internal/awsx"
	"github.com/secure-agent/secure-agent/secrets"
)

// batchItemError classifies one entry of BatchGetSecretValue's Errors.
func (s *Store) batchItemError(ref secrets.Ref, e smtypes.APIErrorType) *secrets.Error {
	code := aws.ToString(e.ErrorCode)
	kind := kindForCode(code, aws.ToString(e.Message), 0)
	if kind == "" {
		kind = secrets.StoreUnavailable
	}
	err := &secrets.Error{Kind: kind, Store: Name, Ref: ref.String(), Detail: detailFor(code, 0),
		Msg: s.messageFor(kind, code, ref, true)}
	if kind == secrets.Throttled {
		err.RetryAfter = DefaultThrottleDelay
	}
	return err
}

// classify turns an error of a Secrets Manager call into a *secrets.Error.
func (s *Store) classify(ctx context.Context, ref secrets.Ref, err error, batch bool) *secrets.Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return secrets.ContextError(Name, ref, ctxErr)
	}
	e := &secrets.Error{Store: Name, Ref: ref.String(), Cause: err}
	var credErr *awsx.CredentialError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Kind, e.Msg = secrets.StoreUnavailable, "the request was interrupted before Secrets Manager answered; try again"
	case errors.Is(err, awsx.ErrResponseTooLarge):
		e.Kind, e.Detail = secrets.StoreUnavailable, "response too large"
		e.Msg = fmt.Sprintf("the response was larger than %d bytes, which Secrets Manager never sends: check the agent's Secrets Manager and STS endpoints", MaxResponseBytes)
	case errors.As(err, &credErr):
		s.credentialFailure(e, credErr)
	default:
		s.serviceFailure(e, err, ref, batch)
	}
	return e
}

// serviceFailure fills e for an error answered by (or on the way to) Secrets Manager.
func (s *Store) serviceFailure(e *secrets.Error, err error, ref secrets.Ref, batch bool) {
	status, header := responseOf(err)
	code, message := "", ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() != "UnknownError" {
		code, message = apiErr.ErrorCode(), apiErr.ErrorMessage()
	} else if header != nil { // an unreadable body: the x-amzn-ErrorType header ("Code:uri") may tell
		code, _, _ = strings.Cut(header.Get("X-Amzn-ErrorType"), ":")
	}
	kind := kindForCode(code, message, status)
	switch {
	case kind != "":
	case isNetwork(err):
		e.Kind = secrets.StoreUnavailable
		e.Msg = "could not reach Secrets Manager: check the agent's network, DNS, proxy and VPC endpoint for the region"
		return
	case status >= 200 && status < 300:
		e.Kind, e.Detail = secrets.StoreUnavailable, "malformed response"
		e.Msg = "Secrets Manager's response could not be read; if it persists, check the agent's Secrets Manager endpoint"
		return
	case status == 0:
		e.Kind = secrets.StoreUnavailable
		e.Msg = "the request to Secrets Manager failed before an answer arrived; if it persists, check the agent's AWS settings (endpoint overrides, AWS_CA_BUNDLE)"
		return
	default:
		kind = secrets.KindForHTTPStatus(status)
	}
	e.Kind, e.Detail = kind, detailFor(code, status)
	e.Msg = s.messageFor(kind, code, ref, batch)
	if kind == secrets.Throttled {
		e.RetryAfter = retryAfter(header)
	}
}

// credentialFailure fills e for a failure to obtain the agent's credentials. With the
// assume-role hop on top of IRSA, the failing step may be the web identity one under AssumeRole:
// the innermost STS operation in the chain is the one that failed.
func (s *Store) credentialFailure(e *secrets.Error, credErr *awsx.CredentialError) {
	var tokenErr *tokenFileError
	if errors.As(credErr.Err, &tokenErr) {
		e.Kind = secrets.AuthFailed
		e.Msg = "the agent's web identity (IRSA) token file, named by AWS_WEB_IDENTITY_TOKEN_FILE, could not be read or is empty: check the projected service account token volume is mounted at that path and readable by the agent"
		if s.method == AuthAssumeRole {
			e.Msg += "; it is needed before roleArn can be assumed"
		}
		return
	}
	op := innermostOperation(credErr.Err)
	fromSTS := op != nil && op.ServiceID == sts.ServiceID
	var apiErr smithy.APIError
	if fromSTS && errors.As(op, &apiErr) {
		code := apiErr.ErrorCode()
		status, header := responseOf(op)
		e.Detail = detailFor(code, status)
		switch kind := kindForCode(code, "", status); kind {
		case secrets.Throttled:
			e.Kind, e.RetryAfter = kind, retryAfter(header)
			e.Msg = "STS throttled the agent's request for credentials; it will be retried"
			return
		case secrets.StoreUnavailable:
			e.Kind, e.Msg = kind, "STS failed to issue credentials on its side; it will be retried"
			return
		}
		e.Kind = secrets.AuthFailed
		e.Msg = s.stsAuthMessage(op.OperationName, code)
		return
	}
	if fromSTS && isNetwork(op) {
		e.Kind = secrets.StoreUnavailable
		e.Msg = "could not reach STS to obtain the agent's credentials: check the agent's network and STS endpoint"
		return
	}
	e.Kind = secrets.AuthFailed
	e.Msg = s.noCredentialsMessage()
}

// innermostOperation returns the deepest SDK operation error in err's chain, or nil.
func innermostOperation(err error) *smithy.OperationError {
	var op *smithy.OperationError
	if !errors.As(err, &op) {
		return nil
	}
	for {
		var inner *smithy.OperationError
		if !errors.As(op.Err, &inner) {
			return op
		}
		op = inner
	}
}

// stsAuthMessage says what to fix when STS refused operation with code.
func (s *Store) stsAuthMessage(operation, code string) string {
	switch {
	case operation == "AssumeRoleWithWebIdentity":
		msg := "STS refused the agent's web identity (IRSA): check that AWS_ROLE_ARN names a role whose trust policy allows the cluster's OIDC provider and this service account, and that the token file named by AWS_WEB_IDENTITY_TOKEN_FILE is current"
		if s.method == AuthAssumeRole {
			msg += "; this step comes before roleArn is assumed"
		}
		return msg
	case code == "AccessDenied" || code == "AccessDeniedException":
		return "STS refused to let the agent assume roleArn: check the role's trust policy allows the agent's identity (with IRSA, the role named by AWS_ROLE_ARN) and requires the externalId you gave, if any, and that the agent's policy allows sts:AssumeRole on the role"
	case code == "RegionDisabledException":
		return "STS is not activated in this region for the account: activate it in IAM account settings, or use another region"
	default:
		return "STS refused the agent's credentials while assuming roleArn: check the agent's base credentials (default chain) and the role's trust policy and externalId"
	}
}

func (s *Store) noCredentialsMessage() string {
	const chain = "IRSA (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE), an ECS task role, an EC2 instance role, a shared credentials file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment"
	switch s.method {
	case AuthAssumeRole:
		return "the agent found no AWS credentials to assume roleArn with: give it base credentials through " + chain
	case AuthAccessKey:
		return "the agent's access key could not be used: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in its environment"
	default:
		return "the agent found no AWS credentials in its default chain: give it " + chain
	}
}

// kindForCode maps an AWS error code (and, for codes it does not know, the HTTP status) to a
// Kind, or "" when neither tells.
func kindForCode(code, message string, status int) secrets.Kind {
	switch code {
	case "ResourceNotFoundException":
		return secrets.SecretNotFound
	case "InvalidRequestException":
		if markedForDeletion(message) {
			return secrets.SecretNotFound
		}
		return secrets.InvalidInput
	case "InvalidParameterException", "ValidationException", "InvalidNextTokenException":
		return secrets.InvalidInput
	case "AccessDeniedException", "AccessDenied":
		return secrets.AccessDenied
	case "DecryptionFailure":
		return secrets.DecryptionFailed
	case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded":
		return secrets.Throttled
	case "InternalServiceError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException", "InternalServerError":
		return secrets.StoreUnavailable
	case "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
		"SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "IncompleteSignature",
		"MissingAuthenticationToken", "MissingAuthenticationTokenException", "InvalidAccessKeyId",
		"RequestExpired", "InvalidIdentityToken":
		return secrets.AuthFailed
	}
	if status >= 500 {
		return secrets.StoreUnavailable
	}
	if code != "" && status >= 400 {
		return secrets.KindForHTTPStatus(status)
	}
	return ""
}

func markedForDeletion(message string) bool {
	m := strings.ToLower(message)
	return strings.Contains(m, "marked for deletion") || strings.Contains(m, "scheduled for deletion") || strings.Contains(m, "deleted")
}

// otherCodes are AWS error codes of Secrets Manager and STS that kindForCode leaves to the HTTP
// status but that may still be shown in Error.Detail.
var otherCodes = map[string]bool{
	"LimitExceededException": true, "EncryptionFailure": true, "PreconditionNotMetException": true,
	"ResourceExistsException": true, "MalformedPolicyDocumentException": true,
	"PublicPolicyException": true, "UnknownOperationException": true, "OptInRequired": true,
	"RegionDisabledException": true, "IDPRejectedClaim": true, "IDPCommunicationError": true,
	"PackedPolicyTooLarge": true, "MalformedPolicyDocument": true, "NotAuthorized": true,
}

// detailFor returns the short code shown in Error.Detail: the AWS error code when it is one the
// store knows, else the HTTP status. Any other code could be whatever a broken or hostile endpoint
// sent, even a secret, and is not shown.
func detailFor(code string, status int) string {
	if code != "" && (kindForCode(code, "", 0) != "" || otherCodes[code]) {
		return code
	}
	if status != 0 {
		return "HTTP " + strconv.Itoa(status)
	}
	return ""
}

// messageFor says what to fix for an error of kind from Secrets Manager.
func (s *Store) messageFor(kind secrets.Kind, code string, ref secrets.Ref, batch bool) string {
	switch kind {
	case secrets.SecretNotFound:
		if code == "InvalidRequestException" {
			return "the secret is marked for deletion: restore it in Secrets Manager, or point secretPath at another secret"
		}
		if ref.Version != "" || ref.Stage != "" {
			return fmt.Sprintf("no such secret or version in region %s: check secretPath, versionId and versionStage", s.region)
		}
		return fmt.Sprintf("no such secret in region %s: check secretPath (the secret's name or ARN) and region", s.region)
	case secrets.AccessDenied:
		action := "secretsmanager:GetSecretValue"
		if batch {
			action = "secretsmanager:BatchGetSecretValue and secretsmanager:GetSecretValue"
		}
		return "the agent's AWS identity may not read this secret: allow " + action + " on it in the identity's IAM policy and the secret's resource policy, and kms:Decrypt on its KMS key if that is a customer-managed key"
	case secrets.DecryptionFailed:
		return "Secrets Manager could not decrypt the secret with its KMS key: check the key is enabled and that its key policy and the agent's IAM policy allow kms:Decrypt"
	case secrets.Throttled:
		return "Secrets Manager throttled the request; it will be retried after a delay, and a lasting problem needs fewer concurrent extractions or a higher quota"
	case secrets.StoreUnavailable:
		return "Secrets Manager failed on its side or is unavailable; it will be retried"
	case secrets.InvalidInput:
		return "Secrets Manager refused the request as invalid: check secretPath, versionId and versionStage"
	case secrets.AuthFailed:
		return s.rejectedMessage(code)
	default:
		return "Secrets Manager refused the request"
	}
}

// rejectedMessage says how to fix credentials that AWS rejected.
func (s *Store) rejectedMessage(code string) string {
	var what string
	switch code {
	case "ExpiredToken", "ExpiredTokenException":
		what = "AWS rejected the agent's credentials as expired"
	case "SignatureDoesNotMatch", "InvalidSignatureException", "IncompleteSignature", "RequestExpired":
		what = "AWS rejected the agent's request signature: check the secret access key and the agent's clock"
	default:
		what = "AWS did not accept the agent's credentials"
	}
	switch s.method {
	case AuthAccessKey:
		return what + "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the agent's environment belong together and are current"
	case AuthAssumeRole:
		return what + "; check the agent's base credentials and that roleArn's temporary credentials are valid in this region"
	default:
		return what + "; check which source of the default chain the agent uses (environment, shared files, IRSA, ECS or EC2 role) and that it is current"
	}
}

// responseOf returns the HTTP status and headers of the response an SDK error came with.
func responseOf(err error) (int, http.Header) {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Response != nil {
		return re.Response.StatusCode, re.Response.Header
	}
	return 0, nil
}

// retryAfter returns the delay from a Retry-After header, or DefaultThrottleDelay.
func retryAfter(h http.Header) time.Duration {
	if h != nil {
		if d := secrets.ParseRetryAfter(h.Get("Retry-After"), time.Now()); d > 0 {
			return d
		}
	}
	return DefaultThrottleDelay
}

func isNetwork(err error) bool {
	var send *smithyhttp.RequestSendError
	var netErr net.Error
	return errors.As(err, &send) || errors.As(err, &netErr)
}
