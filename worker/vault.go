package worker

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/vault"
)

// defaultKubernetesJWT is where a pod's service account token is mounted.
const defaultKubernetesJWT = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// vaultStore returns the constructor of the agent's Vault store from its settings (nil without
// SECURE_AGENT_VAULT_ADDR). The files it names (token, secret id, JWT, CA) are read when the store
// is first used, so a rotated file is read again after a restart, and a missing one is an error
// of the run that needs Vault, naming the setting. Every connection goes only to the configured
// address (a redirect elsewhere is refused at dial time).
func vaultStore(s Settings) func(ctx context.Context) (secrets.Store, error) {
	if s.VaultAddr == "" {
		return nil
	}
	return func(ctx context.Context) (secrets.Store, error) {
		read := func(setting, file string) (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", &secrets.Error{Kind: secrets.AuthFailed, Store: vault.Name,
					Msg: fmt.Sprintf("the agent cannot read the file %s names (%s): check the setting and the file's permissions", EnvPrefix+"_"+setting, errKind(err))}
			}
			return strings.TrimSpace(string(b)), nil
		}
		auth := vault.Auth{Method: s.VaultAuth, Mount: s.VaultAuthMount, Role: s.VaultRole, RoleID: s.VaultRoleID, Token: s.VaultToken}
		var err error
		switch s.VaultAuth {
		case vault.AuthToken:
			if s.VaultTokenFile != "" {
				auth.Token, err = read("VAULT_TOKEN_FILE", s.VaultTokenFile)
			}
		case vault.AuthAppRole:
			auth.SecretID, err = read("VAULT_SECRET_ID_FILE", s.VaultSecretIDFile)
		case vault.AuthKubernetes, vault.AuthJWT:
			file := s.VaultJWTFile
			if file == "" {
				file = defaultKubernetesJWT
			}
			auth.JWT, err = read("VAULT_JWT_FILE", file)
		}
		if err != nil {
			return nil, err
		}
		var ca []byte
		if s.VaultCAFile != "" {
			if ca, err = os.ReadFile(s.VaultCAFile); err != nil {
				return nil, &secrets.Error{Kind: secrets.InvalidInput, Store: vault.Name,
					Msg: fmt.Sprintf("the agent cannot read %s_VAULT_CA_FILE (%s)", EnvPrefix, errKind(err))}
			}
		}
		u, err := url.Parse(s.VaultAddr)
		if err != nil {
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Store: vault.Name, Msg: EnvPrefix + "_VAULT_ADDR is not a URL"}
		}
		dest, err := netguard.DestinationOfURL(u)
		if err != nil {
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Store: vault.Name, Msg: EnvPrefix + "_VAULT_ADDR does not name a host and port"}
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		netguard.GuardTransport(tr, &netguard.Dialer{Check: func(d netguard.Destination) error {
			if d != dest {
				return &secrets.Error{Kind: secrets.PolicyDenied, Store: vault.Name, Msg: "a Vault request tried to reach a host other than the configured address (a redirect?); refused"}
			}
			return nil
		}})
		return vault.New(ctx, vault.Config{Address: s.VaultAddr, Namespace: s.VaultNamespace, CACertPEM: ca, Auth: auth,
			HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second}})
	}
}

// errKind names a file error's kind without its path's content.
func errKind(err error) string {
	switch {
	case os.IsNotExist(err):
		return "no such file"
	case os.IsPermission(err):
		return "permission denied"
	}
	return "unreadable"
}
