// Package vaulttest is a fake HashiCorp Vault (or OpenBao) for tests. Server is an http.Handler
// that speaks the subset of Vault's HTTP API the agent uses, faithfully enough that the official
// client github.com/hashicorp/vault/api works against it unchanged:
//
//   - logins: PUT or POST /v1/auth/<mount>/login for AppRole ({role_id, secret_id}), Kubernetes
//     and JWT ({role, jwt}) mounts, answering {"auth": {"client_token", "accessor",
//     "lease_duration", "renewable", "policies", ...}};
//   - token auth by the X-Vault-Token header, and GET /v1/auth/token/lookup-self;
//   - an optional namespace every request must name in X-Vault-Namespace;
//   - KV version 2: GET /v1/<mount>/data/<path>[?version=N] answering {"data": {"data": {...},
//     "metadata": {"version", "created_time", "deletion_time", "destroyed",
//     "custom_metadata"}}}, and KV version 1: GET /v1/<mount>/<path> answering {"data": {...}};
//   - dynamic credentials: GET /v1/<mount>/creds/<role>, answering {"lease_id":
//     "<mount>/creds/<role>/<random>", "lease_duration", "renewable": true, "data": {"username",
//     "password"}}, made by the Creds hook;
//   - PUT or POST /v1/sys/leases/renew {lease_id, increment} and /v1/sys/leases/revoke
//     {lease_id}, revoke calling the Revoke hook; ExpireDue (or the ticker StartExpiry starts)
//     revokes leases whose TTL has passed the same way.
//
// Errors have Vault's shape, {"errors": ["..."]}, and its status codes: 403 "permission denied"
// for a missing, unknown, expired or revoked token and for a path the token's policy does not
// grant, 404 for a missing secret or version ({"errors": []}) or an unknown route ("no handler
// for route"), 400 for failed logins and unknown leases, 405 for an unsupported method, 429 with
// Retry-After when a test throttles the server, 503 "Vault is sealed" when a test seals it.
//
// Access control is a simple model of Vault's ACL policies: every token carries a list of API
// paths (without the /v1/ prefix) it may use, each exact or a prefix ending in "*". Looking up
// the token itself (auth/token/lookup-self) is always allowed, as Vault's default policy does.
//
// The server keeps its own clock, time.Now plus what Advance added, so tests expire tokens and
// leases without sleeping. It records every request (Requests) and every lease's state (Leases,
// Lease) for tests to assert on. All methods are safe for concurrent use.
package vaulttest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the Server's TTLs.
const (
	DefaultTokenTTL    = time.Hour
	DefaultLeaseTTL    = time.Hour
	DefaultMaxLeaseTTL = 24 * time.Hour
)

// Auth methods of a Login.
const (
	MethodAppRole    = "approle"
	MethodKubernetes = "kubernetes"
	MethodJWT        = "jwt"
)

// Login is one set of credentials a login mount accepts, and the token it issues for them.
type Login struct {
	// Method is MethodAppRole, MethodKubernetes or MethodJWT.
	Method string
	// Mount is the auth mount path (auth/<Mount>/login); empty means the Method's name.
	Mount string
	// RoleID and SecretID are what an AppRole login must send. An empty SecretID accepts a login
	// without one (a role with bind_secret_id=false).
	RoleID, SecretID string
	// Role and JWT are what a Kubernetes or JWT login must send.
	Role, JWT string
	// Paths is the token's policy: the API paths it may use (see the package documentation).
	Paths []string
	// TTL is the issued token's lease_duration; zero means the Server's TokenTTL.
	TTL time.Duration
}

// Request is one request the server received.
type Request struct {
	Method string
	// Path is the URL path, /v1/... .
	Path string
	// Query is the raw query string.
	Query string
	// Token reports whether the request carried an X-Vault-Token header.
	Token bool
	// Namespace is the X-Vault-Namespace header, "" if none.
	Namespace string
	// Status is the HTTP status of the answer.
	Status int
}

