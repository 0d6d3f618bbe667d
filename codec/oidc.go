package codec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// DefaultGroupsClaim is the claim that lists a user's groups when OIDCOptions.GroupsClaim is empty.
const DefaultGroupsClaim = "groups"

// Defaults for how often the issuer's key set (JWKS) is fetched.
const (
	// DefaultKeyRefreshInterval is the least time between two fetches of the key set: a token
	// signed with a key id the server has not seen makes it fetch the set again, at most this
	// often, so tokens with made-up key ids cannot turn the server against the issuer.
	DefaultKeyRefreshInterval = 10 * time.Second
	// DefaultKeyMaxAge is how long a fetched key set is used before it is fetched again, so a key
	// the issuer withdraws stops being accepted within this time.
	DefaultKeyMaxAge = time.Hour
)

const (
	// oidcLeeway is the clock skew allowed on exp and nbf.
	oidcLeeway = 30 * time.Second
	// maxTokenBytes bounds the tokens the verifier parses at all.
	maxTokenBytes = 16 << 10
	// idpTimeout bounds discovery and each key set fetch.
	idpTimeout = 10 * time.Second
)

// oidcAlgs are the JWS algorithms a token may be signed with: asymmetric only. "none" and the
// HMAC algorithms (HS256, ...) are refused before any key is looked at, so a token "signed" with
// the issuer's public key as an HMAC secret cannot pass.
var oidcAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.EdDSA,
}

// registeredClaims cannot serve as the groups claim: naming "iss" or "aud" there would admit
// everyone the issuer signs tokens for.
var registeredClaims = []string{"iss", "aud", "azp", "exp", "nbf", "iat", "jti"}

// OIDCOptions configure an [OIDCVerifier]: which access tokens, forwarded by the Web UI from
// its single sign-on, open the codec server.
type OIDCOptions struct {
	// Issuer is the identity provider's issuer URL, exactly as its tokens carry it in "iss" (a
	// trailing slash matters). Its discovery document is <Issuer>/.well-known/openid-configuration.
	// Required; https, or http for a loopback host (tests only).
	Issuer string

	// Audience must be one of the token's "aud" values: the identifier your identity provider
	// puts into the access tokens it issues for the Web UI. Required.
	Audience string

	// AllowedSubjects ("sub" values) and AllowedGroups (values of GroupsClaim) say who may use
	// the codec server: a token passes if its subject is listed or one of its groups is. At least
	// one of the two lists is required, since an issuer and audience alone would admit every
	// user of the tenant.
	AllowedSubjects []string
	AllowedGroups   []string

	// GroupsClaim is the top-level claim holding the user's groups, a JSON array of strings or
	// one string. Empty: DefaultGroupsClaim ("groups"). The registered claims (iss, aud, azp,
	// exp, nbf, iat, jti) are refused.
	GroupsClaim string

	// JWKSURL, when set, is where the issuer's signing keys are fetched, and no discovery is
	// done. Empty: the jwks_uri of the discovery document. https, or http for a loopback host.
	JWKSURL string

	// HTTPClient fetches the discovery document and the key set. nil: a client with a 10 s
	// timeout and the system's CAs. Redirects are followed only to https (or loopback) URLs.
	HTTPClient *http.Client

	// KeyRefreshInterval is the least time between two key set fetches (0: 10 s); KeyMaxAge how
	// long a fetched key set is used (0: 1 h).
	KeyRefreshInterval time.Duration
	KeyMaxAge          time.Duration

	// Logger, when set, gets a line for each key set fetch (URL, number of keys, or the error).
	Logger *slog.Logger
}

// OIDCOptionError is one invalid OIDC option; Option is the OIDCOptions field's name.
type OIDCOptionError struct {
	Option  string
	Problem string
}

func (e *OIDCOptionError) Error() string { return "codec server OIDC " + e.Option + ": " + e.Problem }

