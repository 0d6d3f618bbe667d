package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"google.golang.org/api/option"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/aws"
	"github.com/secure-agent/secure-agent/secrets/azure"
	"github.com/secure-agent/secure-agent/secrets/custom"
	"github.com/secure-agent/secure-agent/secrets/env"
	"github.com/secure-agent/secure-agent/secrets/gcp"
)

// Options are the agent-side settings of the stores. Workflow input never reaches them.
type Options struct {
	// EnvAllow are the env store's allowlist patterns.
	EnvAllow []string
	// CustomStoreEnvAllow are glob patterns of agent variables a custom store may send as
	// headers or bearer tokens; the env store's denylist applies as well.
	CustomStoreEnvAllow []string
	// CustomStoreHosts are glob patterns (path.Match syntax) of the hosts, as "host" or
	// "host:port", that a custom store's store_url may name and its connections may dial. A host
	// is matched in canonical form (netguard.CanonicalHost): lower case, no trailing dot, IP
	// addresses in netip's form (IPv6 also as "[v6]"), "host:port" with the URL's explicit port
	// or, at dial time, the port dialled. Empty: no custom store is allowed.
	CustomStoreHosts []string
	// CustomVersionPath returns, for a custom store's host (canonical form) and port (the
	// store_url's explicit port, or 0), the JSON dot path of the version id in the store's
	// answers, or "" for none (customStores.versionPaths, SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS).
	// Nil: none.
	CustomVersionPath func(host string, port int) string
	// CustomCAFile returns, for a custom store's host and port (as for CustomVersionPath), the
	// absolute path of a PEM CA bundle trusted in addition to the system roots, or "" for none
	// (customStores.caFiles, SECURE_AGENT_CUSTOM_STORE_CA_FILES). Nil: none.
	CustomCAFile func(host string, port int) string
	// AWSSessionName names assume-role sessions.
	AWSSessionName string
	// LookupEnv reads agent variables (default os.LookupEnv).
	LookupEnv func(string) (string, bool)

	// Vault builds the agent's Vault store (HashiCorp Vault or OpenBao) from its own settings
	// (address, namespace, auth: never workflow input), once; nil when the agent has none, and
	// the vault store type is then refused.
	Vault func(ctx context.Context) (secrets.Store, error)

	// Overrides for private endpoints and tests.
	AWSEndpoint, AWSSTSEndpoint string
	AWSHTTPClient               aws.HTTPClient
	AzureCredential             azcore.TokenCredential
	AzureHTTPClient             *http.Client
	GCPClientOptions            []option.ClientOption
}

// Opener builds stores from input specs, once per distinct configuration, and reuses them.
// It is safe for concurrent use.
type Opener struct {
	opts Options
	env  *env.Store
	// customDialer opens every connection of the custom stores: only to destinations that
	// CustomStoreHosts names, judged on exactly what is dialled.
	customDialer *netguard.Dialer

	mu     sync.Mutex
	stores map[string]secrets.Store
}

