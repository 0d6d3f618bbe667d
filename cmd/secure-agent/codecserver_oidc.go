package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/secure-agent/secure-agent/codec"
)

// The codec server's OIDC settings: with them, the Web UI's users (signed in through the UI's
// single sign-on, with codec.passAccessToken) decode with their own access tokens.
const (
	codecOIDCPrefix         = "SECURE_AGENT_CODEC_SERVER_OIDC_"
	codecOIDCIssuerVar      = codecOIDCPrefix + "ISSUER"
	codecOIDCAudienceVar    = codecOIDCPrefix + "AUDIENCE"
	codecOIDCSubjectsVar    = codecOIDCPrefix + "ALLOWED_SUBJECTS"
	codecOIDCGroupsVar      = codecOIDCPrefix + "ALLOWED_GROUPS"
	codecOIDCGroupsClaimVar = codecOIDCPrefix + "GROUPS_CLAIM"
	codecOIDCJWKSURLVar     = codecOIDCPrefix + "JWKS_URL"
	codecOIDCCAFileVar      = codecOIDCPrefix + "CA_FILE"
)

// codecOIDCSettings are the OIDC settings as `codec-server --help` lists them.
var codecOIDCSettings = []setting{
	{codecOIDCIssuerVar, "issuer URL of the Web UI's identity provider, exactly as in its tokens' iss (https); turns OIDC on"},
	{codecOIDCAudienceVar, "audience (aud) the provider puts into the UI's access tokens (required with OIDC)"},
	{codecOIDCSubjectsVar, "comma-separated subjects (sub) allowed to decode"},
	{codecOIDCGroupsVar, "comma-separated groups allowed to decode (these or subjects are required with OIDC)"},
	{codecOIDCGroupsClaimVar, "claim holding the user's groups (default \"groups\")"},
	{codecOIDCJWKSURLVar, "the provider's key set URL, to skip discovery (default: jwks_uri of <issuer>/.well-known/openid-configuration)"},
	{codecOIDCCAFileVar, "PEM file of CA certificates for a provider with a private CA (added to the system's)"},
}

// codecOIDCOptionVars names the variable behind each codec.OIDCOptions field.
var codecOIDCOptionVars = map[string]string{
	"Issuer":          codecOIDCIssuerVar,
	"Audience":        codecOIDCAudienceVar,
	"AllowedSubjects": codecOIDCSubjectsVar + " or " + codecOIDCGroupsVar,
	"AllowedGroups":   codecOIDCGroupsVar,
	"GroupsClaim":     codecOIDCGroupsClaimVar,
	"JWKSURL":         codecOIDCJWKSURLVar,
}

// configError is a codec-server setting that is wrong: the command says so and exits 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// codecOIDCOptions reads the OIDC settings. It returns nil when none is set (OIDC off), and a
// configError naming the variables when they are set but wrong: an issuer without an audience, or
// without allowed subjects or groups (which would admit every user of the provider), or not https.
func codecOIDCOptions(logger *slog.Logger) (*codec.OIDCOptions, error) {
	vars := []string{codecOIDCIssuerVar, codecOIDCAudienceVar, codecOIDCSubjectsVar, codecOIDCGroupsVar,
		codecOIDCGroupsClaimVar, codecOIDCJWKSURLVar, codecOIDCCAFileVar}
	on := false
	for _, v := range vars {
		if os.Getenv(v) != "" {
			on = true
		}
	}
	if !on {
		return nil, nil
	}
	opts := &codec.OIDCOptions{
		Issuer:          strings.TrimSpace(os.Getenv(codecOIDCIssuerVar)),
		Audience:        strings.TrimSpace(os.Getenv(codecOIDCAudienceVar)),
		AllowedSubjects: splitList(os.Getenv(codecOIDCSubjectsVar)),
		AllowedGroups:   splitList(os.Getenv(codecOIDCGroupsVar)),
		GroupsClaim:     strings.TrimSpace(os.Getenv(codecOIDCGroupsClaimVar)),
		JWKSURL:         strings.TrimSpace(os.Getenv(codecOIDCJWKSURLVar)),
		Logger:          logger,
	}
	var problems []string
	if err := opts.Validate(); err != nil {
		for _, e := range unjoin(err) {
			var oe *codec.OIDCOptionError
			if errors.As(e, &oe) && codecOIDCOptionVars[oe.Option] != "" {
				problems = append(problems, codecOIDCOptionVars[oe.Option]+": "+oe.Problem)
			} else {
				problems = append(problems, e.Error())
			}
		}
	}
	if caFile := os.Getenv(codecOIDCCAFileVar); caFile != "" {
		client, err := idpClientWithCA(caFile)
		if err != nil {
			problems = append(problems, codecOIDCCAFileVar+": "+err.Error())
		}
		opts.HTTPClient = client
	}
	if len(problems) > 0 {
		return nil, configError{errors.New("OIDC settings:\n  " + strings.Join(problems, "\n  "))}
	}
	return opts, nil
}

// unjoin lists the errors inside an errors.Join.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// idpClientWithCA is an HTTP client for the identity provider that trusts the system's CAs and
// those in caFile.
func idpClientWithCA(caFile string) (*http.Client, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}, nil
}

// codecAuth builds the codec server's authentication: the static token, the OIDC verifier, or
// both. Neither is a configError.
func codecAuth(ctx context.Context, token string, logger *slog.Logger) (*codec.OIDCVerifier, error) {
	oidcOpts, err := codecOIDCOptions(logger)
	if err != nil {
		return nil, err
	}
	if token == "" && oidcOpts == nil {
		return nil, configError{fmt.Errorf("set %s (for example `openssl rand -hex 32`), or the %s* settings for the Web UI's single sign-on, or both: the codec server always requires a bearer token", codecServerTokenVar, codecOIDCPrefix)}
	}
	if oidcOpts == nil {
		return nil, nil
	}
	return codec.NewOIDCVerifier(ctx, *oidcOpts)
}

// codecTLS checks the --tls-cert and --tls-key pair: both or neither.
func codecTLS(certFile, keyFile string) (bool, error) {
	if (certFile == "") != (keyFile == "") {
		return false, configError{errors.New("--tls-cert and --tls-key go together: give both, or neither for plain http")}
	}
	if certFile == "" {
		return false, nil
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return false, configError{fmt.Errorf("--tls-cert/--tls-key: %w", err)}
	}
	return true, nil
}
