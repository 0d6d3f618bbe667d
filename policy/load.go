package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/secure-agent/secure-agent/secrets/env"
)

// Version is the policy file format version this agent reads.
const Version = 1

// MaxFileBytes bounds the size of a policy file.
const MaxFileBytes = 1 << 20

// maxPatternBytes bounds one pattern, as connectors.Filters does.
const maxPatternBytes = 1024

// Load reads the policy file at path (YAML, or JSON) and validates it. It reports every problem
// at once, joined, each as "<path>:<line>:<column>: <key path>: <what to fix>". Messages name
// keys and positions but never repeat the file's values.
func Load(path string) (*Policy, error) {
	if path == "" {
		return nil, errors.New("policy file: no path given")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: the policy file is larger than %d bytes", path, MaxFileBytes)
	}
	return parse(path, data)
}

// parse builds a policy from the bytes of the file at source.
func parse(source string, data []byte) (p *Policy, err error) {
	defer func() {
		// The YAML library is not ours: a panic on some input must not take the agent down with
		// a stack trace that might quote the file.
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%s: the YAML parser failed on this file: check its syntax", source)
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the policy file is empty: it must say at least version: %d", source, Version)
		}
		return nil, fmt.Errorf("%s: not valid YAML or JSON: %s", source, yamlMessage(err))
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, fmt.Errorf("%s: the policy file must hold a single YAML document: remove everything after the first \"---\" separator", source)
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: not valid YAML or JSON: %s", source, yamlMessage(err))
	}
	l := &loader{source: source, p: &Policy{source: source, allStores: true, destOpen: true, paths: map[string][]string{}}}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: the policy file is empty: it must say at least version: %d", source, Version)
	}
	l.top(doc.Content[0])
	if len(l.problems) > 0 {
		return nil, errors.Join(l.problems...)
	}
	return l.p, nil
}

// quoted matches the parts of a YAML library message that quote the file (anchor names, say).
var quoted = regexp.MustCompile("'[^']*'|`[^`]*`|\"[^\"]*\"")

// yamlMessage returns the YAML library's message without its "yaml: " prefix and without the
// file's text it may quote.
func yamlMessage(err error) string {
	return quoted.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "'…'")
}

// loader walks the YAML tree and collects every problem.
type loader struct {
	source   string
	p        *Policy
	problems []error
	// envAllowNodes are env.allow's items, checked against customStores.headerEnv at the end.
	envAllowNodes []*yaml.Node
}

func (l *loader) problem(n *yaml.Node, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = key + ": " + msg
	}
	l.problems = append(l.problems, fmt.Errorf("%s:%d:%d: %s", l.source, n.Line, n.Column, msg))
}

// field is a handler for one key of a mapping; n is the value node, key its path.
type field struct {
	name   string
	handle func(n *yaml.Node, key string)
}

// mapping checks that n is a mapping and calls each field's handler for its key. Unknown and
// repeated keys are problems. It returns the keys present.
func (l *loader) mapping(n *yaml.Node, key string, fields []field) map[string]bool {
	if !l.kind(n, key, yaml.MappingNode, "a mapping of keys to values") {
		return nil
	}
	seen := map[string]int{}
	present := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.problem(k, key, "a key must be a plain name")
			continue
		}
		name, shown := k.Value, k.Value
		if len(shown) > 64 {
			shown = strings.ToValidUTF8(shown[:64], "") + "…"
		}
		where := shown
		if key != "" {
			where = key + "." + shown
		}
		if line, dup := seen[name]; dup {
			l.problem(k, "", "key %q is repeated (first at line %d): keep one", where, line)
			continue
		}
		seen[name] = k.Line
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == name })
		if i < 0 {
			known := make([]string, len(fields))
			for j, f := range fields {
				known[j] = f.name
			}
			hint := ""
			if j := slices.IndexFunc(known, func(s string) bool { return strings.EqualFold(s, name) }); j >= 0 {
				hint = fmt.Sprintf(" (did you mean %s?)", known[j])
			}
			in := "at the top level"
			if key != "" {
				in = "in " + key
			}
			l.problem(k, "", "unknown key %s %s%s: the keys are %s", strconv.Quote(shown), in, hint, strings.Join(known, ", "))
			continue
		}
		present[name] = true
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			l.problem(v, where, "has no value: give one, or remove the key")
			continue
		}
		fields[i].handle(v, where)
	}
	return present
}