// Validate reports every invalid option at once, each as an *OIDCOptionError (errors.Join).
func (o OIDCOptions) Validate() error {
	var errs []error
	bad := func(option, format string, args ...any) {
		errs = append(errs, &OIDCOptionError{Option: option, Problem: fmt.Sprintf(format, args...)})
	}
	if o.Issuer == "" {
		bad("Issuer", "is required: the identity provider's issuer URL, as its tokens carry it in iss")
	} else if err := checkIdPURL(o.Issuer); err != nil {
		bad("Issuer", "%v", err)
	} else if u, _ := url.Parse(o.Issuer); u.RawQuery != "" || u.ForceQuery {
		bad("Issuer", "%q has a query; an issuer URL has none", o.Issuer)
	}
	if o.Audience == "" {
		bad("Audience", "is required: the audience (aud) your identity provider puts into the Web UI's access tokens")
	} else if strings.TrimSpace(o.Audience) != o.Audience {
		bad("Audience", "%q has leading or trailing spaces", o.Audience)
	}
	if len(o.AllowedSubjects) == 0 && len(o.AllowedGroups) == 0 {
		bad("AllowedSubjects", "allowed subjects or allowed groups are required: an issuer and audience alone would admit every user the issuer signs tokens for")
	}
	for _, s := range o.AllowedSubjects {
		if strings.TrimSpace(s) == "" {
			bad("AllowedSubjects", "has an empty entry")
		}
	}
	for _, g := range o.AllowedGroups {
		if strings.TrimSpace(g) == "" {
			bad("AllowedGroups", "has an empty entry")
		}
	}
	if slices.Contains(registeredClaims, o.GroupsClaim) {
		bad("GroupsClaim", "%q is a registered claim, not a list of groups; use the claim your identity provider puts groups in (often %q)", o.GroupsClaim, DefaultGroupsClaim)
	}
	if o.JWKSURL != "" {
		if err := checkIdPURL(o.JWKSURL); err != nil {
			bad("JWKSURL", "%v", err)
		}
	}
	if o.KeyRefreshInterval < 0 {
		bad("KeyRefreshInterval", "must not be negative")
	}
	if o.KeyMaxAge < 0 {
		bad("KeyMaxAge", "must not be negative")
	}
	return errors.Join(errs...)
}

// checkIdPURL accepts an absolute https URL, or http for a loopback host.
func checkIdPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL such as https://login.example.com/realms/ops", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q carries credentials; give the URL without them", u.Redacted())
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q has a fragment (#...); remove it", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q is not https: tokens and keys must come over TLS (http is accepted only for a loopback host such as 127.0.0.1, for tests)", raw)
	default:
		return fmt.Errorf("%q is not an https URL", raw)
	}
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// OIDCVerifier checks the access tokens that the Web UI forwards to the codec server. Make it
// with [NewOIDCVerifier] and put it into ServerOptions.OIDC. It is safe for concurrent use.
type OIDCVerifier struct {
	issuer      string
	audience    string
	verifier    *oidc.IDTokenVerifier
	keys        *jwksCache
	subjects    map[string]bool
	groups      map[string]bool
	groupsClaim string
	now         func() time.Time
}

// NewOIDCVerifier validates opts, reads the issuer's discovery document (unless opts.JWKSURL is
// set) and fetches its key set once, so that a wrong issuer, an unreachable identity provider or
// a key set without usable keys is reported now rather than on the first request.
//
// A token then passes when all of these hold, in this order: it is a compact JWS of at most
// 16 KiB; its algorithm is asymmetric (RS*, PS*, ES*, EdDSA; never none or HS*); its key id names
// a key of the issuer's key set (an unknown key id fetches the set again, at most once per
// KeyRefreshInterval) and its signature verifies with that key; iss equals Issuer exactly; aud
// contains Audience; exp is present and not past, and nbf (if present) not in the future, with
// 30 s of leeway; and its sub is in AllowedSubjects or one of its groups in AllowedGroups. The
// last check failing is a 403, any other a 401.
func NewOIDCVerifier(ctx context.Context, opts OIDCOptions) (*OIDCVerifier, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	client := idpClient(opts.HTTPClient)
	jwksURL := opts.JWKSURL
	if jwksURL == "" {
		var err error
		if jwksURL, err = discoverJWKS(ctx, client, opts.Issuer); err != nil {
			return nil, err
		}
	}
	refresh, maxAge := opts.KeyRefreshInterval, opts.KeyMaxAge
	if refresh == 0 {
		refresh = DefaultKeyRefreshInterval
	}
	if maxAge == 0 {
		maxAge = DefaultKeyMaxAge
	}
	keys := &jwksCache{url: jwksURL, client: client, refreshEvery: refresh, maxAge: maxAge, log: opts.Logger}
	if err := keys.prime(ctx); err != nil {
		return nil, fmt.Errorf("codec server OIDC: fetching the issuer's signing keys: %w", err)
	}
	v := &OIDCVerifier{
		issuer:   opts.Issuer,
		audience: opts.Audience,
		verifier: oidc.NewVerifier(opts.Issuer, keys, &oidc.Config{
			ClientID:             opts.Audience,
			SupportedSigningAlgs: oidcAlgs,
			SkipExpiryCheck:      true, // checked below, with a small leeway instead of none
		}),
		keys:        keys,
		subjects:    map[string]bool{},
		groups:      map[string]bool{},
		groupsClaim: opts.GroupsClaim,
		now:         time.Now,
	}
	if v.groupsClaim == "" {
		v.groupsClaim = DefaultGroupsClaim
	}
	for _, s := range opts.AllowedSubjects {
		v.subjects[s] = true
	}
	for _, g := range opts.AllowedGroups {
		v.groups[g] = true
	}
	return v, nil
}

