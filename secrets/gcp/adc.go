package gcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"

	"github.com/secure-agent/secure-agent/secrets"
)

// Workload identity federation (an external_account credential file) needs nothing from this
// package: the client libraries read the file named by GOOGLE_APPLICATION_CREDENTIALS, read the
// subject token from credential_source.file at every token exchange (so a rotated token file is
// picked up at the next exchange), exchange it at token_url (RFC 8693), optionally impersonate
// service_account_impersonation_url, and cache the access token until shortly before it expires.
// Neither library validates the hosts of those URLs. What this file adds is the diagnosis when
// that fails: gRPC reports every token failure as Unauthenticated "transport: per-RPC creds
// failed due to error: <library text>", and the library text can quote the token service's
// response body (and, for a JSON subject token file, a fragment of the file). So none of that
// text is kept; the error names the agent's credential settings instead, with the HTTP status
// of the token service when the text carries one.

const (
	// credsEnv is the variable naming the Application Default Credentials file.
	credsEnv = "GOOGLE_APPLICATION_CREDENTIALS"

	// maxCredFileBytes bounds how much of a credential or subject token file the diagnosis reads.
	maxCredFileBytes = 1 << 20

	perRPCCredsPrefix = "transport: per-RPC creds failed"
)

// tokenError is the Cause of a failure to obtain an access token. It holds what the diagnosis
// found, never the client library's text.
type tokenError struct {
	status  int   // HTTP status of the token service, 0 if unknown
	fileErr error // why the subject token file is unusable, or nil
}

func (e *tokenError) Error() string {
	s := "could not obtain a Google access token"
	if e.status != 0 {
		s += " (token service HTTP " + strconv.Itoa(e.status) + ")"
	}
	if e.fileErr != nil {
		s += ": " + e.fileErr.Error()
	}
	return s
}

func (e *tokenError) Unwrap() error { return e.fileErr }

// adcFile names the credential file Application Default Credentials use: the file named by
// GOOGLE_APPLICATION_CREDENTIALS, else the gcloud ADC file if it exists, else "". setting
// says where the path came from, for messages.
func adcFile() (path, setting string) {
	if p := os.Getenv(credsEnv); p != "" {
		return p, credsEnv
	}
	var p string
	if runtime.GOOS == "windows" {
		p = filepath.Join(os.Getenv("APPDATA"), "gcloud", "application_default_credentials.json")
	} else if home, err := os.UserHomeDir(); err == nil {
		p = filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
	}
	if p == "" {
		return "", ""
	}
	if _, err := os.Stat(p); err != nil {
		return "", ""
	}
	return p, "the gcloud ADC file"
}

// externalAccount holds the non-secret fields of an external_account credential file that the
// diagnosis uses.
type externalAccount struct {
	Type             string `json:"type"`
	TokenURL         string `json:"token_url"`
	ImpersonationURL string `json:"service_account_impersonation_url"`
	CredentialSource struct {
		File   string `json:"file"`
		Format struct {
			Type      string `json:"type"`
			FieldName string `json:"subject_token_field_name"`
		} `json:"format"`
	} `json:"credential_source"`
}

// readExternalAccount reads path and returns its external_account fields, or ok false when
// the file cannot be read or is another kind of credential.
func readExternalAccount(path string) (ea externalAccount, ok bool) {
	data, err := readLimited(path)
	defer clear(data) // another credential type may hold a private key
	if err != nil || json.Unmarshal(data, &ea) != nil || ea.Type != "external_account" {
		return externalAccount{}, false
	}
	return ea, true
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxCredFileBytes))
}

// fileError says why a subject token file cannot supply a token. It never holds the file's
// contents.
type fileError struct {
	Path string
	What string // "does not exist", "is empty", ...
	Err  error  // fs.ErrNotExist, fs.ErrPermission, an errno, or nil
}

func (e *fileError) Error() string {
	return "subject token file " + strconv.Quote(e.Path) + " " + e.What
}
func (e *fileError) Unwrap() error { return e.Err }