// plainTags are the explicit YAML tags a policy file may carry (they change nothing).
var plainTags = []string{"!!str", "!!int", "!!bool", "!!seq", "!!map"}

// kind reports whether n is of the wanted kind, recording a problem if not.
func (l *loader) kind(n *yaml.Node, key string, want yaml.Kind, what string) bool {
	switch {
	case n.Style&yaml.TaggedStyle != 0 && !slices.Contains(plainTags, n.Tag):
		l.problem(n, key, "has a YAML tag this file does not use: remove it")
		return false
	case n.Kind == yaml.AliasNode || n.Alias != nil:
		l.problem(n, key, "YAML aliases (*name) are not supported: write the value out (and quote a pattern that starts with *)")
		return false
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		l.problem(n, key, "has no value: give %s", what)
		return false
	case n.Kind != want:
		l.problem(n, key, "must be %s", what)
		return false
	}
	return true
}

// list returns the scalar items of a sequence, with their nodes.
func (l *loader) list(n *yaml.Node, key, what string) ([]string, []*yaml.Node) {
	if !l.kind(n, key, yaml.SequenceNode, "a list of "+what+", such as [\"a\", \"b\"]") {
		return nil, nil
	}
	var values []string
	var nodes []*yaml.Node
	for i, item := range n.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		if !l.kind(item, k, yaml.ScalarNode, what) {
			continue
		}
		values = append(values, item.Value)
		nodes = append(nodes, item)
	}
	return values, nodes
}

// patterns returns the valid patterns of a list, recording a problem for each invalid one.
func (l *loader) patterns(n *yaml.Node, key, what string, check func(string) string) []string {
	values, nodes := l.list(n, key, what)
	var out []string
	ok := true
	for i, v := range values {
		if msg := check(v); msg != "" {
			l.problem(nodes[i], fmt.Sprintf("%s[%d]", key, i), "%s", msg)
			ok = false
			continue
		}
		out = append(out, v)
	}
	if !ok {
		return nil
	}
	return out
}

// top reads the top-level mapping.
func (l *loader) top(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		l.problem(n, "", "the policy must be a mapping of keys such as version: %d", Version)
		return
	}
	present := l.mapping(n, "", []field{
		{"version", l.version},
		{"stores", l.stores},
		{"secrets", l.secrets},
		{"env", l.env},
		{"customStores", l.customStores},
		{"destinations", l.destinations},
		{"sqlite", l.sqlite},
		{"outputs", l.outputs},
		{"allowSensitiveLiterals", l.allowSensitiveLiterals},
	})
	if !present["version"] {
		l.problem(n, "", "version is missing: add version: %d", Version)
	}
	// An env-store pattern that can also name a variable a custom store sends would let workflow
	// input read that store's token through the env store.
	for i, a := range l.envAllowNodes {
		for _, b := range l.p.customHeaderEnv {
			if env.Overlap(a.Value, b) {
				l.problem(a, fmt.Sprintf("env.allow[%d]", i), "can match variables that customStores.headerEnv lets custom stores send as credentials: the env store would hand those tokens to workflow input; give the two lists names that cannot overlap")
				break
			}
		}
	}
}

func (l *loader) version(n *yaml.Node, key string) {
	if !l.kind(n, key, yaml.ScalarNode, "a number") {
		return
	}
	if n.Tag != "!!int" || n.Value != strconv.Itoa(Version) {
		l.problem(n, key, "is not a version this agent reads: write version: %d", Version)
	}
}

func (l *loader) stores(n *yaml.Node, key string) {
	values, nodes := l.list(n, key, "store types")
	if n.Kind != yaml.SequenceNode {
		return
	}
	l.p.allStores = false
	l.p.stores = []string{}
	for i, v := range values {
		if !slices.Contains(storeTypes, v) {
			l.problem(nodes[i], fmt.Sprintf("%s[%d]", key, i), "is not a store type: use %s", strings.Join(storeTypes, ", "))
			continue
		}
		if !slices.Contains(l.p.stores, v) {
			l.p.stores = append(l.p.stores, v)
		}
	}
}