// Issuer is the issuer whose tokens the verifier accepts.
func (v *OIDCVerifier) Issuer() string { return v.issuer }

// idpClient copies base (or a default client) and refuses redirects to anything but https or a
// loopback http URL.
func idpClient(base *http.Client) *http.Client {
	c := &http.Client{Timeout: idpTimeout}
	if base != nil {
		cp := *base
		c = &cp
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return checkIdPURL(req.URL.String())
	}
	return c
}

// discoverJWKS reads the issuer's discovery document: its issuer must equal the configured one,
// and its jwks_uri must be https (or loopback http).
func discoverJWKS(ctx context.Context, client *http.Client, issuer string) (string, error) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), idpTimeout)
	defer cancel()
	where := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return "", fmt.Errorf("codec server OIDC: discovery at %s: %w", where, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return "", fmt.Errorf("codec server OIDC: the discovery document at %s has no jwks_uri; set the key set URL explicitly", where)
	}
	if err := checkIdPURL(meta.JWKSURI); err != nil {
		return "", fmt.Errorf("codec server OIDC: the discovery document's jwks_uri: %w", err)
	}
	return meta.JWKSURI, nil
}

// oidcResult is what verify decided. status is 0 when the token passes, else 401 or 403; reason
// is for the server's log (never the token, nor any unverified claim); subject is the verified
// sub, when the signature and claims were good.
type oidcResult struct {
	status  int
	reason  string
	subject string
}

// verify checks one bearer token as NewOIDCVerifier describes.
func (v *OIDCVerifier) verify(ctx context.Context, raw string) oidcResult {
	unauthorized := func(reason string) oidcResult {
		return oidcResult{status: http.StatusUnauthorized, reason: "oidc: " + reason}
	}
	if len(raw) > maxTokenBytes {
		return unauthorized("token too long")
	}
	if !isCompactJWS(raw) {
		return unauthorized("not a JWT")
	}
	note := &verifyNote{}
	tok, err := v.verifier.Verify(context.WithValue(ctx, noteKey{}, note), raw)
	if err != nil {
		return unauthorized(v.whyRejected(note))
	}

	now := v.now()
	if tok.Expiry.IsZero() {
		return unauthorized("token has no exp")
	}
	if now.After(tok.Expiry.Add(oidcLeeway)) {
		return unauthorized("token expired")
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return unauthorized("claims are not a JSON object")
	}
	if nbf, ok := claims["nbf"]; ok {
		t, err := numericDate(nbf)
		if err != nil {
			return unauthorized("nbf is not a number")
		}
		if now.Add(oidcLeeway).Before(t) {
			return unauthorized("token not valid yet (nbf)")
		}
	}

	if tok.Subject != "" && v.subjects[tok.Subject] {
		return oidcResult{subject: tok.Subject}
	}
	for _, g := range claimStrings(claims[v.groupsClaim]) {
		if v.groups[g] {
			return oidcResult{subject: tok.Subject}
		}
	}
	return oidcResult{status: http.StatusForbidden, reason: "oidc: subject and groups not allowed", subject: tok.Subject}
}

// whyRejected names the check a token failed. Claims are read only from a payload whose
// signature verified.
func (v *OIDCVerifier) whyRejected(note *verifyNote) string {
	if note.payload == nil {
		if note.reason != "" {
			return note.reason
		}
		return "malformed token or signature algorithm not allowed"
	}
	var c struct {
		Issuer   string   `json:"iss"`
		Audience audience `json:"aud"`
	}
	if err := json.Unmarshal(note.payload, &c); err != nil {
		return "claims are not a JSON object"
	}
	if c.Issuer != v.issuer {
		return "issuer does not match"
	}
	if !slices.Contains(c.Audience, v.audience) {
		return "audience does not match"
	}
	return "claims rejected"
}

// isCompactJWS reports whether s has the form header.payload.signature in base64url.
func isCompactJWS(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return parts[0] != "" && parts[1] != ""
}

// audience is "aud": one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// claimStrings reads a claim that is a string or an array of strings; anything else is none.
func claimStrings(raw json.RawMessage) []string {
	if raw == nil {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var l []string
	if json.Unmarshal(raw, &l) == nil {
		return l
	}
	return nil
}

// numericDate reads a JWT NumericDate (seconds since the epoch, maybe fractional).
func numericDate(raw json.RawMessage) (time.Time, error) {
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, err
	}
	if math.Abs(f) > 1e12 { // beyond the year 33000: no issuer means that
		return time.Time{}, errors.New("out of range")
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), nil
}