// NewOpener returns an Opener. Malformed allowlist patterns are reported here, at start-up.
func NewOpener(opts Options) (*Opener, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	var errs []error
	envStore, err := env.New(env.Options{Allow: opts.EnvAllow, LookupEnv: opts.LookupEnv})
	if err != nil {
		errs = append(errs, fmt.Errorf("SECURE_AGENT_ENV_ALLOW: %w", err))
	}
	for setting, patterns := range map[string][]string{
		"SECURE_AGENT_CUSTOM_STORE_ENV_ALLOW": opts.CustomStoreEnvAllow,
		"SECURE_AGENT_CUSTOM_STORE_HOSTS":     opts.CustomStoreHosts,
	} {
		for _, p := range patterns {
			if _, err := path.Match(p, ""); err != nil || strings.TrimSpace(p) == "" {
				errs = append(errs, fmt.Errorf("%s: pattern %q is not a valid glob", setting, p))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	o := &Opener{opts: opts, env: envStore, stores: make(map[string]secrets.Store)}
	o.customDialer = &netguard.Dialer{Check: o.checkCustomDestination}
	return o, nil
}

// Open validates spec and returns the store it names, with the reference of its secretPath (nil
// when the store has none). A nil spec is a run without a secret store: every field is a literal.
func (o *Opener) Open(ctx context.Context, spec *Spec) (secrets.Source, *secrets.Ref, error) {
	if spec == nil {
		return secrets.Source{Name: "none", Key: "none", Store: noStore{}}, nil, nil
	}
	// BoundaryProblems is checked here, on the agent, whatever the workflow checked: input may
	// come from a worker that skips workflow validation.
	if problems := append(Validate(*spec), BoundaryProblems(*spec)...); len(problems) > 0 {
		return secrets.Source{}, nil, &secrets.Error{Kind: secrets.InvalidInput, Store: spec.Type, Msg: strings.Join(problems, "; ")}
	}
	switch spec.Type {
	case TypeEnv:
		return secrets.Source{Name: env.Name, Key: env.Name, Store: o.env}, nil, nil
	case TypeAWS:
		cfg := o.awsConfig(*spec)
		key := strings.Join([]string{aws.Name, cfg.Region, authOrDefault(cfg.AuthMethod, "iam"), cfg.RoleARN, cfg.ExternalID}, "\x00")
		store, err := o.get(key, func() (secrets.Store, error) { return aws.New(ctx, cfg) })
		return secrets.Source{Name: aws.Name, Key: key, Store: store}, awsRef(*spec), err
	case TypeAzure:
		cfg := o.azureConfig(*spec)
		key := strings.Join([]string{azure.Name, strings.ToLower(cfg.VaultName), authOrDefault(cfg.AuthMethod, azure.AuthManagedIdentity), strings.ToLower(cfg.ClientID)}, "\x00")
		store, err := o.get(key, func() (secrets.Store, error) { return azure.New(ctx, cfg) })
		return secrets.Source{Name: azure.Name, Key: key, Store: store}, pathRef(spec.SecretPath), err
	case TypeGCP:
		key := gcp.Name
		store, err := o.get(key, func() (secrets.Store, error) { return gcp.New(ctx, gcp.Config{ClientOptions: o.opts.GCPClientOptions}) })
		return secrets.Source{Name: gcp.Name, Key: key, Store: store}, pathRef(spec.SecretPath), err
	case TypeVault:
		if o.opts.Vault == nil {
			return secrets.Source{}, nil, &secrets.Error{Kind: secrets.InvalidInput, Store: TypeVault,
				Msg: "this agent has no Vault configured: its operator sets SECURE_AGENT_VAULT_ADDR and how it logs in (see the README, Vault)"}
		}
		store, err := o.get(TypeVault, func() (secrets.Store, error) { return o.opts.Vault(ctx) })
		var ref *secrets.Ref
		if spec.SecretPath != "" {
			ref = &secrets.Ref{Path: spec.SecretPath, Version: spec.Version}
		}
		return secrets.Source{Name: TypeVault, Key: TypeVault, Store: store}, ref, err
	case TypeCustom:
		raw, _ := spec.customConfig() // Validate checked it
		cfg, ref, _ := custom.ParseStoreConfig(raw)
		// The agent-side values (version path, CA file) are functions of the store_url's host
		// and port, which the key holds.
		key := custom.Name + "\x00" + cfg.Key()
		store, err := o.get(key, func() (secrets.Store, error) {
			return custom.New(ctx, cfg, custom.Options{
				LookupEnv: o.opts.LookupEnv, AllowEnv: o.allowCustomEnv, AllowStoreURL: o.allowCustomURL,
				VersionPath: o.opts.CustomVersionPath, CAFile: o.opts.CustomCAFile,
				DialContext: o.customDialer.DialContext,
			})
		})
		if ref.Path == "" {
			return secrets.Source{Name: custom.Name, Key: key, Store: store}, nil, err // every secret named per field
		}
		return secrets.Source{Name: custom.Name, Key: key, Store: store}, &ref, err
	}
	return secrets.Source{}, nil, &secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("unknown store type %q", spec.Type)}
}

// Close closes every store that holds resources.
func (o *Opener) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for key, s := range o.stores {
		if c, ok := s.(io.Closer); ok {
			_ = c.Close()
		}
		delete(o.stores, key)
	}
}

// get returns the store cached under key, building it on first use. A failed build is not
// cached, so fixing the agent's environment takes effect on the next attempt.
func (o *Opener) get(key string, build func() (secrets.Store, error)) (secrets.Store, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.stores[key]; ok {
		return s, nil
	}
	s, err := build()
	if err != nil {
		return nil, err
	}
	o.stores[key] = s
	return s, nil
}

func (o *Opener) awsConfig(spec Spec) aws.Config {
	return aws.Config{
		Region: spec.Region, AuthMethod: spec.AuthMethod, RoleARN: spec.RoleARN, ExternalID: spec.ExternalID,
		SessionName: o.opts.AWSSessionName, Endpoint: o.opts.AWSEndpoint, STSEndpoint: o.opts.AWSSTSEndpoint,
		HTTPClient: o.opts.AWSHTTPClient,
	}
}

func (o *Opener) azureConfig(spec Spec) azure.Config {
	return azure.Config{
		VaultName: spec.VaultName, AuthMethod: spec.AuthMethod, ClientID: spec.ClientID,
		Credential: o.opts.AzureCredential, HTTPClient: o.opts.AzureHTTPClient,
	}
}

// awsRef is the secretPath's reference with its version or stage, or nil without a secretPath
// (every secret named per field).
func awsRef(spec Spec) *secrets.Ref {
	if spec.SecretPath == "" {
		return nil
	}
	return &secrets.Ref{Path: spec.SecretPath, Version: spec.VersionID, Stage: spec.VersionStage}
}

// pathRef is the reference of a secretPath, or nil without one.
func pathRef(path string) *secrets.Ref {
	if path == "" {
		return nil
	}
	return &secrets.Ref{Path: path}
}

// allowCustomEnv is the policy for variables a custom store sends: on the custom-store
// allowlist and never one the env store's denylist protects.
func (o *Opener) allowCustomEnv(name string) error {
	if p := env.DeniedBy(name); p != "" {
		return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name,
			Msg: fmt.Sprintf("variable %q matches %q, which holds the agent's own credentials or settings and is never sent to a custom store", name, p)}
	}
	for _, p := range o.opts.CustomStoreEnvAllow {
		if ok, _ := path.Match(p, name); ok {
			return nil
		}
	}
	return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name,
		Msg: fmt.Sprintf("variable %q is not on the agent's custom-store allowlist: add a matching pattern to SECURE_AGENT_CUSTOM_STORE_ENV_ALLOW on the agent", name)}
}

