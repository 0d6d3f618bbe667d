package secrets

import (
	"errors"
	"io"
)

// ErrTooLarge is ReadBody's error for a body longer than its limit.
var ErrTooLarge = errors.New("the answer is larger than the limit")

// ReadBody reads all of r, at most limit bytes, into a buffer it grows itself (starting at
// sizeHint+1 bytes when sizeHint >= 0, a Content-Length, say), zeroing every buffer it discards
// or abandons, so that no copy of a secret is left behind in memory it allocated. A body longer
// than limit is ErrTooLarge.
func ReadBody(r io.Reader, limit, sizeHint int64) ([]byte, error) {
	if sizeHint > limit {
		return nil, ErrTooLarge
	}
	size := int64(4096)
	if sizeHint >= 0 {
		size = sizeHint + 1
	}
	buf := make([]byte, 0, min(size, limit+1))
	for {
		if len(buf) == cap(buf) {
			if int64(cap(buf)) > limit {
				clear(buf)
				return nil, ErrTooLarge
			}
			grown := make([]byte, len(buf), min(int64(cap(buf))*2, limit+1))
			copy(grown, buf)
			clear(buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			clear(buf)
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
}
