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
