package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a failure. Each Kind becomes the type of a Temporal ApplicationError that users
// read in the Web UI; final kinds are non-retryable.
//
// A Kind is itself an error, so callers test for one with errors.Is:
//
//	if errors.Is(err, secrets.SecretNotFound) { ... }
type Kind string

// Final kinds: retrying cannot help, so they are never retried.
const (
	// InvalidInput: the workflow input or store configuration is malformed.
	InvalidInput Kind = "InvalidInput"
	// PolicyDenied: agent-side policy refuses the store, secret, variable or destination.
	PolicyDenied Kind = "PolicyDenied"
	// SecretNotFound: the secret (or version, or environment variable) does not exist.
	SecretNotFound Kind = "SecretNotFound"
	// SecretKeyNotFound: the secret exists, but a field names a key it does not hold.
	SecretKeyNotFound Kind = "SecretKeyNotFound"
	// AccessDenied: the agent authenticated but may not read the secret.
	AccessDenied Kind = "AccessDenied"
	// AuthFailed: the agent's own credentials for the store are missing, invalid or expired.
	AuthFailed Kind = "AuthFailed"
	// DecryptionFailed: the store could not decrypt the secret (for example a KMS key problem).
	DecryptionFailed Kind = "DecryptionFailed"
	// LeaseNotFound: the credential lease is unknown to this worker (expired or released).
	LeaseNotFound Kind = "LeaseNotFound"
	// LeaseScopeMismatch: a lease was presented by another workflow run or for other fields.
	LeaseScopeMismatch Kind = "LeaseScopeMismatch"
	// SourceAuthFailed: the data source refused the resolved credentials.
	SourceAuthFailed Kind = "SourceAuthFailed"
	// LeakPrevented: a step's result, error or heartbeat held a secret value, and the worker
	// withheld it. A bug to report, or a secret that also appears in the source's catalog.
	LeakPrevented Kind = "LeakPrevented"
)

// Retried kinds: transient, retried within the caller's bounds.
const (
	// StoreUnavailable: the store could not be reached, timed out or failed on its side.
	StoreUnavailable Kind = "StoreUnavailable"
	// Throttled: the store asked the agent to slow down; Error.RetryAfter carries its delay.
	Throttled Kind = "Throttled"
	// SourceUnavailable: the data source could not be reached.
	SourceUnavailable Kind = "SourceUnavailable"
	// OutputUnavailable: the output (a directory or an object store) failed transiently.
	OutputUnavailable Kind = "OutputUnavailable"
	// LeaseLimit: the worker already holds as many credential leases as it may; the step is
	// retried once one ends, here or on another replica.
	LeaseLimit Kind = "LeaseLimit"
)

// Kinds lists every kind, final ones first.
var Kinds = []Kind{
	InvalidInput, PolicyDenied, SecretNotFound, SecretKeyNotFound, AccessDenied, AuthFailed,
	DecryptionFailed, LeaseNotFound, LeaseScopeMismatch, SourceAuthFailed, LeakPrevented,
	StoreUnavailable, Throttled, SourceUnavailable, OutputUnavailable, LeaseLimit,
}

// Error implements error, so a Kind can be the target of errors.Is.
func (k Kind) Error() string { return string(k) }

// Retryable reports whether an error of this kind may succeed if tried again.
func (k Kind) Retryable() bool {
	switch k {
	case StoreUnavailable, Throttled, SourceUnavailable, OutputUnavailable, LeaseLimit:
		return true
	}
	return false
}

// Error is a classified failure from a store or from resolution.
//
// Its message names the kind, the store and the reference and says what to fix. It never holds a
// secret value, a credential or a provider's response body: Detail carries only a short
// provider code (an AWS error code, an HTTP status, a gRPC code), and Cause is kept for errors.Is
// and errors.As but is never printed by Error.
type Error struct {
	Kind  Kind
	Store string // "aws", "azure", "gcp", "env", "custom"; empty outside a store
	Ref   string // the reference, as Ref.String gives it; empty when the error is not about one
	Field string // the connection field concerned, if any
	// Msg says what is wrong and how to fix it.
	Msg string
	// Detail is a short provider code such as "ResourceNotFoundException", "HTTP 503" or
	// "grpc Unavailable". Never a response body.
	Detail string
	// RetryAfter is the delay the store asked for (Throttled), zero if none.
	RetryAfter time.Duration
	// Cause is the underlying error, for errors.Is/As only. Its text is never part of Error().
	Cause error
}

// Error returns the message: kind, store, reference, field, what to fix, provider code.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Kind))
	b.WriteString(": ")
	var where []string
	if e.Store != "" {
		where = append(where, e.Store+" store")
	}
	if e.Ref != "" {
		where = append(where, "secret "+strconv.Quote(e.Ref))
	}
	if e.Field != "" {
		where = append(where, "field "+strconv.Quote(e.Field))
	}
	if len(where) > 0 {
		b.WriteString(strings.Join(where, ", "))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (store asked to retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Format implements fmt.Formatter so every verb, %#v included, prints Error() and never the
// fields of Cause.
func (e *Error) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, e.Error()) }

// Is reports whether target is e's Kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Cause }

// KindOf returns the Kind of the first *Error in err's chain, or "" if there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// Retryable reports whether err is a classified error of a retried kind.
func Retryable(err error) bool { return KindOf(err).Retryable() }

// RetryAfterOf returns the delay a store asked for, or zero.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ContextError classifies a failure caused by ctx ending: the deadline passed or the caller
// cancelled. It is StoreUnavailable (retried) and wraps ctxErr so errors.Is(err,
// context.DeadlineExceeded) holds. It returns nil if ctxErr is nil.
func ContextError(store string, ref Ref, ctxErr error) *Error {
	if ctxErr == nil {
		return nil
	}
	msg := "the request was cancelled before the store answered"
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		msg = "the store did not answer before the deadline; check that it is reachable from the agent, or raise the activity timeout"
	}
	return &Error{Kind: StoreUnavailable, Store: store, Ref: ref.String(), Msg: msg, Cause: ctxErr}
}

// KindForHTTPStatus maps an HTTP status from a store to a Kind: 401 AuthFailed, 403 AccessDenied,
// 404 and 410 SecretNotFound, 408 and 5xx StoreUnavailable, 429 Throttled, any other 4xx
// InvalidInput. It returns "" for statuses below 400.
func KindForHTTPStatus(status int) Kind {
	switch {
	case status < 400:
		return ""
	case status == http.StatusUnauthorized:
		return AuthFailed
	case status == http.StatusForbidden:
		return AccessDenied
	case status == http.StatusNotFound, status == http.StatusGone:
		return SecretNotFound
	case status == http.StatusRequestTimeout, status >= 500:
		return StoreUnavailable
	case status == http.StatusTooManyRequests:
		return Throttled
	default:
		return InvalidInput
	}
}

// MaxRetryAfter bounds the delay taken from a store's Retry-After header, so a hostile or broken
// store cannot park a workflow for days.
const MaxRetryAfter = 5 * time.Minute

// ParseRetryAfter reads an HTTP Retry-After header value, in delay-seconds or HTTP-date form,
// relative to now. It returns zero for an empty or malformed value and caps the result at
// MaxRetryAfter.
func ParseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(value); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}