func (l *loader) secrets(n *yaml.Node, key string) {
	var fields []field
	for _, t := range []string{storeAWS, storeAzure, storeGCP, storeCustom, storeVault} {
		fields = append(fields, field{t, func(v *yaml.Node, k string) {
			pats := l.patterns(v, k, "secret path patterns", patternProblem)
			list := make([]string, 0, len(pats))
			for _, raw := range pats {
				list = append(list, pathForm(t, raw))
			}
			l.p.paths[t] = list
		}})
	}
	fields = append(fields, field{storeEnv, func(v *yaml.Node, k string) {
		l.problem(v, k, "is not used: the env store reads the variables env.allow names; move the patterns to env.allow")
	}})
	l.mapping(n, key, fields)
}

func (l *loader) env(n *yaml.Node, key string) {
	l.mapping(n, key, []field{
		{"allow", func(v *yaml.Node, k string) {
			l.p.envAllow = l.patterns(v, k, "variable name patterns", envAllowProblem)
			if l.p.envAllow != nil {
				_, l.envAllowNodes = l.list(v, k, "variable name patterns")
			}
		}},
	})
}

// envAllowProblem is envPatternProblem, and refuses a pattern of wildcards only.
func envAllowProblem(p string) string {
	if msg := envPatternProblem(p); msg != "" {
		return msg
	}
	if env.MatchesEverything(p) {
		return "matches every variable of the agent (other teams' passwords and the custom stores' tokens among them): name a prefix or suffix, such as DB_* or *_PASSWORD"
	}
	return ""
}

func (l *loader) customStores(n *yaml.Node, key string) {
	l.mapping(n, key, []field{
		{"hosts", func(v *yaml.Node, k string) {
			values, nodes := l.list(v, k, "host patterns")
			for i, s := range values {
				msg := patternProblem(s)
				var hp hostPattern
				if msg == "" {
					hp, msg = parseHostPattern(s, customStoreHosts)
				}
				if msg != "" {
					l.problem(nodes[i], fmt.Sprintf("%s[%d]", k, i), "%s", msg)
					continue
				}
				l.p.customHosts = append(l.p.customHosts, s)
				l.p.customHostPats = append(l.p.customHostPats, hp)
			}
		}},
		{"headerEnv", func(v *yaml.Node, k string) {
			l.p.customHeaderEnv = l.patterns(v, k, "variable name patterns", envPatternProblem)
		}},
		{"versionPaths", func(v *yaml.Node, k string) {
			l.p.customVersionPaths = l.hostSettings(v, k, "JSON dot paths, such as {\"vault.internal:8200\": data.metadata.version}", dotPathProblem)
		}},
		{"caFiles", func(v *yaml.Node, k string) {
			l.p.customCAFiles = l.hostSettings(v, k, "absolute paths of PEM CA bundles, such as {\"vault.internal:8200\": /etc/secure-agent/vault-ca.pem}", fileProblem)
		}},
	})
}

// hostSettings reads a mapping of custom-store host patterns to a value that check approves.
func (l *loader) hostSettings(n *yaml.Node, key, what string, check func(string) string) []hostSetting {
	if !l.kind(n, key, yaml.MappingNode, "a mapping of store_url host patterns to "+what) {
		return nil
	}
	var out []hostSetting
	for i := 0; i+1 < len(n.Content); i += 2 {
		hk, pv := n.Content[i], n.Content[i+1]
		where := fmt.Sprintf("%s[%d]", key, i/2)
		if !l.kind(hk, where, yaml.ScalarNode, "a host pattern") || !l.kind(pv, where, yaml.ScalarNode, "a value") {
			continue
		}
		msg := patternProblem(hk.Value)
		var hp hostPattern
		if msg == "" {
			hp, msg = parseHostPattern(hk.Value, customStoreHosts)
		}
		if msg != "" {
			l.problem(hk, where, "%s", msg)
			continue
		}
		if msg := check(pv.Value); msg != "" {
			l.problem(pv, where, "%s", msg)
			continue
		}
		out = append(out, hostSetting{host: hp, value: pv.Value})
	}
	return out
}

// fileProblem returns what is wrong with the absolute path of a file on the agent, or "".
func fileProblem(p string) string {
	if msg := dirProblem(p); msg != "" {
		return msg
	}
	return ""
}

