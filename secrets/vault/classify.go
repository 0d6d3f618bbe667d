package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secure-agent/secure-agent/secrets"
)

// opKind is what the caller asked the store to do.
type opKind int

const (
	opFetch opKind = iota
	opRenew
	opRevoke
)

// op describes a request for error messages: what it is for, and the secret or lease concerned.
type op struct {
	kind   opKind
	ref    secrets.Ref // opFetch
	lease  string      // opRenew, opRevoke
	login  bool        // the request is the login made for the operation
	lookup bool        // the request is the token lookup after a 403
}

// errRef is the Error.Ref of an operation: the secret's reference for a fetch, else empty.
func (o op) errRef() string {
	if o.kind != opFetch {
		return ""
	}
	s := o.ref.String()
	if len(s) > MaxPathLen+100 {
		s = strings.ToValidUTF8(s[:MaxPathLen], "") + "..."
	}
	return s
}

// prefix starts the message of a lease operation with the lease concerned.
func (o op) prefix() string {
	verb := map[opKind]string{opRenew: "renewing", opRevoke: "revoking"}[o.kind]
	switch {
	case verb == "":
		return ""
	case o.lease == "":
		return verb + " a lease: "
	default:
		return verb + " lease " + strconv.Quote(o.lease) + ": "
	}
}

// fail builds an error of the store about o.
func fail(o op, kind secrets.Kind, msg, detail string) *secrets.Error {
	return &secrets.Error{Kind: kind, Store: Name, Ref: o.errRef(), Msg: o.prefix() + msg, Detail: detail}
}

// ctxError is secrets.ContextError for o: StoreUnavailable, wrapping ctxErr.
func ctxError(o op, ctxErr error) *secrets.Error {
	e := secrets.ContextError(Name, o.ref, ctxErr)
	e.Ref = o.errRef()
	e.Msg = o.prefix() + e.Msg
	return e
}

// malformed is the error for a 200 answer the store cannot use.
func malformed(o op, why string) *secrets.Error {
	return fail(o, secrets.StoreUnavailable, "Vault's answer cannot be used: "+why+"; check that Address points at Vault or OpenBao", "HTTP 200")
}

// configError is an InvalidInput error listing every problem of the configuration.
func configError(problems []string) error {
	return &secrets.Error{Kind: secrets.InvalidInput, Store: Name,
		Msg: "invalid Vault store configuration: " + strings.Join(problems, "; ")}
}

// reply is one HTTP answer from Vault.
type reply struct {
	status int
	header http.Header
	// body is the body of a 2xx or 3xx answer. The caller zeroes it.
	body []byte
	// errs are Vault's error messages of a 4xx or 5xx answer: looked at to choose a message,
	// never shown.
	errs []string
}

// mentions reports whether one of Vault's error messages contains word, ignoring case.
func (r *reply) mentions(word string) bool {
	for _, e := range r.errs {
		if strings.Contains(strings.ToLower(e), word) {
			return true
		}
	}
	return false
}

