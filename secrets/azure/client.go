package azure

// This file builds what New sets up once per Store: the agent's credentials (managed identity or
// service principal; workload identity is in workload.go) and the HTTP client under the SDK,
// which bounds response sizes and records what each Fetch's requests met so errors can be
// classified.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/secure-agent/secure-agent/secrets"
)

// ---- Credentials ----

// newCredentials builds the credential for each cloud from the chosen method and the agent's
// environment. A managed identity serves every cloud; a service principal gets one credential per
// cloud, each with that cloud's Entra ID authority; so does a workload identity, unless
// AZURE_AUTHORITY_HOST names its authority. The workload identity, when one is used (also for
// AuthManagedIdentity while AZURE_FEDERATED_TOKEN_FILE is set), is returned for messages.
func newCredentials(cfg Config, method string) (map[string]azcore.TokenCredential, *workloadIdentity, []error) {
	creds := make(map[string]azcore.TokenCredential, len(clouds))
	if cfg.Credential != nil {
		for _, c := range clouds {
			creds[c.suffix] = cfg.Credential
		}
		return creds, nil, nil
	}
	if method == AuthWorkloadIdentity || (method == AuthManagedIdentity && workloadIdentityPresent()) {
		wi, errs := readWorkloadIdentity(method, cfg.ClientID)
		if len(errs) > 0 {
			return nil, nil, errs
		}
		creds, err := wi.credentials(cfg)
		if err != nil {
			return nil, nil, []error{err}
		}
		return creds, wi, nil
	}
	if method == AuthManagedIdentity {
		cred, err := newManagedIdentity(cfg)
		if err != nil {
			return nil, nil, []error{err}
		}
		for _, c := range clouds {
			creds[c.suffix] = cred
		}
		return creds, nil, nil
	}
	sp, errs := readServicePrincipal(cfg.ClientID)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	defer sp.forget()
	for _, c := range clouds {
		cred, err := sp.credential(credentialOptions(cfg, c.config))
		if err != nil {
			return nil, nil, []error{&secrets.Error{Kind: secrets.AuthFailed, Store: Name, Cause: err,
				Msg: "cannot build the service principal credential from AZURE_TENANT_ID, AZURE_CLIENT_ID and the client secret or certificate; check their values"}}
		}
		creds[c.suffix] = cred
	}
	return creds, nil, nil
}

// credentialOptions are the pipeline options of every credential: the agent's HTTP client with
// response limits, the cloud's authority, and no retries.
func credentialOptions(cfg Config, c cloud.Configuration) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     c,
		Transport: guardedClient(cfg.HTTPClient, phaseToken),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// newManagedIdentity builds a managed identity credential, user-assigned when cfg.ClientID is set.
// The hosting environment (App Service, Azure Arc, Service Fabric, ... or IMDS) is detected from
// the agent's environment by the SDK.
func newManagedIdentity(cfg Config) (azcore.TokenCredential, error) {
	opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: credentialOptions(cfg, cloud.AzurePublic)}
	if serviceFabric() {
		// Service Fabric pins its endpoint's certificate and needs the agent's own client as is.
		opts.Transport = nil
		if cfg.HTTPClient != nil {
			opts.Transport = cfg.HTTPClient
		}
	}
	if cfg.ClientID != "" {
		opts.ID = azidentity.ClientID(cfg.ClientID)
	}
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		return nil, &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Cause: err,
			Msg: "cannot use a managed identity in this hosting environment; run the agent on an Azure resource with a managed identity, or use authMethod service-principal"}
	}
	return cred, nil
}

func serviceFabric() bool {
	return os.Getenv("IDENTITY_ENDPOINT") != "" && os.Getenv("IDENTITY_HEADER") != "" && os.Getenv("IDENTITY_SERVER_THUMBPRINT") != ""
}

// servicePrincipal is the service principal configuration read from the agent's environment.
type servicePrincipal struct {
	tenant, clientID, secret string
	certs                    []*x509.Certificate
	key                      any
}

// readServicePrincipal reads the AZURE_* variables, and the certificate file when there is no
// client secret. inputClientID, when a GUID, must name the same application.
func readServicePrincipal(inputClientID string) (*servicePrincipal, []error) {
	sp := &servicePrincipal{
		tenant:   os.Getenv("AZURE_TENANT_ID"),
		clientID: os.Getenv("AZURE_CLIENT_ID"),
		secret:   os.Getenv("AZURE_CLIENT_SECRET"),
	}
	certPath := os.Getenv("AZURE_CLIENT_CERTIFICATE_PATH")
	var missing []string
	if sp.tenant == "" {
		missing = append(missing, "AZURE_TENANT_ID")
	}
	if sp.clientID == "" {
		missing = append(missing, "AZURE_CLIENT_ID")
	}
	if sp.secret == "" && certPath == "" {
		missing = append(missing, "AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH)")
	}
	if len(missing) > 0 {
		return nil, []error{configError(secrets.AuthFailed,
			"authMethod service-principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) in the agent's environment; set "+
				strings.Join(missing, ", "))}
	}
	var errs []error
	if !validTenant(sp.tenant) {
		errs = append(errs, configError(secrets.AuthFailed, "AZURE_TENANT_ID on the agent must be a tenant id (a GUID) or a verified domain name"))
	}
	if !isGUID(sp.clientID) {
		errs = append(errs, configError(secrets.AuthFailed, "AZURE_CLIENT_ID on the agent must be the application (client) id of the service principal, a GUID"))
	} else if isGUID(inputClientID) && !strings.EqualFold(inputClientID, sp.clientID) {
		errs = append(errs, configError(secrets.InvalidInput,
			"clientId names a different application than the agent's service principal (AZURE_CLIENT_ID); leave clientId empty with service-principal, it selects user-assigned managed identities"))
	}
	if sp.secret == "" && len(errs) == 0 {
		if err := sp.loadCertificate(certPath, os.Getenv("AZURE_CLIENT_CERTIFICATE_PASSWORD")); err != nil {
			errs = append(errs, err)
		}
	}
	return sp, errs
}

