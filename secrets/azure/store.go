// Package azure reads secrets from Azure Key Vault.
//
// A secretPath is a Key Vault secret URL, https://<vault>.vault.azure.net/secrets/<name>[/<version>]
// (or the same under vault.azure.cn, vault.usgovcloudapi.net or vault.microsoftazure.de), or a bare
// <name>[/<version>] in the vault named by Config.VaultName. Fetch reads it with the Get Secret
// operation and returns the stored string and the version that was read.
//
// The agent authenticates as itself, never with credentials from workflow input: with a managed
// identity (system-assigned, or user-assigned when Config.ClientID names one), found through the
// hosting environment (IMDS, App Service, Azure Arc, ...); with a Kubernetes workload identity
// (AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, as the Azure Workload Identity
// webhook sets them), which the managed-identity method also uses whenever
// AZURE_FEDERATED_TOKEN_FILE is set; or as a service principal whose AZURE_TENANT_ID,
// AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) are in the agent's
// environment. The Entra ID authority follows from the vault's cloud (for a workload identity,
// AZURE_AUTHORITY_HOST when set). The identity needs the "Key Vault Secrets User" role on the
// vault (RBAC vaults), or an access policy granting the secret permission "get" (access-policy
// vaults).
package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/secure-agent/secure-agent/secrets"
)

// Name is the store's name in errors and configuration.
const Name = "azure"

// Authentication methods for Config.AuthMethod.
const (
	// AuthManagedIdentity authenticates with the managed identity of the Azure resource the agent
	// runs on: system-assigned, or user-assigned when Config.ClientID is set. It is the default.
	//
	// When AZURE_FEDERATED_TOKEN_FILE is set in the agent's environment, it authenticates exactly
	// as AuthWorkloadIdentity does and sends no request to IMDS or any other managed identity
	// endpoint. On AKS with workload identity, IMDS is the node's: it would answer with the
	// kubelet's identity or another identity assigned to the node pool, never the identity the
	// operator gave the agent's pod, and a clientId from workflow input could then pick any
	// identity on the node. An agent whose pod has a workload identity therefore uses that one, or
	// fails (AuthFailed) saying which of its variables is missing; to use the node's identity
	// instead, remove the pod's workload identity.
	AuthManagedIdentity = "managed-identity"
	// AuthServicePrincipal authenticates as the service principal named by AZURE_TENANT_ID and
	// AZURE_CLIENT_ID in the agent's environment, with AZURE_CLIENT_SECRET or a certificate file
	// (AZURE_CLIENT_CERTIFICATE_PATH, optional AZURE_CLIENT_CERTIFICATE_PASSWORD).
	AuthServicePrincipal = "service-principal"
	// AuthWorkloadIdentity authenticates with a Kubernetes workload identity (Microsoft Entra
	// Workload ID): the service account token in the file named by AZURE_FEDERATED_TOKEN_FILE is
	// exchanged at Entra ID (AZURE_AUTHORITY_HOST when set, else the vault's cloud's authority) for
	// a token of the identity AZURE_CLIENT_ID in tenant AZURE_TENANT_ID. The file is read again
	// for every token request, so the token the kubelet rotated into it is the one sent.
	// Config.ClientID may only repeat AZURE_CLIENT_ID.
	AuthWorkloadIdentity = "workload-identity"
)

// MaxResponseBytes bounds every response body the store reads (Key Vault and token endpoints).
// Key Vault secrets hold at most 25 KB, so a larger answer is not Key Vault's.
const MaxResponseBytes = 1 << 20

// maxCachedVaults bounds the per-vault clients a Store keeps. Beyond it a vault still works, with
// a fresh client (one extra authentication-challenge round trip) on each Fetch.
const maxCachedVaults = 16

