package secrets_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/secure-agent/secure-agent/secrets"
)

// TestReadBody: a body within the limit is read whole, whatever the hint and however the reader
// splits it; a longer one, or a hint above the limit, is ErrTooLarge.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 10000)
	for _, hint := range []int64{-1, 0, 10, 10000} {
		got, err := secrets.ReadBody(iotest.OneByteReader(strings.NewReader(body)), 10000, hint)
		if err != nil || !bytes.Equal(got, []byte(body)) {
			t.Errorf("hint %d: %d bytes, %v", hint, len(got), err)
		}
	}
	if _, err := secrets.ReadBody(strings.NewReader(body), 9999, -1); !errors.Is(err, secrets.ErrTooLarge) {
		t.Errorf("one byte over: %v", err)
	}
	if _, err := secrets.ReadBody(strings.NewReader(""), 10, 11); !errors.Is(err, secrets.ErrTooLarge) {
		t.Errorf("hint over the limit: %v", err)
	}
	if _, err := secrets.ReadBody(iotest.ErrReader(errors.New("boom")), 10, -1); err == nil || errors.Is(err, secrets.ErrTooLarge) {
		t.Errorf("a failing reader: %v", err)
	}
}
