// Package gcp reads secrets from Google Cloud Secret Manager.
//
// A secret path is a Secret Manager resource name, projects/P/secrets/S[/versions/V] for a global
// secret or projects/P/locations/L/secrets/S[/versions/V] for a regional one; the version defaults
// to "latest". Fetch calls AccessSecretVersion once over gRPC and returns the payload bytes exactly
// as stored, after checking the payload's CRC32C when the store sends one.
//
// The agent authenticates with Application Default Credentials: the key or workload identity
// federation file named by GOOGLE_APPLICATION_CREDENTIALS, the gcloud ADC file
// (gcloud auth application-default login), or the metadata server of GCE and GKE (workload
// identity). Workflow input never carries credentials; its only field is the secret path. The
// agent's identity needs roles/secretmanager.secretAccessor on the secret or its project.
//
// Workload identity federation (an external_account file, as gcloud iam workload-identity-pools
// create-cred-config writes it) is handled by the client libraries: they read the subject token
// from credential_source.file at every exchange, so a rotated token file is used from the next
// exchange on; exchange it at token_url; optionally impersonate service_account_impersonation_url;
// and cache the access token until shortly before it expires. They never ask the metadata
// server then. adc.go reports their failures without their text.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secure-agent/secure-agent/secrets"
)

// Name is the store's name in errors (secrets.Error.Store) and in workflow input.
const Name = "gcp"

const (
	// DefaultRetryAfter is the delay reported with Throttled when Secret Manager answers
	// ResourceExhausted without a google.rpc.RetryInfo detail. It matches the initial backoff
	// of the generated client's own retry policy, which this package turns off.
	DefaultRetryAfter = 2 * time.Second

	// MaxResponseBytes bounds the AccessSecretVersion response the client accepts. Secret
	// Manager payloads are at most 64 KiB; a larger response comes from a broken or foreign
	// endpoint and fails with StoreUnavailable instead of filling the agent's memory.
	MaxResponseBytes = 256 << 10

	// maxRegionalClients bounds how many per-location clients a Store keeps. A Fetch for a
	// further location uses a client built for that call and closed after it.
	maxRegionalClients = 16
)

// crc32c is the Castagnoli table Secret Manager uses for payload checksums.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Config configures a Store. It holds no workflow input: the secret path alone names the project,
// location, secret and version.
type Config struct {
	// ClientOptions are agent-side options passed to the Secret Manager client after this
	// package's own, for example option.WithEndpoint for a private endpoint or, in tests,
	// option.WithTokenSource and a TLS dial option. Leave empty in production to use
	// Application Default Credentials and the public endpoint. They must never be built from
	// workflow input. Regional secrets use the same options with the regional endpoint
	// secretmanager.LOCATION.rep.googleapis.com:443 set last, so an endpoint given here applies
	// to global secrets only. The package's own options come first: no gRPC retries, and a
	// logger that drops the client libraries' debug logs (which would hold secret payloads and
	// tokens); an option.WithLogger given here replaces it.
	ClientOptions []option.ClientOption
}

// Validate reports every problem of the Config as one InvalidInput error, or nil.
func (c Config) Validate() error {
	var nils []string
	for i, o := range c.ClientOptions {
		if o == nil {
			nils = append(nils, strconv.Itoa(i))
		}
	}
	if len(nils) == 0 {
		return nil
	}
	return &secrets.Error{Kind: secrets.InvalidInput, Store: Name,
		Msg: "Config.ClientOptions has nil entries at index " + strings.Join(nils, ", ") +
			"; remove them"}
}

// accessor is the one Secret Manager call the Store uses, plus Close.
type accessor interface {
	AccessSecretVersion(context.Context, *secretmanagerpb.AccessSecretVersionRequest, ...gax.CallOption) (*secretmanagerpb.AccessSecretVersionResponse, error)
	Close() error
}

// Store reads secrets from Secret Manager. It is safe for concurrent use; build it once per
// Config and reuse it. Close releases its connections.
type Store struct {
	opts   []option.ClientOption
	global accessor

	mu       sync.Mutex
	regional map[string]accessor // by location
	closed   bool
}

var _ secrets.Store = (*Store)(nil)

// New builds the Secret Manager client for global secrets. Clients for regional secrets are built
// on first use, one per location. New fails with InvalidInput for a bad Config and with
// AuthFailed when the agent's Application Default Credentials cannot be found or loaded.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, secrets.Ref{}, err)
	}
	opts := append([]option.ClientOption(nil), cfg.ClientOptions...)
	c, err := newClient(ctx, opts, "")
	if err != nil {
		return nil, clientError(secrets.Ref{}, err)
	}
	return &Store{opts: opts, global: c, regional: map[string]accessor{}}, nil
}

