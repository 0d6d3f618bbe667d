package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	rdsauth "github.com/aws/aws-sdk-go-v2/feature/rds/auth"
	"golang.org/x/oauth2/google"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/azure"
)

// Authentication methods (field authMethod).
const (
	// AuthPassword logs in with the password field (the default).
	AuthPassword = "password"
	// AuthAWSIAM logs in with an RDS IAM authentication token (Amazon RDS and Aurora PostgreSQL):
	// a SigV4-presigned "connect" request, valid 15 minutes, which the agent mints for each
	// connection from its own AWS identity (the SDK's default chain: IRSA, ECS task role,
	// instance profile, ...) and sends as the password, only over verified TLS.
	AuthAWSIAM = "aws-iam"
	// AuthGCPIAM logs in to Cloud SQL for PostgreSQL with IAM database authentication: an OAuth2
	// access token of the agent's own Google identity (Application Default Credentials: a
	// service account key, workload identity federation, GKE's metadata server), scope
	// sqlservice.login, sent as the password only over verified TLS. The username is the IAM
	// user as Cloud SQL names it (a service account without ".gserviceaccount.com").
	AuthGCPIAM = "gcp-iam"
	// AuthAzureEntra logs in to Azure Database for PostgreSQL flexible server with a Microsoft
	// Entra ID access token for the OSS RDBMS resource, from the agent's own Azure identity
	// (managed identity, or the workload identity when AZURE_FEDERATED_TOKEN_FILE is set; a
	// service principal when AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH is set), sent
	// as the password only over verified TLS. The username is the Entra principal's name as the
	// server knows it.
	AuthAzureEntra = "azure-entra"
)

// azureDatabaseScope is the scope of Entra tokens for Azure Database for PostgreSQL and MySQL.
const azureDatabaseScope = "https://ossrdbms-aad.database.windows.net/.default"

// azureCredential builds the agent's Entra credential; tests replace it with one whose
// authority is a local token endpoint.
var azureCredential = func() (azcore.TokenCredential, error) {
	method := azure.AuthManagedIdentity
	if os.Getenv("AZURE_CLIENT_SECRET") != "" || os.Getenv("AZURE_CLIENT_CERTIFICATE_PATH") != "" {
		method = azure.AuthServicePrincipal
	}
	return azure.NewTokenCredential(azure.Config{AuthMethod: method})
}

// gcpLoginScope is the OAuth2 scope of Cloud SQL IAM database logins.
const gcpLoginScope = "https://www.googleapis.com/auth/sqlservice.login"

// Fields of the IAM methods.
const (
	FieldAuthMethod = "authMethod"
	FieldAWSRegion  = "awsRegion"
)

var awsRegionPattern = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]{2,10})?-[a-z]{2,10}-[0-9]{1,2}$`)

// tokenSource mints the password of a connection for an authentication method other than
// password. Tests replace it to sign with a fixed clock.
var tokenSource = mintAWSToken

// iamPassword returns the password to log in with for authMethod: the password field for
// password, a freshly minted token for an IAM method. An IAM method needs every connection
// attempt to verify the server's certificate (the token is a bearer credential, as good as a
// password for 15 minutes) and no password field. Errors never show the token.
func iamPassword(ctx context.Context, method string, creds func(string) string, host string, port uint16, user string, attempts []attempt) (string, error) {
	switch method {
	case "", AuthPassword:
		if creds(FieldAWSRegion) != "" {
			return "", invalidField(FieldAWSRegion, "is only for authMethod aws-iam")
		}
		return creds(FieldPassword), nil
	case AuthAWSIAM, AuthGCPIAM, AuthAzureEntra:
	default:
		return "", invalidField(FieldAuthMethod, "is not password, aws-iam, gcp-iam or azure-entra")
	}
	switch {
	case creds(FieldPassword) != "":
		return "", invalidField(FieldPassword, "must be left out with authMethod "+method+": the agent mints a token for each connection")
	case method == AuthAWSIAM && !awsRegionPattern.MatchString(creds(FieldAWSRegion)):
		return "", invalidField(FieldAWSRegion, "is required with authMethod aws-iam: the RDS instance's region, such as eu-west-1")
	case method != AuthAWSIAM && creds(FieldAWSRegion) != "":
		return "", invalidField(FieldAWSRegion, "is only for authMethod aws-iam")
	case strings.HasPrefix(host, "/"):
		return "", invalidField(FieldHost, "must be the server's name with authMethod "+method+", not a socket directory")
	}
	for _, a := range attempts {
		if !a.verified {
			return "", invalidField(FieldSSLMode, "must be verify-full (or verify-ca) with authMethod "+method+": the token is a bearer credential and goes only to a server whose certificate is verified")
		}
	}
	if method == AuthAzureEntra {
		token, err := azureToken(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return "", contextError(ctx.Err())
			}
			return "", &secrets.Error{Kind: secrets.AuthFailed, Field: FieldAuthMethod,
				Msg: "postgres: the agent could not get a Microsoft Entra token for Azure Database: it has no usable Azure identity (managed identity, workload identity, AZURE_* service principal); fix the agent's identity"}
		}
		return token, nil
	}
	if method == AuthGCPIAM {
		token, err := gcpToken(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return "", contextError(ctx.Err())
			}
			return "", &secrets.Error{Kind: secrets.AuthFailed, Field: FieldAuthMethod,
				Msg: "postgres: the agent could not get a Google access token for Cloud SQL: it has no usable Google identity (GOOGLE_APPLICATION_CREDENTIALS, workload identity, the metadata server); fix the agent's identity"}
		}
		return token, nil
	}
	token, err := tokenSource(ctx, net.JoinHostPort(host, strconv.Itoa(int(port))), creds(FieldAWSRegion), user)
	if err != nil {
		if ctx.Err() != nil {
			return "", contextError(ctx.Err())
		}
		return "", &secrets.Error{Kind: secrets.AuthFailed, Field: FieldAuthMethod,
			Msg: "postgres: the agent could not mint an RDS IAM token: it has no usable AWS identity (IRSA, ECS task role, instance profile, AWS_* settings on the agent); fix the agent's AWS identity"}
	}
	return token, nil
}

// azureToken returns an Entra access token of the agent's identity for Azure Database.
func azureToken(ctx context.Context) (string, error) {
	cred, err := azureCredential()
	if err != nil {
		return "", err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azureDatabaseScope}})
	if err != nil {
		return "", err
	}
	return tok.Token, nil
}

// gcpToken returns an OAuth2 access token of the agent's Application Default Credentials for
// Cloud SQL logins.
func gcpToken(ctx context.Context) (string, error) {
	ts, err := google.DefaultTokenSource(ctx, gcpLoginScope)
	if err != nil {
		return "", err
	}
	tok, err := ts.Token()
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// mintAWSToken builds an RDS IAM authentication token for user at endpoint (host:port) in
// region, with the agent's default AWS credential chain.
func mintAWSToken(ctx context.Context, endpoint, region, user string) (string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return "", fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return rdsauth.BuildAuthToken(ctx, endpoint, region, user, cfg.Credentials)
}
