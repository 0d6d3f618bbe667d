package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/secrets"
)

// ErrTypeInternal is the ApplicationError type of failures the agent did not classify.
const ErrTypeInternal = "Internal"

// appError turns an activity failure into the error Temporal records. A *secrets.Error becomes an
// ApplicationError whose type is its Kind, non-retryable when the kind is final, with the store's
// Retry-After as the next retry delay; its cause chain is dropped, so no provider text reaches
// history. Context errors pass through (Temporal reports cancellation and timeouts itself).
// Anything else keeps its message only when safe is set; otherwise only its Go type is shown.
func appError(err error, safe bool) error {
	if err == nil {
		return nil
	}
	var se *secrets.Error
	if errors.As(err, &se) {
		return temporal.NewApplicationErrorWithOptions(se.Error(), string(se.Kind), temporal.ApplicationErrorOptions{
			NonRetryable:   !se.Kind.Retryable(),
			NextRetryDelay: se.RetryAfter,
		})
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return err
	}
	msg := fmt.Sprintf("unexpected failure (%T); the worker log has no more detail, by design: it may involve credentials", err)
	if safe {
		msg = err.Error()
	}
	return temporal.NewApplicationError(msg, ErrTypeInternal)
}
