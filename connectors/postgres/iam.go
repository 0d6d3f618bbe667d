package postgres

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/connectors/iamauth"
	"github.com/secure-agent/secure-agent/secrets"
)

// Authentication methods (field authMethod): AuthPassword, or a token of the agent's own
// identity (package iamauth).
const (
	// AuthPassword logs in with the password field (the default).
	AuthPassword   = "password"
	AuthAWSIAM     = iamauth.AWS
	AuthGCPIAM     = iamauth.GCP
	AuthAzureEntra = iamauth.Azure
)

// Fields of the IAM methods.
const (
	FieldAuthMethod    = "authMethod"
	FieldAWSRegion     = "awsRegion"
	FieldAWSRoleARN    = "awsRoleArn"
	FieldAWSExternalID = "awsExternalId"
)

var awsRoleARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

var awsRegionPattern = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]{2,10})?-[a-z]{2,10}-[0-9]{1,2}$`)

// iamPassword returns the password to log in with for authMethod: the password field for
// password, a freshly minted token for an IAM method. An IAM method needs every connection
// attempt to verify the server's certificate (the token is a bearer credential) and no password
// field. Errors never show the token.
func iamPassword(ctx context.Context, method string, creds func(string) string, host string, port uint16, user string, attempts []attempt) (string, error) {
	switch {
	case method != AuthAWSIAM && (creds(FieldAWSRegion) != "" || creds(FieldAWSRoleARN) != "" || creds(FieldAWSExternalID) != ""):
		return "", invalidField(FieldAWSRegion, "awsRegion, awsRoleArn and awsExternalId are only for authMethod aws-iam")
	case method == "" || method == AuthPassword:
		return creds(FieldPassword), nil
	case !iamauth.IsMethod(method):
		return "", invalidField(FieldAuthMethod, "is not password, aws-iam, gcp-iam or azure-entra")
	case creds(FieldPassword) != "":
		return "", invalidField(FieldPassword, "must be left out with authMethod "+method+": the agent mints a token for each connection")
	case method == AuthAWSIAM && !awsRegionPattern.MatchString(creds(FieldAWSRegion)):
		return "", invalidField(FieldAWSRegion, "is required with authMethod aws-iam: the RDS instance's region, such as eu-west-1")
	case creds(FieldAWSRoleARN) != "" && !awsRoleARNPattern.MatchString(creds(FieldAWSRoleARN)):
		return "", invalidField(FieldAWSRoleARN, "is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
	case creds(FieldAWSExternalID) != "" && creds(FieldAWSRoleARN) == "":
		return "", invalidField(FieldAWSExternalID, "is only for a role to assume: set awsRoleArn too")
	case len(creds(FieldAWSExternalID)) > 1224:
		return "", invalidField(FieldAWSExternalID, "is longer than 1224 characters")
	case strings.HasPrefix(host, "/"):
		return "", invalidField(FieldHost, "must be the server's name with authMethod "+method+", not a socket directory")
	}
	for _, a := range attempts {
		if !a.verified {
			return "", invalidField(FieldSSLMode, "must be verify-full (or verify-ca) with authMethod "+method+": the token is a bearer credential and goes only to a server whose certificate is verified")
		}
	}
	token, err := iamauth.Token(ctx, iamauth.Request{Method: method, Endpoint: net.JoinHostPort(host, strconv.Itoa(int(port))),
		Region: creds(FieldAWSRegion), User: user, RoleARN: creds(FieldAWSRoleARN), ExternalID: creds(FieldAWSExternalID)})
	if err != nil {
		if ctx.Err() != nil {
			return "", contextError(ctx.Err())
		}
		return "", &secrets.Error{Kind: secrets.AuthFailed, Field: FieldAuthMethod,
			Msg: "postgres: the agent could not get a login token for authMethod " + method + ": it needs " + iamauth.IdentityHint(method) + "; fix the agent's identity"}
	}
	return token, nil
}