// subjectTokenProblem checks the subject token file of ea as the client libraries read it
// (whitespace trimmed; a JSON object when credential_source.format.type is json), and returns
// why it cannot supply a token, or nil.
func subjectTokenProblem(ea externalAccount) *fileError {
	path := ea.CredentialSource.File
	data, err := readLimited(path)
	defer clear(data)
	if err != nil {
		fe := &fileError{Path: path, What: "cannot be read"}
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fe.What, fe.Err = "does not exist", fs.ErrNotExist
		case errors.Is(err, fs.ErrPermission):
			fe.What, fe.Err = "is not readable by the agent's user", fs.ErrPermission
		case errors.As(err, &pe):
			fe.What, fe.Err = "cannot be read ("+pe.Err.Error()+")", pe.Err
		}
		return fe
	}
	token := bytes.TrimSpace(data)
	if len(token) == 0 {
		return &fileError{Path: path, What: "is empty"}
	}
	if ea.CredentialSource.Format.Type == "json" {
		var fields map[string]any
		if json.Unmarshal(token, &fields) != nil {
			return &fileError{Path: path, What: "is not a JSON object, which credential_source.format.type json requires"}
		}
		name := ea.CredentialSource.Format.FieldName
		v, ok := fields[name].(string)
		clear(fields)
		if !ok || v == "" {
			return &fileError{Path: path, What: "has no string field " + strconv.Quote(name) +
				", which credential_source.format.subject_token_field_name names"}
		}
	}
	return nil
}

// httpStatusRE finds the HTTP status that both golang.org/x/oauth2/google and
// cloud.google.com/go/auth put in front of a token service's error response
// ("...: status code 400: <body>"). Only the first match counts: the library's own prefix
// comes before the body.
var httpStatusRE = regexp.MustCompile(`status code ([1-5][0-9][0-9]):`)

func httpStatus(msg string) int {
	m := httpStatusRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// hostOf returns the host of a URL for a message (never its path, query or user info), or a
// placeholder.
func hostOf(raw, fallback string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.Host == "" {
		return fallback
	}
	return u.Host
}

// credentialFailure classifies a failed attempt to obtain an access token from the client's
// credentials; msg is gRPC's status message, which is read but never kept.
func credentialFailure(ref secrets.Ref, msg string) *secrets.Error {
	const prefix = "the agent could not obtain a Google access token"
	status := httpStatus(msg)
	e := &secrets.Error{Kind: secrets.AuthFailed, Store: Name, Ref: ref.String(), Cause: &tokenError{status: status},
		Msg: prefix + " from its Application Default Credentials; check " + credsEnv + ", the " +
			"gcloud ADC file, or the workload identity and metadata server setup"}
	if status != 0 {
		e.Detail = "token service HTTP " + strconv.Itoa(status)
	}
	path, setting := adcFile()
	if path == "" {
		return e
	}
	ea, ok := readExternalAccount(path)
	if !ok {
		return e
	}
	file := "the workload identity federation file " + strconv.Quote(path) + " (" + setting + ")"
	services := "the Security Token Service at " + hostOf(ea.TokenURL, "sts.googleapis.com")
	if ea.ImpersonationURL != "" {
		services += " or the service account impersonation at " +
			hostOf(ea.ImpersonationURL, "its service_account_impersonation_url")
	}
	subject := "the subject token that its credential_source describes"
	if f := ea.CredentialSource.File; f != "" {
		subject = "the subject token file " + strconv.Quote(f) + " (its credential_source.file)"
		if problem := subjectTokenProblem(ea); problem != nil {
			e.Cause = &tokenError{status: status, fileErr: problem}
			e.Msg = prefix + ": the subject token file " + strconv.Quote(f) + ", named by " +
				"credential_source.file in " + file + ", " + problem.What + ". Mount the identity " +
				"provider's token at that path (on Kubernetes, a projected service account " +
				"token volume with the pool's audience) or correct credential_source.file"
			return e
		}
	}
	switch {
	case status == 429:
		e.Kind, e.RetryAfter = secrets.Throttled, DefaultRetryAfter
		e.Msg = prefix + ": " + services + " is throttling token requests for the credential " +
			"of " + file + "; the read will be retried"
	case status == 408 || status >= 500:
		e.Kind = secrets.StoreUnavailable
		e.Msg = prefix + ": " + services + " failed on its side for the credential of " + file +
			"; the read will be retried"
	case status >= 400:
		e.Msg = prefix + ": " + services + " refused the credential of " + file + ". Check " +
			"that " + subject + " holds a current token from the identity provider that the " +
			"pool provider in its audience trusts (issuer, audience, attribute condition)"
		if ea.ImpersonationURL != "" {
			e.Msg += ", and that the pool's principal has roles/iam.workloadIdentityUser on " +
				"the service account in its service_account_impersonation_url"
		}
	case ea.CredentialSource.File != "":
		// The file holds a token, yet there is no HTTP status: the token service was not
		// reached, or sent an answer the library could not use.
		e.Kind = secrets.StoreUnavailable
		e.Msg = prefix + ": " + services + " could not be reached or sent an unusable answer " +
			"for the credential of " + file + "; check the agent's network path to it. The " +
			"read will be retried"
	default:
		e.Msg = prefix + " from the credential of " + file + "; check " + subject + " and " +
			"the agent's network path to " + services
	}
	return e
}