// newClient builds a client with the package's options, then opts, then endpoint if not empty.
// The client keeps no reference to ctx (it is detached from ctx's cancellation), so a Store
// outlives the call that built it.
func newClient(ctx context.Context, opts []option.ClientOption, endpoint string) (*secretmanager.Client, error) {
	all := []option.ClientOption{
		option.WithGRPCDialOption(grpc.WithDisableRetry()),
		// GOOGLE_SDK_GO_LOGGING_LEVEL=debug makes the client libraries log every request and
		// response: secret payloads, subject tokens and access tokens. The client's and the
		// credentials' logger is this one, which drops everything.
		option.WithLogger(slog.New(slog.DiscardHandler)),
	}
	all = append(all, opts...)
	if endpoint != "" {
		all = append(all, option.WithEndpoint(endpoint))
	}
	c, err := secretmanager.NewClient(context.WithoutCancel(ctx), all...)
	if err != nil {
		return nil, err
	}
	// One attempt per Fetch: the generated defaults retry Unavailable and ResourceExhausted
	// with backoff; a Retry that yields no Retryer turns that off. The receive limit replaces
	// the generated MaxInt32.
	c.CallOptions.AccessSecretVersion = append(c.CallOptions.AccessSecretVersion,
		gax.WithRetry(func() gax.Retryer { return nil }),
		gax.WithGRPCOptions(grpc.MaxCallRecvMsgSize(MaxResponseBytes)),
	)
	return c, nil
}

// clientError classifies a failure to build a client. Building does no network I/O beyond
// credential discovery, so the failure is about the agent's credentials or client options.
func clientError(ref secrets.Ref, err error) error {
	return &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Ref: ref.String(), Cause: err,
		Msg: "could not set up the Secret Manager client: the agent's Application Default " +
			"Credentials are missing or unreadable. Set GOOGLE_APPLICATION_CREDENTIALS to a " +
			"service account key or workload identity federation file the agent can read, run " +
			"`gcloud auth application-default login` as the agent's user, or run the agent on " +
			"GCP with a service account attached (GKE workload identity); also check any " +
			"agent-side client options"}
}

// Close releases the Store's connections. Fetch after Close fails with StoreUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	errs := []error{s.global.Close()}
	for _, c := range s.regional {
		errs = append(errs, c.Close())
	}
	clear(s.regional)
	return errors.Join(errs...)
}

// client returns the client for location ("" for global secrets) and a release func the
// caller must call when the request is done. A regional client is built outside the lock, so a
// slow credential lookup does not hold up fetches for other locations.
func (s *Store) client(ctx context.Context, location string) (accessor, func(), error) {
	noop := func() {}
	if location == "" {
		return s.global, noop, nil
	}
	if c, err := s.cached(location); c != nil || err != nil {
		return c, noop, err
	}
	c, err := newClient(ctx, s.opts, RegionalEndpoint(location))
	if err != nil {
		return nil, noop, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch prev, ok := s.regional[location]; {
	case s.closed:
		_ = c.Close()
		return nil, noop, errClosed
	case ok: // another Fetch cached one meanwhile
		_ = c.Close()
		return prev, noop, nil
	case len(s.regional) >= maxRegionalClients:
		return c, func() { _ = c.Close() }, nil
	}
	s.regional[location] = c
	return c, noop, nil
}

// cached returns the cached client for location, nil if there is none, or errClosed.
func (s *Store) cached(location string) (accessor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	return s.regional[location], nil
}

var errClosed = errors.New("gcp store is closed")

// RegionalEndpoint returns the gRPC endpoint serving regional secrets of location.
func RegionalEndpoint(location string) string {
	return "secretmanager." + location + ".rep.googleapis.com:443"
}

// Fetch reads the secret version ref names with one AccessSecretVersion call. Secret.Version is
// the version number Secret Manager reports, also when ref asked for "latest" or an alias.
func (s *Store) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	p, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, ref, err)
	}
	c, release, err := s.client(ctx, p.Location)
	if errors.Is(err, errClosed) {
		return nil, &secrets.Error{Kind: secrets.StoreUnavailable, Store: Name, Ref: ref.String(),
			Msg: "the store was closed; the agent must build a new one", Cause: err}
	} else if err != nil {
		return nil, clientError(ref, err)
	}
	defer release()
	resp, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: p.Name()})
	if err != nil {
		return nil, classify(ctx, ref, p, err)
	}
	return secretFrom(ref, p, resp)
}

