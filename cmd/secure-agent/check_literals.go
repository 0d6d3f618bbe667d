package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/env"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// The env store reads a connection field's value as a variable name only when the agent's
// allowlist admits it (secrets/env Store.Names); any other value of a non-sensitive field is used
// as the literal text. A forgotten allowlist entry therefore shows up later and elsewhere — a
// SQLite path "MY_DB_PATH" outside the allowed directories, a host "PGHOST" that does not
// resolve — so check says what happened, naming the field, the name and the setting.
//
// Only non-sensitive fields can be literals here (a sensitive one always names a variable), so
// the value repeated is one the input gave as plain text, never a secret.

// looksLikeVariable reports whether a literal looks like an environment variable name rather
// than a value: a valid name in upper case with at least one letter (MY_DB_PATH, PGHOST; not
// localhost, 5432 or db1).
func looksLikeVariable(v string) bool {
	return env.ValidName(v) && strings.ToUpper(v) == v && strings.ContainsFunc(v, func(r rune) bool { return r >= 'A' && r <= 'Z' })
}

// usesEnvStore reports whether the input's fields are resolved through the env store.
func usesEnvStore(in workflows.Input) bool {
	return in.SecretStore != nil && in.SecretStore.Type == stores.TypeEnv
}

// localLiteralNotes explains the variable-like literals of a resolution done in this process
// (check --local): the fields the env store took as text, and why. isSet reports whether a
// variable of the name exists here. It returns the notes and whether one
// of them names a variable that is set: then the literal is certainly a mistake.
func localLiteralNotes(in workflows.Input, res *secrets.Resolution, policyFile string, isSet func(name string) bool) (notes []string, certain bool) {
	if !usesEnvStore(in) || res == nil {
		return nil, false
	}
	setting := "SECURE_AGENT_ENV_ALLOW"
	if policyFile != "" {
		setting = "env.allow in the policy file (SECURE_AGENT_POLICY_FILE)"
	}
	for _, f := range res.Fields {
		v := string(f.Value)
		if f.FromSecret || f.Sensitive || !looksLikeVariable(v) {
			continue
		}
		set := isSet(v)
		certain = certain || set
		where := "no variable of that name is set here either"
		if set {
			where = "a variable of that name is set in the agent's environment"
		}
		why := fmt.Sprintf("no pattern in %s matches it; to read the variable, add a pattern that matches it there", setting)
		if p := env.DeniedBy(v); p != "" {
			why = fmt.Sprintf("variables matching %q hold the agent's own credentials or settings and are never read through the env store; keep the value in a variable with another name", p)
		}
		notes = append(notes, fmt.Sprintf("connection.%s %q was used as literal text, not as an environment variable (%s), because %s", f.Field, v, where, why))
	}
	return notes, certain
}

// remoteLiteralNotes explains, for a check run on an agent, the variable-like values of
// non-sensitive fields that the agent did not read as variables. read lists the variables it
// did read (the report's secret versions); nil when the check failed before saying, and then the
// note is conditional: this process cannot see the agent's allowlist.
func remoteLiteralNotes(in workflows.Input, read []secrets.SecretVersion, known bool) []string {
	if !usesEnvStore(in) {
		return nil
	}
	var names []string
	for _, v := range read {
		names = append(names, v.Ref.Path)
	}
	spec, _ := connectors.Lookup(in.Connector)
	var fields []string
	for name := range in.Connection {
		if f, ok := spec.Field(name); ok && !f.Sensitive { // a sensitive field's value is never repeated
			fields = append(fields, name)
		}
	}
	slices.Sort(fields)
	var notes []string
	for _, name := range fields {
		v := string(in.Connection[name])
		if !looksLikeVariable(v) || slices.Contains(names, v) {
			continue
		}
		if known {
			notes = append(notes, fmt.Sprintf("connection.%s %q was used as literal text, not as an environment variable: the agent's SECURE_AGENT_ENV_ALLOW (or env.allow in its policy file) does not allow that name; add it there to read the variable", name, v))
			continue
		}
		notes = append(notes, fmt.Sprintf("if connection.%s %q names an environment variable on the agent, the agent must allow it in SECURE_AGENT_ENV_ALLOW (or env.allow in its policy file): a name it may not read is used as literal text", name, v))
	}
	return notes
}

// envIsSet reports whether a variable is set in this process's environment, without keeping its
// value.
func envIsSet(name string) bool {
	_, ok := os.LookupEnv(name)
	return ok
}

// withNotes appends notes to a checklist detail.
func withNotes(detail string, notes []string) string {
	if len(notes) == 0 {
		return detail
	}
	if detail != "" {
		detail += "; "
	}
	return detail + "note: " + strings.Join(notes, "; ")
}
