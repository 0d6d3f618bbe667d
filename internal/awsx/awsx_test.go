package awsx

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

type clientFunc func(*http.Request) (*http.Response, error)

func (f clientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestClientHidesWriterToAndBoundsResponses(t *testing.T) {
	var got io.Reader
	c := &Client{Max: 8, Next: clientFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Body
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("0123456789"))}, nil
	})}
	req, _ := http.NewRequest(http.MethodPut, "http://localhost/x", strings.NewReader("data")) // *strings.Reader has WriteTo
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(io.WriterTo); ok {
		t.Fatal("net/http would see the SDK body's WriteTo")
	}
	if b, err := io.ReadAll(resp.Body); !errors.Is(err, ErrResponseTooLarge) || len(b) > 8 {
		t.Fatalf("read %q, %v; want at most 8 bytes and ErrResponseTooLarge", b, err)
	}
}