// Config selects how a Store authenticates and which vault bare secret names live in.
//
// VaultName, AuthMethod and ClientID come from workflow input and are identifiers, never
// credentials. Credential and HTTPClient are agent-side options that workflow input never sets.
// Config is comparable, so callers may key a cache of Stores by it.
type Config struct {
	// VaultName (input, optional) is the vault that holds bare secret names
	// (https://<VaultName>.vault.azure.net). When set, a secret URL must name this vault.
	VaultName string `json:"vaultName,omitempty"`
	// AuthMethod (input) is AuthManagedIdentity (default when empty), AuthWorkloadIdentity or
	// AuthServicePrincipal.
	AuthMethod string `json:"authMethod,omitempty"`
	// ClientID (input, optional) is the client id (a GUID) of a user-assigned managed identity.
	// With AuthServicePrincipal or AuthWorkloadIdentity (and with AuthManagedIdentity while the
	// agent has a workload identity) it may only repeat the agent's AZURE_CLIENT_ID: input never
	// chooses which identity the agent is.
	ClientID string `json:"clientId,omitempty"`

	// Credential (agent) replaces the credential New would build from AuthMethod. For tests and
	// for agents with their own token source.
	Credential azcore.TokenCredential `json:"-"`
	// HTTPClient (agent) sends Key Vault and token requests, for proxies, custom CAs and tests.
	// Nil means a client with Go's default transport (proxy from the environment, TLS 1.2+).
	HTTPClient *http.Client `json:"-"`
}

// Store reads secrets from Azure Key Vault with one authentication configuration. It serves every
// vault the identity may read: one client per vault host, created on first use and kept (up to
// 16). It is safe for concurrent use.
type Store struct {
	cfg    Config
	method string
	// creds holds the credential for each cloud, keyed by Key Vault DNS suffix.
	creds  map[string]azcore.TokenCredential
	kvHTTP *http.Client
	// wi is the workload identity in use, if any (for messages).
	wi *workloadIdentity

	mu      sync.Mutex
	clients map[string]*azsecrets.Client // keyed by vault host
}

var _ secrets.Store = (*Store)(nil)

// New validates cfg and builds the credentials and HTTP client the Store uses for every Fetch. It
// reads the agent's environment once, here, and does no network I/O. Problems with cfg are
// InvalidInput; missing or unusable agent credentials for the chosen method are AuthFailed. All
// problems are reported at once (joined with errors.Join when there are several).
func New(ctx context.Context, cfg Config) (*Store, error) {
	_ = ctx // New does no I/O; ctx is accepted for symmetry with the other stores.
	errs := cfg.problems()
	method := cfg.AuthMethod
	if method == "" {
		method = AuthManagedIdentity
	}
	s := &Store{
		cfg:     cfg,
		method:  method,
		kvHTTP:  guardedClient(cfg.HTTPClient, phaseVault),
		clients: make(map[string]*azsecrets.Client),
	}
	switch method {
	case AuthManagedIdentity, AuthWorkloadIdentity, AuthServicePrincipal:
		creds, wi, credErrs := newCredentials(cfg, method)
		errs = append(errs, credErrs...)
		s.creds, s.wi = creds, wi
	}
	switch len(errs) {
	case 0:
		return s, nil
	case 1:
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// configError is a Config problem of the given kind.
func configError(kind secrets.Kind, msg string) error {
	return &secrets.Error{Kind: kind, Store: Name, Msg: msg}
}

// Validate checks the workflow-input fields (VaultName, AuthMethod, ClientID) without reading
// the agent's environment or the network, so input validation can call it deterministically. It
// returns nil, one *secrets.Error of kind InvalidInput, or several joined with errors.Join.
func (c Config) Validate() error {
	errs := c.problems()
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// problems checks the input fields of c and returns every problem found.
func (c Config) problems() []error {
	var errs []error
	if c.VaultName != "" {
		if msg := vaultNameProblem(c.VaultName); msg != "" {
			errs = append(errs, configError(secrets.InvalidInput, "vaultName "+msg))
		}
	}
	switch c.AuthMethod {
	case "", AuthManagedIdentity, AuthWorkloadIdentity, AuthServicePrincipal:
	default:
		errs = append(errs, configError(secrets.InvalidInput, fmt.Sprintf(
			"authMethod %q is not supported; use %q, %q or %q", truncate(c.AuthMethod, 40),
			AuthManagedIdentity, AuthWorkloadIdentity, AuthServicePrincipal)))
	}
	if c.ClientID != "" && !isGUID(c.ClientID) {
		errs = append(errs, configError(secrets.InvalidInput,
			"clientId must be the client id (a GUID such as 00000000-0000-0000-0000-000000000000) of a user-assigned managed identity"))
	}
	return errs
}

// Fetch reads the secret named by ref: its current version, or the version in the secret URL or
// in ref.Version. It sends one Get Secret request (preceded, on a client's first request, by the
// unauthenticated request that elicits Key Vault's authentication challenge) and never retries.
func (s *Store) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	loc, err := ParseRef(ref, s.cfg.VaultName)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, ref, err)
	}
	client, err := s.client(loc.Host)
	if err != nil {
		return nil, s.fail(ref, secrets.InvalidInput, "cannot create a Key Vault client for this vault URL", "", err)
	}
	ex := &exchange{}
	resp, err := getSecret(withExchange(ctx, ex), client, loc)
	if err != nil {
		return nil, s.classify(ctx, ref, loc, ex, err)
	}
	return s.secret(ref, loc, resp.Secret)
}

