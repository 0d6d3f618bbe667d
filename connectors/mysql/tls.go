package mysql

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"

	"github.com/secure-agent/secure-agent/secrets"
)

// tlsMode is the value of field "tls".
type tlsMode string

// TLS modes, as field "tls" spells them.
const (
	tlsDisable    tlsMode = "disable"
	tlsPreferred  tlsMode = "preferred"
	tlsRequired   tlsMode = "required"
	tlsVerifyCA   tlsMode = "verify-ca"
	tlsVerifyFull tlsMode = "verify-full"
)

// parseMode reads field "tls": one of the modes, in any case, with '_' for '-', or MySQL's
// own --ssl-mode names (DISABLED, VERIFY_IDENTITY); empty is required (TLS, never a silent
// fall-back to plain text; preferred, which falls back, must be chosen explicitly).
func parseMode(v string) (tlsMode, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return tlsRequired, nil
	}
	switch m := tlsMode(strings.ReplaceAll(v, "_", "-")); m {
	case tlsDisable, tlsPreferred, tlsRequired, tlsVerifyCA, tlsVerifyFull:
		return m, nil
	case "disabled": // MySQL's --ssl-mode spellings
		return tlsDisable, nil
	case "verify-identity":
		return tlsVerifyFull, nil
	}
	return "", &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLS, Detail: "tls",
		Msg: "mysql: field \"tls\" must be one of disable, preferred, required, verify-ca or verify-full"}
}

// tlsSettings are the parsed PEM fields.
type tlsSettings struct {
	roots *x509.CertPool   // from tlsca; nil for the system's roots
	cert  *tls.Certificate // from tlscert and tlskey; nil for none
}

// parseTLS parses the PEM fields. Any PEM given must parse, whatever the mode; giving one with
// tls=disable is a contradiction and refused.
func parseTLS(mode tlsMode, ca, cert, key string) (*tlsSettings, error) {
	ca, cert, key = strings.TrimSpace(ca), strings.TrimSpace(cert), strings.TrimSpace(key)
	if mode == tlsDisable {
		if ca != "" || cert != "" || key != "" {
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLS, Detail: "tls",
				Msg: "mysql: field \"tls\" is disable but tlsca, tlscert or tlskey is set; choose a TLS mode or remove the certificates"}
		}
		return nil, nil
	}
	st := &tlsSettings{}
	if ca != "" {
		certs, ok := parseCertificates(ca)
		if !ok {
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLSCA, Detail: "tls",
				Msg: "mysql: field \"tlsca\" must hold one or more PEM certificates (-----BEGIN CERTIFICATE-----)"}
		}
		st.roots = x509.NewCertPool()
		for _, c := range certs {
			st.roots.AddCert(c)
		}
	}
	switch {
	case cert == "" && key == "":
	case cert == "":
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLSCert, Detail: "tls",
			Msg: "mysql: field \"tlskey\" is set without \"tlscert\"; give the client certificate too, or neither"}
	case key == "":
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLSKey, Detail: "tls",
			Msg: "mysql: field \"tlscert\" is set without \"tlskey\"; give the certificate's private key too, or neither"}
	default:
		if _, ok := parseCertificates(cert); !ok {
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLSCert, Detail: "tls",
				Msg: "mysql: field \"tlscert\" must hold a PEM certificate (-----BEGIN CERTIFICATE-----)"}
		}
		pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
		if err != nil {
			// The parser's text is not kept: it can quote the key's bytes.
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLSKey, Detail: "tls", Cause: errBadKeyPair,
				Msg: "mysql: field \"tlskey\" must hold the PEM private key of the certificate in \"tlscert\""}
		}
		st.cert = &pair
	}
	return st, nil
}

var errBadKeyPair = errors.New("mysql: the client certificate and key do not form a pair")

// parseCertificates decodes every CERTIFICATE block of a PEM text; ok is false if there is none
// or one does not parse, or if anything but whitespace lies outside the blocks.
func parseCertificates(text string) ([]*x509.Certificate, bool) {
	rest := []byte(text)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, false
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, false
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, false
	}
	return certs, true
}

// config builds the tls.Config of a mode:
//   - preferred and required: encrypted; the server's certificate chain is verified against
//     tlsca when tlsca is given (as verify-ca), otherwise not verified. preferred continues in
//     plain text if the server offers no TLS; required refuses.
//   - verify-ca: the chain is verified against tlsca (or the system's roots); the host name is
//     not checked.
//   - verify-full: the chain and the host name are verified.
//
// A client certificate, when given, is offered in every mode.
func (st *tlsSettings) config(mode tlsMode, host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if st.cert != nil {
		c.Certificates = []tls.Certificate{*st.cert}
	}
	switch {
	case mode == tlsVerifyFull:
		c.RootCAs = st.roots
		c.ServerName = host
	case mode == tlsVerifyCA || st.roots != nil:
		roots := st.roots
		c.InsecureSkipVerify = true // the chain is verified below, the host name is not
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errTLSVerify{errors.New("mysql: the server presented no certificate")}
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			if err != nil {
				return errTLSVerify{err}
			}
			return nil
		}
	default:
		c.InsecureSkipVerify = true // preferred or required without a CA: encryption only
	}
	return c, nil
}

// verifies reports whether the configuration config builds for mode authenticates the server:
// verify-ca and verify-full, and preferred or required with a CA in field "tlsca" (verified as
// verify-ca). Only such a channel may carry the password in a form the server can read (see the
// guard).
func (st *tlsSettings) verifies(mode tlsMode) bool {
	return mode == tlsVerifyCA || mode == tlsVerifyFull || (mode != tlsDisable && st != nil && st.roots != nil)
}

// errTLSVerify marks a failed verification of the server's certificate chain.
type errTLSVerify struct{ err error }

func (e errTLSVerify) Error() string { return "mysql: the server's certificate did not verify" }
func (e errTLSVerify) Unwrap() error { return e.err }
