package devserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"

	"go.temporal.io/server/common/config"
)

// TLSConfig makes the frontend serve TLS (the `tls` key of temporal-dev.yaml).
// The zero value (no certFile) leaves the frontend on plain gRPC.
type TLSConfig struct {
	// CertFile and KeyFile are the PEM certificate (chain) and private key
	// the frontend presents. Clients verify it against the CA that issued it
	// (TEMPORAL_TLS_SERVER_CA_CERT_PATH) and one of its names
	// (TEMPORAL_TLS_SERVER_NAME).
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`

	// ClientCAFile is the PEM file of the CA(s) whose client certificates
	// the frontend accepts; used with RequireClientCert.
	ClientCAFile string `yaml:"clientCAFile"`

	// RequireClientCert makes the frontend refuse clients without a
	// certificate issued by ClientCAFile (mutual TLS).
	RequireClientCert bool `yaml:"requireClientCert"`
}

// Enabled reports whether the frontend serves TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// validate returns the problems of the tls key, for Config.Validate.
func (t TLSConfig) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if t.CertFile == "" {
		if t.KeyFile != "" || t.ClientCAFile != "" || t.RequireClientCert {
			add("tls.certFile is missing: give the PEM certificate the frontend presents (with tls.keyFile), or remove the tls key")
		}
		return errs
	}
	if t.KeyFile == "" {
		add("tls.keyFile is missing: give the PEM private key of tls.certFile")
	}
	if t.RequireClientCert && t.ClientCAFile == "" {
		add("tls.requireClientCert needs tls.clientCAFile: give the PEM file of the CA that issues client certificates")
	}
	if !t.RequireClientCert && t.ClientCAFile != "" {
		add("tls.clientCAFile is set but tls.requireClientCert is false: set requireClientCert: true to verify client certificates, or remove clientCAFile")
	}
	return errs
}

// internalIdentity is what the server's own clients (system worker, Web UI,
// Start's readiness check) use to reach a TLS frontend: a client certificate
// from a CA made for this Start, which the frontend trusts in addition to the
// configured client CA. They reach the frontend over loopback and do not
// verify its certificate (whose names the dev server does not know).
type internalIdentity struct {
	caPEM, certPEM, keyPEM []byte
	cert                   tls.Certificate
}

// newInternalIdentity creates a fresh CA and a client certificate it signs.
func newInternalIdentity() (*internalIdentity, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "secure-agent devserver internal CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "secure-agent devserver internal client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	id := &internalIdentity{
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	id.cert, err = tls.X509KeyPair(id.certPEM, id.keyPEM)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// clientTLS is the TLS configuration of the internal clients.
func (id *internalIdentity) clientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{id.cert},
		InsecureSkipVerify: true, //nolint:gosec // loopback to this process's own frontend
	}
}

// prepareTLS checks the files of cfg.TLS and returns the server's TLS
// settings and the internal clients' identity; nil, nil when TLS is off.
func prepareTLS(t TLSConfig) (*config.RootTLS, *internalIdentity, error) {
	if !t.Enabled() {
		return nil, nil, nil
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		return nil, nil, fmt.Errorf("devserver: tls.certFile %s / tls.keyFile %s: %w", t.CertFile, t.KeyFile, err)
	}
	id, err := newInternalIdentity()
	if err != nil {
		return nil, nil, fmt.Errorf("devserver: creating the internal client certificate: %w", err)
	}
	b64 := base64.StdEncoding.EncodeToString
	root := &config.RootTLS{}
	root.Frontend.Server = config.ServerTLS{CertFile: t.CertFile, KeyFile: t.KeyFile}
	if t.RequireClientCert {
		caPEM, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("devserver: tls.clientCAFile: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(caPEM) {
			return nil, nil, fmt.Errorf("devserver: tls.clientCAFile %s holds no PEM certificate", t.ClientCAFile)
		}
		root.Frontend.Server.RequireClientAuth = true
		root.Frontend.Server.ClientCAData = []string{b64(caPEM), b64(id.caPEM)}
	}
	root.SystemWorker = config.WorkerTLS{
		CertData: b64(id.certPEM),
		KeyData:  b64(id.keyPEM),
		Client:   config.ClientTLS{DisableHostVerification: true, ForceTLS: true},
	}
	return root, id, nil
}
