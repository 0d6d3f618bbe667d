package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/secrets"
)

func TestAppErrorClassifiesWithoutCauses(t *testing.T) {
	cause := errors.New("provider body with canary-cause")
	err := appError(fmt.Errorf("wrapped: %w", &secrets.Error{Kind: secrets.Throttled, Store: "aws", Ref: "db", Msg: "slow down", RetryAfter: 3 * time.Second, Cause: cause}), false)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != "Throttled" || ae.NonRetryable() || ae.NextRetryDelay() != 3*time.Second {
		t.Fatalf("throttled: %#v", err)
	}
	if errors.Unwrap(ae) != nil || strings.Contains(ae.Error(), "canary-cause") {
		t.Fatalf("the cause reached the ApplicationError: %v", ae)
	}
	err = appError(&secrets.Error{Kind: secrets.SecretNotFound, Msg: "gone"}, false)
	if !errors.As(err, &ae) || ae.Type() != "SecretNotFound" || !ae.NonRetryable() {
		t.Fatalf("final kind: %v", err)
	}
	err = appError(errors.New("open /secret/canary-path: no such file"), false)
	if !errors.As(err, &ae) || ae.Type() != ErrTypeInternal || strings.Contains(ae.Error(), "canary-path") {
		t.Fatalf("unclassified error shown: %v", err)
	}
	err = appError(errors.New("disk full under /var/out"), true)
	if !errors.As(err, &ae) || !strings.Contains(ae.Error(), "disk full") {
		t.Fatalf("safe error hidden: %v", err)
	}
	if err := appError(context.Canceled, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancellation not passed through: %v", err)
	}
	if appError(nil, false) != nil {
		t.Fatal("nil became an error")
	}
}
