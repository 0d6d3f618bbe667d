package custom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/secure-agent/secure-agent/secrets"
)

// Config is the store-level configuration of a custom store: everything of the input's JSON
// configuration except secret_name and version, which form the secrets.Ref. Every field comes
// from workflow input and is non-secret: headers and bearer_token_env hold the NAMES of agent
// environment variables, never their values.
type Config struct {
	// StoreURL is the base URL (store_url): https, or http to a loopback host. No user info, query
	// or fragment.
	StoreURL string
	// VersionParam names the query parameter that carries a version (version_param, default
	// "version").
	VersionParam string
	// Headers maps a request header name to the name of the agent environment variable whose value
	// is sent as that header (headers).
	Headers map[string]string
	// BearerTokenEnv names the agent environment variable sent as "Authorization: Bearer <value>"
	// (bearer_token_env).
	BearerTokenEnv string
	// CAFile is ca_file, read for replay only: a CA bundle is agent configuration
	// (Options.CAFile), and New refuses a Config that sets it.
	CAFile string
	// ValuePath is the dot path to the secret in a JSON response (value_path); empty means the
	// whole body.
	ValuePath string
	// VersionPath is version_path, read for replay only: where the version id is in the store's
	// answer is agent configuration (Options.VersionPath), and New refuses a Config that sets it.
	VersionPath string
	// Timeout bounds one request (timeout); zero means DefaultTimeout, at most MaxTimeout. The
	// caller's ctx deadline applies as well.
	Timeout time.Duration
}

// Key returns a canonical identity of the configuration, for caching one Store per distinct
// Config (Config holds a map, so it is not comparable). It holds no secret.
func (c Config) Key() string {
	b, _ := json.Marshal(struct {
		U, VP, B, CA, Val, Ver string
		H                      map[string]string
		T                      time.Duration
	}{c.StoreURL, c.VersionParam, c.BearerTokenEnv, c.CAFile, c.ValuePath, c.VersionPath, c.Headers, c.Timeout})
	return Name + ":" + string(b)
}

// Problems of the keys that are agent configuration, not workflow input.
const (
	versionPathProblem = "version_path is agent configuration, not workflow input: a path into the store's answer could point into the secret itself; " +
		"the agent's operator sets it per store host (customStores.versionPaths in the policy file, or SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS)"
	caFileProblem = "ca_file is agent configuration, not workflow input: a file named by the input would pick the agent's trust anchor and probe its file system; " +
		"the agent's operator sets it per store host (customStores.caFiles in the policy file, or SECURE_AGENT_CUSTOM_STORE_CA_FILES)"
)

// boundaryProblems lists the agent-configuration keys that c sets.
func (c Config) boundaryProblems() []string {
	var problems []string
	if c.VersionPath != "" {
		problems = append(problems, versionPathProblem)
	}
	if c.CAFile != "" {
		problems = append(problems, caFileProblem)
	}
	return problems
}

// BoundaryProblems lists, for a custom store's JSON configuration as workflow input gives it,
// the keys it sets that are agent configuration (version_path, ca_file: set means present with
// a value other than null or ""), each with what to do instead; nil for every other input,
// including one that is not a JSON object. ParseConfig accepts these keys, because recorded
// workflow histories replay through it; New refuses them. It is pure and deterministic, so
// workflow code may call it (behind a version gate).
func BoundaryProblems(raw []byte) []string {
	fields, _ := decodeObject(raw)
	set := func(key string) bool {
		v, ok := fields[key]
		v = bytes.TrimSpace(v)
		return ok && string(v) != "null" && string(v) != `""`
	}
	var problems []string
	if set("version_path") {
		problems = append(problems, versionPathProblem)
	}
	if set("ca_file") {
		problems = append(problems, caFileProblem)
	}
	return problems
}

// configError is an InvalidInput error of the store configuration listing every problem.
func configError(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return &secrets.Error{Kind: secrets.InvalidInput, Store: Name,
		Msg: "invalid custom store configuration: " + strings.Join(problems, "; ")}
}

// Validate reports every problem of the configuration at once, as one InvalidInput error.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

func (c Config) validate() (*url.URL, error) {
	base, problems := c.problems()
	return base, configError(problems)
}

// problems lists every problem of the configuration; base is the parsed store_url when valid.
func (c Config) problems() (base *url.URL, problems []string) {
	base, problems = parseStoreURL(c.StoreURL)
	if c.VersionParam != "" && !validParamName(c.VersionParam) {
		problems = append(problems, "version_param must be 1-64 letters, digits, '_', '-', '.' or '~'")
	}
	problems = append(problems, headerProblems(c.Headers, c.BearerTokenEnv != "")...)
	if c.BearerTokenEnv != "" && !validEnvName(c.BearerTokenEnv) {
		problems = append(problems, "bearer_token_env must name an agent environment variable (letters, digits and '_', not starting with a digit), not hold a token")
	}
	if c.CAFile != "" && (!strings.HasPrefix(c.CAFile, "/") || len(c.CAFile) > 4096 || hasControl(c.CAFile)) {
		problems = append(problems, "ca_file must be an absolute path on the agent (up to 4096 characters, no control characters)")
	}
	problems = append(problems, jsonPathProblems("value_path", c.ValuePath)...)
	problems = append(problems, jsonPathProblems("version_path", c.VersionPath)...)
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		problems = append(problems, fmt.Sprintf("timeout must be positive and at most %s", MaxTimeout))
	}
	return base, problems
}

