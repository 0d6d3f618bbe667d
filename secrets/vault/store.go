// Package vault reads secrets from HashiCorp Vault, or from OpenBao, which serves the same API,
// with the official client github.com/hashicorp/vault/api.
//
// # Paths
//
// A secret path (secrets.Ref.Path) is an API path as `vault read` takes it, without a leading
// "/" or "/v1/":
//   - a KV version 2 path, <mount>/data/<name> such as secret/data/catalog/orders-db. Ref.Version,
//     when set, is the KV version number (sent as ?version=N); Secret.Value is the JSON object of
//     the secret's keys (the answer's data.data) and Secret.Version the version read
//     (data.metadata.version).
//   - a dynamic-credentials path such as database/creds/catalog-reader. Secret.Value is the JSON
//     object of the answer's data (username, password) and Secret.Lease the lease Vault put on
//     those credentials: lease_id, lease_duration as the TTL, and renewable. Renew and Revoke
//     manage it.
//   - any other read that answers a JSON object, such as a KV version 1 path <mount>/<name>:
//     Secret.Value is the answer's data.
//
// Paths in Vault's own API, where a segment sys, auth or identity comes before any data or creds
// segment (auth/token/lookup-self, sys/..., ns1/auth/...), are refused with InvalidInput: they
// are not secrets, and some of them answer with the agent's own token. A path must not contain
// empty, "." or ".." segments, control characters, '?', '#', '%' or '\'.
//
// # Authentication
//
// The agent authenticates with the method of Config.Auth: a token given as is, or a login to an
// AppRole, Kubernetes or JWT auth mount that yields a client token. Logins happen lazily: New
// contacts no server, and the first request that needs a token logs in. The client token is kept
// in memory only. It is replaced by a new login when its TTL (the login's lease_duration) is
// almost over, and once after a request is denied with 403, since Vault answers 403 for an
// expired or revoked token as for a path the policy does not grant; the request is then sent
// once more with the new token. With the token method there is nothing to log in with: after a
// 403 the store looks the token up (auth/token/lookup-self) to tell a dead token (AuthFailed)
// from a path the token may not read (AccessDenied).
//
// That second attempt after a re-login is the only retry: one Fetch, Renew or Revoke otherwise
// sends one request (besides a login), with no retries by the client library.
//
// # Errors
//
// Every error is a *secrets.Error with Store "vault": 404 SecretNotFound, 403 AccessDenied, 400
// and other 4xx InvalidInput, a failed login AuthFailed, 429 Throttled, 5xx (503 when sealed),
// redirects and network failures StoreUnavailable, with the Retry-After delay when Vault sends
// one; a done ctx gives secrets.ContextError. Messages name the path or lease and what to check,
// and never a token, secret id, JWT, secret value or any text of Vault's answer: the store looks
// at Vault's error messages only to choose a message of its own.
//
// # Environment
//
// The client library reads VAULT_* environment variables. The store undoes what it can of them:
// it clears the token VAULT_TOKEN sets, the namespace of VAULT_NAMESPACE and the headers of
// VAULT_HEADERS, turns off response wrapping (VAULT_WRAP_TTL), retries (VAULT_MAX_RETRIES) and
// redirects, and builds its own HTTP client, so VAULT_ADDR, VAULT_CACERT, VAULT_SKIP_VERIFY and
// the like have no effect. A malformed VAULT_* variable still makes the library fail, and New
// then fails with InvalidInput.
package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secure-agent/secure-agent/secrets"
)

// Name is the store's name in errors (secrets.Error.Store).
const Name = "vault"

// Auth methods (Auth.Method).
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
	AuthJWT        = "jwt"
)

// Limits.
const (
	// RequestTimeout bounds one HTTP request to Vault; the caller's ctx deadline applies as well.
	RequestTimeout = 30 * time.Second
	// MaxResponseBytes bounds an answer's body, error answers included.
	MaxResponseBytes = 1 << 20
	// MaxPathLen bounds a secret path, MaxLeaseIDLen a lease id, in bytes.
	MaxPathLen    = 1024
	MaxLeaseIDLen = 1024
)