// Lease is the state of one lease on dynamic credentials.
type Lease struct {
	ID       string
	Mount    string
	Role     string
	Username string
	Created  time.Time
	// Expires is when the lease ends unless renewed.
	Expires time.Time
	// TTL is the TTL last granted (at creation or by the last renewal).
	TTL time.Duration
	// Renewals counts successful renewals.
	Renewals int
	// Revoked is set once the Revoke hook has succeeded for the lease.
	Revoked bool
	// RevokedBy is "revoke" (sys/leases/revoke) or "expiry" (ExpireDue), once Revoked.
	RevokedBy string
	RevokedAt time.Time
	// RevokeFailures counts calls of the Revoke hook that failed.
	RevokeFailures int

	revoking bool
}

// Server is a fake Vault. Build it with New, configure its exported fields before it serves, and
// serve it with net/http/httptest.
type Server struct {
	// Namespace, when not empty, is the namespace every request must name in X-Vault-Namespace
	// (surrounding slashes ignored). A login that names another answers 404 (the mount does not
	// exist there), any other request 403.
	Namespace string
	// TokenTTL is the default lease_duration of tokens issued by logins (default
	// DefaultTokenTTL).
	TokenTTL time.Duration
	// LeaseTTL is the TTL of new dynamic credentials and of a renewal that asks for no increment
	// (default DefaultLeaseTTL).
	LeaseTTL time.Duration
	// MaxLeaseTTL caps a lease's life from its creation (default DefaultMaxLeaseTTL).
	MaxLeaseTTL time.Duration
	// Creds makes the credentials of GET <mount>/creds/<role>. An error answers 500. Nil makes a
	// random username and password.
	Creds func(role string) (username, password string, err error)
	// Revoke ends the credentials of a lease being revoked or expired (for example DROP ROLE). An
	// error leaves the lease unrevoked: sys/leases/revoke answers 500 and ExpireDue tries again
	// next time. Nil does nothing.
	Revoke func(username string) error
	// ErrorSuffix is appended to every error message the server sends, so a test can plant a
	// canary in Vault's error text and check that a client never shows it.
	ErrorSuffix string

	mu        sync.Mutex
	offset    time.Duration
	sealed    bool
	throttleN int
	throttleD time.Duration
	logins    []Login
	tokens    map[string]*token
	kv2       map[string]map[string][]*kvVersion // mount → path → versions (index version-1)
	kv1       map[string]map[string]map[string]any
	creds     map[string]bool // dynamic-credentials mounts
	leases    map[string]*Lease
	requests  []Request
}

type token struct {
	accessor string
	paths    []string
	created  time.Time
	ttl      time.Duration // 0: never expires
	revoked  bool
}

type kvVersion struct {
	data    map[string]any
	created time.Time
	deleted time.Time
}

// New returns an empty, unsealed Server.
func New() *Server {
	return &Server{
		tokens: map[string]*token{},
		kv2:    map[string]map[string][]*kvVersion{},
		kv1:    map[string]map[string]map[string]any{},
		creds:  map[string]bool{},
		leases: map[string]*Lease{},
	}
}

// Now returns the server's clock: time.Now plus everything Advance added.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Server) now() time.Time { return time.Now().Add(s.offset) }

// Advance moves the server's clock forward by d: tokens and leases expire as if d had passed.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// AddLogin makes a login mount accept l's credentials.
func (s *Server) AddLogin(l Login) {
	if l.Mount == "" {
		l.Mount = l.Method
	}
	l.Mount = strings.Trim(l.Mount, "/")
	l.Paths = slices.Clone(l.Paths)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logins = append(s.logins, l)
}

// AddToken makes token valid for ttl (zero: it never expires) with the policy paths.
func (s *Server) AddToken(tok string, ttl time.Duration, paths ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = &token{accessor: randomID(24), paths: slices.Clone(paths), created: s.now(), ttl: ttl}
}

