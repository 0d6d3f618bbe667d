package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/codec/oidctest"
	"github.com/secure-agent/secure-agent/internal/testenv"
)

const testCodecKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// TestCodecServerOIDCMisconfigured: settings that would open the server too wide, or that cannot
// work, stop `codec-server` before it listens, with exit code 2 and the variable to fix.
func TestCodecServerOIDCMisconfigured(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		wants []string
	}{
		{"issuer without allowed subjects or groups",
			map[string]string{codecOIDCIssuerVar: "https://login.example.com/realms/ops", codecOIDCAudienceVar: "codec"}, nil,
			[]string{codecOIDCSubjectsVar + " or " + codecOIDCGroupsVar, "would admit every user"}},
		{"http issuer not on loopback",
			map[string]string{codecOIDCIssuerVar: "http://login.example.com/realms/ops", codecOIDCAudienceVar: "codec", codecOIDCGroupsVar: "ops"}, nil,
			[]string{codecOIDCIssuerVar + `: "http://login.example.com/realms/ops" is not https`}},
		{"audience without issuer",
			map[string]string{codecOIDCAudienceVar: "codec", codecOIDCSubjectsVar: "alice"}, nil,
			[]string{codecOIDCIssuerVar + ": is required"}},
		{"issuer without audience",
			map[string]string{codecOIDCIssuerVar: "https://login.example.com", codecOIDCGroupsVar: "ops"}, nil,
			[]string{codecOIDCAudienceVar + ": is required"}},
		{"groups claim that is the issuer",
			map[string]string{codecOIDCIssuerVar: "https://login.example.com", codecOIDCAudienceVar: "codec", codecOIDCGroupsVar: "https://login.example.com", codecOIDCGroupsClaimVar: "iss"}, nil,
			[]string{codecOIDCGroupsClaimVar + `: "iss" is a registered claim`}},
		{"CA file missing",
			map[string]string{codecOIDCIssuerVar: "https://login.example.com", codecOIDCAudienceVar: "codec", codecOIDCGroupsVar: "ops", codecOIDCCAFileVar: "/nonexistent/ca.pem"}, nil,
			[]string{codecOIDCCAFileVar + ": reading the CA file"}},
		{"neither token nor OIDC",
			map[string]string{codecServerTokenVar: ""}, nil,
			[]string{"set " + codecServerTokenVar, codecOIDCPrefix}},
		{"TLS certificate without key",
			map[string]string{}, []string{"--tls-cert", "/tmp/cert.pem"},
			[]string{"--tls-cert and --tls-key go together"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SECURE_AGENT_CODEC_KEYS", testCodecKeys)
			t.Setenv(codecServerTokenVar, "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			stderr := &testenv.SyncBuffer{}
			args := append([]string{"codec-server", "--listen", "127.0.0.1:0"}, c.args...)
			code := mainWith(context.Background(), args, io.Discard, stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			for _, want := range c.wants {
				if !strings.Contains(stderr.String(), want) {
					t.Fatalf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr.String(), "codec server on") {
				t.Fatalf("the server started:\n%s", stderr)
			}
		})
	}

	t.Run("issuer unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		t.Setenv("SECURE_AGENT_CODEC_KEYS", testCodecKeys)
		t.Setenv(codecOIDCIssuerVar, "https://"+addr)
		t.Setenv(codecOIDCAudienceVar, "codec")
		t.Setenv(codecOIDCGroupsVar, "ops")
		stderr := &testenv.SyncBuffer{}
		code := mainWith(context.Background(), []string{"codec-server", "--listen", "127.0.0.1:0"}, io.Discard, stderr)
		if code != 1 || !strings.Contains(stderr.String(), "discovery at https://"+addr+"/.well-known/openid-configuration") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
}

// TestCodecServerOIDC runs the command as an operator would for the Web UI: OIDC settings for a
// local issuer with a private CA, no static token, https with its own certificate. A token of an
// allowed group decodes; other tokens are refused.
func TestCodecServerOIDC(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	certFile, keyFile, pool := selfSignedCert(t)
	t.Setenv("SECURE_AGENT_CODEC_KEYS", testCodecKeys)
	t.Setenv(codecServerTokenVar, "")
	t.Setenv(codecOIDCIssuerVar, iss.URL)
	t.Setenv(codecOIDCAudienceVar, "secure-agent-codec")
	t.Setenv(codecOIDCGroupsVar, "codec-readers, ops")
	t.Setenv(codecOIDCGroupsClaimVar, "roles")
	t.Setenv(codecOIDCCAFileVar, iss.CAFile(t))

	ctx, cancel := context.WithCancel(context.Background())
	stderr := &testenv.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- mainWith(ctx, []string{"codec-server", "--listen", "127.0.0.1:0", "--origins", "https://ui.example.com",
			"--tls-cert", certFile, "--tls-key", keyFile}, io.Discard, stderr)
	}()
	var addr string
	for i := 0; i < 500 && addr == ""; i++ {
		time.Sleep(10 * time.Millisecond)
		if _, rest, ok := strings.Cut(stderr.String(), "codec server on https://"); ok {
			addr, _, _ = strings.Cut(rest, " ")
		}
		select {
		case code := <-done:
			t.Fatalf("codec-server exited %d: %s", code, stderr)
		default:
		}
	}
	if addr == "" {
		t.Fatalf("the codec server did not start: %s", stderr)
	}
	if !strings.Contains(stderr.String(), "auth: OIDC issuer "+iss.URL) {
		t.Fatalf("the start line does not say what opens the server: %s", stderr)
	}

	keys, err := codec.ParseKeys(testCodecKeys)
	if err != nil {
		t.Fatal(err)
	}
	orig := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"decoded by the codec server"`)}
	enc, err := codec.NewPayloadCodec(keys).Encode([]*commonpb.Payload{orig})
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	decode := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/decode", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "https://ui.example.com")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	allowed := iss.Claims("alice", "secure-agent-codec")
	allowed["roles"] = []string{"ops"}
	token := iss.Token(t, allowed)
	code, out := decode(token)
	if code != http.StatusOK || !strings.Contains(out, base64.StdEncoding.EncodeToString(orig.Data)) {
		t.Fatalf("decode with an allowed group: %d %s", code, out)
	}
	other := iss.Claims("mallory", "secure-agent-codec")
	other["groups"] = []string{"ops"} // the right group in the wrong claim
	if code, out := decode(iss.Token(t, other)); code != http.StatusForbidden || strings.Contains(out, base64.StdEncoding.EncodeToString(orig.Data)) {
		t.Fatalf("decode with a group outside the configured claim: %d %s", code, out)
	}
	if code, _ := decode(""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if strings.Contains(stderr.String(), token) {
		t.Fatal("stderr shows the token")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("codec-server exited %d: %s", code, stderr)
	}
}

// selfSignedCert writes a certificate and key for 127.0.0.1 and returns their paths and a pool
// that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