// Config is agent configuration (never workflow input).
type Config struct {
	// Address is Vault's URL, such as https://vault.internal:8200: https, or plain http to a
	// loopback host only (localhost, 127.0.0.0/8, ::1). No user info, path, query or fragment.
	Address string
	// Namespace is the Vault Enterprise namespace, sent as X-Vault-Namespace with every request,
	// logins included; "" for none.
	Namespace string
	// CACertPEM holds PEM CA certificates trusted for Vault's TLS certificate in addition to the
	// base transport's roots (the system roots by default). Optional.
	CACertPEM []byte
	// Auth is how the agent authenticates.
	Auth Auth
	// HTTPClient, when set, is the client the Vault client uses (the caller passes one whose
	// dialer judges destinations). The store works on a copy: its *http.Transport is cloned,
	// never modified, and the clone's TLS config gets CACertPEM added and TLS 1.2 as a minimum;
	// redirects are never followed. A transport that is not an *http.Transport is used as is, and
	// refused if CACertPEM is set. Nil means a clone of http.DefaultTransport.
	HTTPClient *http.Client
}

// Auth says how the agent authenticates to Vault. Its Token, SecretID and JWT are credentials:
// the store keeps them in memory, sends them only to Vault, and never puts them in an error.
// White space around Token, RoleID, SecretID and JWT (a newline at the end of a file) is
// removed.
type Auth struct {
	// Method is AuthToken, AuthAppRole, AuthKubernetes or AuthJWT.
	Method string
	// Token is the token of the token method (the caller reads it from VAULT_TOKEN or a file).
	Token string
	// Mount is the auth mount path of a login method (auth/<Mount>/login); empty means the
	// method's name: "approle", "kubernetes" or "jwt".
	Mount string
	// Role is the role name of the kubernetes (required) and jwt (optional: the mount's
	// default_role otherwise) methods.
	Role string
	// RoleID and SecretID are the approle credentials. RoleID is required; SecretID may be empty
	// for a role created with bind_secret_id=false.
	RoleID, SecretID string
	// JWT is the kubernetes method's service account token, or the jwt method's JWT (the caller
	// reads the files).
	JWT string
}

// Store reads secrets from one Vault (one address, namespace and identity), and renews and
// revokes the leases of dynamic secrets. It is safe for concurrent use.
type Store struct {
	client *api.Client  // no token of its own: each request sets one
	http   *http.Client // the client's HTTP client
	auth   Auth
	mount  string
	now    func() time.Time

	mu    sync.Mutex
	sess  *session      // the current client token; nil before the first login
	login chan struct{} // holds one value while a login is under way
}

var (
	_ secrets.Store        = (*Store)(nil)
	_ secrets.LeasingStore = (*Store)(nil)
)

// New validates cfg and builds the Vault client. It does not contact Vault: the first request
// logs in (see the package documentation). Errors are *secrets.Error of Kind InvalidInput, each
// listing every problem of cfg and never quoting a credential.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, secrets.Ref{}, err)
	}
	cfg.Auth = cfg.Auth.trimmed()
	addr, problems := cfg.problems()
	if len(problems) > 0 {
		return nil, configError(problems)
	}
	hc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	client, err := newClient(addr, cfg.Namespace, hc)
	if err != nil {
		return nil, err
	}
	s := &Store{client: client, http: hc, auth: cfg.Auth, mount: cfg.Auth.mount(), now: time.Now, login: make(chan struct{}, 1)}
	if s.auth.Method == AuthToken {
		s.sess = &session{token: s.auth.Token}
	}
	return s, nil
}

// Close releases idle connections and drops the client token. The Store must not be used
// afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	s.sess = nil
	s.mu.Unlock()
	s.http.CloseIdleConnections()
	return nil
}

// Fetch reads the secret at ref.Path (at KV version ref.Version when set). A dynamic secret comes
// with Secret.Lease set: the caller must Revoke it (or let it expire) when done.
func (s *Store) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	p, err := parsePath(ref)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, ref, err)
	}
	var query url.Values
	if ref.Version != "" {
		query = url.Values{"version": {ref.Version}}
	}
	o := op{kind: opFetch, ref: ref}
	rep, err := s.call(ctx, o, http.MethodGet, p.path, query, nil)
	if err != nil {
		return nil, err
	}
	defer clear(rep.body)
	if rep.status != http.StatusOK {
		return nil, s.statusError(o, rep)
	}
	return secretFrom(ref, p, rep.body)
}

