// Package iamauth mints the login tokens of database IAM authentication from the agent's own
// cloud identity: an RDS IAM token (Amazon RDS and Aurora), a Google access token (Cloud SQL IAM
// database authentication), a Microsoft Entra token (Azure Database flexible servers). The
// connectors send them as the password, only over verified TLS. A token is a bearer credential:
// nothing here logs it or puts it in an error.
package iamauth

import (
	"context"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	rdsauth "github.com/aws/aws-sdk-go-v2/feature/rds/auth"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/oauth2/google"

	awsstore "github.com/secure-agent/secure-agent/secrets/aws"
	"github.com/secure-agent/secure-agent/secrets/azure"
)

// Methods (a connection's authMethod field).
const (
	// Password logs in with the password field (the default): no token.
	Password = "password"
	// AWS: a SigV4-presigned "connect" request for the endpoint's host:port, the user and the
	// region, valid 15 minutes, from the SDK's default credential chain (IRSA, ECS task role,
	// instance profile, AWS_* on the agent).
	AWS = "aws-iam"
	// GCP: an OAuth2 access token of Application Default Credentials (a service account key,
	// workload identity federation, the metadata server), scope sqlservice.login.
	GCP = "gcp-iam"
	// Azure: an Entra access token for the OSS RDBMS resource, from the managed identity (the
	// workload identity when AZURE_FEDERATED_TOKEN_FILE is set), or a service principal when
	// AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH is set.
	Azure = "azure-entra"
)

// Scopes of the OAuth2 tokens.
const (
	GCPLoginScope      = "https://www.googleapis.com/auth/sqlservice.login"
	AzureDatabaseScope = "https://ossrdbms-aad.database.windows.net/.default"
)

// IsMethod reports whether m is one of the token methods.
func IsMethod(m string) bool { return m == AWS || m == GCP || m == Azure }

// AzureCredential builds the agent's Entra credential. Tests, and agents with a token source of
// their own, replace it (before any connection is made).
var AzureCredential = func() (azcore.TokenCredential, error) {
	method := azure.AuthManagedIdentity
	if os.Getenv("AZURE_CLIENT_SECRET") != "" || os.Getenv("AZURE_CLIENT_CERTIFICATE_PATH") != "" {
		method = azure.AuthServicePrincipal
	}
	return azure.NewTokenCredential(azure.Config{AuthMethod: method})
}

// Request says what token to mint: the method, and for an RDS token the endpoint (host:port),
// region and user it is for, and optionally a role to assume first (with an external id).
type Request struct {
	Method                 string
	Endpoint, Region, User string
	RoleARN, ExternalID    string
}

// SessionName names the agent's assume-role sessions for RDS tokens (in CloudTrail).
const SessionName = "secure-agent-db"

// Token mints a login token. Errors never hold a token.
func Token(ctx context.Context, r Request) (string, error) {
	switch r.Method {
	case AWS:
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(r.Region))
		if err != nil {
			return "", fmt.Errorf("loading the AWS configuration: %w", err)
		}
		creds := cfg.Credentials
		if r.RoleARN != "" {
			creds = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), r.RoleARN,
				func(o *stscreds.AssumeRoleOptions) {
					o.RoleSessionName = SessionName
					if r.ExternalID != "" {
						o.ExternalID = aws.String(r.ExternalID)
					}
				}))
		}
		return rdsauth.BuildAuthToken(ctx, r.Endpoint, r.Region, r.User, creds)
	case GCP:
		ts, err := google.DefaultTokenSource(ctx, GCPLoginScope)
		if err != nil {
			return "", err
		}
		tok, err := ts.Token()
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	case Azure:
		cred, err := AzureCredential()
		if err != nil {
			return "", err
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{AzureDatabaseScope}})
		if err != nil {
			return "", err
		}
		return tok.Token, nil
	}
	return "", fmt.Errorf("iamauth: %q is not a token method", r.Method)
}

// IdentityHint says, for an error message, which identity a method needs.
func IdentityHint(method string) string {
	switch method {
	case AWS:
		return "an AWS identity (IRSA, ECS task role, instance profile, AWS_* settings on the agent)"
	case GCP:
		return "a Google identity (GOOGLE_APPLICATION_CREDENTIALS, workload identity, the metadata server)"
	}
	return "an Azure identity (managed identity, workload identity, AZURE_* service principal)"
}

// Fields are a connection's fields that the methods use.
type Fields struct {
	Method, Password            string
	Region, RoleARN, ExternalID string
}

// Check says what is wrong with f for its method: the field (connection field name) and the
// problem, or "" when nothing is. A token method needs no password; the AWS fields belong to
// aws-iam alone, and are judged as the AWS secrets store judges its own. An empty Method is
// password.
func Check(f Fields) (field, problem string) {
	aws := f.Region != "" || f.RoleARN != "" || f.ExternalID != ""
	switch {
	case f.Method != AWS && aws:
		return "awsRegion", "awsRegion, awsRoleArn and awsExternalId are only for authMethod aws-iam"
	case f.Method == "" || f.Method == Password:
		return "", ""
	case !IsMethod(f.Method):
		return "authMethod", "is not password, aws-iam, gcp-iam or azure-entra"
	case f.Password != "":
		return "password", "must be left out with authMethod " + f.Method + ": the agent mints a token for each connection"
	case f.Method != AWS:
		return "", ""
	case !awsstore.ValidRegion(f.Region):
		return "awsRegion", "is required with authMethod aws-iam: the RDS instance's region, such as eu-west-1"
	case f.RoleARN != "" && !awsstore.ValidRoleARN(f.RoleARN, f.Region):
		return "awsRoleArn", "is not an IAM role ARN in awsRegion's partition (arn:aws:iam::<account>:role/<name>)"
	case f.ExternalID != "" && f.RoleARN == "":
		return "awsExternalId", "is only for a role to assume: set awsRoleArn too"
	case f.ExternalID != "" && !awsstore.ValidExternalID(f.ExternalID):
		return "awsExternalId", "must be 2 to 1224 characters of letters, digits and +=,.@:/-_"
	}
	return "", ""
}