// parseStoreURL checks store_url. Problems never quote the URL: it could hold a credential.
func parseStoreURL(s string) (*url.URL, []string) {
	const fix = "store_url "
	switch {
	case s == "":
		return nil, []string{"store_url is required (for example https://secrets.example.com/v1)"}
	case len(s) > maxURLLen:
		return nil, []string{fmt.Sprintf(fix+"must be at most %d characters", maxURLLen)}
	case hasControl(s) || strings.ContainsAny(s, " \\"):
		return nil, []string{fix + "must not contain spaces, backslashes or control characters"}
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, []string{fix + "must be an absolute URL such as https://secrets.example.com/v1"}
	}
	var problems []string
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		problems = append(problems, fix+"must use https (plain http is allowed only to a loopback host: localhost, 127.0.0.0/8, ::1)")
	default:
		problems = append(problems, fix+"must use https")
	}
	if u.User != nil {
		problems = append(problems, fix+"must not contain a user name or password; send credentials as headers taken from the agent's environment")
	}
	if u.RawQuery != "" || u.ForceQuery {
		problems = append(problems, fix+"must not contain a query (?...); the version goes in the version key")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		problems = append(problems, fix+"must not contain a fragment (#...)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			problems = append(problems, fix+"has an invalid port")
		}
	}
	if problems != nil {
		return nil, problems
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// reservedHeaders are set by the agent or by HTTP itself and cannot be configured.
var reservedHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Connection": true, "Content-Length": true,
	"Content-Type": true, "Host": true, "Keep-Alive": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "User-Agent": true,
}

func headerProblems(headers map[string]string, bearer bool) []string {
	var problems []string
	if len(headers) > maxHeaders {
		return []string{fmt.Sprintf("headers may configure at most %d headers", maxHeaders)}
	}
	seen := make(map[string]bool, len(headers))
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !validToken(name):
			problems = append(problems, fmt.Sprintf("headers: %s is not a valid HTTP header name", quoteShort(name)))
			continue
		case reservedHeaders[canon]:
			problems = append(problems, fmt.Sprintf("headers: %q is set by the agent and cannot be configured", canon))
		case canon == "Authorization" && bearer:
			problems = append(problems, "headers: Authorization cannot be configured together with bearer_token_env")
		case seen[canon]:
			problems = append(problems, fmt.Sprintf("headers: %q appears more than once", canon))
		}
		seen[canon] = true
		if !validEnvName(headers[name]) {
			// Never quote the value: a user may have pasted the credential itself.
			problems = append(problems, fmt.Sprintf("headers: the value for %q must name an agent environment variable (letters, digits and '_', not starting with a digit), not hold the header value", canon))
		}
	}
	return problems
}

func jsonPathProblems(key, path string) []string {
	if path == "" {
		return nil
	}
	if len(path) > maxJSONPathLen || hasControl(path) || slices.Contains(strings.Split(path, "."), "") {
		return []string{fmt.Sprintf("%s must be a dot-separated path of non-empty keys such as data.data (at most %d characters)", key, maxJSONPathLen)}
	}
	return nil
}

// ParseConfig splits the JSON configuration a workflow input gives for a custom store into the
// store-level Config and the Ref of the secret (secret_name, version). It reports every problem
// at once as one InvalidInput error, and never quotes a value. It does not touch the network or
// the file system.
func ParseConfig(raw []byte) (Config, secrets.Ref, error) {
	return parseConfig(raw, true)
}

// ParseStoreConfig is ParseConfig for a store whose fields each name their own secret
// (secretStore.fields): secret_name may be left out, and the Ref is then empty.
func ParseStoreConfig(raw []byte) (Config, secrets.Ref, error) {
	return parseConfig(raw, false)
}

// ValidSecretName says what is wrong with a secret name, as secret_name takes it, or "".
func ValidSecretName(name string) string { return pathProblem(name) }

