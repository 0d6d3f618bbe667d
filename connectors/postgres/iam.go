package postgres

import (
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/connectors/iamauth"
	"github.com/secure-agent/secure-agent/secrets"
)

// Authentication methods (field authMethod): AuthPassword, or a token of the agent's own
// identity (package iamauth).
const (
	// AuthPassword logs in with the password field (the default).
	AuthPassword   = iamauth.Password
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

// iamPassword returns the password to log in with for authMethod: the password field for
// password, a freshly minted token for an IAM method. An IAM method needs every connection
// attempt to verify the server's certificate (the token is a bearer credential) and no password
// field. Errors never show the token.
func iamPassword(ctx context.Context, method string, creds func(string) string, host string, port uint16, user string, attempts []attempt) (string, error) {
	if field, problem := iamauth.Check(iamauth.Fields{Method: method, Password: creds(FieldPassword),
		Region: creds(FieldAWSRegion), RoleARN: creds(FieldAWSRoleARN), ExternalID: creds(FieldAWSExternalID)}); problem != "" {
		return "", invalidField(field, problem)
	}
	switch {
	case method == "" || method == AuthPassword:
		return creds(FieldPassword), nil
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
