package azure

// This file builds the workload identity credential: Microsoft Entra Workload ID on Kubernetes
// (AKS, or any cluster running the Azure Workload Identity webhook).
//
// The webhook gives a pod labelled azure.workload.identity/use: "true" whose service account is
// annotated azure.workload.identity/client-id these variables: AZURE_CLIENT_ID, AZURE_TENANT_ID,
// AZURE_FEDERATED_TOKEN_FILE (a projected service account token that the kubelet rewrites about
// hourly) and AZURE_AUTHORITY_HOST. The agent exchanges the file's token for an Entra ID access
// token with the client credentials grant and a jwt-bearer client assertion.
//
// Why not azidentity.WorkloadIdentityCredential: it keeps the file's contents for 10 minutes
// after reading them (v1.15), so for up to 10 minutes after the kubelet rotates the file it still
// sends the previous token. That token is normally still valid, but an agent that must tell the
// operator exactly what it sends cannot promise "the current file". The credential here is an
// azidentity.ClientAssertionCredential whose callback reads the file on every call; MSAL calls it
// once for each token request it sends to Entra ID (never for a token served from its cache).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/secure-agent/secure-agent/secrets"
)

// Environment variables of Azure workload identity, as the webhook sets them.
const (
	envClientID           = "AZURE_CLIENT_ID"
	envTenantID           = "AZURE_TENANT_ID"
	envFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
	envAuthorityHost      = "AZURE_AUTHORITY_HOST"
)

// maxTokenFileBytes bounds the federated token file. Kubernetes service account tokens are a few
// kilobytes; a larger file is not one.
const maxTokenFileBytes = 64 << 10

// workloadIdentityPresent reports whether the agent's environment carries a workload identity,
// that is whether AZURE_FEDERATED_TOKEN_FILE is set. Only the workload identity webhook (or an
// operator imitating it) sets that variable, so its presence means the pod was given an identity
// of its own: AuthManagedIdentity then uses that identity and never asks IMDS, which on AKS would
// answer with the node's (kubelet's) identities instead.
func workloadIdentityPresent() bool { return os.Getenv(envFederatedTokenFile) != "" }

// workloadIdentity is the agent's workload identity configuration, read from its environment.
type workloadIdentity struct {
	tenant, clientID string
	// file is the federated token file's path (AZURE_FEDERATED_TOKEN_FILE).
	file string
	// authorityHost is AZURE_AUTHORITY_HOST, or "" to sign in at the vault's cloud's authority.
	authorityHost string
}