func parseConfig(raw []byte, needName bool) (Config, secrets.Ref, error) {
	fields, problems := decodeObject(raw)
	var cfg Config
	var ref secrets.Ref
	str := func(key string, dst *string) {
		if v, ok := fields[key]; ok && json.Unmarshal(v, dst) != nil {
			problems = append(problems, key+" must be a JSON string")
		}
	}
	str("store_url", &cfg.StoreURL)
	str("secret_name", &ref.Path)
	str("version_param", &cfg.VersionParam)
	str("bearer_token_env", &cfg.BearerTokenEnv)
	str("ca_file", &cfg.CAFile)
	str("value_path", &cfg.ValuePath)
	str("version_path", &cfg.VersionPath)
	if v, ok := fields["version"]; ok {
		var n json.Number
		if json.Unmarshal(v, &ref.Version) != nil && json.Unmarshal(v, &n) != nil {
			problems = append(problems, "version must be a JSON string or number")
		} else if n != "" {
			ref.Version = n.String()
		}
	}
	if v, ok := fields["headers"]; ok && json.Unmarshal(v, &cfg.Headers) != nil {
		problems = append(problems, `headers must be an object of header name to agent environment variable name, such as {"X-Vault-Token":"VAULT_TOKEN"}`)
	}
	if v, ok := fields["timeout"]; ok {
		var s string
		d, err := time.Duration(0), json.Unmarshal(v, &s)
		if err == nil {
			d, err = time.ParseDuration(s)
		}
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf(`timeout must be a Go duration string such as "30s", at most %s`, MaxTimeout))
		} else {
			cfg.Timeout = d
		}
	}
	if fields != nil {
		_, more := cfg.problems()
		problems = append(problems, more...)
		if _, ok := fields["secret_name"]; !ok {
			if needName {
				problems = append(problems, "secret_name is required")
			}
		} else if msg := pathProblem(ref.Path); msg != "" {
			problems = append(problems, msg)
		}
		if msg := versionProblem(ref.Version); msg != "" {
			problems = append(problems, msg)
		}
	}
	if err := configError(problems); err != nil {
		return Config{}, secrets.Ref{}, err
	}
	return cfg, ref, nil
}

// configKeys are the keys of the JSON configuration, in documentation order.
var configKeys = []string{"store_url", "secret_name", "version", "version_param", "headers",
	"bearer_token_env", "ca_file", "value_path", "version_path", "timeout"}

// decodeObject reads a JSON object's top-level members, refusing unknown and duplicate keys.
// fields is nil when raw is not a JSON object.
func decodeObject(raw []byte) (map[string]json.RawMessage, []string) {
	const want = `the custom store configuration must be a JSON object such as {"store_url":"https://secrets.example.com","secret_name":"my-secret"}`
	if len(raw) > maxConfigBytes {
		return nil, []string{fmt.Sprintf("the custom store configuration must be at most %d bytes", maxConfigBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, []string{want + syntaxAt(err)}
	}
	fields := make(map[string]json.RawMessage)
	var problems []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, []string{want + syntaxAt(err)}
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, []string{want + syntaxAt(err)}
		}
		switch {
		case !slices.Contains(configKeys, key):
			problems = append(problems, fmt.Sprintf("unknown key %s; valid keys are %s", quoteShort(key), strings.Join(configKeys, ", ")))
		case fields[key] != nil:
			problems = append(problems, fmt.Sprintf("key %q appears more than once", key))
		}
		fields[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, []string{want + syntaxAt(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, []string{want + " (found data after the object)"}
	}
	return fields, problems
}

// syntaxAt names where JSON decoding failed, without quoting the input.
func syntaxAt(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf(" (invalid JSON near byte %d)", se.Offset)
	}
	if err != nil {
		return " (invalid or truncated JSON)"
	}
	return ""
}

// ParsePath validates a secret_name and returns its "/"-separated segments. A valid name has 1 to
// 512 characters of valid UTF-8, no control characters, no "..", no leading "/" and no empty or
// "." segment. Errors are *secrets.Error of Kind InvalidInput and never quote the name. ParsePath
// never panics.
func ParsePath(name string) ([]string, error) {
	if msg := pathProblem(name); msg != "" {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Msg: msg}
	}
	return strings.Split(name, "/"), nil
}

// pathProblem says what is wrong with a secret_name, or returns "".
func pathProblem(name string) string {
	switch {
	case name == "":
		return "secret_name is empty; give the name of the secret in the store, such as my-custom-secret"
	case len(name) > 4*MaxNameLen || utf8.RuneCountInString(name) > MaxNameLen:
		return fmt.Sprintf("secret_name must be at most %d characters", MaxNameLen)
	case !utf8.ValidString(name):
		return "secret_name must be valid UTF-8"
	case hasControl(name):
		return "secret_name must not contain control characters"
	case strings.HasPrefix(name, "/"):
		return "secret_name must not start with '/': it is appended to store_url's path"
	case strings.Contains(name, ".."):
		return "secret_name must not contain '..'"
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." {
			return "secret_name must not contain empty or '.' segments (such as '//', './' or a trailing '/')"
		}
	}
	return ""
}

// versionProblem checks a version (empty means current).
func versionProblem(v string) string {
	if len(v) > maxVersionLen || hasControl(v) || !utf8.ValidString(v) {
		return fmt.Sprintf("version must be at most %d characters of valid UTF-8 without control characters", maxVersionLen)
	}
	return ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

func validEnvName(s string) bool {
	if s == "" || len(s) > maxEnvNameLen || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validToken reports whether s is an HTTP token (RFC 9110 section 5.6.2) of at most 128 bytes.
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validParamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.~", c) >= 0) {
			return false
		}
	}
	return true
}

func quoteShort(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "..."
	}
	return strconv.Quote(s)
}