// secretFrom checks resp and takes its payload as the Secret's value. On failure it zeroes the
// payload.
func secretFrom(ref secrets.Ref, p Path, resp *secretmanagerpb.AccessSecretVersionResponse) (*secrets.Secret, error) {
	data := resp.GetPayload().GetData()
	if resp.GetPayload() == nil {
		return nil, malformed(ref, "the response has no payload")
	}
	got, err := ParsePath(resp.GetName())
	switch {
	case err != nil || !isNumber(got.Version):
		clear(data)
		return nil, malformed(ref, "the response does not name a secret version")
	case got.Secret != p.Secret || got.Location != p.Location || (isNumber(p.Version) && got.Version != p.Version):
		clear(data)
		return nil, malformed(ref, "the response names a different secret version than the one requested")
	}
	if want := resp.Payload.DataCrc32C; want != nil && int64(crc32.Checksum(data, crc32c)) != *want {
		clear(data)
		return nil, &secrets.Error{Kind: secrets.StoreUnavailable, Store: Name, Ref: ref.String(),
			Msg: "the payload does not match its CRC32C checksum, so it was corrupted in transit; " +
				"the read will be retried"}
	}
	resp.Payload.Data = nil
	return &secrets.Secret{Value: secrets.Value(data), Version: got.Version}, nil
}

func malformed(ref secrets.Ref, what string) error {
	return &secrets.Error{Kind: secrets.StoreUnavailable, Store: Name, Ref: ref.String(),
		Msg: "Secret Manager sent a malformed response (" + what + "); check that the endpoint " +
			"is Secret Manager"}
}

// classify maps an AccessSecretVersion error to a *secrets.Error. The server's status message
// and details are provider text: only the code goes into Detail, and the error itself into Cause.
func classify(ctx context.Context, ref secrets.Ref, p Path, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return secrets.ContextError(Name, ref, ctxErr)
	}
	st, ok := status.FromError(err)
	if ok && st.Code() == codes.DeadlineExceeded && deadlineNear(ctx) {
		// The server enforces the deadline the client propagates, and may give up a moment
		// before ctx's own timer fires.
		return secrets.ContextError(Name, ref, context.DeadlineExceeded)
	}
	if !ok {
		return &secrets.Error{Kind: secrets.StoreUnavailable, Store: Name, Ref: ref.String(),
			Msg: "the Secret Manager client failed without a gRPC status", Cause: err}
	}
	if st.Code() == codes.Unauthenticated && strings.HasPrefix(st.Message(), perRPCCredsPrefix) {
		// No request reached Secret Manager: the client could not get an access token.
		return credentialFailure(ref, st.Message())
	}
	e := &secrets.Error{Store: Name, Ref: ref.String(), Detail: "grpc " + st.Code().String(), Cause: err}
	e.Kind, e.Msg = kindAndMsg(st, p)
	if e.Kind == secrets.Throttled {
		e.RetryAfter = retryAfter(st)
	}
	return e
}

// deadlineSlack is how close to ctx's deadline a DeadlineExceeded answer counts as ctx's.
const deadlineSlack = time.Second

// deadlineNear reports whether ctx has a deadline that is past or within deadlineSlack.
func deadlineNear(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < deadlineSlack
}

// kindAndMsg returns the Kind and message for a status.
func kindAndMsg(st *status.Status, p Path) (secrets.Kind, string) {
	switch st.Code() {
	case codes.NotFound:
		return secrets.SecretNotFound, "the secret or version does not exist; check the project, " +
			"secret id and version in the secret path"
	case codes.FailedPrecondition:
		return secrets.SecretNotFound, "the secret version cannot be read in its current state: it " +
			"is disabled or destroyed. Enable it (gcloud secrets versions enable), or reference an " +
			"enabled version; if the secret uses a customer-managed key, check that the key is enabled"
	case codes.PermissionDenied:
		return secrets.AccessDenied, "the agent's Google identity may not access this secret; grant " +
			"it roles/secretmanager.secretAccessor on the secret or project, and check that the " +
			"Secret Manager API is enabled in the project"
	case codes.Unauthenticated: // a failure to get a token is handled by credentialFailure
		return secrets.AuthFailed, "Secret Manager rejected the agent's credentials as missing, " +
			"invalid or expired; renew the key file or ADC login, or check workload identity"
	case codes.ResourceExhausted:
		if isOversize(st.Message()) {
			return secrets.StoreUnavailable, fmt.Sprintf("the response is larger than %d bytes, "+
				"which Secret Manager never sends; check that the endpoint is Secret Manager",
				MaxResponseBytes)
		}
		return secrets.Throttled, "Secret Manager quota for the project is exhausted; the read " +
			"will be retried after the delay, or raise the quota"
	case codes.InvalidArgument, codes.OutOfRange:
		return secrets.InvalidInput, "Secret Manager refused the request as invalid; check the " +
			"secret path and version"
	case codes.Unimplemented:
		return secrets.InvalidInput, "the endpoint does not serve Secret Manager; check the agent's " +
			"endpoint option" + regionalHint(p)
	case codes.DeadlineExceeded:
		return secrets.StoreUnavailable, "Secret Manager did not answer in time; the read will be retried"
	default: // Unavailable, Internal, Unknown, Aborted, DataLoss, Canceled, others
		return secrets.StoreUnavailable, "Secret Manager could not be reached or failed on its side; " +
			"check the agent's network path to Google APIs" + regionalHint(p)
	}
}

