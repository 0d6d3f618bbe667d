package policy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/env"
)

// Store types, as the input's secretStore.type names them (secrets/stores.Types).
const (
	storeAWS    = "aws"
	storeAzure  = "azure"
	storeGCP    = "gcp"
	storeEnv    = "env"
	storeCustom = "custom"
	storeVault  = "vault"
)

// MaxRefBytes bounds a secret path: a longer one is refused, so no input makes matching slow.
const MaxRefBytes = 4096

// maxHostBytes bounds a destination host (DNS names have at most 253 bytes).
const maxHostBytes = 1024

// storeTypes lists the store types in documentation order.
var storeTypes = []string{storeAWS, storeAzure, storeGCP, storeEnv, storeCustom, storeVault}

// Policy is the agent-side policy. Build one with Load or Default. The zero value (and a nil
// *Policy) refuses every store and every credential from a secret. A Policy is immutable and safe
// for concurrent use.
type Policy struct {
	source  string // the policy file; "" for Default
	builtin bool   // Default: the settings, no file

	allStores bool     // every store type allowed
	stores    []string // allowed store types unless allStores

	allPaths bool                // every secret path allowed (Default)
	paths    map[string][]string // per store type (aws, azure, gcp, custom, vault) unless allPaths, in pathForm

	envAllow        []string
	customHosts     []string
	customHostPats  []hostPattern
	customHeaderEnv []string

	destOpen         bool // destinations not restricted
	destDefaultAllow bool
	rules            []rule

	allowSensitiveLiterals bool

	// customVersionPaths: where a custom store's JSON answer holds the version id, per host;
	// customCAFiles: the CA bundle a custom store's TLS certificate is verified with, per host.
	customVersionPaths []hostSetting
	customCAFiles      []hostSetting
	// sqliteDirs: the directories SQLite database files may be opened in.
	sqliteDirs []string
	// s3Open: the s3 output is not restricted (no policy file); else s3Listed says whether the
	// file has outputs.s3, and s3Buckets and s3Hosts what it allows.
	s3Open    bool
	s3Listed  bool
	s3Buckets []string
	s3Hosts   []hostPattern
	// catalogsOpen: output.push is not restricted (no policy file); else catalogsListed says
	// whether the file has outputs.catalogs, and catalogHosts the endpoints it allows.
	catalogsOpen   bool
	catalogsListed bool
	catalogHosts   []hostPattern
}

// hostSetting is one customStores.versionPaths or caFiles entry: a value for the custom stores
// whose store_url host matches.
type hostSetting struct {
	host  hostPattern
	value string
}

// rule is one destinations.rules entry.
type rule struct {
	index   int
	line    int
	secrets []string // patterns, as written
	loose   []string // looseForms of every pattern, for default: allow
	hosts   []hostPattern
	// legacyPasswordAuth lets the servers of hosts ask for the password in clear text or as
	// MD5 without verified TLS.
	legacyPasswordAuth bool
}

// Defaults are the agent settings that make up the policy when no policy file is configured.
type Defaults struct {
	// EnvAllow is SECURE_AGENT_ENV_ALLOW.
	EnvAllow []string
	// CustomHosts is SECURE_AGENT_CUSTOM_STORE_HOSTS.
	CustomHosts []string
	// CustomHeaderEnv is SECURE_AGENT_CUSTOM_STORE_ENV_ALLOW.
	CustomHeaderEnv []string
	// AllowSensitiveLiterals is SECURE_AGENT_ALLOW_SENSITIVE_LITERALS.
	AllowSensitiveLiterals bool
	// CustomVersionPaths is SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS: "host[:port]=dot.path"
	// entries; CustomCAFiles is SECURE_AGENT_CUSTOM_STORE_CA_FILES: "host[:port]=/path/ca.pem".
	CustomVersionPaths []string
	CustomCAFiles      []string
	// SQLiteDirs is SECURE_AGENT_SQLITE_DIRS.
	SQLiteDirs []string
}