// getSecret calls the SDK once. A panic inside the SDK (it indexes into parts of Key Vault's
// authentication challenge without bounds checks) becomes an error instead of crashing the agent.
func getSecret(ctx context.Context, client *azsecrets.Client, loc Location) (resp azsecrets.GetSecretResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errSDKPanic
		}
	}()
	return client.GetSecret(ctx, loc.Name, loc.Version, nil)
}

var errSDKPanic = errors.New("azure: the Key Vault SDK panicked on a malformed response")

// secret checks the Get Secret answer and copies the value out of it.
func (s *Store) secret(ref secrets.Ref, loc Location, sec azsecrets.Secret) (*secrets.Secret, error) {
	if sec.Value == nil || sec.ID == nil {
		return nil, s.malformed(ref, "it has no value or id")
	}
	name, version, ok := parseSecretID(string(*sec.ID))
	switch {
	case !ok:
		return nil, s.malformed(ref, "its id is not a secret version URL")
	case !strings.EqualFold(name, loc.Name):
		return nil, s.malformed(ref, "it names a different secret")
	case loc.Version != "" && !strings.EqualFold(version, loc.Version):
		return nil, s.malformed(ref, "it names a different version")
	}
	return &secrets.Secret{Value: secrets.Value(*sec.Value), Version: version}, nil
}

// parseSecretID splits a secret id, https://<host>/secrets/<name>/<version>.
func parseSecretID(id string) (name, version string, ok bool) {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", "", false
	}
	parts := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if len(parts) != 3 || parts[0] != "secrets" || !secretNameRE.MatchString(parts[1]) || !versionRE.MatchString(parts[2]) {
		return "", "", false
	}
	return parts[1], parts[2], true
}

func (s *Store) malformed(ref secrets.Ref, why string) error {
	return s.fail(ref, secrets.StoreUnavailable,
		"Key Vault answered with a secret the agent cannot use ("+why+"); check that nothing between the agent and the vault rewrites responses",
		"malformed response", nil)
}

// fail builds a classified error about ref.
func (s *Store) fail(ref secrets.Ref, kind secrets.Kind, msg, detail string, cause error) *secrets.Error {
	return &secrets.Error{Kind: kind, Store: Name, Ref: displayRef(ref), Msg: msg, Detail: detail, Cause: cause}
}

// client returns the Key Vault client for host, creating and caching it on first use. Every
// client sends through the Store's guarded HTTP client, with SDK retries off and the SDK's
// verification that the challenge's resource matches the vault's domain left on.
func (s *Store) client(host string) (*azsecrets.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[host]; ok {
		return c, nil
	}
	cred := &markedCredential{inner: s.creds[cloudOf(host).suffix]}
	opts := &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: s.kvHTTP,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
	c, err := azsecrets.NewClient("https://"+host, cred, opts)
	if err != nil {
		return nil, err
	}
	if len(s.clients) < maxCachedVaults {
		s.clients[host] = c
	}
	return c, nil
}

// ---- Secret paths ----

// Location names one Key Vault secret, or one version of it.
type Location struct {
	// Host is the vault's host, such as "myvault.vault.azure.net". Empty for a bare name.
	Host string
	// Vault is the vault's name: the first label of Host, or Config.VaultName for a bare name.
	Vault string
	// Name is the secret's name.
	Name string
	// Version is the secret version (32 hex digits); empty means the current version.
	Version string
}

// VaultURL returns the vault's base URL, https://<Host>.
func (l Location) VaultURL() string { return "https://" + l.Host }

// cloudInfo describes one Azure cloud: its Key Vault DNS suffix and Entra ID authority.
type cloudInfo struct {
	suffix string
	config cloud.Configuration
}