// allowCustomURL is the policy for custom store hosts: only those the operator listed. custom.New
// passes the URL with its host in canonical form; a host that has none is refused.
func (o *Opener) allowCustomURL(u *url.URL) error {
	host, err := netguard.CanonicalHost(u.Hostname())
	if err != nil {
		return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name,
			Msg: "store_url's host is not a host the agent connects to (not an IP address or DNS name in canonical form)"}
	}
	port := 0
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name, Msg: "store_url has an invalid port"}
		}
	}
	if o.customHostAllowed(host, port) {
		return nil
	}
	return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name,
		Msg: fmt.Sprintf("store_url host %q is not on the agent's custom-store host list: add it to SECURE_AGENT_CUSTOM_STORE_HOSTS on the agent", u.Host)}
}

// checkCustomDestination is the dial-time policy of the custom stores: a TCP destination, in
// canonical form, whose host or host:port a CustomStoreHosts pattern matches. Its messages never
// name the destination.
func (o *Opener) checkCustomDestination(d netguard.Destination) error {
	if d.Network != netguard.NetworkTCP {
		return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name,
			Msg: "a custom store is reached over TCP only; the agent refused to dial another kind of destination"}
	}
	if h, err := netguard.CanonicalHost(d.Host); err != nil || h != d.Host || d.Port < 1 || d.Port > 65535 {
		return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name,
			Msg: "the agent refused to dial a custom store destination that is not in canonical form"}
	}
	if o.customHostAllowed(d.Host, d.Port) {
		return nil
	}
	return &secrets.Error{Kind: secrets.PolicyDenied, Store: custom.Name,
		Msg: "the agent refused to connect: the destination of the custom store's connection is not on the agent's custom-store host list (SECURE_AGENT_CUSTOM_STORE_HOSTS, or customStores.hosts in the policy file)"}
}

// customHostAllowed reports whether a CustomStoreHosts pattern matches a canonical host as
// "host" ("[v6]" as well, as url.URL.Host writes it) or, with a port, as "host:port".
func (o *Opener) customHostAllowed(host string, port int) bool {
	forms := []string{host}
	if strings.Contains(host, ":") {
		forms = append(forms, "["+host+"]")
	}
	if port != 0 {
		forms = append(forms, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	for _, p := range o.opts.CustomStoreHosts {
		for _, f := range forms {
			if ok, _ := path.Match(p, f); ok {
				return true
			}
		}
	}
	return false
}

func authOrDefault(method, def string) string {
	if method == "" {
		return def
	}
	return method
}

// noStore is the store of a run without a secretStore block.
type noStore struct{}

func (noStore) Fetch(_ context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	return nil, &secrets.Error{Kind: secrets.InvalidInput, Ref: ref.String(),
		Msg: "the input has no secretStore block: add one that says where this secret is"}
}