// dotPathProblem returns what is wrong with a JSON dot path (data.metadata.version), or "".
func dotPathProblem(p string) string {
	if msg := patternProblem(p); msg != "" {
		return msg
	}
	if len(p) > 256 || slices.Contains(strings.Split(p, "."), "") {
		return "must be a dot-separated path of non-empty keys such as data.metadata.version (at most 256 characters)"
	}
	return ""
}

func (l *loader) sqlite(n *yaml.Node, key string) {
	l.mapping(n, key, []field{
		{"dirs", func(v *yaml.Node, k string) {
			values, nodes := l.list(v, k, "absolute directory paths")
			for i, d := range values {
				if msg := dirProblem(d); msg != "" {
					l.problem(nodes[i], fmt.Sprintf("%s[%d]", k, i), "%s", msg)
					continue
				}
				l.p.sqliteDirs = append(l.p.sqliteDirs, d)
			}
		}},
	})
}

// dirProblem returns what is wrong with a directory the SQLite connector may open files in, or "".
func dirProblem(d string) string {
	switch {
	case !utf8.ValidString(d) || strings.IndexFunc(d, unicode.IsControl) >= 0:
		return "is not a path: it holds control characters or invalid UTF-8"
	case !strings.HasPrefix(d, "/"):
		return "must be an absolute path"
	case path.Clean(d) != d:
		return "must be in clean form (no \"..\", \".\", \"//\" or trailing \"/\")"
	case d == "/":
		return "must not be the root directory: name the directories that hold the database files"
	case strings.ContainsAny(d, "*?"):
		return "is a directory, not a pattern: write it without wildcards"
	}
	return ""
}

func (l *loader) outputs(n *yaml.Node, key string) {
	l.mapping(n, key, []field{
		{"s3", func(v *yaml.Node, k string) {
			l.p.s3Listed = true
			present := l.mapping(v, k, []field{
				{"buckets", func(bv *yaml.Node, bk string) {
					l.p.s3Buckets = l.patterns(bv, bk, "bucket name patterns", patternProblem)
				}},
				{"hosts", func(hv *yaml.Node, hk string) {
					l.p.s3Hosts = l.tcpHosts(hv, hk, "an object store is reached over TCP")
				}},
			})
			if present != nil {
				for _, want := range []string{"buckets", "hosts"} {
					if !present[want] {
						l.problem(v, k, "%s is missing: list the buckets the s3 output may write and the endpoints (host:port) it may reach", want)
					}
				}
			}
		}},
		{"catalogs", func(v *yaml.Node, k string) {
			l.p.catalogsListed = true
			present := l.mapping(v, k, []field{
				{"hosts", func(hv *yaml.Node, hk string) {
					l.p.catalogHosts = l.tcpHosts(hv, hk, "a catalog is reached over TCP")
				}},
			})
			if present != nil && !present["hosts"] {
				l.problem(v, k, "hosts is missing: list the catalog endpoints (host:port) output.push may send to")
			}
		}},
	})
}

// tcpHosts reads a list of host:port patterns of endpoints reached over TCP (why says so, for a
// Unix socket path given instead).
func (l *loader) tcpHosts(n *yaml.Node, key, why string) []hostPattern {
	var out []hostPattern
	values, nodes := l.list(n, key, "host:port patterns")
	for j, s := range values {
		msg := patternProblem(s)
		var hp hostPattern
		if msg == "" && strings.HasPrefix(s, "/") {
			msg = "must be a host or host:port: " + why
		}
		if msg == "" {
			hp, msg = parseHostPattern(s, destinationHosts)
		}
		if msg != "" {
			l.problem(nodes[j], fmt.Sprintf("%s[%d]", key, j), "%s", msg)
			continue
		}
		out = append(out, hp)
	}
	return out
}

func (l *loader) destinations(n *yaml.Node, key string) {
	l.p.destOpen = false // a destinations section restricts; default: deny unless it says allow
	l.mapping(n, key, []field{
		{"default", func(v *yaml.Node, k string) {
			if !l.kind(v, k, yaml.ScalarNode, "deny or allow") {
				return
			}
			switch v.Value {
			case "deny":
				l.p.destDefaultAllow = false
			case "allow":
				l.p.destDefaultAllow = true
			default:
				l.problem(v, k, "must be deny or allow (lower case)")
			}
		}},
		{"rules", l.rules},
	})
}