// clouds lists the Key Vault DNS suffixes the store accepts, public cloud first.
var clouds = []cloudInfo{
	{"vault.azure.net", cloud.AzurePublic},
	{"vault.azure.cn", cloud.AzureChina},
	{"vault.usgovcloudapi.net", cloud.AzureGovernment},
	// Azure Germany (closed in 2021); accepted for old URLs.
	{"vault.microsoftazure.de", cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.microsoftonline.de/"}},
}

// cloudOf returns the cloud of a validated vault host.
func cloudOf(host string) cloudInfo {
	for _, c := range clouds {
		if strings.HasSuffix(host, "."+c.suffix) {
			return c
		}
	}
	return clouds[0]
}

var (
	secretNameRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	versionRE    = regexp.MustCompile(`^[0-9A-Fa-f]{32}$`)
	guidRE       = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
)

const maxPathLen = 2048

func isGUID(s string) bool { return guidRE.MatchString(s) }

// vaultNameProblem says what is wrong with a vault name, or returns "" if it is valid: 3-24
// letters, digits and hyphens, starting with a letter, ending with a letter or digit, without
// consecutive hyphens.
func vaultNameProblem(name string) string {
	switch {
	case len(name) < 3 || len(name) > 24:
		return "must be 3-24 characters long"
	case !isLetter(name[0]):
		return "must start with a letter"
	case name[len(name)-1] == '-':
		return "must end with a letter or digit"
	case strings.Contains(name, "--"):
		return "must not contain consecutive hyphens"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !isDigit(c) && c != '-' {
			return "may contain only letters, digits and hyphens"
		}
	}
	return ""
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// ParsePath checks the syntax of a secretPath without network access. It accepts a secret URL,
// https://<vault>.<suffix>/secrets/<name>[/<version>][/] with suffix vault.azure.net,
// vault.azure.cn, vault.usgovcloudapi.net or vault.microsoftazure.de (no user info, query,
// fragment or port other than 443), or a bare <name>[/<version>]. Secret names are 1-127
// letters, digits and hyphens; versions are 32 hex digits. For a bare name the returned Location
// has no Host or Vault. Errors are *secrets.Error of kind InvalidInput. It never panics.
func ParsePath(path string) (Location, error) {
	bad := func(msg string) (Location, error) {
		return Location{}, &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Ref: redactPath(path), Msg: msg}
	}
	switch {
	case path == "":
		return bad("the secret path is empty; give a secret URL such as https://myvault.vault.azure.net/secrets/db-creds, or a secret name")
	case len(path) > maxPathLen:
		return bad(fmt.Sprintf("the secret path is longer than %d characters", maxPathLen))
	case strings.Contains(path, "://"):
		loc, msg := parseSecretURL(path)
		if msg != "" {
			return bad(msg)
		}
		return loc, nil
	case strings.Contains(path, "."):
		return bad("this looks like a secret URL without its scheme; write it as https://<vault>.vault.azure.net/secrets/<name>")
	}
	name, version, msg := splitNameVersion(path)
	if msg != "" {
		return bad(msg)
	}
	return Location{Name: name, Version: version}, nil
}

// splitNameVersion parses <name>[/<version>]; it returns a message when that is invalid.
func splitNameVersion(s string) (name, version, msg string) {
	parts := strings.Split(s, "/")
	if len(parts) > 2 || (len(parts) == 2 && parts[1] == "") {
		return "", "", "expected <name> or <name>/<version>"
	}
	name = parts[0]
	if len(parts) == 2 {
		version = parts[1]
	}
	switch {
	case !secretNameRE.MatchString(name):
		return "", "", "a secret name is 1-127 letters, digits and hyphens"
	case version != "" && !versionRE.MatchString(version):
		return "", "", "a secret version is 32 hexadecimal digits"
	}
	return name, version, ""
}

// parseSecretURL parses the URL form of a secret path; it returns a message when it is invalid.
func parseSecretURL(raw string) (Location, string) {
	if strings.ContainsAny(raw, "@?#") {
		return Location{}, "a secret URL must not contain user info, a query or a fragment; use https://<vault>.vault.azure.net/secrets/<name>[/<version>]"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return Location{}, "the secret URL is malformed; use https://<vault>.vault.azure.net/secrets/<name>[/<version>]"
	}
	if u.Scheme != "https" {
		return Location{}, "a secret URL must use https"
	}
	if p := u.Port(); p != "" && p != "443" {
		return Location{}, "a secret URL must not name a port other than 443"
	}
	host := strings.ToLower(u.Hostname())
	vault, suffix, _ := strings.Cut(host, ".")
	if msg := hostProblem(vault, suffix); msg != "" {
		return Location{}, msg
	}
	rest, ok := strings.CutPrefix(strings.TrimSuffix(u.EscapedPath(), "/"), "/secrets/")
	if !ok {
		return Location{}, "a secret URL's path must be /secrets/<name>[/<version>]"
	}
	name, version, msg := splitNameVersion(rest)
	if msg != "" {
		return Location{}, msg
	}
	return Location{Host: host, Vault: vault, Name: name, Version: version}, ""
}

// hostProblem checks the vault label and DNS suffix of a secret URL's host.
func hostProblem(vault, suffix string) string {
	if strings.HasPrefix(suffix, "managedhsm.") {
		return "Managed HSM holds keys, not secrets; give a Key Vault secret URL (https://<vault>.vault.azure.net/secrets/<name>)"
	}
	known := false
	for _, c := range clouds {
		known = known || suffix == c.suffix
	}
	if !known {
		return "the host is not a Key Vault host; expected <vault>.vault.azure.net, .vault.azure.cn, .vault.usgovcloudapi.net or .vault.microsoftazure.de"
	}
	if msg := vaultNameProblem(vault); msg != "" {
		return "the vault name in the URL " + msg
	}
	return ""
}

// ParseRef resolves ref against the vault that holds bare names (vaultName, may be empty) and
// returns the complete location of the secret. It applies ParsePath, then: a bare name needs
// vaultName; a URL must name vaultName's vault when vaultName is set; ref.Version must be a valid
// version and must agree with a version in the path; ref.Stage is refused (AWS only).
// Bare names live in the public cloud (vault.azure.net); other clouds need secret URLs.
// Errors are *secrets.Error of kind InvalidInput. It does no I/O and never panics.
func ParseRef(ref secrets.Ref, vaultName string) (Location, error) {
	loc, err := ParsePath(ref.Path)
	if err != nil {
		var se *secrets.Error
		if errors.As(err, &se) {
			se.Ref = displayRef(ref)
		}
		return Location{}, err
	}
	bad := func(msg string) (Location, error) {
		return Location{}, &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Ref: displayRef(ref), Msg: msg}
	}
	switch {
	case ref.Stage != "":
		return bad("version stages are an AWS feature; select a Key Vault version with the version field or the secret URL")
	case ref.Version != "" && !versionRE.MatchString(ref.Version):
		return bad("the version field must be a Key Vault version: 32 hexadecimal digits")
	case ref.Version != "" && loc.Version != "" && !strings.EqualFold(ref.Version, loc.Version):
		return bad("the secret URL names one version and the version field another; give the version once")
	case loc.Host == "" && vaultName == "":
		return bad("a bare secret name needs vaultName; set it, or give the full secret URL https://<vault>.vault.azure.net/secrets/<name>")
	case loc.Host == "" && vaultNameProblem(vaultName) != "":
		return bad("vaultName " + vaultNameProblem(vaultName))
	case loc.Host != "" && vaultName != "" && !strings.EqualFold(loc.Vault, vaultName):
		return bad(fmt.Sprintf("the secret URL names vault %q but vaultName is %q; make them agree, or leave vaultName empty",
			loc.Vault, truncate(vaultName, 40)))
	}
	if loc.Host == "" {
		loc.Vault = strings.ToLower(vaultName)
		loc.Host = loc.Vault + "." + clouds[0].suffix
	}
	if loc.Version == "" {
		loc.Version = ref.Version
	}
	return loc, nil
}

