package codec

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

// DefaultMaxBodyBytes is the request body limit when ServerOptions.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 4 << 20

// NamespaceHeader is the header in which the Web UI and the temporal CLI name the namespace.
const NamespaceHeader = "X-Namespace"

// CORS answers for an allowed origin. The Web UI with codec.passAccessToken sends its user's
// access token in Authorization and, when it has one, the ID token in Authorization-Extras; a
// preflight that does not allow both fails in the browser. Authorization-Extras is never read.
const (
	corsAllowMethods = "POST"
	corsAllowHeaders = "Authorization, Authorization-Extras, Content-Type, X-Namespace"
	corsMaxAge       = "600"
)

// ServerOptions configure the codec server.
type ServerOptions struct {
	// Token is a bearer token that opens every encode and decode request
	// ("Authorization: Bearer <Token>"), compared in constant time. Characters: RFC 6750's
	// token68 (letters, digits, -._~+/ and trailing =), as made by `openssl rand -hex 32`.
	// Token or OIDC is required: there is no unauthenticated mode.
	Token string

	// OIDC, when set, also admits requests whose bearer token is an access token the verifier
	// accepts (see NewOIDCVerifier): what the Web UI forwards from its single sign-on when
	// configured with codec.passAccessToken. With Token and OIDC both set, either admits.
	OIDC *OIDCVerifier

	// AllowedOrigins are the browser origins (scheme://host[:port], such as the Web UI's
	// http://127.0.0.1:8233) that may call the server. Requests and preflights from any other
	// Origin are refused with 403; "*" is not accepted. Requests without an Origin header (the
	// temporal CLI, SDK clients) are not affected. Empty: no browser may call.
	AllowedOrigins []string

	// Namespaces, when not empty, are the only namespaces served: a request must name one of
	// them in its path (/{namespace}/decode) or its X-Namespace header, or it is refused with 403.
	// Empty: any namespace, or none, is served.
	Namespaces []string

	// MaxBodyBytes limits a request body; a larger one is refused with 413. 0 means
	// DefaultMaxBodyBytes (4 MiB).
	MaxBodyBytes int64

	// Logger, when set, gets one line per request: method, path, namespace, status, number of
	// payloads, duration, how the request was authenticated ("token" or "oidc", with the
	// token's verified subject), and for a refused request why. Never payloads, bodies or tokens.
	Logger *slog.Logger
}

// Validate checks the options as NewServer will.
func (o ServerOptions) Validate() error {
	if o.Token == "" && o.OIDC == nil {
		return errors.New("codec server: a bearer token or OIDC is required (generate a token with: openssl rand -hex 32)")
	}
	if o.Token != "" && !isToken68(o.Token) {
		return errors.New("codec server: the token has characters a bearer token cannot carry (use letters, digits and -._~+/ only, as openssl rand -hex 32 makes)")
	}
	for _, origin := range o.AllowedOrigins {
		if _, err := normalizeOrigin(origin); err != nil {
			return err
		}
	}
	for _, ns := range o.Namespaces {
		if ns == "" || strings.ContainsAny(ns, "/ ") {
			return fmt.Errorf("codec server: namespace %q is not a namespace name", ns)
		}
	}
	if o.MaxBodyBytes < 0 {
		return errors.New("codec server: MaxBodyBytes must not be negative")
	}
	return nil
}

// normalizeOrigin turns a configured origin into the form browsers send in Origin.
func normalizeOrigin(origin string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("codec server: allowed origin %q %s; want scheme://host[:port], such as http://127.0.0.1:8233", origin, why)
	}
	if strings.Contains(origin, "*") {
		return "", bad("is a wildcard, which is not allowed")
	}
	u, err := url.Parse(strings.TrimSuffix(origin, "/"))
	if err != nil {
		return "", bad("does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", bad("is not http or https")
	}
	if u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", bad("is not an origin")
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	} else {
		host = strings.TrimSuffix(host, ":443")
	}
	return u.Scheme + "://" + host, nil
}

