package stores

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/aws"
	"github.com/secure-agent/secure-agent/secrets/azure"
	"github.com/secure-agent/secure-agent/secrets/custom"
	"github.com/secure-agent/secure-agent/secrets/env"
	"github.com/secure-agent/secure-agent/secrets/gcp"
)

// Validate reports every problem of a store block at once, without network access. It is pure
// and deterministic, so workflow code may call it. Each problem says what to fix.
func Validate(spec Spec) []string {
	var problems []string
	add := func(err error) {
		for _, e := range flatten(err) {
			problems = append(problems, message(e))
		}
	}
	allowed, known := fieldsByType[spec.Type]
	if !known {
		if spec.Type == "" {
			return []string{fmt.Sprintf("type is missing: set it to one of %s", strings.Join(Types, ", "))}
		}
		return []string{fmt.Sprintf("type %q is not supported: use one of %s", spec.Type, strings.Join(Types, ", "))}
	}
	set := spec.setFields()
	slices.Sort(set)
	for _, f := range set {
		if !slices.Contains(allowed, f) {
			problems = append(problems, fmt.Sprintf("%s is not used by the %s store; remove it", f, spec.Type))
		}
	}
	needPath := func() bool {
		if strings.TrimSpace(spec.SecretPath) == "" {
			if len(spec.Fields) > 0 {
				return false // every secret is named per field
			}
			problems = append(problems, fmt.Sprintf("secretPath is missing: name the %s secret that holds the connection's sensitive fields, or name one secret per field in fields", spec.Type))
			return false
		}
		return true
	}
	problems = append(problems, fieldProblems(spec)...)
	switch spec.Type {
	case TypeAWS:
		cfg := aws.Config{Region: spec.Region, AuthMethod: spec.AuthMethod, RoleARN: spec.RoleARN, ExternalID: spec.ExternalID}
		add(cfg.Validate())
		if needPath() {
			add(aws.ValidateRef(*awsRef(spec), spec.Region))
		}
	case TypeAzure:
		cfg := azure.Config{VaultName: spec.VaultName, AuthMethod: spec.AuthMethod, ClientID: spec.ClientID}
		add(cfg.Validate())
		if needPath() {
			_, err := azure.ParseRef(secrets.Ref{Path: spec.SecretPath}, spec.VaultName)
			add(err)
		}
	case TypeGCP:
		if needPath() {
			_, err := gcp.ParseRef(secrets.Ref{Path: spec.SecretPath})
			add(err)
		}
	case TypeVault:
		if needPath() {
			if msg := VaultPathProblem(spec.SecretPath); msg != "" {
				problems = append(problems, "secretPath "+msg)
			}
		}
		if v := spec.Version; v != "" && (len(v) > 10 || strings.Trim(v, "0123456789") != "" || v == "0") {
			problems = append(problems, "version must be a KV v2 version number, such as 3")
		}
	case TypeCustom:
		raw, err := spec.customConfig()
		if err != nil {
			problems = append(problems, "config: "+err.Error())
			break
		}
		parse := custom.ParseConfig
		if len(spec.Fields) > 0 {
			parse = custom.ParseStoreConfig // each field may name its own secret_name
		}
		cfg, _, err := parse(raw)
		add(err)
		if err == nil {
			add(cfg.Validate())
		}
	}
	return problems
}

// VaultPathProblem says what is wrong with a Vault API path given as a secret ("" when nothing):
// a relative path of non-empty segments ("secret/data/team/db", "database/creds/reader"), at
// most 512 bytes, without "..", a query, a fragment, a backslash or control characters, and not
// under sys/ or auth/ (which hold Vault's own settings and logins, never a data source's
// credentials).
func VaultPathProblem(p string) string {
	switch {
	case p == "":
		return "is empty: give the path as vault read takes it, such as secret/data/team/db or database/creds/reader"
	case len(p) > 512:
		return "is longer than 512 bytes"
	case strings.ContainsFunc(p, unicode.IsControl) || strings.ContainsAny(p, "?#\\% "):
		return "must be a plain path: no spaces, ?, #, %, backslash or control characters"
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return "must not start or end with /: give it as vault read takes it, such as secret/data/team/db"
	case strings.HasPrefix(p, "v1/"):
		return "must not start with v1/: give it as vault read takes it"
	case strings.HasPrefix(p, "sys/") || strings.HasPrefix(p, "auth/") || strings.HasPrefix(p, "identity/") || strings.HasPrefix(p, "cubbyhole/"):
		return "names Vault's own settings, logins or a token's cubbyhole, not a data source's credentials"
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "must be segments separated by single slashes, without . or .."
		}
	}
	return ""
}

// maxKeyBytes bounds a key named in fields.
const maxKeyBytes = 256

// fieldProblems checks the secrets that Fields names, each as its store addresses secrets.
// Problems name the field, never the secret (a name could have been pasted where the value
// belongs, but it is still shown: it is what the operator must fix) — except that a key is
// never quoted.
func fieldProblems(spec Spec) []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(spec.Fields)) {
		f := spec.Fields[name]
		where := "fields." + name
		if strings.TrimSpace(f.Secret) == "" {
			problems = append(problems, where+": secret is empty: name the secret that holds this field")
			continue
		}
		if len(f.Key) > maxKeyBytes || strings.ContainsFunc(f.Key, unicode.IsControl) {
			problems = append(problems, fmt.Sprintf("%s: key must be at most %d bytes without control characters", where, maxKeyBytes))
		}
		var err error
		ref := spec.FieldRef(f)
		switch spec.Type {
		case TypeAWS:
			err = aws.ValidateRef(ref, spec.Region)
		case TypeAzure:
			_, err = azure.ParseRef(ref, spec.VaultName)
		case TypeGCP:
			_, err = gcp.ParseRef(ref)
		case TypeVault:
			if msg := VaultPathProblem(f.Secret); msg != "" {
				err = errors.New("secret " + msg)
			}
		case TypeCustom:
			if msg := custom.ValidSecretName(f.Secret); msg != "" {
				problems = append(problems, where+": "+strings.Replace(msg, "secret_name", "secret", 1))
			}
		case TypeEnv:
			if !env.ValidName(f.Secret) {
				problems = append(problems, where+": secret must name an agent environment variable (letters, digits and _, not starting with a digit)")
			}
		}
		for _, e := range flatten(err) {
			problems = append(problems, where+": "+message(e))
		}
	}
	return problems
}

// BoundaryProblems lists the problems of a store block that are new rules of the agent's trust
// boundary rather than syntax: today, a custom store configuration that sets version_path or
// ca_file, which are agent configuration (see custom.BoundaryProblems). Nil for every other
// block. Validate does not report them, because recorded workflow histories replay through it;
// the workflow adds them behind a version gate, and Opener.Open always refuses them. It is pure
// and deterministic.
func BoundaryProblems(spec Spec) []string {
	if spec.Type != TypeCustom {
		return nil
	}
	raw, err := spec.customConfig()
	if err != nil {
		return nil
	}
	return custom.BoundaryProblems(raw)
}

// flatten lists the leaves of a joined error.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// message is a problem's text without the kind prefix: inside an InvalidInput list it is noise.
func message(err error) string {
	var se *secrets.Error
	if errors.As(err, &se) {
		return strings.TrimPrefix(se.Error(), string(se.Kind)+": ")
	}
	return err.Error()
}