// displayRef is ref as errors show it: without any user info, query or fragment it may carry.
func displayRef(ref secrets.Ref) string {
	ref.Path = redactPath(ref.Path)
	return truncate(ref.String(), 300)
}

// redactPath removes what could be a credential from a malformed secret path: user info
// (everything up to the last '@') and any query or fragment.
func redactPath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i] + "?[REDACTED]"
	}
	if at := strings.LastIndexByte(p, '@'); at >= 0 {
		start := 0
		if i := strings.Index(p, "://"); i >= 0 && i < at {
			start = i + 3
		}
		p = p[:start] + "[REDACTED]@" + p[at+1:]
	}
	return truncate(p, 300)
}

// truncate shortens s to at most n bytes (on a UTF-8 boundary), marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

// ---- Error classification ----

// classify turns an SDK or transport error from Get Secret into a *secrets.Error.
func (s *Store) classify(ctx context.Context, ref secrets.Ref, loc Location, ex *exchange, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return secrets.ContextError(Name, ref, ctxErr)
	}
	status, tokenHost, tooLarge, credErr := ex.snapshot()
	var re *azcore.ResponseError
	var te *tokenError
	var ce *secrets.Error
	switch {
	case credErr != nil && errors.As(err, &te) && errors.As(credErr, &ce):
		e := *ce
		e.Ref = displayRef(ref)
		return &e
	case tooLarge || errors.Is(err, errResponseTooLarge):
		return s.fail(ref, secrets.StoreUnavailable, fmt.Sprintf(
			"an answer was larger than %d bytes, which Key Vault and Entra ID never send; check proxies between the agent and Azure", MaxResponseBytes),
			"response too large", err)
	case errors.As(err, &re):
		return s.responseError(ref, loc, re)
	case errors.As(err, &te):
		return s.tokenFailure(ref, tokenHost, te.err)
	case errors.Is(err, errSDKPanic):
		return s.fail(ref, secrets.StoreUnavailable,
			"the vault's authentication challenge was malformed; check that nothing between the agent and "+loc.Host+" answers in its place",
			"malformed challenge", err)
	}
	if e := networkError(ref, loc, err); e != nil {
		return e
	}
	switch status {
	case http.StatusOK:
		return s.malformed(ref, "its body is not a Key Vault secret")
	case http.StatusUnauthorized:
		return s.fail(ref, secrets.StoreUnavailable,
			"the vault's authentication challenge could not be used (its resource must be in "+cloudOf(loc.Host).suffix+"); check that nothing between the agent and "+loc.Host+" answers in its place",
			"HTTP 401 challenge", err)
	}
	return s.fail(ref, secrets.StoreUnavailable,
		"the request to "+loc.Host+" failed unexpectedly; check the agent's network path to the vault", "", err)
}