// isToken68 reports whether s is an RFC 6750 b64token.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// server is the codec server's handler.
type server struct {
	codec      converter.PayloadCodec
	hasToken   bool
	tokenHash  [sha256.Size]byte
	oidc       *OIDCVerifier
	origins    map[string]bool
	namespaces map[string]bool
	maxBody    int64
	log        *slog.Logger
}

// NewServer returns the codec server: Temporal's remote codec protocol over HTTP, for the Web UI
// and the temporal CLI.
//
//   - POST /encode and POST /decode, also as /{namespace}/encode and /{namespace}/decode; the
//     namespace comes from the path or the X-Namespace header (both present must agree, else 400).
//     With ServerOptions.Namespaces set, other namespaces (or none) get 403.
//   - The body is {"payloads": [...]} in Temporal's proto JSON (metadata values and data in
//     base64); the answer has the same form, 200 and application/json, in the same order.
//   - Authorization: Bearer <ServerOptions.Token>, or an access token that ServerOptions.OIDC
//     accepts, is required. Without one, with another token, or with a token that fails an OIDC
//     check: 401 "unauthorized". A valid OIDC token whose subject and groups are not allowed:
//     403 "forbidden". Neither says which check failed; the log line does.
//   - CORS: an OPTIONS preflight from an allowed origin gets 204 with Access-Control-Allow-Origin
//     (that origin), -Allow-Methods POST, -Allow-Headers Authorization, Authorization-Extras,
//     Content-Type, X-Namespace, -Allow-Credentials true and -Max-Age 600; any request or
//     preflight from another origin gets 403 and no CORS headers.
//   - Other paths: 404. Other methods: 405. A body over the limit: 413. A body that is not
//     proto JSON payloads: 400 (the parser's message is not echoed, it can quote the body). A
//     payload that does not decrypt: 400 with the codec's error (key id, no payload bytes).
//   - Responses are Cache-Control: no-store.
//
// It panics if keys is nil or opts do not pass Validate.
func NewServer(keys *Keys, opts ServerOptions) http.Handler {
	if err := opts.Validate(); err != nil {
		panic(err.Error())
	}
	s := &server{
		codec:      NewPayloadCodec(keys),
		hasToken:   opts.Token != "",
		tokenHash:  sha256.Sum256([]byte(opts.Token)),
		oidc:       opts.OIDC,
		origins:    map[string]bool{},
		namespaces: map[string]bool{},
		maxBody:    opts.MaxBodyBytes,
		log:        opts.Logger,
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	for _, o := range opts.AllowedOrigins {
		n, _ := normalizeOrigin(o)
		s.origins[n] = true
	}
	for _, ns := range opts.Namespaces {
		s.namespaces[ns] = true
	}
	return s
}

// exchange is what one request did, for the log line.
type exchange struct {
	namespace string
	payloads  int
	status    int
	reason    string
	auth      string // "token" or "oidc"
	subject   string // the verified sub of an OIDC token
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{}
	s.serve(w, r, ex)
	if s.log == nil {
		return
	}
	level := slog.LevelInfo
	if ex.status >= 400 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", ex.status), slog.Duration("duration", time.Since(start)),
	}
	if ex.namespace != "" {
		attrs = append(attrs, slog.String("namespace", ex.namespace))
	}
	if ex.payloads > 0 {
		attrs = append(attrs, slog.Int("payloads", ex.payloads))
	}
	if ex.auth != "" {
		attrs = append(attrs, slog.String("auth", ex.auth))
	}
	if ex.subject != "" {
		attrs = append(attrs, slog.String("subject", ex.subject))
	}
	if ex.reason != "" {
		attrs = append(attrs, slog.String("reason", ex.reason))
	}
	s.log.LogAttrs(r.Context(), level, "codec request", attrs...)
}