// validTenant accepts what Entra ID accepts as a tenant: a GUID or a domain name.
func validTenant(t string) bool {
	if t == "" || len(t) > 253 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !isLetter(c) && !isDigit(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// loadCertificate reads a PEM or PKCS#12 certificate with its private key, zeroing the file's
// bytes and the password's afterwards.
func (sp *servicePrincipal) loadCertificate(path, password string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Cause: err,
			Msg: "cannot read the certificate file named by AZURE_CLIENT_CERTIFICATE_PATH; check the path and that the agent may read it"}
	}
	pw := []byte(password)
	defer clear(data)
	defer clear(pw)
	sp.certs, sp.key, err = azidentity.ParseCertificates(data, pw)
	if err != nil {
		return &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Cause: err,
			Msg: "cannot load the certificate named by AZURE_CLIENT_CERTIFICATE_PATH: it must be PEM or PKCS#12 with the private key; check AZURE_CLIENT_CERTIFICATE_PASSWORD"}
	}
	return nil
}

// credential builds the secret or certificate credential for one cloud.
func (sp *servicePrincipal) credential(opts azcore.ClientOptions) (azcore.TokenCredential, error) {
	if sp.secret != "" {
		return azidentity.NewClientSecretCredential(sp.tenant, sp.clientID, sp.secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
	}
	return azidentity.NewClientCertificateCredential(sp.tenant, sp.clientID, sp.certs, sp.key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts})
}

// forget drops the references New no longer needs; the credentials keep their own copies.
func (sp *servicePrincipal) forget() { sp.secret, sp.key, sp.certs = "", nil, nil }

// markedCredential marks errors from token acquisition, so Fetch can tell them from Key Vault's.
type markedCredential struct{ inner azcore.TokenCredential }

// tokenError is a failure to get a token for Key Vault.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "azure: getting a token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// GetToken implements azcore.TokenCredential.
func (c *markedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.inner.GetToken(ctx, opts)
	if err != nil {
		return azcore.AccessToken{}, &tokenError{err}
	}
	return tok, nil
}

// ---- Transport: response limits and a per-Fetch record of what happened ----

var errResponseTooLarge = fmt.Errorf("azure: response larger than %d bytes", MaxResponseBytes)

// phase says whose requests a transport carries.
type phase int

const (
	phaseVault phase = iota
	phaseToken
)

// exchange records, for one Fetch, what the transports saw. The SDKs lose error chains in places
// (azidentity flattens a token request's transport error to text), so classification uses this.
type exchange struct {
	mu              sync.Mutex
	vaultStatus     int    // status of the last Key Vault response
	tokenFailedHost string // host of a token request that failed in transport
	tooLarge        bool   // a response went past MaxResponseBytes
	credentialErr   error  // a classified failure of the agent's own credential source (a token file)
}

type exchangeKey struct{}

func withExchange(ctx context.Context, ex *exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, ex)
}

// record applies fn under the lock; it does nothing on a nil exchange (requests outside Fetch).
func (ex *exchange) record(fn func(*exchange)) {
	if ex == nil {
		return
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	fn(ex)
}

func (ex *exchange) snapshot() (status int, tokenHost string, tooLarge bool, credErr error) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.vaultStatus, ex.tokenFailedHost, ex.tooLarge, ex.credentialErr
}

// guardedClient returns an HTTP client over base's transport (or Go's default one) that limits
// response sizes, records what it sees in the request's exchange and, for Key Vault, refuses to
// follow redirects.
func guardedClient(base *http.Client, ph phase) *http.Client {
	c := &http.Client{}
	var rt http.RoundTripper
	if base != nil {
		*c = *base
		rt = base.Transport
	}
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		rt = t
	}
	c.Transport = &guardTransport{base: rt, phase: ph}
	if ph == phaseVault {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

type guardTransport struct {
	base  http.RoundTripper
	phase phase
}

// RoundTrip implements http.RoundTripper.
func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		if t.phase == phaseToken {
			host := req.URL.Hostname()
			ex.record(func(e *exchange) { e.tokenFailedHost = host })
		}
		return nil, err
	}
	if t.phase == phaseVault {
		ex.record(func(e *exchange) { e.vaultStatus = resp.StatusCode })
	}
	if resp.ContentLength > MaxResponseBytes {
		_ = resp.Body.Close()
		ex.record(func(e *exchange) { e.tooLarge = true })
		return nil, errResponseTooLarge
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxResponseBytes, ex: ex}
	return resp, nil
}

// limitedBody fails a read that goes past its limit.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	ex   *exchange
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.ex.record(func(e *exchange) { e.tooLarge = true })
		return 0, errResponseTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
