// Package stores turns the secret store block of a workflow input into a ready secrets.Source:
// it validates the block, builds the backend's client once per distinct configuration and
// reuses it.
package stores

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/custom"
)

// Store types.
const (
	TypeAWS    = "aws"
	TypeAzure  = "azure"
	TypeGCP    = "gcp"
	TypeEnv    = "env"
	TypeCustom = "custom"
	TypeVault  = "vault"
)

// Types lists the store types, in documentation order.
var Types = []string{TypeAWS, TypeAzure, TypeGCP, TypeEnv, TypeCustom, TypeVault}

// Spec is the "secretStore" block of a workflow input. Every field is a non-secret identifier:
// the agent's own credentials for the store come from its environment, never from here.
type Spec struct {
	// Type is "aws", "azure", "gcp", "env", "custom" or "vault".
	Type string `json:"type"`
	// SecretPath names the secret that holds the connection's sensitive fields: an ARN or name
	// (aws), a secret URL or name (azure), projects/P/secrets/S[/versions/V] (gcp). Not used by
	// env and custom.
	SecretPath string `json:"secretPath,omitempty"`

	// AWS Secrets Manager.
	Region       string `json:"region,omitempty"`
	AuthMethod   string `json:"authMethod,omitempty"` // aws: iam, assume-role, access-key; azure: managed-identity, service-principal
	RoleARN      string `json:"roleArn,omitempty"`
	ExternalID   string `json:"externalId,omitempty"`
	VersionStage string `json:"versionStage,omitempty"`
	VersionID    string `json:"versionId,omitempty"`

	// Azure Key Vault.
	VaultName string `json:"vaultName,omitempty"`
	ClientID  string `json:"clientId,omitempty"`

	// Custom HTTP store: the documented JSON configuration, as an object or as a string that
	// holds one (the Web UI's text box).
	Config json.RawMessage `json:"config,omitempty"`

	// Vault (HashiCorp Vault or OpenBao, configured on the agent: address, namespace, auth):
	// SecretPath is the API path as `vault read` takes it, a KV v2 secret
	// ("secret/data/catalog/orders-db") or dynamic credentials ("database/creds/catalog-reader");
	// Version pins a KV v2 version (digits).
	Version string `json:"version,omitempty"`

	// Fields names, per connection field, a secret of this store that holds that field's value
	// alone ("one secret per field"): the secret's name as the store addresses it, or
	// {"secret": name, "key": key} for one key of a JSON secret. A field named here is not also
	// given in the connection. With Fields, secretPath (or the custom store's secret_name) may
	// be left out.
	Fields map[string]SecretField `json:"fields,omitempty"`
}

// SecretField is where one field's value is kept: a secret of the store, and optionally a key of
// the JSON object it holds (without one, the secret's whole value, which must be one string).
// Both are names, never values.
type SecretField struct {
	Secret string `json:"secret"`
	Key    string `json:"key,omitempty"`
}

// UnmarshalJSON accepts a string (the secret's name) or an object {"secret": ..., "key": ...}
// (unknown keys refused).
func (f *SecretField) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*f = SecretField{}
		return json.Unmarshal(b, &f.Secret)
	}
	type plain SecretField
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf(`a secret field must be the secret's name or {"secret": "<name>", "key": "<key>"}`)
	}
	*f = SecretField(p)
	return nil
}

// FieldRef returns the reference of the secret a field of Fields names, as the store reads it.
func (s Spec) FieldRef(f SecretField) secrets.Ref {
	return secrets.Ref{Path: f.Secret}
}

// PolicyRefs returns every secret reference of the block that agent policy judges: PolicyRef's,
// then each field's secret (for custom stores "<store_url host[:port]>/<secret>"), without
// repeats. Blocks that do not parse give none for the parts that do not.
func (s Spec) PolicyRefs() []string {
	var out []string
	add := func(r string) {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	add(s.PolicyRef())
	for _, name := range slices.Sorted(maps.Keys(s.Fields)) {
		add(s.FieldPolicyRef(s.Fields[name]))
	}
	return out
}

// FieldPolicyRef is the reference agent policy judges for a secret Fields names: its path, or
// for a custom store "<store_url host[:port]>/<secret>"; "" for env (the allowlist judges
// variables) and for a custom block that does not parse.
func (s Spec) FieldPolicyRef(f SecretField) string {
	switch s.Type {
	case TypeAWS, TypeAzure, TypeGCP, TypeVault:
		return f.Secret
	case TypeCustom:
		host := s.customHost()
		if host == "" {
			return ""
		}
		return host + "/" + f.Secret
	}
	return ""
}

// customHost is the host[:port] of a custom block's store_url, or "".
func (s Spec) customHost() string {
	raw, err := s.customConfig()
	if err != nil {
		return ""
	}
	cfg, _, err := custom.ParseStoreConfig(raw)
	if err != nil {
		return ""
	}
	u, err := url.Parse(cfg.StoreURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// fieldsByType lists the fields each store type accepts besides type (and fields, which every
// type accepts).
var fieldsByType = map[string][]string{
	TypeAWS:    {"secretPath", "region", "authMethod", "roleArn", "externalId", "versionStage", "versionId", "fields"},
	TypeAzure:  {"secretPath", "vaultName", "authMethod", "clientId", "fields"},
	TypeGCP:    {"secretPath", "fields"},
	TypeEnv:    {"fields"},
	TypeCustom: {"config", "fields"},
	TypeVault:  {"secretPath", "version", "fields"},
}

// setFields returns the JSON names of the non-empty fields of s, other than type.
func (s Spec) setFields() []string {
	var set []string
	for name, v := range map[string]string{
		"secretPath": s.SecretPath, "region": s.Region, "authMethod": s.AuthMethod, "roleArn": s.RoleARN,
		"externalId": s.ExternalID, "versionStage": s.VersionStage, "versionId": s.VersionID,
		"vaultName": s.VaultName, "clientId": s.ClientID, "version": s.Version,
	} {
		if v != "" {
			set = append(set, name)
		}
	}
	if len(bytes.TrimSpace(s.Config)) > 0 && string(bytes.TrimSpace(s.Config)) != "null" {
		set = append(set, "config")
	}
	if len(s.Fields) > 0 {
		set = append(set, "fields")
	}
	return set
}

// customConfig returns the custom store's configuration JSON, unwrapping a JSON string that
// holds it.
func (s Spec) customConfig() ([]byte, error) {
	raw := bytes.TrimSpace(s.Config)
	if len(raw) > 0 && raw[0] == '"' {
		var inner string
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, err
		}
		raw = []byte(strings.TrimSpace(inner))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("config must be a JSON object such as {\"store_url\": \"https://...\", \"secret_name\": \"...\"}")
	}
	return raw, nil
}

// PolicyRef returns the secret reference that agent policy judges for this store block: the
// secretPath for aws, azure and gcp; "<store_url host[:port]>/<secret_name>" for custom; "" for
// env (whose variables the env allowlist judges) and for blocks that do not parse (Validate
// reports those).
func (s Spec) PolicyRef() string {
	switch s.Type {
	case TypeAWS, TypeAzure, TypeGCP, TypeVault:
		return s.SecretPath
	case TypeCustom:
		raw, err := s.customConfig()
		if err != nil {
			return ""
		}
		cfg, ref, err := custom.ParseStoreConfig(raw)
		if err != nil || ref.Path == "" {
			return ""
		}
		u, err := url.Parse(cfg.StoreURL)
		if err != nil {
			return ""
		}
		return u.Host + "/" + ref.Path
	}
	return ""
}