func regionalHint(p Path) string {
	if p.Location == "" {
		return ""
	}
	return " and that location " + strconv.Quote(p.Location) + " offers regional secrets"
}

// isOversize reports whether msg is grpc-go's own client-side text for a response over the
// receive limit (not text a server sent).
func isOversize(msg string) bool {
	return (strings.HasPrefix(msg, "grpc: received message") || strings.HasPrefix(msg, "grpc: message after decompression")) &&
		strings.Contains(msg, "larger than max")
}

// retryAfter returns the RetryInfo delay of st, capped at secrets.MaxRetryAfter, or
// DefaultRetryAfter when st has none.
func retryAfter(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		ri, ok := d.(*errdetails.RetryInfo)
		if !ok || ri.GetRetryDelay() == nil || ri.GetRetryDelay().CheckValid() != nil {
			continue
		}
		if delay := ri.GetRetryDelay().AsDuration(); delay > 0 {
			return min(delay, secrets.MaxRetryAfter)
		}
	}
	return DefaultRetryAfter
}

// Path is a parsed Secret Manager secret path.
type Path struct {
	Project  string // project id or project number
	Location string // location of a regional secret; empty for a global secret
	Secret   string // secret id
	Version  string // version number, "latest" or an alias; empty when the path names none
}

// Name returns the resource name: projects/P[/locations/L]/secrets/S[/versions/V].
func (p Path) Name() string {
	var b strings.Builder
	b.WriteString("projects/" + p.Project)
	if p.Location != "" {
		b.WriteString("/locations/" + p.Location)
	}
	b.WriteString("/secrets/" + p.Secret)
	if p.Version != "" {
		b.WriteString("/versions/" + p.Version)
	}
	return b.String()
}

// maxPathLen bounds a secret path; the longest valid one is about 450 bytes.
const maxPathLen = 512

const pathSyntax = "a secret path must be projects/PROJECT/secrets/SECRET[/versions/VERSION], or " +
	"projects/PROJECT/locations/LOCATION/secrets/SECRET[/versions/VERSION] for a regional secret"

// ParsePath parses and validates a secret path without network access. Version is empty when
// the path names none. Any string is safe to pass; a bad one gives an InvalidInput error that
// says what to fix.
func ParsePath(path string) (Path, error) {
	p, problems := parsePath(path)
	if len(problems) > 0 {
		return Path{}, invalidInput(path, problems)
	}
	return p, nil
}

// ParseRef parses ref as Fetch reads it: the path, with ref.Version selecting the version when
// the path names none, and "latest" when neither does. A version in both that differs, or any
// ref.Stage (an AWS feature), is InvalidInput.
func ParseRef(ref secrets.Ref) (Path, error) {
	p, problems := parsePath(ref.Path)
	if ref.Stage != "" {
		problems = append(problems, "version stages are an AWS feature; select a GCP version "+
			"with the version field or /versions/VERSION in the path")
	}
	if v := ref.Version; v != "" {
		switch {
		case !validVersion(v):
			problems = append(problems, "version "+quoteShort(v)+" is not "+versionSyntax)
		case p.Version != "" && p.Version != v:
			problems = append(problems, "the path names version "+quoteShort(p.Version)+
				" but the version field says "+quoteShort(v)+"; give the version once")
		default:
			p.Version = v
		}
	}
	if len(problems) > 0 {
		return Path{}, invalidInput(ref.String(), problems)
	}
	if p.Version == "" {
		p.Version = "latest"
	}
	return p, nil
}