// send makes one request through the Vault client with token ("" for none): GET with query,
// or PUT with the JSON body. Any HTTP answer is a reply; only a failure to get one is an error,
// already classified.
func (s *Store) send(ctx context.Context, o op, token, method, p string, query url.Values, body []byte) (*reply, error) {
	reqCtx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	c := s.client.WithRequestCallbacks(func(r *api.Request) { r.ClientToken = token })
	var resp *api.Response
	var err error
	if method == http.MethodGet {
		resp, err = c.Logical().ReadRawWithDataWithContext(reqCtx, p, query)
	} else {
		resp, err = c.Logical().WriteRawWithContext(reqCtx, p, body)
	}
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	var re *api.ResponseError
	if errors.As(err, &re) && resp != nil {
		return &reply{status: re.StatusCode, header: resp.Header, errs: re.Errors}, nil
	}
	if err != nil {
		return nil, s.transportError(ctx, reqCtx, o, err)
	}
	data, err := secrets.ReadBody(resp.Body, MaxResponseBytes, -1)
	if err == nil && reqCtx.Err() != nil {
		// The body may have been cut short by the cancellation: never use it.
		clear(data)
		err = reqCtx.Err()
	}
	if err != nil {
		return nil, s.transportError(ctx, reqCtx, o, err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// statusError classifies an answer the operation cannot use. Its message is the store's own:
// Vault's error messages are only looked at.
func (s *Store) statusError(o op, rep *reply) error {
	code := rep.status
	kind, msg := secrets.KindForHTTPStatus(code), ""
	switch {
	case code == http.StatusTooManyRequests:
		msg = "Vault's rate limit quota refused the request; it is retried after the delay, or raise the quota"
	case code == http.StatusServiceUnavailable && rep.mentions("sealed"):
		msg = "Vault is sealed; it must be unsealed before the agent can use it"
	case code == http.StatusServiceUnavailable:
		msg = "Vault is unavailable (sealed, without an active node, or restarting); check `vault status`"
	case code == http.StatusPreconditionFailed:
		kind, msg = secrets.StoreUnavailable, "a Vault performance standby has not caught up with the cluster yet"
	case code >= 500:
		msg = "Vault failed on its side; check its server logs"
	case code >= 300 && code < 400:
		kind, msg = secrets.StoreUnavailable, "Vault redirected the request (a standby node that does not forward requests); redirects are never followed, so point Address at the active node or the cluster's load balancer"
	case code < 300:
		if o.kind != opFetch || o.login || o.lookup {
			return malformed(o, fmt.Sprintf("it has status %d", code))
		}
		kind, msg = secrets.SecretNotFound, "Vault answered without data; check the path"
	case o.login:
		kind, msg = s.loginProblem(code)
	case o.lookup:
		kind, msg = secrets.AuthFailed, "Vault refused the agent's token: it is invalid, expired or revoked, or belongs to another namespace; give the agent a valid token and check Namespace"
	case o.kind == opFetch:
		kind, msg = fetchProblem(code)
	case o.kind == opRenew:
		kind, msg = renewProblem(code)
	default:
		kind, msg = revokeProblem(code)
	}
	e := fail(o, kind, msg, fmt.Sprintf("HTTP %d", code))
	if kind.Retryable() {
		e.RetryAfter = secrets.ParseRetryAfter(rep.header.Get("Retry-After"), time.Now())
	}
	return e
}

// loginProblem is the Kind and message of a 4xx answer to a login.
func (s *Store) loginProblem(code int) (secrets.Kind, string) {
	at := "auth/" + s.mount
	if code == http.StatusNotFound {
		return secrets.AuthFailed, fmt.Sprintf("Vault has no auth method mounted at %s (in the configured namespace, if any); check Auth.Mount and Namespace", at)
	}
	check := map[string]string{
		AuthAppRole:    "the role_id and secret_id (a secret id may have expired or used up its uses)",
		AuthKubernetes: "the role and the service account token (the role must bind the agent's service account and namespace, and the token's audience must match)",
		AuthJWT:        "the role and the JWT (its issuer, audience and expiry, and the role's bound claims)",
	}[s.auth.Method]
	return secrets.AuthFailed, fmt.Sprintf("Vault refused the agent's %s login at %s; check %s, and Namespace", s.auth.Method, at, check)
}

func fetchProblem(code int) (secrets.Kind, string) {
	switch code {
	case http.StatusForbidden:
		return secrets.AccessDenied, "the agent's Vault identity may not read this path; grant read on it in the identity's Vault policy, and check Namespace"
	case http.StatusNotFound:
		return secrets.SecretNotFound, "Vault has no secret at this path, or this KV version was deleted or destroyed; check the path (KV version 2 reads go to <mount>/data/<name>), the version and Namespace"
	case http.StatusMethodNotAllowed:
		return secrets.InvalidInput, "Vault does not support reading this path; check the path"
	case http.StatusUnauthorized:
		return secrets.AuthFailed, "Vault refused the agent's credentials; check the agent's Vault authentication settings"
	}
	return secrets.InvalidInput, "Vault refused the request as invalid; check the path and version"
}

func renewProblem(code int) (secrets.Kind, string) {
	switch code {
	case http.StatusBadRequest, http.StatusNotFound:
		return secrets.LeaseNotFound, "Vault does not renew the lease: it expired, was revoked, or is not renewable; fetch new credentials"
	case http.StatusForbidden:
		return secrets.AccessDenied, "the agent's Vault identity may not renew leases; grant update on sys/leases/renew in its Vault policy"
	case http.StatusUnauthorized:
		return secrets.AuthFailed, "Vault refused the agent's credentials; check the agent's Vault authentication settings"
	}
	return secrets.InvalidInput, "Vault refused the renewal as invalid"
}

func revokeProblem(code int) (secrets.Kind, string) {
	switch code {
	case http.StatusForbidden:
		return secrets.AccessDenied, "the agent's Vault identity may not revoke leases; grant update on sys/leases/revoke in its Vault policy (until then the credentials live until their TTL ends)"
	case http.StatusUnauthorized:
		return secrets.AuthFailed, "Vault refused the agent's credentials; check the agent's Vault authentication settings"
	}
	return secrets.InvalidInput, "Vault refused the revocation as invalid"
}

var errTooLarge = secrets.ErrTooLarge

// transportError classifies a failure to get (or to finish reading) an answer.
func (s *Store) transportError(ctx, reqCtx context.Context, o op, err error) error {
	if ctx.Err() != nil {
		return ctxError(o, ctx.Err())
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		dns       *net.DNSError
		refused   *secrets.Error
	)
	host := s.client.Address()
	if u, perr := url.Parse(host); perr == nil {
		host = u.Host
	}
	e := fail(o, secrets.StoreUnavailable, "", "network")
	e.Cause = err
	switch {
	case reqCtx.Err() != nil:
		e.Msg, e.Detail = fmt.Sprintf("Vault did not answer within %s; check that it is reachable from the agent", RequestTimeout), "timeout"
	case errors.Is(err, errTooLarge):
		e.Msg, e.Detail = fmt.Sprintf("Vault's answer is larger than %d bytes; check that Address points at Vault or OpenBao", MaxResponseBytes), "oversize"
	case errors.As(err, &refused):
		// The caller's dialer refused the destination: final, in the dialer's own words.
		e.Kind, e.Msg, e.Detail = refused.Kind, refused.Msg, "destination refused"
	case errors.As(err, &hostname):
		e.Kind, e.Detail = secrets.InvalidInput, "TLS hostname mismatch"
		e.Msg = fmt.Sprintf("Vault's TLS certificate is not valid for %q; point Address at a name the certificate covers", hostOnly(host))
	case errors.As(err, &unknownCA):
		e.Kind, e.Detail = secrets.InvalidInput, "TLS unknown authority"
		e.Msg = "Vault's TLS certificate is signed by an authority the agent does not trust; add Vault's CA certificate to the store's CA configuration (CACertPEM)"
	case errors.As(err, &invalid):
		e.Kind, e.Detail = secrets.InvalidInput, "TLS certificate invalid"
		e.Msg = "Vault's TLS certificate is not valid (expired, not yet valid, or not for serving); renew it or check the agent's clock"
	case errors.As(err, &verify):
		e.Kind, e.Detail = secrets.InvalidInput, "TLS verification"
		e.Msg = "the agent could not verify Vault's TLS certificate; check the certificate and the store's CA configuration"
	case errors.As(err, &record), errors.Is(err, http.ErrSchemeMismatch):
		e.Kind, e.Detail = secrets.InvalidInput, "TLS handshake"
		e.Msg = "Vault did not answer with TLS; check the scheme and port of Address"
	case errors.As(err, &dns):
		e.Detail = "DNS"
		e.Msg = fmt.Sprintf("the agent could not resolve Vault's host %q; check Address and the agent's DNS", hostOnly(host))
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Detail = "connection refused"
		e.Msg = fmt.Sprintf("Vault at %q refused the connection; check that it is running and that Address's port is right", host)
	default:
		e.Msg = fmt.Sprintf("the agent could not get an answer from Vault at %q; check that it is reachable from the agent", host)
	}
	return e
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// validHeaderValue reports whether v can be sent as a header value: printable ASCII without
// spaces, as Vault's tokens are.
func validHeaderValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return false
		}
	}
	return true
}