// fail answers with a short plain-text error.
func (ex *exchange) fail(w http.ResponseWriter, status int, message, reason string) {
	ex.status, ex.reason = status, reason
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, message+"\n")
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, ex *exchange) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Origin")

	pathNS, op, ok := route(r.URL.Path)
	if !ok {
		ex.fail(w, http.StatusNotFound, "not found: the codec server serves POST /encode and /decode (or /{namespace}/encode, /{namespace}/decode)", "unknown path")
		return
	}

	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.origins[origin] {
			ex.fail(w, http.StatusForbidden, "origin not allowed", "origin not allowed")
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			ex.status = http.StatusNoContent
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}

	if r.Method != http.MethodPost {
		h.Set("Allow", "POST, OPTIONS")
		ex.fail(w, http.StatusMethodNotAllowed, "method not allowed: use POST", "method not allowed")
		return
	}

	if !s.authenticate(w, r, ex) {
		return
	}

	headerNS := r.Header.Get(NamespaceHeader)
	if pathNS != "" && headerNS != "" && pathNS != headerNS {
		ex.fail(w, http.StatusBadRequest, "the namespace in the path and in the X-Namespace header differ", "namespace mismatch")
		return
	}
	ex.namespace = pathNS
	if ex.namespace == "" {
		ex.namespace = headerNS
	}
	if len(s.namespaces) > 0 && !s.namespaces[ex.namespace] {
		ex.fail(w, http.StatusForbidden, "namespace not served by this codec server", "namespace not served")
		return
	}

	if r.ContentLength > s.maxBody {
		ex.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large (limit %d bytes)", s.maxBody), "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	defer clear(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			ex.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large (limit %d bytes)", s.maxBody), "body too large")
			return
		}
		ex.fail(w, http.StatusBadRequest, "cannot read the request body", "body read error")
		return
	}

	var req commonpb.Payloads
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &req); err != nil {
		// The parser's message can quote the body: it is not echoed nor logged.
		ex.fail(w, http.StatusBadRequest, `the body is not {"payloads": [...]} in Temporal's proto JSON`, "invalid body")
		return
	}
	ex.payloads = len(req.Payloads)

	var out []*commonpb.Payload
	if op == "encode" {
		out, err = s.codec.Encode(req.Payloads)
	} else {
		out, err = s.codec.Decode(req.Payloads)
	}
	if err != nil {
		// The codec's errors name key ids and positions, never payload bytes.
		ex.fail(w, http.StatusBadRequest, err.Error(), op+" failed: "+err.Error())
		return
	}

	resp := []byte(`{"payloads":[]}`)
	if len(out) > 0 {
		if resp, err = protojson.Marshal(&commonpb.Payloads{Payloads: out}); err != nil {
			ex.fail(w, http.StatusInternalServerError, "cannot serialize the payloads", "response marshal error")
			return
		}
	}
	defer clear(resp)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(resp)))
	ex.status = http.StatusOK
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// route splits /encode, /decode, /{namespace}/encode and /{namespace}/decode.
func route(p string) (namespace, op string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	switch len(parts) {
	case 1:
		op = parts[0]
	case 2:
		namespace, op = parts[0], parts[1]
	default:
		return "", "", false
	}
	if op != "encode" && op != "decode" {
		return "", "", false
	}
	return namespace, op, true
}

// authenticate admits "Authorization: Bearer <token>" when the token is the static one (compared
// in constant time) or an OIDC access token that s.oidc accepts; otherwise it answers 401 or 403
// and returns false. Neither the token nor any claim it carries unverified reaches the answer or
// the log.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request, ex *exchange) bool {
	unauthorized := func(reason string) bool {
		w.Header().Set("WWW-Authenticate", `Bearer realm="secure-agent codec"`)
		ex.fail(w, http.StatusUnauthorized, "unauthorized", reason)
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return unauthorized("missing or wrong token")
	}
	if s.hasToken {
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1 {
			ex.auth = "token"
			return true
		}
	}
	if s.oidc == nil {
		return unauthorized("missing or wrong token")
	}
	res := s.oidc.verify(r.Context(), token)
	ex.subject = res.subject
	switch res.status {
	case 0:
		ex.auth = "oidc"
		return true
	case http.StatusForbidden:
		ex.fail(w, http.StatusForbidden, "forbidden", res.reason)
		return false
	default:
		return unauthorized(res.reason)
	}
}