// Default returns the policy used when no policy file is configured: every store type and every
// secret path allowed, destinations not restricted, the env store's allowlist envAllow
// (SECURE_AGENT_ENV_ALLOW) and the custom-store hosts customHosts
// (SECURE_AGENT_CUSTOM_STORE_HOSTS). Custom stores may send no header variable and sensitive
// literals are refused; Defaults.Policy sets those too.
func Default(envAllow, customHosts []string) *Policy {
	return Defaults{EnvAllow: envAllow, CustomHosts: customHosts}.Policy()
}

// Policy returns the policy used when no policy file is configured, as Default does, with every
// setting of d. The patterns are the stores' own settings: they are validated where the stores
// are built, not here.
func (d Defaults) Policy() *Policy {
	p := &Policy{
		builtin:                true,
		allStores:              true,
		allPaths:               true,
		destOpen:               true,
		envAllow:               slices.Clone(d.EnvAllow),
		customHosts:            slices.Clone(d.CustomHosts),
		customHeaderEnv:        slices.Clone(d.CustomHeaderEnv),
		allowSensitiveLiterals: d.AllowSensitiveLiterals,
		sqliteDirs:             slices.Clone(d.SQLiteDirs),
		s3Open:                 true,
		catalogsOpen:           true,
	}
	p.customVersionPaths, _ = parseHostSettings(d.CustomVersionPaths, "dot.path", dotPathProblem)
	p.customCAFiles, _ = parseHostSettings(d.CustomCAFiles, "/path/of/ca.pem", fileProblem)
	return p
}