// answer is the part of a Vault answer the store reads.
type answer struct {
	LeaseID       string          `json:"lease_id"`
	LeaseDuration int64           `json:"lease_duration"`
	Renewable     bool            `json:"renewable"`
	Data          json.RawMessage `json:"data"`
	WrapInfo      json.RawMessage `json:"wrap_info"`
	Auth          *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

// secretFrom reads a Secret out of a 200 answer to a read of p. It zeroes every copy of the
// secret it makes but the returned one.
func secretFrom(ref secrets.Ref, p path, body []byte) (*secrets.Secret, error) {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		clear(a.Data)
		return nil, malformed(op{kind: opFetch, ref: ref}, "it is not a JSON object of Vault's shape")
	}
	defer clear(a.Data)
	if isSet(a.WrapInfo) {
		return nil, malformed(op{kind: opFetch, ref: ref}, "it is response-wrapped, which the agent does not ask for")
	}
	value, version := []byte(a.Data), ""
	if p.kv2 {
		var kv struct {
			Data     json.RawMessage `json:"data"`
			Metadata json.RawMessage `json:"metadata"`
		}
		err := json.Unmarshal(a.Data, &kv)
		defer clear(kv.Data)
		if err == nil && isSet(kv.Metadata) {
			var meta struct {
				Version json.Number `json:"version"`
			}
			if err := json.Unmarshal(kv.Metadata, &meta); err != nil {
				return nil, malformed(op{kind: opFetch, ref: ref}, "its KV metadata is not valid")
			}
			value, version = kv.Data, meta.Version.String()
		} else if ref.Version != "" {
			return nil, fail(op{kind: opFetch, ref: ref}, secrets.InvalidInput, "the answer is not a KV version 2 secret, so it has no versions; check the path (<mount>/data/<name>) or leave the version out", "HTTP 200")
		}
	}
	value = bytes.TrimSpace(value)
	switch {
	case len(value) == 0 || string(value) == "null":
		return nil, fail(op{kind: opFetch, ref: ref}, secrets.SecretNotFound, "Vault answered without data: the secret (or this version) has none, for example it was deleted; check the path and version", "HTTP 200")
	case value[0] != '{':
		return nil, malformed(op{kind: opFetch, ref: ref}, "its data is not a JSON object")
	}
	if p.kv2 && (version != "" || ref.Version != "") {
		if n, err := strconv.ParseInt(version, 10, 64); err != nil || n < 1 {
			return nil, malformed(op{kind: opFetch, ref: ref}, "its KV metadata has no valid version")
		}
		if ref.Version != "" && version != ref.Version {
			return nil, malformed(op{kind: opFetch, ref: ref}, "it holds another KV version than the one asked for")
		}
	}
	sec := &secrets.Secret{Value: secrets.Value(bytes.Clone(value)), Version: version}
	if a.LeaseID != "" {
		if !validLeaseID(a.LeaseID) || a.LeaseDuration < 0 {
			sec.Zero()
			return nil, malformed(op{kind: opFetch, ref: ref}, "its lease is not valid")
		}
		sec.Lease = &secrets.DynamicLease{ID: a.LeaseID, TTL: time.Duration(a.LeaseDuration) * time.Second, Renewable: a.Renewable}
	}
	return sec, nil
}

// isSet reports whether a raw JSON member is present and not null.
func isSet(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && string(raw) != "null"
}

// Renew asks Vault to extend the lease leaseID by increment (rounded up to whole seconds; zero
// asks for the lease's default) and returns the TTL Vault granted, which may be shorter than
// asked (the lease's max TTL). A lease Vault no longer knows (expired, revoked) or will not renew
// fails with LeaseNotFound.
func (s *Store) Renew(ctx context.Context, leaseID string, increment time.Duration) (time.Duration, error) {
	o := op{kind: opRenew, lease: leaseID}
	if err := checkLease(o, leaseID); err != nil {
		return 0, err
	}
	if increment < 0 {
		return 0, fail(o, secrets.InvalidInput, "the increment is negative; ask for a positive duration", "")
	}
	if err := ctx.Err(); err != nil {
		return 0, ctxError(o, err)
	}
	secs := int64((increment + time.Second - 1) / time.Second)
	body, _ := json.Marshal(map[string]any{"lease_id": leaseID, "increment": secs})
	rep, err := s.call(ctx, o, http.MethodPut, "sys/leases/renew", nil, body)
	if err != nil {
		return 0, err
	}
	defer clear(rep.body)
	if rep.status != http.StatusOK {
		return 0, s.statusError(o, rep)
	}
	var a answer
	if err := json.Unmarshal(rep.body, &a); err != nil || a.LeaseDuration < 0 {
		clear(a.Data)
		return 0, malformed(o, "it is not a lease renewal")
	}
	clear(a.Data)
	return time.Duration(a.LeaseDuration) * time.Second, nil
}

