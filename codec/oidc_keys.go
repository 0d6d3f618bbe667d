package codec

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a key set response.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA key accepted from a key set.
const minRSABits = 2048

var (
	errUnknownKey   = errors.New("no key in the issuer's key set has the token's key id")
	errBadSignature = errors.New("the signature does not verify")
	errMalformedJWS = errors.New("not a compact JWS signed with an allowed algorithm")
)

// joseAlgs is oidcAlgs for go-jose.
var joseAlgs = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(oidcAlgs))
	for i, a := range oidcAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// verifyNote carries, through the context of one Verify call, what the key set found: the
// payload once a signature verified, or why none did. go-oidc flattens the key set's errors into
// strings; the note keeps the reason exact without parsing them.
type verifyNote struct {
	reason  string
	payload []byte
}

type noteKey struct{}

// jwksCache is the issuer's key set (oidc.KeySet). It differs from go-oidc's RemoteKeySet in
// what an attacker can make it do: an unknown key id fetches the set again at most once per
// refreshEvery (RemoteKeySet fetches for every such token), the response is bounded, only public
// asymmetric signing keys are kept, and a set older than maxAge is fetched again so that a key
// the issuer withdraws stops being accepted. A failed fetch keeps the keys it had.
type jwksCache struct {
	url          string
	client       *http.Client
	refreshEvery time.Duration
	maxAge       time.Duration
	log          *slog.Logger

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt
}

// prime fetches the key set once; an error here is the caller's to report.
func (c *jwksCache) prime(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx)
}

// VerifySignature implements oidc.KeySet: it returns the payload of a compact JWS whose
// signature verifies with the key its key id names (with no key id: any key of the set).
func (c *jwksCache) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	note, _ := ctx.Value(noteKey{}).(*verifyNote)
	if note == nil {
		note = &verifyNote{}
	}
	jws, err := jose.ParseSignedCompact(raw, joseAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		note.reason = "malformed token or signature algorithm not allowed"
		return nil, errMalformedJWS
	}
	h := jws.Signatures[0].Header
	keys, err := c.keysFor(ctx, h.KeyID)
	if err != nil {
		note.reason = "the issuer's key set is unavailable"
		return nil, err
	}
	matched := false
	for _, k := range keys {
		if h.KeyID != "" && k.KeyID != h.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		matched = true
		if payload, err := jws.Verify(k.Key); err == nil {
			note.payload = payload
			return payload, nil
		}
	}
	if !matched {
		note.reason = "unknown signing key"
		return nil, errUnknownKey
	}
	note.reason = "signature does not verify"
	return nil, errBadSignature
}

// keysFor returns the keys to try for a key id, fetching the set first if it is older than
// maxAge or lacks the key id, and the last attempt is at least refreshEvery ago.
func (c *jwksCache) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	stale := c.fetchedAt.IsZero() || now.Sub(c.fetchedAt) >= c.maxAge
	if (stale || kid != "" && !c.hasLocked(kid)) && now.Sub(c.triedAt) >= c.refreshEvery {
		if err := c.refreshLocked(ctx); err != nil && len(c.keys) == 0 {
			return nil, err
		}
	}
	return c.keys, nil
}

func (c *jwksCache) hasLocked(kid string) bool {
	for _, k := range c.keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// refreshLocked fetches the set; on success it replaces the keys, on failure it keeps them.
func (c *jwksCache) refreshLocked(ctx context.Context) error {
	c.triedAt = time.Now()
	// A client that hangs up must not cut the fetch short for everyone waiting on it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idpTimeout)
	defer cancel()
	keys, err := c.fetch(ctx)
	if err != nil {
		if c.log != nil {
			c.log.Warn("codec server OIDC: key set fetch failed", slog.String("url", c.url), slog.String("error", err.Error()), slog.Int("keys_kept", len(c.keys)))
		}
		return err
	}
	c.keys, c.fetchedAt = keys, c.triedAt
	if c.log != nil {
		c.log.Info("codec server OIDC: key set fetched", slog.String("url", c.url), slog.Int("keys", len(keys)))
	}
	return nil
}

// fetch GETs the key set and keeps its usable keys. Its errors carry no response body.
func (c *jwksCache) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("key set URL %s: %w", c.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err // *url.Error: method, URL and cause
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", c.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the key set: %w", c.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: the key set is larger than %d bytes", c.url, maxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: not a JSON Web Key Set", c.url)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if json.Unmarshal(raw, &k) != nil { // a key type go-jose does not know: skipped (RFC 7517 5)
			continue
		}
		if usableSigningKey(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("GET %s: the key set has no usable signing key (RSA of at least %d bits, EC or Ed25519 public keys)", c.url, minRSABits)
	}
	return keys, nil
}

// usableSigningKey keeps public RSA (2048 bits or more), EC and Ed25519 keys not marked for
// encryption. Symmetric ("oct") and private keys are never used to verify.
func usableSigningKey(k jose.JSONWebKey) bool {
	if !k.Valid() || !k.IsPublic() || k.Use == "enc" {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return key.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	default:
		return false
	}
}