func (l *loader) rules(n *yaml.Node, key string) {
	if !l.kind(n, key, yaml.SequenceNode, "a list of rules, each with secrets and hosts") {
		return
	}
	for i, item := range n.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		r := rule{index: i, line: item.Line}
		present := l.mapping(item, k, []field{
			{"secrets", func(v *yaml.Node, k string) {
				r.secrets = l.patterns(v, k, "secret path patterns", patternProblem)
				if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
					l.problem(v, k, "is empty: a rule must name at least one secret path pattern")
				}
			}},
			{"legacyPasswordAuth", func(v *yaml.Node, k string) {
				if !l.kind(v, k, yaml.ScalarNode, "true or false") {
					return
				}
				if v.Tag != "!!bool" {
					l.problem(v, k, "must be true or false")
					return
				}
				r.legacyPasswordAuth = strings.EqualFold(v.Value, "true")
			}},
			{"hosts", func(v *yaml.Node, k string) {
				values, nodes := l.list(v, k, "host:port patterns")
				for j, s := range values {
					msg := patternProblem(s)
					var hp hostPattern
					if msg == "" {
						hp, msg = parseHostPattern(s, destinationHosts)
					}
					if msg != "" {
						l.problem(nodes[j], fmt.Sprintf("%s[%d]", k, j), "%s", msg)
						continue
					}
					r.hosts = append(r.hosts, hp)
				}
				if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
					l.problem(v, k, "is empty: a rule must list at least one host (to send a secret nowhere, use default: deny and no rule for it)")
				}
			}},
		})
		if present == nil {
			continue
		}
		for _, want := range []string{"secrets", "hosts"} {
			if !present[want] {
				l.problem(item, k, "%s is missing: a rule needs both secrets and hosts", want)
			}
		}
		for _, s := range r.secrets {
			r.loose = append(r.loose, looseForms(s)...)
		}
		l.p.rules = append(l.p.rules, r)
	}
}

func (l *loader) allowSensitiveLiterals(n *yaml.Node, key string) {
	if !l.kind(n, key, yaml.ScalarNode, "true or false") {
		return
	}
	if n.Tag != "!!bool" {
		l.problem(n, key, "must be true or false")
		return
	}
	l.p.allowSensitiveLiterals = strings.EqualFold(n.Value, "true")
}

// patternProblem returns what is wrong with a pattern, or "".
func patternProblem(p string) string {
	switch {
	case p == "":
		return `is empty: write a pattern, or "*" for any`
	case !utf8.ValidString(p):
		return "is not valid UTF-8"
	case len(p) > maxPatternBytes:
		return fmt.Sprintf("is longer than %d bytes", maxPatternBytes)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "contains a control character"
	case strings.TrimSpace(p) != p:
		return "has leading or trailing spaces"
	case strings.Contains(p, `\`):
		return `contains "\": there are no escapes; * and ? are the only wildcards`
	}
	return ""
}

// envPatternProblem returns what is wrong with a variable name pattern, or "".
func envPatternProblem(p string) string {
	if msg := patternProblem(p); msg != "" {
		return msg
	}
	for _, r := range p {
		if !(r == '_' || r == '*' || r == '?' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "may hold only letters, digits, _ and the wildcards * and ?"
		}
	}
	if d := deniedPattern(p); d != "" {
		return fmt.Sprintf("can only match variables that the built-in denylist protects (%s): the agent never reads or sends those; remove it", d)
	}
	return ""
}

// deniedPattern returns the denylist entry that every name matching p falls under, or "". The
// denylist (env.Denied) is a list of PREFIX* entries, compared ignoring case: p falls under one
// if the literal text p starts with begins with that prefix.
func deniedPattern(p string) string {
	lit := strings.ToUpper(p)
	if i := strings.IndexAny(lit, "*?"); i >= 0 {
		lit = lit[:i]
	}
	for _, d := range env.Denied {
		prefix, ok := strings.CutSuffix(d, "*")
		if ok && !strings.ContainsAny(prefix, "*?[\\") && strings.HasPrefix(lit, prefix) {
			return d
		}
		if !ok && env.DeniedBy(p) == d && !strings.ContainsAny(p, "*?") {
			return d
		}
	}
	return ""
}
