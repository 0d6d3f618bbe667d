// Package awsx holds what the agent's two AWS SDK clients (the Secrets Manager store and the S3
// output) need beyond the SDK: an HTTP client wrapper that works around an SDK request-body race
// and bounds responses, and a marker for failures to obtain the agent's own credentials.
package awsx

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// HTTPClient is the SDK's HTTP client interface.
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// ErrResponseTooLarge is returned while reading a response body longer than the client's bound.
var ErrResponseTooLarge = errors.New("response body exceeds the size limit")

// Client gives net/http a request body of its own and bounds every response body to Max bytes.
//
// The SDK wraps a request body in a closer whose WriteTo answers io.EOF once closed, and closes
// it as soon as the response headers arrive. net/http, after sending Content-Length bytes, still
// probes the body for extra bytes; when the server answered quickly the probe runs after the
// SDK's Close, takes WriteTo's io.EOF as a write failure and closes the connection under the
// response still being read: the call fails with "use of closed network connection" instead of
// the service's answer. Giving net/http a view of the body with only Read and Close makes the
// probe read through Read, which answers a closed body with a clean io.EOF; unlike buffering,
// this works for uploads of any size.
type Client struct {
	Next HTTPClient
	Max  int64
}

// Do implements HTTPClient.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = readOnlyBody{rc: req.Body}
	}
	resp, err := c.Next.Do(req)
	if err != nil || resp == nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &limitedBody{rc: resp.Body, max: c.Max}
	return resp, nil
}

// readOnlyBody hides every method of a request body but Read and Close.
type readOnlyBody struct{ rc io.ReadCloser }

func (b readOnlyBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readOnlyBody) Close() error               { return b.rc.Close() }

// limitedBody fails reads past max bytes with ErrResponseTooLarge, zeroing what it refused.
type limitedBody struct {
	rc   io.ReadCloser
	max  int64
	read int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.read > b.max {
		return 0, ErrResponseTooLarge
	}
	if rest := b.max + 1 - b.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if b.read > b.max {
		clear(p[:n])
		return 0, ErrResponseTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// CredentialSource marks failures to obtain the agent's credentials (CredentialError), so they
// can be told apart from failures of the service call itself.
type CredentialSource struct{ aws.CredentialsProvider }

// Retrieve implements aws.CredentialsProvider.
func (c CredentialSource) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return creds, &CredentialError{Err: err}
	}
	return creds, nil
}

// CredentialError is a failure to obtain the agent's own AWS credentials.
type CredentialError struct{ Err error }

func (e *CredentialError) Error() string { return "retrieve AWS credentials: " + e.Err.Error() }
func (e *CredentialError) Unwrap() error { return e.Err }