// networkError classifies transport failures reaching the vault, or returns nil.
func networkError(ref secrets.Ref, loc Location, err error) error {
	fail := func(kind secrets.Kind, msg, detail string) error {
		return &secrets.Error{Kind: kind, Store: Name, Ref: displayRef(ref), Msg: msg, Detail: detail, Cause: err}
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fail(secrets.SecretNotFound,
			"the vault host "+loc.Host+" does not exist in DNS; check the vault name (for a private endpoint, check the agent's private DNS zone)",
			"DNS not found")
	case errors.As(err, &dnsErr):
		return fail(secrets.StoreUnavailable, "cannot resolve "+loc.Host+"; check the agent's DNS", "DNS")
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return fail(secrets.StoreUnavailable,
			"the TLS certificate presented for "+loc.Host+" is not trusted; if a proxy inspects TLS, give the agent its CA", "TLS")
	case errors.As(err, &netErr):
		return fail(secrets.StoreUnavailable,
			"cannot reach "+loc.Host+"; check the agent's network path, proxy and the vault's firewall", "network")
	}
	return nil
}

// kvError is the error object of a Key Vault response body.
type kvError struct {
	Error struct {
		Code       string `json:"code"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// knownCodes are the Key Vault error codes (outer and inner) that messages may show. Any other
// code is used for classification only and never shown, so a response body cannot smuggle text
// into an error through its code.
var knownCodes = map[string]bool{
	"BadParameter": true, "Unauthorized": true, "Forbidden": true, "SecretNotFound": true,
	"VersionNotFound": true, "NotFound": true, "Throttled": true, "TooManyRequests": true,
	"Conflict": true, "InternalServerError": true, "ServiceUnavailable": true, "BadGateway": true,
	"GatewayTimeout": true, "RequestTimeout": true, "ObjectIsBeingDeleted": true,
	"ObjectIsDeletedButRecoverable": true, "ForbiddenByRbac": true, "ForbiddenByPolicy": true,
	"ForbiddenByFirewall": true, "ForbiddenByConnection": true, "AccessDenied": true,
	"SecretDisabled": true, "SecretExpired": true, "SecretNotYetValid": true,
}

// shown returns c if it may appear in a message, else "".
func shown(c string) string {
	if knownCodes[c] {
		return c
	}
	return ""
}

// responseError maps a Key Vault error response to a Kind. Only the status and known error codes
// are used: ResponseError.Error() holds the raw body and is never shown.
func (s *Store) responseError(ref secrets.Ref, loc Location, re *azcore.ResponseError) error {
	code, inner := re.ErrorCode, ""
	if re.RawResponse != nil {
		if body, err := runtime.Payload(re.RawResponse); err == nil {
			var kv kvError
			if json.Unmarshal(body, &kv) == nil {
				if code == "" {
					code = kv.Error.Code
				}
				if kv.Error.InnerError != nil {
					inner = kv.Error.InnerError.Code
				}
			}
		}
	}
	detail := "HTTP " + strconv.Itoa(re.StatusCode)
	for _, c := range []string{shown(code), shown(inner)} {
		if c != "" {
			detail += " " + c
		}
	}
	e := s.fail(ref, secrets.KindForHTTPStatus(re.StatusCode), "", detail, re)
	switch {
	case re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusGone:
		e.Msg = "the secret does not exist in vault " + loc.Vault + "; check the name"
		if loc.Version != "" {
			e.Msg += " and the version"
		}
		e.Msg += " (a deleted secret must be recovered first)"
	case re.StatusCode == http.StatusForbidden:
		e.Msg = forbiddenMessage(code, inner)
	case re.StatusCode == http.StatusUnauthorized:
		e.Msg = "Key Vault refused the agent's token; the identity's tenant must be the vault's tenant. " + s.authFix()
	case re.StatusCode == http.StatusTooManyRequests:
		e.Msg = "Key Vault is throttling the agent; it will try again later"
		e.RetryAfter = retryAfter(re.RawResponse)
	case re.StatusCode == http.StatusBadRequest:
		e.Msg = "Key Vault rejected the request as malformed; check the secret name and version"
	case re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout:
		e.Msg = "Key Vault failed on its side; it will be tried again"
		e.RetryAfter = retryAfter(re.RawResponse)
	case re.StatusCode < 400:
		e.Kind = secrets.StoreUnavailable
		e.Msg = "Key Vault answered with an unexpected status; check that nothing between the agent and " + loc.Host + " redirects requests"
	default:
		e.Msg = "Key Vault refused the request; check the secret path"
	}
	return e
}

// forbiddenMessage says how to fix a 403 from Key Vault, by its (inner) error code.
func forbiddenMessage(code, inner string) string {
	c := strings.ToLower(truncate(code, 64) + " " + truncate(inner, 64))
	switch {
	case strings.Contains(c, "disabled"):
		return "the secret (or this version of it) is disabled; enable it in the vault, or reference an enabled version"
	case strings.Contains(c, "expired") || strings.Contains(c, "notyetvalid"):
		return "the secret (or this version of it) is outside its activation/expiry dates; update them in the vault, or reference another version"
	case strings.Contains(c, "firewall") || strings.Contains(c, "connection"):
		return "the vault's firewall refuses the agent's network address; allow the agent's outbound IP or virtual network in the vault's networking settings, or use a private endpoint"
	case strings.Contains(c, "rbac"):
		return "the agent's identity has no role that may read this secret; assign it the \"Key Vault Secrets User\" role on the vault or the secret"
	case strings.Contains(c, "policy") || strings.Contains(c, "accessdenied"):
		return "the vault's access policies do not let the agent's identity read secrets; add an access policy granting it the secret permission \"get\""
	}
	return "the agent's identity may not read this secret; assign it the \"Key Vault Secrets User\" role (RBAC vaults) or an access policy with the secret permission \"get\" (access-policy vaults)"
}

// retryAfter reads Azure's retry headers (retry-after-ms, x-ms-retry-after-ms, Retry-After),
// capped at secrets.MaxRetryAfter.
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	for _, h := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		ms, err := strconv.ParseInt(strings.TrimSpace(resp.Header.Get(h)), 10, 64)
		if err != nil || ms <= 0 {
			continue
		}
		if ms > secrets.MaxRetryAfter.Milliseconds() {
			return secrets.MaxRetryAfter
		}
		return time.Duration(ms) * time.Millisecond
	}
	return secrets.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
}

// imdsHost is the Azure Instance Metadata Service address managed identities use on VMs.
const imdsHost = "169.254.169.254"

// oauthCodes are the OAuth 2.0 "error" values token errors may show.
var oauthCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "invalid_resource": true, "access_denied": true,
	"interaction_required": true, "server_error": true, "temporarily_unavailable": true,
}

// tokenFailure maps a failure to get a token. tokenHost is the host of a token request that
// failed in transport, if any.
func (s *Store) tokenFailure(ref secrets.Ref, tokenHost string, err error) error {
	var afe *azidentity.AuthenticationFailedError
	switch {
	case tokenHost == imdsHost:
		return s.fail(ref, secrets.AuthFailed,
			"no managed identity endpoint answered at "+imdsHost+": the agent does not appear to run on an Azure resource with a managed identity; run it on one, or use authMethod service-principal",
			"IMDS unreachable", err)
	case tokenHost != "":
		return s.fail(ref, secrets.StoreUnavailable,
			"cannot reach the identity endpoint "+tokenHost+" to get a token; check the agent's network path and proxy",
			"token endpoint unreachable", err)
	case errors.As(err, &afe) && afe.RawResponse != nil:
		return s.tokenResponseError(ref, afe.RawResponse, err)
	}
	return s.fail(ref, secrets.AuthFailed, "the agent could not get a token for Key Vault. "+s.authFix(), "", err)
}

// tokenResponseError maps an error answer from a token endpoint (Entra ID or a managed identity
// endpoint). Detail shows the status, a standard OAuth error code and the AADSTS number only.
func (s *Store) tokenResponseError(ref secrets.Ref, resp *http.Response, err error) error {
	detail := "token HTTP " + strconv.Itoa(resp.StatusCode)
	if body, perr := runtime.Payload(resp); perr == nil {
		var oe struct {
			Error      string `json:"error"`
			ErrorCodes []int  `json:"error_codes"`
		}
		if json.Unmarshal(body, &oe) == nil {
			if oauthCodes[oe.Error] {
				detail += " " + oe.Error
			}
			if len(oe.ErrorCodes) > 0 && oe.ErrorCodes[0] > 0 {
				detail += " AADSTS" + strconv.Itoa(oe.ErrorCodes[0])
			}
		}
	}
	kind := secrets.KindForHTTPStatus(resp.StatusCode)
	if resp.StatusCode == http.StatusGone || (resp.StatusCode == http.StatusNotFound && resp.Request != nil && resp.Request.URL.Hostname() == imdsHost) {
		kind = secrets.StoreUnavailable // IMDS answers 404 and 410 while it is being updated
	}
	switch kind {
	case secrets.Throttled:
		e := s.fail(ref, kind, "the identity endpoint is throttling the agent; it will try again later", detail, err)
		e.RetryAfter = retryAfter(resp)
		return e
	case secrets.StoreUnavailable:
		return s.fail(ref, kind, "the identity endpoint failed on its side; it will be tried again", detail, err)
	}
	return s.fail(ref, secrets.AuthFailed, "the identity endpoint refused to issue a token. "+s.authFix(), detail, err)
}

// authFix says how to fix authentication for the Store's method.
func (s *Store) authFix() string {
	switch {
	case s.cfg.Credential != nil:
		return "Check the agent's configured Azure credential."
	case s.wi != nil:
		return "Check the agent's workload identity: the identity with client id " + s.wi.clientID +
			" (AZURE_CLIENT_ID) needs a federated identity credential for this cluster's OIDC issuer and the agent's service account (subject system:serviceaccount:<namespace>:<name>), and AZURE_TENANT_ID must be the vault's tenant."
	case s.method == AuthServicePrincipal:
		return "Check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or the certificate) on the agent: the secret or certificate may be wrong or expired, and AZURE_TENANT_ID must be the vault's tenant."
	case s.cfg.ClientID != "":
		return "Check that the user-assigned managed identity with client id " + s.cfg.ClientID + " exists and is assigned to the Azure resource the agent runs on."
	}
	return "Check that the Azure resource the agent runs on has a system-assigned managed identity enabled, or set clientId to a user-assigned identity assigned to it."
}

// NewTokenCredential returns the agent's Entra ID credential for the public cloud, built as a
// store with cfg would build it (AuthMethod managed-identity by default, which uses the workload
// identity when AZURE_FEDERATED_TOKEN_FILE is set; service-principal from AZURE_TENANT_ID,
// AZURE_CLIENT_ID and the secret or certificate): for tokens of other Azure resources than Key
// Vault, such as Azure Database for PostgreSQL's. It reads the environment and does no I/O.
func NewTokenCredential(cfg Config) (azcore.TokenCredential, error) {
	method := cfg.AuthMethod
	if method == "" {
		method = AuthManagedIdentity
	}
	creds, _, errs := newCredentials(cfg, method)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return creds[clouds[0].suffix], nil
}