// Revoke asks Vault to revoke the lease leaseID, which ends its credentials. A lease Vault no
// longer knows (already revoked or expired; Vault answers 400 about the lease) is not an error.
func (s *Store) Revoke(ctx context.Context, leaseID string) error {
	o := op{kind: opRevoke, lease: leaseID}
	if err := checkLease(o, leaseID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return ctxError(o, err)
	}
	body, _ := json.Marshal(map[string]any{"lease_id": leaseID})
	rep, err := s.call(ctx, o, http.MethodPut, "sys/leases/revoke", nil, body)
	if err != nil {
		return err
	}
	clear(rep.body)
	switch {
	case rep.status == http.StatusOK || rep.status == http.StatusNoContent:
		return nil
	case rep.status == http.StatusBadRequest && rep.mentions("lease"):
		return nil // already gone
	}
	return s.statusError(o, rep)
}

// checkLease refuses a lease id that Vault could not have issued.
func checkLease(o op, leaseID string) error {
	if !validLeaseID(leaseID) {
		o.lease = "" // not shown: it is not a lease id
		return fail(o, secrets.InvalidInput, fmt.Sprintf("the lease id is empty, longer than %d bytes or holds characters Vault's lease ids never have; pass the Lease.ID of a fetched secret", MaxLeaseIDLen), "")
	}
	return nil
}

// validLeaseID reports whether id looks like a Vault lease id: printable ASCII without spaces.
func validLeaseID(id string) bool {
	if id == "" || len(id) > MaxLeaseIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

// path is a checked secret path.
type path struct {
	path string // the API path, without /v1/
	kv2  bool   // it has the shape of a KV version 2 read: <mount>/data/<name>
}

// reserved are the first segments of Vault's own API, refused before any data or creds segment.
var reserved = map[string]bool{"sys": true, "auth": true, "identity": true}

// parsePath checks ref and returns its path. Errors are InvalidInput.
func parsePath(ref secrets.Ref) (path, error) {
	o := op{kind: opFetch, ref: ref}
	p := ref.Path
	if ref.Stage != "" {
		return path{}, fail(o, secrets.InvalidInput, "Vault has no staging labels; leave the stage out (a KV version 2 secret takes a version number)", "")
	}
	switch {
	case p == "":
		return path{}, fail(o, secrets.InvalidInput, "the secret path is empty; give an API path such as secret/data/<name> or database/creds/<role>", "")
	case len(p) > MaxPathLen:
		return path{}, fail(o, secrets.InvalidInput, fmt.Sprintf("the secret path is longer than %d bytes", MaxPathLen), "")
	case strings.HasPrefix(p, "/"):
		return path{}, fail(o, secrets.InvalidInput, "the secret path starts with \"/\"; give it as `vault read` takes it, without a leading / or /v1/ (secret/data/<name>)", "")
	case strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f || strings.ContainsRune("?#%\\", r) }):
		return path{}, fail(o, secrets.InvalidInput, "the secret path holds a control character or one of ? # % \\; give the path unescaped, without a query", "")
	}
	segs := strings.Split(p, "/")
	kv2 := false
	for i, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return path{}, fail(o, secrets.InvalidInput, "the secret path has an empty, \".\" or \"..\" segment (or ends with \"/\"); give the path in clean form", "")
		}
		if seg == "data" && i > 0 && i < len(segs)-1 {
			kv2 = true
		}
	}
	for _, seg := range segs {
		if seg == "data" || seg == "creds" {
			break
		}
		if reserved[seg] {
			return path{}, fail(o, secrets.InvalidInput, "the path is in Vault's own API (sys/, auth/ or identity/), not in a secrets engine; the agent reads only secrets such as <kv mount>/data/<name> or database/creds/<role>", "")
		}
	}
	if ref.Version != "" {
		n, err := strconv.ParseInt(ref.Version, 10, 64)
		switch {
		case err != nil || n < 1 || strconv.FormatInt(n, 10) != ref.Version:
			return path{}, fail(o, secrets.InvalidInput, "the version is not a KV version number (a positive integer without sign or leading zeros)", "")
		case !kv2:
			return path{}, fail(o, secrets.InvalidInput, "only KV version 2 secrets have versions, and the path is not one (<mount>/data/<name>); leave the version out", "")
		}
	}
	return path{path: p, kv2: kv2}, nil
}
