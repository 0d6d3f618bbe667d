// Package stores turns the secret store block of a workflow input into a ready secrets.Source:
// it validates the block, builds the backend's client once per distinct configuration and
// reuses it.
package stores

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/secure-agent/secure-agent/secrets/custom"
)

// Store types.
const (
	TypeAWS    = "aws"
	TypeAzure  = "azure"
	TypeGCP    = "gcp"
	TypeEnv    = "env"
	TypeCustom = "custom"
)

// Types lists the store types, in documentation order.
var Types = []string{TypeAWS, TypeAzure, TypeGCP, TypeEnv, TypeCustom}

// Spec is the "secretStore" block of a workflow input. Every field is a non-secret identifier:
// the agent's own credentials for the store come from its environment, never from here.
type Spec struct {
	// Type is "aws", "azure", "gcp", "env" or "custom".
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
}

// fieldsByType lists the fields each store type accepts besides type.
var fieldsByType = map[string][]string{
	TypeAWS:    {"secretPath", "region", "authMethod", "roleArn", "externalId", "versionStage", "versionId"},
	TypeAzure:  {"secretPath", "vaultName", "authMethod", "clientId"},
	TypeGCP:    {"secretPath"},
	TypeEnv:    {},
	TypeCustom: {"config"},
}

// setFields returns the JSON names of the non-empty fields of s, other than type.
func (s Spec) setFields() []string {
	var set []string
	for name, v := range map[string]string{
		"secretPath": s.SecretPath, "region": s.Region, "authMethod": s.AuthMethod, "roleArn": s.RoleARN,
		"externalId": s.ExternalID, "versionStage": s.VersionStage, "versionId": s.VersionID,
		"vaultName": s.VaultName, "clientId": s.ClientID,
	} {
		if v != "" {
			set = append(set, name)
		}
	}
	if len(bytes.TrimSpace(s.Config)) > 0 && string(bytes.TrimSpace(s.Config)) != "null" {
		set = append(set, "config")
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
	case TypeAWS, TypeAzure, TypeGCP:
		return s.SecretPath
	case TypeCustom:
		raw, err := s.customConfig()
		if err != nil {
			return ""
		}
		cfg, ref, err := custom.ParseConfig(raw)
		if err != nil {
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
