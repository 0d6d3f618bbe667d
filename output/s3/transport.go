package s3

import (
	"io"
	"net/http"
)

// maxResponseBytes bounds the body read from the store. PutObject answers with headers and at
// most a short XML error; a larger response comes from a broken or hostile endpoint and is
// refused without being read to its end.
const maxResponseBytes = 1 << 20

// bodyClient gives net/http a request body of its own, and bounds every response body.
//
// The SDK wraps an upload's body in a closer whose WriteTo answers io.EOF once closed, and closes
// it as soon as the response headers arrive. net/http, after sending Content-Length bytes,
// still probes the body for extra bytes; when the store answered quickly (an error such as
// AccessDenied, or any fast reply) the probe runs after the SDK's Close, takes WriteTo's io.EOF
// as a write failure and closes the connection under the response still being read: the
// upload then fails with "use of closed network connection" instead of the store's error code,
// or at best loses its keep-alive connection. The secrets/aws store met the same SDK behaviour on
// Secrets Manager and buffers its (small) request bodies; uploads can be large, so here net/http
// gets a read-only view of the SDK's body instead: without WriteTo, the probe reads through
// Read, which answers a closed body with a clean io.EOF.
type bodyClient struct{ next HTTPClient }

func (c *bodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = readOnlyBody{rc: req.Body}
	}
	resp, err := c.next.Do(req)
	if err != nil || resp == nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &limitedBody{rc: resp.Body, max: maxResponseBytes}
	return resp, nil
}

// readOnlyBody hides every method of a request body but Read and Close.
type readOnlyBody struct{ rc io.ReadCloser }

func (b readOnlyBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readOnlyBody) Close() error               { return b.rc.Close() }

// limitedBody fails reads past max bytes with errResponseTooLarge.
type limitedBody struct {
	rc   io.ReadCloser
	max  int64
	read int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.read > b.max {
		return 0, errResponseTooLarge
	}
	if rest := b.max + 1 - b.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if b.read > b.max {
		return 0, errResponseTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