func invalidInput(ref string, problems []string) error {
	return &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Ref: truncate(ref, maxPathLen),
		Msg: strings.Join(problems, "; ")}
}

// parsePath returns the parsed path, or the problems that make it invalid.
func parsePath(path string) (Path, []string) {
	if path == "" {
		return Path{}, []string{"the secret path is empty; " + pathSyntax}
	}
	if len(path) > maxPathLen {
		return Path{}, []string{fmt.Sprintf("the secret path is %d bytes, longer than any "+
			"Secret Manager name (%d); %s", len(path), maxPathLen, pathSyntax)}
	}
	if i := strings.Index(path, "projects/"); i > 0 && strings.Contains(path[:i], "googleapis.com") {
		return Path{}, []string{"give the resource name without the service host or URL, " +
			"starting at projects/; " + pathSyntax}
	}
	seg := strings.Split(path, "/")
	var p Path
	switch {
	case len(seg) >= 4 && seg[0] == "projects" && seg[2] == "secrets":
		p.Project, p.Secret, seg = seg[1], seg[3], seg[4:]
	case len(seg) >= 6 && seg[0] == "projects" && seg[2] == "locations" && seg[4] == "secrets":
		p.Project, p.Location, p.Secret, seg = seg[1], seg[3], seg[5], seg[6:]
		if p.Location == "" {
			return Path{}, []string{"the location is empty; " + pathSyntax}
		}
	default:
		return Path{}, []string{pathSyntax}
	}
	switch {
	case len(seg) == 0:
	case len(seg) == 2 && seg[0] == "versions":
		if seg[1] == "" {
			return Path{}, []string{"the version after /versions/ is empty; give " + versionSyntax +
				", or drop /versions/ for the latest version"}
		}
		p.Version = seg[1]
	default:
		return Path{}, []string{"unexpected text after the secret id; " + pathSyntax}
	}
	return p, p.problems()
}

// problems validates each part of p.
func (p Path) problems() []string {
	var out []string
	if !validProject(p.Project) {
		out = append(out, "project "+quoteShort(p.Project)+" is neither a project id (6 to 30 "+
			"lowercase letters, digits or hyphens, starting with a letter and not ending with a "+
			"hyphen) nor a project number")
	}
	if p.Location == "global" {
		out = append(out, "location \"global\" is not a region; name a global secret as "+
			"projects/PROJECT/secrets/SECRET")
	} else if p.Location != "" && !validLocation(p.Location) {
		out = append(out, "location "+quoteShort(p.Location)+" is not a location id such as "+
			"us-central1 (lowercase letters, digits and hyphens)")
	}
	if !validSecretID(p.Secret) {
		out = append(out, "secret id "+quoteShort(p.Secret)+" is not 1 to 255 letters, digits, "+
			"underscores or hyphens")
	}
	if p.Version != "" && !validVersion(p.Version) {
		out = append(out, "version "+quoteShort(p.Version)+" is not "+versionSyntax)
	}
	return out
}

const versionSyntax = "a positive version number, \"latest\" or an alias (a letter, then up to " +
	"62 letters, digits, underscores or hyphens)"

func validProject(s string) bool {
	if isNumber(s) {
		return len(s) <= 19
	}
	return len(s) >= 6 && len(s) <= 30 && isLower(s[0]) && s[len(s)-1] != '-' &&
		all(s, func(c byte) bool { return isLower(c) || isDigit(c) || c == '-' })
}

func validLocation(s string) bool {
	return len(s) >= 2 && len(s) <= 63 && isLower(s[0]) && s[len(s)-1] != '-' &&
		all(s, func(c byte) bool { return isLower(c) || isDigit(c) || c == '-' })
}

func validSecretID(s string) bool {
	return len(s) >= 1 && len(s) <= 255 && all(s, isIDChar)
}

func validVersion(s string) bool {
	if isNumber(s) {
		return len(s) <= 19
	}
	return len(s) >= 1 && len(s) <= 63 && isLetter(s[0]) && all(s, isIDChar)
}

// isNumber reports whether s is a positive decimal number without leading zeros.
func isNumber(s string) bool {
	return s != "" && s[0] != '0' && all(s, isDigit)
}

func all(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return isLower(c) || (c >= 'A' && c <= 'Z') }
func isIDChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '-' }

// quoteShort quotes s for a message, shortened to 40 bytes.
func quoteShort(s string) string { return strconv.Quote(truncate(s, 40)) }

// truncate shortens s to at most n bytes plus an ellipsis, cutting at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
