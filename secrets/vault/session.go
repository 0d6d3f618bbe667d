package vault

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// session is one client token. It is replaced, never modified.
type session struct {
	token string
	// refresh is when a new login should replace the token; zero means never (the token method,
	// or a token without a TTL).
	refresh time.Time
}

// maxRefreshMargin bounds how long before its TTL ends a token is replaced.
const maxRefreshMargin = time.Minute

// call sends one request with the current client token, logging in first when there is none or
// it is about to expire. A 403 with a login method logs in again and sends the request once more;
// with the token method it looks the token up and fails with AuthFailed if the token is dead.
// Any other answer, 403 included, is returned for the caller to classify.
func (s *Store) call(ctx context.Context, o op, method, p string, query url.Values, body []byte) (*reply, error) {
	sess, err := s.session(ctx, o, nil)
	if err != nil {
		return nil, err
	}
	rep, err := s.send(ctx, o, sess.token, method, p, query, body)
	if err != nil || rep.status != http.StatusForbidden {
		return rep, err
	}
	if s.auth.Method == AuthToken {
		if err := s.checkToken(ctx, o, sess.token); err != nil {
			return nil, err
		}
		return rep, nil
	}
	if sess, err = s.session(ctx, o, sess); err != nil {
		return nil, err
	}
	return s.send(ctx, o, sess.token, method, p, query, body)
}

// session returns a token that is neither stale nor due for refresh, logging in when needed. One
// login runs at a time; calls that wait for it use its token.
func (s *Store) session(ctx context.Context, o op, stale *session) (*session, error) {
	if cur := s.current(stale); cur != nil {
		return cur, nil
	}
	select {
	case s.login <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxError(o, ctx.Err())
	}
	defer func() { <-s.login }()
	if cur := s.current(stale); cur != nil {
		return cur, nil // another call logged in meanwhile
	}
	next, err := s.logIn(ctx, o)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.sess == stale && s.auth.Method != AuthToken {
			s.sess = nil
		}
		return nil, err
	}
	s.sess = next
	return next, nil
}

// current returns the current session if it may be used: it exists, is not stale, and is not due
// for refresh. The token method's session is always used.
func (s *Store) current(stale *session) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.sess
	if s.auth.Method == AuthToken {
		return cur
	}
	if cur == nil || cur == stale || (!cur.refresh.IsZero() && !s.now().Before(cur.refresh)) {
		return nil
	}
	return cur
}

// logIn logs in with the configured login method and returns the new session.
func (s *Store) logIn(ctx context.Context, o op) (*session, error) {
	if s.auth.Method == AuthToken {
		// The token method has no login: a closed Store dropped its token.
		return nil, fail(o, secrets.StoreUnavailable, "the store was closed; the agent must build a new one", "")
	}
	var req map[string]string
	switch s.auth.Method {
	case AuthAppRole:
		req = map[string]string{"role_id": s.auth.RoleID}
		if s.auth.SecretID != "" {
			req["secret_id"] = s.auth.SecretID
		}
	default: // kubernetes, jwt
		req = map[string]string{"jwt": s.auth.JWT}
		if s.auth.Role != "" {
			req["role"] = s.auth.Role
		}
	}
	body, _ := json.Marshal(req)
	defer clear(body)
	lo := o
	lo.login = true
	rep, err := s.send(ctx, lo, "", http.MethodPut, "auth/"+s.mount+"/login", nil, body)
	if err != nil {
		return nil, err
	}
	defer clear(rep.body)
	if rep.status != http.StatusOK {
		return nil, s.statusError(lo, rep)
	}
	var a answer
	err = json.Unmarshal(rep.body, &a)
	clear(a.Data)
	switch {
	case err != nil:
		return nil, malformed(lo, "it is not a JSON object of Vault's shape")
	case isSet(a.WrapInfo):
		return nil, malformed(lo, "it is response-wrapped, which the agent does not ask for")
	case a.Auth == nil || a.Auth.ClientToken == "":
		return nil, fail(lo, secrets.AuthFailed, "Vault's answer to the login carries no client token (the role may require MFA, which the agent cannot answer); check the role's settings", "HTTP 200")
	case !validHeaderValue(a.Auth.ClientToken) || a.Auth.LeaseDuration < 0:
		return nil, malformed(lo, "its client token or TTL is not valid")
	}
	sess := &session{token: a.Auth.ClientToken}
	if ttl := time.Duration(a.Auth.LeaseDuration) * time.Second; ttl > 0 {
		sess.refresh = s.now().Add(ttl - min(ttl/5, maxRefreshMargin))
	}
	return sess, nil
}

// checkToken looks up the token-method token after a 403, and returns AuthFailed if Vault denies
// that too: the token is invalid, expired, revoked or of another namespace. It returns nil when
// the token is alive, or when the lookup could not tell.
func (s *Store) checkToken(ctx context.Context, o op, token string) error {
	lo := o
	lo.lookup = true
	rep, err := s.send(ctx, lo, token, http.MethodGet, "auth/token/lookup-self", nil, nil)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return nil
	}
	clear(rep.body)
	if rep.status == http.StatusForbidden {
		return s.statusError(lo, rep)
	}
	return nil
}
