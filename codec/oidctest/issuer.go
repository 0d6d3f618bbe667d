// Package oidctest is a local OpenID Connect issuer for tests: an httptest TLS server that serves
// a discovery document and a key set (JWKS) made of keys generated in the test, and signs JWTs
// with them. It is what an identity provider shows a resource server, and nothing more: no login,
// no token endpoint.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key: its key id, algorithm and private key.
type Key struct {
	ID      string
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
}

// NewRSAKey makes a 2048-bit RSA key for RS256.
func NewRSAKey(t testing.TB, id string) *Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{ID: id, Alg: jose.RS256, Private: k}
}

// NewECKey makes a P-256 key for ES256.
func NewECKey(t testing.TB, id string) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{ID: id, Alg: jose.ES256, Private: k}
}

// JWK is the key's public half as a key set entry.
func (k *Key) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"}
}

// Issuer is a running local issuer. URL (the embedded server's) is its issuer identifier.
type Issuer struct {
	*httptest.Server

	mu              sync.Mutex
	published       []*Key
	discoveryIssuer string
	jwksRequests    atomic.Int64
}

// NewIssuer starts an issuer over TLS that publishes one RSA key, "key-1"; it stops with the test.
// Discovery is at /.well-known/openid-configuration, the key set at /jwks.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{published: []*Key{NewRSAKey(t, "key-1")}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		issuer := iss.discoveryIssuer
		iss.mu.Unlock()
		if issuer == "" {
			issuer = iss.URL
		}
		writeJSON(w, map[string]any{
			"issuer":                                issuer,
			"jwks_uri":                              iss.URL + "/jwks",
			"authorization_endpoint":                iss.URL + "/authorize",
			"token_endpoint":                        iss.URL + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksRequests.Add(1)
		iss.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range iss.published {
			set.Keys = append(set.Keys, k.JWK())
		}
		iss.mu.Unlock()
		writeJSON(w, set)
	})
	iss.Server = httptest.NewTLSServer(mux)
	t.Cleanup(iss.Close)
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Key returns the first published key, the one tokens are signed with by default.
func (i *Issuer) Key() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.published[0]
}

// Publish replaces the key set with keys: how an issuer rotates.
func (i *Issuer) Publish(keys ...*Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = keys
}

// SetDiscoveryIssuer makes the discovery document name another issuer (empty: its own URL).
func (i *Issuer) SetDiscoveryIssuer(issuer string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.discoveryIssuer = issuer
}

// JWKSRequests is how many times the key set has been fetched.
func (i *Issuer) JWKSRequests() int { return int(i.jwksRequests.Load()) }

// Claims are a valid access token's claims for subject and audience: iss, sub, aud, iat, and an
// exp five minutes ahead.
func (i *Issuer) Claims(subject, audience string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": i.URL,
		"sub": subject,
		"aud": audience,
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
}

// Token signs claims with the issuer's first key.
func (i *Issuer) Token(t testing.TB, claims map[string]any) string {
	t.Helper()
	return Sign(t, i.Key(), claims)
}

// Sign makes a compact JWS of claims signed with key, with its key id and typ "JWT".
func Sign(t testing.TB, key *Key, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: key.Alg, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID, Algorithm: string(key.Alg)}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// CAFile writes the issuer's TLS certificate as PEM into a temporary file and returns its path:
// what an operator gives the codec server for a private CA.
func (i *Issuer) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "issuer-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