// readWorkloadIdentity reads the workload identity variables and checks that the token file can be
// read now. method is the configured method (for messages); inputClientID, when set, must be the
// identity's own client id. Problems with the environment are AuthFailed; a clientId that names
// another identity is InvalidInput.
func readWorkloadIdentity(method, inputClientID string) (*workloadIdentity, []error) {
	wi := &workloadIdentity{
		tenant:        os.Getenv(envTenantID),
		clientID:      os.Getenv(envClientID),
		file:          os.Getenv(envFederatedTokenFile),
		authorityHost: os.Getenv(envAuthorityHost),
	}
	var missing []string
	for _, v := range []struct{ name, value string }{
		{envClientID, wi.clientID}, {envTenantID, wi.tenant}, {envFederatedTokenFile, wi.file},
	} {
		if v.value == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		why := "authMethod " + AuthWorkloadIdentity + " needs AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE in the agent's environment"
		if method == AuthManagedIdentity {
			why = "AZURE_FEDERATED_TOKEN_FILE is set, so authMethod " + AuthManagedIdentity +
				" uses the pod's workload identity (never the node's managed identity), which also needs AZURE_CLIENT_ID and AZURE_TENANT_ID"
		}
		return nil, []error{configError(secrets.AuthFailed, why+
			` (the Azure Workload Identity webhook sets them on pods labelled azure.workload.identity/use: "true" whose service account has the annotation azure.workload.identity/client-id); set `+
			strings.Join(missing, ", "))}
	}
	var errs []error
	if !validTenant(wi.tenant) {
		errs = append(errs, configError(secrets.AuthFailed, "AZURE_TENANT_ID on the agent must be a tenant id (a GUID) or a verified domain name"))
	}
	if !isGUID(wi.clientID) {
		errs = append(errs, configError(secrets.AuthFailed,
			"AZURE_CLIENT_ID on the agent must be the client id (a GUID) of the workload identity: the user-assigned managed identity or application that trusts the agent's service account"))
	} else if inputClientID != "" && !strings.EqualFold(inputClientID, wi.clientID) {
		errs = append(errs, configError(secrets.InvalidInput,
			"clientId names a different identity than the agent's workload identity (AZURE_CLIENT_ID on the agent); leave clientId empty, or set it to that client id"))
	}
	if wi.authorityHost != "" && !validAuthorityHost(wi.authorityHost) {
		errs = append(errs, configError(secrets.AuthFailed,
			"AZURE_AUTHORITY_HOST on the agent must be an https URL without user info, query or fragment, such as https://login.microsoftonline.com/"))
	}
	if len(errs) == 0 {
		b, err := wi.readFile()
		clear(b)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return wi, errs
}

// validAuthorityHost accepts an https URL with a host and nothing that could carry credentials.
func validAuthorityHost(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil &&
		u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// credentials builds one credential per cloud: with AZURE_AUTHORITY_HOST one credential at that
// authority serves every vault; without it each cloud's vaults sign in at that cloud's authority.
// Instance discovery is off: the authority is agent configuration (the environment or the fixed
// list of clouds), never input, so there is nothing for Entra ID's discovery to vouch for, and the
// agent needs no egress to login.microsoft.com.
func (wi *workloadIdentity) credentials(cfg Config) (map[string]azcore.TokenCredential, error) {
	creds := make(map[string]azcore.TokenCredential, len(clouds))
	var shared azcore.TokenCredential
	for _, c := range clouds {
		cc := c.config
		if wi.authorityHost != "" {
			if shared != nil {
				creds[c.suffix] = shared
				continue
			}
			cc = cloud.Configuration{ActiveDirectoryAuthorityHost: wi.authorityHost}
		}
		cred, err := azidentity.NewClientAssertionCredential(wi.tenant, wi.clientID, wi.assertion,
			&azidentity.ClientAssertionCredentialOptions{
				ClientOptions:            credentialOptions(cfg, cc),
				DisableInstanceDiscovery: true,
			})
		if err != nil {
			return nil, &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Cause: err,
				Msg: "cannot build the workload identity credential from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_AUTHORITY_HOST; check their values"}
		}
		if wi.authorityHost != "" {
			shared = cred
		}
		creds[c.suffix] = cred
	}
	return creds, nil
}

// assertion is the credential's assertion callback: the token file's contents as they are now.
// A failure is also recorded in the Fetch's exchange, because azidentity flattens the callback's
// error to text and Fetch must still report it as the AuthFailed it is.
func (wi *workloadIdentity) assertion(ctx context.Context) (string, error) {
	b, err := wi.readFile()
	if err != nil {
		ex, _ := ctx.Value(exchangeKey{}).(*exchange)
		ex.record(func(e *exchange) { e.credentialErr = err })
		return "", err
	}
	defer clear(b)
	return string(b), nil
}

// readFile reads the federated token file, at most maxTokenFileBytes of it. Errors name the file
// (agent configuration) and never hold its contents.
func (wi *workloadIdentity) readFile() ([]byte, error) {
	fail := func(msg string, cause error) ([]byte, error) {
		return nil, &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Cause: cause, Msg: fmt.Sprintf(
			"the federated token file %s named by AZURE_FEDERATED_TOKEN_FILE %s; check the pod's workload identity setup (the label azure.workload.identity/use: \"true\" and the projected service account token volume)",
			truncate(wi.file, 200), msg)}
	}
	f, err := os.Open(wi.file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fail("does not exist", nil)
		}
		return fail("cannot be opened by the agent", opError(err))
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	switch {
	case err != nil:
		clear(b)
		return fail("cannot be read by the agent", opError(err))
	case len(b) > maxTokenFileBytes:
		clear(b)
		return fail(fmt.Sprintf("is larger than %d bytes, which no service account token is", maxTokenFileBytes), nil)
	case len(bytes.TrimSpace(b)) == 0:
		clear(b)
		return fail("is empty", nil)
	}
	return b, nil
}

// opError keeps the operating system's reason for a failed file operation (for example
// "permission denied" or "is a directory") without the path, which the message already names.
func opError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