// CheckDefaults reports every problem of the settings that make up the policy without a file, at
// once, each naming its setting: a malformed version path or SQLite directory, an env allowlist
// pattern that matches every variable, or one that overlaps the custom stores' header variables.
// (The stores validate the glob syntax of their own patterns.)
func (d Defaults) CheckDefaults() error {
	var errs []error
	_, problems := parseHostSettings(d.CustomVersionPaths, "dot.path", dotPathProblem)
	for _, p := range problems {
		errs = append(errs, fmt.Errorf("SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS: %s", p))
	}
	_, problems = parseHostSettings(d.CustomCAFiles, "/path/of/ca.pem", fileProblem)
	for _, p := range problems {
		errs = append(errs, fmt.Errorf("SECURE_AGENT_CUSTOM_STORE_CA_FILES: %s", p))
	}
	for _, dir := range d.SQLiteDirs {
		if msg := dirProblem(dir); msg != "" {
			errs = append(errs, fmt.Errorf("SECURE_AGENT_SQLITE_DIRS: a directory %s", msg))
		}
	}
	for _, a := range d.EnvAllow {
		if env.MatchesEverything(a) {
			errs = append(errs, fmt.Errorf("SECURE_AGENT_ENV_ALLOW: pattern %q matches every variable of the agent (other teams' passwords and the custom stores' tokens among them): name a prefix or suffix, such as DB_* or *_PASSWORD", a))
			continue
		}
		for _, b := range d.CustomHeaderEnv {
			if env.Overlap(a, b) {
				errs = append(errs, fmt.Errorf("SECURE_AGENT_ENV_ALLOW: pattern %q can match variables that SECURE_AGENT_CUSTOM_STORE_ENV_ALLOW lets custom stores send as credentials (%q): the env store would hand those tokens to workflow input; give the two settings names that cannot overlap", a, b))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// parseHostSettings reads "host[:port]=value" entries, each value approved by check.
func parseHostSettings(entries []string, valueExample string, check func(string) string) ([]hostSetting, []string) {
	var out []hostSetting
	var problems []string
	for i, e := range entries {
		host, v, ok := strings.Cut(e, "=")
		if !ok {
			problems = append(problems, fmt.Sprintf("entry %d must be host[:port]=%s", i+1, valueExample))
			continue
		}
		msg := patternProblem(host)
		var hp hostPattern
		if msg == "" {
			hp, msg = parseHostPattern(host, customStoreHosts)
		}
		if msg == "" {
			msg = check(v)
		}
		if msg != "" {
			problems = append(problems, fmt.Sprintf("entry %d: %s", i+1, msg))
			continue
		}
		out = append(out, hostSetting{host: hp, value: v})
	}
	return out, problems
}

// CustomVersionPath returns the JSON dot path at which a custom store whose store_url names
// host (and port, 0 if none) holds the version id of a secret, or "" when the policy names
// none: then the version comes only from the store's X-Secret-Version header. It is agent
// configuration, never workflow input, because a path into the answer could point into the
// secret itself. The first matching entry wins.
func (p *Policy) CustomVersionPath(host string, port int) string {
	return hostSettingFor(p.orEmpty().customVersionPaths, host, port)
}

// CustomCAFile returns the PEM CA bundle that a custom store whose store_url names host (and
// port) is verified with, besides the system roots, or "" for the system roots alone. Agent
// configuration: a path from workflow input could name any file on the agent.
func (p *Policy) CustomCAFile(host string, port int) string {
	return hostSettingFor(p.orEmpty().customCAFiles, host, port)
}

func hostSettingFor(settings []hostSetting, host string, port int) string {
	h := normalizeHost(host)
	for _, s := range settings {
		if s.host.matches(h, port) {
			return s.value
		}
	}
	return ""
}

// SQLiteDirs returns the directories in which the SQLite connector may open database files, as
// configured (a copy). The agent resolves their symbolic links at start-up.
func (p *Policy) SQLiteDirs() []string { return slices.Clone(p.orEmpty().sqliteDirs) }

// CheckOutput returns nil if the s3 output may write bucket through the endpoint dest (the
// object store's host and port, before any bucket name is prepended to it), else a
// PolicyDenied *secrets.Error. Without a policy file the s3 output is not restricted; a policy
// file restricts it to outputs.s3, and without that section refuses it. This holds whatever
// credentials the output uses, the agent's own identity included: the output is the customer's
// metadata, and the request is signed with the agent's credentials. The message never names the
// bucket or the host.
func (p *Policy) CheckOutput(bucket string, dest netguard.Destination) error {
	p = p.orEmpty()
	if p.s3Open {
		return nil
	}
	if !p.s3Listed {
		return denied("", "", fmt.Sprintf("the s3 output is not allowed by %s, which has no outputs.s3: add outputs.s3 with the buckets the agent may write and the endpoints (host:port) it may reach", p.where()))
	}
	if !slices.ContainsFunc(p.s3Buckets, func(pt string) bool { return connectors.Glob(pt, bucket) }) {
		return denied("", "", fmt.Sprintf("the s3 output's bucket is not allowed by outputs.s3.buckets in %s: add it to outputs.s3.buckets", p.where()))
	}
	if !slices.ContainsFunc(p.s3Hosts, func(hp hostPattern) bool { return hp.matchesDestination(dest) }) {
		return denied("", "", fmt.Sprintf("the s3 output's endpoint (not shown) is not allowed by outputs.s3.hosts in %s: add its host:port to outputs.s3.hosts", p.where()))
	}
	return nil
}

// CheckCatalog judges a catalog push endpoint (output.push), whatever token it uses: without a
// policy file every endpoint is allowed; a policy file restricts pushes to outputs.catalogs.hosts,
// and without that section refuses them. The message never shows the endpoint (its URL may come
// from a secret).
func (p *Policy) CheckCatalog(dest netguard.Destination) error {
	p = p.orEmpty()
	if p.catalogsOpen {
		return nil
	}
	if !p.catalogsListed {
		return denied("", "", fmt.Sprintf("pushing to a catalog is not allowed by %s, which has no outputs.catalogs: add outputs.catalogs.hosts with the endpoints (host:port) output.push may send to", p.where()))
	}
	if !slices.ContainsFunc(p.catalogHosts, func(hp hostPattern) bool { return hp.matchesDestination(dest) }) {
		return denied("", "", fmt.Sprintf("the catalog endpoint (not shown) is not allowed by outputs.catalogs.hosts in %s: add its host:port there", p.where()))
	}
	return nil
}

// Source returns the policy file's path, or "" for the default policy.
func (p *Policy) Source() string { return p.orEmpty().source }

// EnvAllow returns the env store's allowlist patterns (a copy). The env store applies its
// built-in denylist (env.Denied) on top of them.
func (p *Policy) EnvAllow() []string { return slices.Clone(p.orEmpty().envAllow) }

// CustomHosts returns the patterns of the hosts a custom store's store_url may name (a copy).
func (p *Policy) CustomHosts() []string { return slices.Clone(p.orEmpty().customHosts) }

// CustomHeaderEnv returns the patterns of the agent variables a custom store may send as headers
// or bearer tokens (a copy). The env store's denylist applies to them as well.
func (p *Policy) CustomHeaderEnv() []string { return slices.Clone(p.orEmpty().customHeaderEnv) }

// AllowSensitiveLiterals reports whether sensitive connection fields may hold literals. For local
// development only.
func (p *Policy) AllowSensitiveLiterals() bool { return p.orEmpty().allowSensitiveLiterals }

// where names the policy in messages.
func (p *Policy) where() string {
	switch {
	case p.builtin:
		return "the agent's default policy (no policy file)"
	case p.source == "":
		return "an empty policy"
	}
	return "policy file " + p.source
}

// orEmpty returns p, or an empty policy (which refuses everything) if p is nil.
func (p *Policy) orEmpty() *Policy {
	if p == nil {
		return &Policy{}
	}
	return p
}

func denied(store, ref, msg string) *secrets.Error {
	return &secrets.Error{Kind: secrets.PolicyDenied, Store: store, Ref: ref, Msg: msg}
}

// CheckStore returns nil if the policy lets the agent use the store type, else a PolicyDenied
// *secrets.Error. Without a stores list every type is allowed (an unknown type is left to input
// validation).
func (p *Policy) CheckStore(storeType string) error {
	if err := p.orEmpty().checkStore(storeType); err != nil {
		return err
	}
	return nil
}

func (p *Policy) checkStore(storeType string) *secrets.Error {
	if p.allStores || slices.Contains(p.stores, storeType) {
		return nil
	}
	if !slices.Contains(storeTypes, storeType) {
		return denied(storeType, "", fmt.Sprintf("store type %q is not allowed by policy stores in %s: the store types are %s",
			storeType, p.where(), strings.Join(storeTypes, ", ")))
	}
	return denied(storeType, "", fmt.Sprintf("the %s store is not allowed by policy stores in %s: add %s to stores",
		storeType, p.where(), storeType))
}

// CheckSecret returns nil if the policy lets the agent read the secret ref from a store of type
// storeType, else a PolicyDenied *secrets.Error. ref is the secret path as written in the input;
// for the env store the variable name; for a custom store "<store_url host[:port]>/<secret_name>".
// The store type must pass CheckStore as well.
//
// The env store's built-in denylist and its allowlist (EnvAllow) apply under every policy; the
// default policy allows every other path.
func (p *Policy) CheckSecret(storeType, ref string) error {
	p = p.orEmpty()
	if err := p.checkStore(storeType); err != nil {
		err.Ref = ref
		return err
	}
	if len(ref) > MaxRefBytes {
		return denied(storeType, "", fmt.Sprintf("the secret path is longer than %d bytes", MaxRefBytes))
	}
	if storeType == storeEnv {
		return p.checkEnv(ref)
	}
	if p.allPaths {
		return nil
	}
	key := "secrets." + storeType
	if storeType == storeCustom {
		host, port, ok := splitCustomRef(ref)
		if !ok {
			return denied(storeType, ref, "is not a custom store reference of the form <store_url host[:port]>/<secret_name>")
		}
		if !slices.ContainsFunc(p.customHostPats, func(hp hostPattern) bool { return hp.matches(host, port) }) {
			return denied(storeType, ref, fmt.Sprintf("names a store_url host that policy customStores.hosts in %s does not allow: add the host to customStores.hosts", p.where()))
		}
	}
	pats, listed := p.paths[storeType]
	if !listed {
		return denied(storeType, ref, fmt.Sprintf("is not allowed for the %s store: %s has no %s, so the %s store may read no secret: add %s with a matching pattern",
			storeType, p.where(), key, storeType, key))
	}
	form := pathForm(storeType, ref)
	for _, pt := range pats {
		if connectors.Glob(pt, form) {
			return nil
		}
	}
	return denied(storeType, ref, fmt.Sprintf("is not allowed for the %s store by policy %s in %s: add a matching pattern to %s",
		storeType, key, p.where(), key))
}

// checkEnv applies the env store's denylist and allowlist to a variable name.
func (p *Policy) checkEnv(name string) error {
	if d := env.DeniedBy(name); d != "" {
		return denied(storeEnv, name, fmt.Sprintf("variables matching %q hold the agent's own credentials or settings and can never be read through the env store, whatever the policy says", d))
	}
	for _, pt := range p.envAllow {
		if ok, _ := path.Match(pt, name); ok {
			return nil
		}
	}
	if p.builtin {
		return denied(storeEnv, name, fmt.Sprintf("is not on the agent's env-store allowlist in %s: add a matching pattern to SECURE_AGENT_ENV_ALLOW on the agent, or to env.allow in a policy file", p.where()))
	}
	return denied(storeEnv, name, fmt.Sprintf("is not allowed by policy env.allow in %s: add a matching pattern to env.allow", p.where()))
}

// pathForm returns the form of a secret path its store's patterns are compared with: azure
// ignores case, custom ignores the case of its host part, others compare as written.
func pathForm(storeType, s string) string {
	switch storeType {
	case storeAzure:
		return strings.ToLower(s)
	case storeCustom:
		if i := strings.IndexByte(s, '/'); i >= 0 {
			return strings.ToLower(s[:i]) + s[i:]
		}
	}
	return s
}

// splitCustomRef returns the normalized host and the port (0 if none) of a custom reference
// "<host[:port]>/<secret_name>".
func splitCustomRef(ref string) (host string, port int, ok bool) {
	hostport, name, found := strings.Cut(ref, "/")
	if !found || hostport == "" || name == "" {
		return "", 0, false
	}
	h, portText := hostport, ""
	switch {
	case strings.HasPrefix(hostport, "["):
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", 0, false
		}
		h, rest := hostport[1:end], hostport[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, false
			}
			portText = rest[1:]
		}
		hostport = h
	case strings.Count(hostport, ":") == 1:
		h, portText, _ = strings.Cut(hostport, ":")
		hostport = h
	}
	if portText != "" {
		n, err := strconv.Atoi(portText)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != portText {
			return "", 0, false
		}
		port = n
	}
	host = normalizeHost(hostport)
	return host, port, host != ""
}

// CheckDestination returns nil if credentials taken from each of the given secret paths may be
// sent to dest, else a PolicyDenied *secrets.Error. dest must be what is actually dialled (see
// netguard.Dialer). Credentials from no secret (literals) are not restricted, with one
// exception: a Unix socket may be dialled only if some destinations rule names its path
// exactly, whatever the credentials, because a local socket can grant the agent's own operating
// system identity (peer authentication) to whoever chose it. The message names the secret and
// the rule but never the host, port or socket, which may come from a secret themselves. See the
// package documentation for the rules.
func (p *Policy) CheckDestination(dest netguard.Destination, secretPaths []string) error {
	p = p.orEmpty()
	if dest.Network == netguard.NetworkUnix {
		if !p.namesSocket(dest.Host) {
			return denied("", "", fmt.Sprintf("Unix-socket destinations are refused unless a destinations rule names the socket's path exactly in %s: add the socket file's absolute path (for PostgreSQL <directory>/.s.PGSQL.<port>) to the hosts of a rule",
				p.where()))
		}
	} else if dest.Network != netguard.NetworkTCP {
		return denied("", "", "only TCP and Unix-socket destinations are allowed")
	}
	if len(secretPaths) == 0 || p.destOpen {
		return nil
	}
	var refused []string
	var first string
	var firstMsg string
	for _, s := range secretPaths {
		if slices.Contains(refused, s) {
			continue
		}
		msg := p.destinationProblem(dest, s)
		if msg == "" {
			continue
		}
		if len(refused) == 0 {
			first, firstMsg = s, msg
		}
		refused = append(refused, s)
	}
	if len(refused) == 0 {
		return nil
	}
	if len(refused) > 1 {
		others := make([]string, 0, len(refused)-1)
		for _, s := range refused[1:] {
			others = append(others, quoteRef(s))
		}
		firstMsg += fmt.Sprintf(" (credentials from %s %s %s refused as well)",
			plural(len(others), "secret", "secrets"), strings.Join(others, ", "), plural(len(others), "is", "are"))
	}
	if len(first) > MaxRefBytes {
		first = ""
	}
	return denied("", first, firstMsg)
}

// namesSocket reports whether some destinations rule lists the socket path among its hosts.
func (p *Policy) namesSocket(path string) bool {
	for _, r := range p.rules {
		for _, hp := range r.hosts {
			if hp.socket != "" && hp.socket == path {
				return true
			}
		}
	}
	return false
}

// LegacyPasswordAuth reports whether a destinations rule with legacyPasswordAuth: true names
// dest among its hosts: the server there may then ask for the password in clear text or as an
// MD5 digest over a connection that is not verified TLS.
func (p *Policy) LegacyPasswordAuth(dest netguard.Destination) bool {
	for _, r := range p.orEmpty().rules {
		if !r.legacyPasswordAuth {
			continue
		}
		for _, hp := range r.hosts {
			if hp.matchesDestination(dest) {
				return true
			}
		}
	}
	return false
}

// quoteRef quotes a secret path for a message, unless it is too long to be one.
func quoteRef(s string) string {
	if len(s) > MaxRefBytes {
		return fmt.Sprintf("(a path longer than %d bytes)", MaxRefBytes)
	}
	return strconv.Quote(s)
}

// destinationProblem returns why credentials from secret may not go to host:port, or "".
func (p *Policy) destinationProblem(dest netguard.Destination, secret string) string {
	if len(secret) > MaxRefBytes {
		return fmt.Sprintf("credentials from this secret may not be sent anywhere: its path is longer than %d bytes", MaxRefBytes)
	}
	covering := p.coveringRules(secret)
	if len(covering) == 0 {
		if p.destDefaultAllow {
			return ""
		}
		return fmt.Sprintf("credentials from this secret may not be sent to the destination host: no rule of destinations.rules covers this secret and destinations.default is deny in %s: add a rule whose secrets match this secret and whose hosts match the destination host and port",
			p.where())
	}
	for _, r := range covering {
		for _, hp := range r.hosts {
			if hp.matchesDestination(dest) {
				return ""
			}
		}
	}
	names := make([]string, len(covering))
	for i, r := range covering {
		names[i] = fmt.Sprintf("destinations.rules[%d] (line %d)", r.index, r.line)
	}
	return fmt.Sprintf("credentials from this secret may not be sent to the destination host: %s %s this secret and no hosts pattern there matches the destination host and port (not shown: it may come from a secret) in %s: add the destination host and port to the hosts of %s",
		strings.Join(names, ", "), plural(len(covering), "covers", "cover"), p.where(), plural(len(covering), "that rule", "one of those rules"))
}

// coveringRules returns the rules whose secrets patterns match secret exactly; under default:
// allow, if there is none, those that match it ignoring case or in another spelling.
func (p *Policy) coveringRules(secret string) []*rule {
	var out []*rule
	for i := range p.rules {
		r := &p.rules[i]
		if slices.ContainsFunc(r.secrets, func(pt string) bool { return connectors.Glob(pt, secret) }) {
			out = append(out, r)
		}
	}
	if len(out) > 0 || !p.destDefaultAllow {
		return out
	}
	forms := looseForms(secret)
	for i := range p.rules {
		r := &p.rules[i]
		if slices.ContainsFunc(r.loose, func(pt string) bool {
			return slices.ContainsFunc(forms, func(f string) bool { return connectors.Glob(pt, f) })
		}) {
			out = append(out, r)
		}
	}
	return out
}

// looseForms returns other spellings of a secret path, lower-cased: the path itself, the name
// inside an AWS Secrets Manager ARN (with and without its 6-character suffix), the secret name and
// the version-less URL inside an Azure Key Vault secret URL, a GCP path without /versions/V.
// It serves only to find more rules that restrict a secret.
func looseForms(s string) []string {
	l := strings.ToLower(s)
	forms := []string{l}
	if strings.HasPrefix(l, "arn:") {
		if _, name, ok := strings.Cut(l, ":secret:"); ok && name != "" {
			forms = append(forms, name)
			if n := len(name); n > 7 && name[n-7] == '-' {
				forms = append(forms, name[:n-7])
			}
		}
	}
	if strings.HasPrefix(l, "https://") {
		if i := strings.Index(l, "/secrets/"); i >= 0 {
			name, _, _ := strings.Cut(l[i+len("/secrets/"):], "/")
			if name != "" {
				forms = append(forms, name, l[:i+len("/secrets/")]+name)
			}
		}
	}
	if strings.HasPrefix(l, "projects/") {
		if i := strings.Index(l, "/versions/"); i >= 0 {
			forms = append(forms, l[:i])
		}
	}
	return forms
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Describe returns a short summary of the policy for the agent's start-up log: where it comes
// from and what it allows, in counts. It holds no values.
func (p *Policy) Describe() string {
	p = p.orEmpty()
	var b strings.Builder
	if p.builtin {
		b.WriteString("default policy (no policy file): every store type, every secret path, destinations not restricted")
	} else {
		b.WriteString(p.where() + ": ")
		switch {
		case p.allStores:
			b.WriteString("every store type")
		case len(p.stores) == 0:
			b.WriteString("no store type")
		default:
			b.WriteString("stores " + strings.Join(p.stores, ", "))
		}
		var counts []string
		for _, t := range storeTypes {
			if pats, ok := p.paths[t]; ok {
				counts = append(counts, fmt.Sprintf("%s %d", t, len(pats)))
			}
		}
		if len(counts) == 0 {
			b.WriteString("; no secret path patterns")
		} else {
			b.WriteString("; secret path patterns " + strings.Join(counts, ", "))
		}
		if p.destOpen {
			b.WriteString("; destinations not restricted")
		} else {
			def := "deny"
			if p.destDefaultAllow {
				def = "allow"
			}
			fmt.Fprintf(&b, "; destinations: %d %s, default %s", len(p.rules), plural(len(p.rules), "rule", "rules"), def)
		}
	}
	fmt.Fprintf(&b, "; env allowlist %d %s; custom-store hosts %d, header variables %d",
		len(p.envAllow), plural(len(p.envAllow), "pattern", "patterns"), len(p.customHosts), len(p.customHeaderEnv))
	fmt.Fprintf(&b, "; SQLite directories %d", len(p.sqliteDirs))
	switch {
	case p.s3Open:
		b.WriteString("; s3 output not restricted")
	case p.s3Listed:
		fmt.Fprintf(&b, "; s3 output: %d bucket %s, %d %s", len(p.s3Buckets), plural(len(p.s3Buckets), "pattern", "patterns"),
			len(p.s3Hosts), plural(len(p.s3Hosts), "endpoint", "endpoints"))
	default:
		b.WriteString("; s3 output refused")
	}
	switch {
	case p.catalogsOpen:
		b.WriteString("; catalog pushes not restricted")
	case p.catalogsListed:
		fmt.Fprintf(&b, "; catalog pushes: %d %s", len(p.catalogHosts), plural(len(p.catalogHosts), "endpoint", "endpoints"))
	default:
		b.WriteString("; catalog pushes refused")
	}
	if p.allowSensitiveLiterals {
		b.WriteString("; sensitive literals ALLOWED (development only)")
	} else {
		b.WriteString("; sensitive literals refused")
	}
	return b.String()
}
