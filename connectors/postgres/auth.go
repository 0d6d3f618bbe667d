package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secure-agent/secure-agent/secrets"
)

// attempt is one way of connecting that sslmode allows: TLS with config, or plain text when
// config is nil. verified reports that the TLS authenticates the server (its certificate is
// checked against sslrootcert or the agent's trusted roots).
type attempt struct {
	config   *tls.Config
	verified bool
}

// authRule returns the pgx require_auth and channel_binding settings for one attempt, as the
// package doc states them. hasPassword reports a non-empty password; legacy is
// OpenOptions.LegacyPasswordAuth.
//
//   - verified TLS, no password, or legacy: "" (any method), channel binding "prefer";
//   - unverified TLS: "scram-sha-256", channel binding "require" (SCRAM-SHA-256-PLUS);
//   - plain text: "scram-sha-256", channel binding "prefer" (impossible without TLS).
func authRule(a attempt, hasPassword, legacy bool) (requireAuth, channelBinding string) {
	switch {
	case legacy, !hasPassword, a.verified:
		return "", "prefer"
	case a.config != nil:
		return "scram-sha-256", "require"
	default:
		return "scram-sha-256", "prefer"
	}
}

// connect makes the attempts in order, one pgx connection each, and returns the first that
// succeeds. As pgx does with its fallbacks, it stops early when trying again cannot help or must
// not happen (see endsAttempts). The error joins every attempt's error, for classify.
func connect(ctx context.Context, attempts []*pgx.ConnConfig) (*pgx.Conn, error) {
	var errs []error
	for _, cfg := range attempts {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || endsAttempts(err) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// endsAttempts reports whether a failed attempt ends the connection: the server refused the
// login (28P01, 28000), knows no such database (3D000) or denies CONNECT (42501), or the server
// asked for an authentication method that authRule refuses.
func endsAttempts(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000", "3D000", "42501":
			return true
		}
	}
	return authRefusal(err) != nil
}

// Texts that pgx v5 starts its errors with when a connection is refused by RequireAuth or
// ChannelBinding (pgconn.connectOne and PgConn.scramAuth). They are fixed strings; the error
// chain is searched for a link whose own text starts with one, so that neither a field value
// (in the address pgx puts in front) nor the server's text (in a *pgconn.PgError, skipped) can
// make or hide a match.
const (
	pgxRequireAuthFailed     = "require_auth check failed: "
	pgxChannelBindingFailed  = "channel binding check failed: "
	pgxChannelBindingMissing = "channel binding required but "
)

// authRefusal returns the PolicyDenied error for a connection that pgx ended because the server
// asked for an authentication method that authRule refuses, or nil if err is not one.
func authRefusal(err error) *secrets.Error {
	detail := ""
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if e == nil || detail != "" || depth > 32 {
			return
		}
		if _, ok := e.(*pgconn.PgError); ok {
			return // the server's own words
		}
		switch text := e.Error(); {
		case strings.HasPrefix(text, pgxRequireAuthFailed):
			detail = "require_auth"
			return
		case strings.HasPrefix(text, pgxChannelBindingFailed), strings.HasPrefix(text, pgxChannelBindingMissing):
			detail = "channel_binding"
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner, depth+1)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), depth+1)
		}
	}
	walk(err, 0)
	if detail == "" {
		return nil
	}
	return &secrets.Error{Kind: secrets.PolicyDenied, Detail: detail, Cause: errAuthRefused,
		Msg: "postgres: the server asked for the password in clear text or as MD5 (or without channel binding, or skipped authentication) over a connection that is not verified TLS; " +
			"the agent refuses, because an impersonating server could read or relay it: use sslmode verify-full with sslrootcert, " +
			"switch the server to scram-sha-256 (password_encryption and pg_hba.conf), or allow legacy password authentication " +
			"for this destination in the agent's policy (destinations.rules[].legacyPasswordAuth)"}
}

// errAuthRefused is the cause of a PolicyDenied from authRefusal.
var errAuthRefused = errors.New("postgres: the server's authentication request was refused by the agent")