// RevokeTokens revokes every token the server knows: the next request with one is denied, as
// if it had expired.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// PutKV writes a new version of the KV version 2 secret at path in mount and returns its version
// number.
func (s *Server) PutKV(mount, path string, data map[string]any) int {
	mount, path = strings.Trim(mount, "/"), strings.Trim(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.kv2[mount]
	if m == nil {
		m = map[string][]*kvVersion{}
		s.kv2[mount] = m
	}
	m[path] = append(m[path], &kvVersion{data: maps.Clone(data), created: s.now()})
	return len(m[path])
}

// DeleteKV soft-deletes version of the KV version 2 secret at path in mount: reading it then
// answers 404 with its metadata, as Vault does.
func (s *Server) DeleteKV(mount, path string, version int) {
	mount, path = strings.Trim(mount, "/"), strings.Trim(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if vs := s.kv2[mount][path]; version >= 1 && version <= len(vs) {
		vs[version-1].deleted = s.now()
	}
}

// PutKV1 writes the KV version 1 secret at path in mount.
func (s *Server) PutKV1(mount, path string, data map[string]any) {
	mount, path = strings.Trim(mount, "/"), strings.Trim(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.kv1[mount]
	if m == nil {
		m = map[string]map[string]any{}
		s.kv1[mount] = m
	}
	m[path] = maps.Clone(data)
}

// MountCreds mounts a dynamic-credentials engine (such as the database secrets engine) at mount:
// GET <mount>/creds/<role> then makes credentials with a lease.
func (s *Server) MountCreds(mount string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[strings.Trim(mount, "/")] = true
}

// SetSealed seals or unseals the server. A sealed server answers every request 503.
func (s *Server) SetSealed(sealed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = sealed
}

// Throttle makes the next n requests answer 429 with Retry-After retryAfter (whole seconds), as
// a Vault rate limit quota does.
func (s *Server) Throttle(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleN, s.throttleD = n, retryAfter
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns how many requests had method and URL path (/v1/...).
func (s *Server) Count(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// Lease returns the state of the lease id.
func (s *Server) Lease(id string) (Lease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[id]
	if !ok {
		return Lease{}, false
	}
	return *l, true
}

// Leases returns the state of every lease, oldest first.
func (s *Server) Leases() []Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ExpireDue revokes, through the Revoke hook, every lease whose TTL has passed on the server's
// clock, and returns the ids it revoked. A lease whose hook fails stays unrevoked and is tried
// again by the next call.
func (s *Server) ExpireDue() []string {
	s.mu.Lock()
	now := s.now()
	var due []*Lease
	for _, l := range s.leases {
		if !l.Revoked && !l.revoking && !now.Before(l.Expires) {
			l.revoking = true
			due = append(due, l)
		}
	}
	s.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].ID < due[j].ID })
	var ids []string
	for _, l := range due {
		if s.finishRevoke(l, "expiry") == nil {
			ids = append(ids, l.ID)
		}
	}
	return ids
}

// StartExpiry calls ExpireDue every interval until the returned stop function is called; stop
// waits for a call in progress to end.
func (s *Server) StartExpiry(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.ExpireDue()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// finishRevoke calls the Revoke hook for l, which the caller marked revoking, and records the
// outcome.
func (s *Server) finishRevoke(l *Lease, by string) error {
	var err error
	if s.Revoke != nil {
		err = s.Revoke(l.Username)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l.revoking = false
	if err != nil {
		l.RevokeFailures++
		return err
	}
	l.Revoked, l.RevokedBy, l.RevokedAt = true, by, s.now()
	return nil
}

// ServeHTTP answers one request of Vault's HTTP API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.serve(rec, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Token: r.Header.Get("X-Vault-Token") != "", Namespace: r.Header.Get("X-Vault-Namespace"),
		Status: rec.status,
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		s.fail(w, http.StatusNotFound)
		return
	}
	p = strings.Trim(p, "/")
	s.mu.Lock()
	sealed := s.sealed
	throttled := s.throttleN > 0
	retryAfter := s.throttleD
	if throttled {
		s.throttleN--
	}
	s.mu.Unlock()
	switch {
	case sealed:
		s.fail(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	case throttled:
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
		s.fail(w, http.StatusTooManyRequests, fmt.Sprintf("request path %q: rate limit quota exceeded", p))
		return
	}
	isLogin := strings.HasPrefix(p, "auth/") && strings.HasSuffix(p, "/login")
	if strings.Trim(r.Header.Get("X-Vault-Namespace"), "/") != strings.Trim(s.Namespace, "/") {
		if isLogin {
			s.fail(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
		} else {
			s.fail(w, http.StatusForbidden, "permission denied")
		}
		return
	}
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	if isLogin {
		if !write {
			s.fail(w, http.StatusMethodNotAllowed, "unsupported operation")
			return
		}
		s.login(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "auth/"), "/login"))
		return
	}
	tok, ok := s.authorize(r.Header.Get("X-Vault-Token"), p)
	if !ok {
		s.fail(w, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case p == "auth/token/lookup-self":
		if r.Method != http.MethodGet {
			s.fail(w, http.StatusMethodNotAllowed, "unsupported operation")
			return
		}
		s.lookupSelf(w, r.Header.Get("X-Vault-Token"), tok)
	case p == "sys/leases/renew" || p == "sys/leases/revoke":
		if !write {
			s.fail(w, http.StatusMethodNotAllowed, "unsupported operation")
			return
		}
		if p == "sys/leases/renew" {
			s.renew(w, r)
		} else {
			s.revoke(w, r)
		}
	case r.Method != http.MethodGet:
		s.fail(w, http.StatusMethodNotAllowed, "unsupported operation")
	default:
		s.read(w, r, p)
	}
}

// authorize returns the token if it is valid and its policy grants path.
func (s *Server) authorize(tok, path string) (*token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok || tok == "" || t.revoked || (t.ttl > 0 && !s.now().Before(t.created.Add(t.ttl))) {
		return nil, false
	}
	if path == "auth/token/lookup-self" {
		return t, true
	}
	for _, g := range t.paths {
		if g == path || (strings.HasSuffix(g, "*") && strings.HasPrefix(path, strings.TrimSuffix(g, "*"))) {
			return t, true
		}
	}
	return nil, false
}

// fail answers status with Vault's error shape.
func (s *Server) fail(w http.ResponseWriter, status int, msgs ...string) {
	errs := []string{}
	for _, m := range msgs {
		errs = append(errs, m+s.ErrorSuffix)
	}
	if len(errs) == 0 && s.ErrorSuffix != "" {
		errs = append(errs, s.ErrorSuffix)
	}
	writeJSON(w, status, map[string]any{"errors": errs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// envelope is the body of a successful answer.
func envelope(data any) map[string]any {
	return map[string]any{
		"request_id": uuid(), "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": data, "wrap_info": nil, "warnings": nil, "auth": nil,
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, mount string) {
	var body struct {
		RoleID   string `json:"role_id"`
		SecretID string `json:"secret_id"`
		Role     string `json:"role"`
		JWT      string `json:"jwt"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		s.fail(w, http.StatusBadRequest, "failed to parse JSON input")
		return
	}
	s.mu.Lock()
	var method string
	var match *Login
	for i := range s.logins {
		l := &s.logins[i]
		if l.Mount != mount {
			continue
		}
		method = l.Method
		switch l.Method {
		case MethodAppRole:
			if body.RoleID == l.RoleID && body.SecretID == l.SecretID {
				match = l
			}
		case MethodKubernetes, MethodJWT:
			if body.Role == l.Role && body.JWT == l.JWT {
				match = l
			}
		}
		if match != nil {
			break
		}
	}
	var known bool
	for _, l := range s.logins {
		known = known || (l.Mount == mount && l.Role == body.Role)
	}
	s.mu.Unlock()
	if match == nil {
		switch method {
		case "":
			s.fail(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", "auth/"+mount+"/login"))
		case MethodAppRole:
			if body.RoleID == "" {
				s.fail(w, http.StatusBadRequest, "missing role_id")
			} else {
				s.fail(w, http.StatusBadRequest, "invalid role or secret ID")
			}
		case MethodKubernetes:
			if !known {
				s.fail(w, http.StatusBadRequest, fmt.Sprintf("invalid role name %q", body.Role))
			} else {
				s.fail(w, http.StatusForbidden, "permission denied")
			}
		default:
			if !known {
				s.fail(w, http.StatusBadRequest, fmt.Sprintf("role %q could not be found", body.Role))
			} else {
				s.fail(w, http.StatusBadRequest, "error validating token: invalid JWT")
			}
		}
		return
	}
	ttl := match.TTL
	if ttl == 0 {
		ttl = s.TokenTTL
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	tok := "hvs." + randomID(24)
	t := &token{accessor: randomID(24), paths: slices.Clone(match.Paths), ttl: ttl}
	s.mu.Lock()
	t.created = s.now()
	s.tokens[tok] = t
	s.mu.Unlock()
	resp := envelope(nil)
	resp["auth"] = map[string]any{
		"client_token": tok, "accessor": t.accessor,
		"policies": []string{"default", "test"}, "token_policies": []string{"default", "test"},
		"metadata": map[string]string{"role_name": match.Role}, "lease_duration": int64(ttl / time.Second),
		"renewable": true, "entity_id": uuid(), "token_type": "service", "orphan": true,
		"mfa_requirement": nil, "num_uses": 0,
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) lookupSelf(w http.ResponseWriter, tok string, t *token) {
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	data := map[string]any{
		"accessor": t.accessor, "creation_time": t.created.Unix(), "creation_ttl": int64(t.ttl / time.Second),
		"display_name": "test", "entity_id": "", "explicit_max_ttl": 0, "id": tok,
		"issue_time": t.created.Format(time.RFC3339Nano), "meta": nil, "num_uses": 0, "orphan": true,
		"path": "auth/test/login", "policies": []string{"default", "test"}, "renewable": t.ttl > 0,
		"ttl": 0, "type": "service", "expire_time": nil,
	}
	if t.ttl > 0 {
		exp := t.created.Add(t.ttl)
		data["ttl"] = int64(exp.Sub(now) / time.Second)
		data["expire_time"] = exp.Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, envelope(data))
}

// read answers a GET of a KV version 2, KV version 1 or dynamic-credentials path.
func (s *Server) read(w http.ResponseWriter, r *http.Request, p string) {
	s.mu.Lock()
	var mount string
	var kind string // "kv2", "kv1", "creds"
	for m := range s.kv2 {
		if strings.HasPrefix(p, m+"/") && len(m) > len(mount) {
			mount, kind = m, "kv2"
		}
	}
	for m := range s.kv1 {
		if strings.HasPrefix(p, m+"/") && len(m) > len(mount) {
			mount, kind = m, "kv1"
		}
	}
	for m := range s.creds {
		if strings.HasPrefix(p, m+"/") && len(m) > len(mount) {
			mount, kind = m, "creds"
		}
	}
	s.mu.Unlock()
	rest := strings.TrimPrefix(p, mount+"/")
	switch kind {
	case "kv2":
		key, ok := strings.CutPrefix(rest, "data/")
		if !ok {
			s.fail(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
			return
		}
		s.readKV2(w, r, mount, key)
	case "kv1":
		s.mu.Lock()
		data, ok := s.kv1[mount][rest]
		data = maps.Clone(data)
		s.mu.Unlock()
		if !ok {
			s.fail(w, http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, envelope(data))
	case "creds":
		role, ok := strings.CutPrefix(rest, "creds/")
		if !ok || role == "" || strings.Contains(role, "/") {
			s.fail(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
			return
		}
		s.newCreds(w, mount, role)
	default:
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
	}
}

func (s *Server) readKV2(w http.ResponseWriter, r *http.Request, mount, key string) {
	version := 0
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(w, http.StatusBadRequest, "invalid version")
			return
		}
		version = n
	}
	s.mu.Lock()
	vs := s.kv2[mount][key]
	if version == 0 {
		version = len(vs)
	}
	var v kvVersion
	found := version >= 1 && version <= len(vs)
	if found {
		v = *vs[version-1]
		v.data = maps.Clone(v.data)
	}
	s.mu.Unlock()
	if !found {
		s.fail(w, http.StatusNotFound)
		return
	}
	meta := map[string]any{
		"created_time": v.created.UTC().Format(time.RFC3339Nano), "custom_metadata": nil,
		"deletion_time": "", "destroyed": false, "version": version,
	}
	if !v.deleted.IsZero() {
		meta["deletion_time"] = v.deleted.UTC().Format(time.RFC3339Nano)
		writeJSON(w, http.StatusNotFound, envelope(map[string]any{"data": nil, "metadata": meta}))
		return
	}
	writeJSON(w, http.StatusOK, envelope(map[string]any{"data": v.data, "metadata": meta}))
}

func (s *Server) newCreds(w http.ResponseWriter, mount, role string) {
	username, password := "v-"+role+"-"+randomID(8), randomID(20)
	if s.Creds != nil {
		var err error
		if username, password, err = s.Creds(role); err != nil {
			s.fail(w, http.StatusInternalServerError, "failed to create credentials")
			return
		}
	}
	ttl := s.LeaseTTL
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	l := &Lease{ID: mount + "/creds/" + role + "/" + randomID(24), Mount: mount, Role: role, Username: username, TTL: ttl}
	s.mu.Lock()
	l.Created = s.now()
	l.Expires = l.Created.Add(ttl)
	s.leases[l.ID] = l
	s.mu.Unlock()
	resp := envelope(map[string]any{"username": username, "password": password})
	resp["lease_id"], resp["renewable"], resp["lease_duration"] = l.ID, true, int64(ttl/time.Second)
	writeJSON(w, http.StatusOK, resp)
}

// leaseBody decodes {lease_id, increment}; increment is seconds as a number or a string, or a
// Go duration string ("1h"), as Vault accepts.
func leaseBody(r *http.Request) (id string, increment time.Duration, ok bool) {
	var body struct {
		LeaseID   string          `json:"lease_id"`
		Increment json.RawMessage `json:"increment"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		return "", 0, false
	}
	if len(body.Increment) > 0 && string(body.Increment) != "null" {
		var n json.Number
		var str string
		switch {
		case json.Unmarshal(body.Increment, &n) == nil:
			secs, err := n.Int64()
			if err != nil || secs < 0 {
				return "", 0, false
			}
			increment = time.Duration(secs) * time.Second
		case json.Unmarshal(body.Increment, &str) == nil:
			if secs, err := strconv.ParseInt(str, 10, 64); err == nil && secs >= 0 {
				increment = time.Duration(secs) * time.Second
			} else if d, err := time.ParseDuration(str); err == nil && d >= 0 {
				increment = d
			} else {
				return "", 0, false
			}
		default:
			return "", 0, false
		}
	}
	return body.LeaseID, increment, true
}

func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	id, inc, ok := leaseBody(r)
	if !ok || id == "" {
		s.fail(w, http.StatusBadRequest, "lease_id must be specified")
		return
	}
	s.mu.Lock()
	l, found := s.leases[id]
	now := s.now()
	if !found || l.Revoked || l.revoking || !now.Before(l.Expires) {
		s.mu.Unlock()
		s.fail(w, http.StatusBadRequest, "lease not found")
		return
	}
	if inc == 0 {
		inc = s.LeaseTTL
		if inc == 0 {
			inc = DefaultLeaseTTL
		}
	}
	maxTTL := s.MaxLeaseTTL
	if maxTTL == 0 {
		maxTTL = DefaultMaxLeaseTTL
	}
	exp := now.Add(inc)
	if limit := l.Created.Add(maxTTL); exp.After(limit) {
		exp = limit
	}
	l.Expires, l.TTL = exp, exp.Sub(now).Truncate(time.Second)
	l.Renewals++
	ttl := l.TTL
	s.mu.Unlock()
	resp := envelope(nil)
	resp["lease_id"], resp["renewable"], resp["lease_duration"] = id, true, int64(ttl/time.Second)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	id, _, ok := leaseBody(r)
	if !ok || id == "" {
		s.fail(w, http.StatusBadRequest, "lease_id must be specified")
		return
	}
	s.mu.Lock()
	l, found := s.leases[id]
	if !found || l.Revoked || l.revoking {
		s.mu.Unlock()
		s.fail(w, http.StatusBadRequest, "invalid lease ID")
		return
	}
	l.revoking = true
	s.mu.Unlock()
	if err := s.finishRevoke(l, "revoke"); err != nil {
		s.fail(w, http.StatusInternalServerError, "failed to revoke entry")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func randomID(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func uuid() string {
	h := randomID(32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
