package postgres

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/secure-agent/secure-agent/connectors/iamauth"
	"github.com/secure-agent/secure-agent/internal/rdstest"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// The test key: the fake RDS endpoint verifies tokens signed with it.
const (
	testAccessKey = "AKIDIAMTEST0000001"
	testSecretKey = "iam-test-secret-key-do-not-use"
)

// rdsIAMServer is a fake Amazon RDS PostgreSQL endpoint at the wire level: after TLS it asks
// for a clear-text password, as RDS does for an IAM-enabled user, and accepts it only when it is
// an RDS IAM token for its host:port, the user and the region, signed (SigV4, service rds-db)
// with the test key, and not expired (X-Amz-Date + X-Amz-Expires, against the server's clock
// shifted by skew). It records what it decided.
type rdsIAMServer struct {
	// check, when set, decides instead of verdict (another cloud's tokens).
	check  func(password, user string) string
	region string
	skew   time.Duration
	mu     sync.Mutex
	seen   []string // "accepted" or why a token was refused
}

func (s *rdsIAMServer) verdict(token, endpoint, user string) string {
	return rdstest.Verify(token, endpoint, user, s.region, aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}, time.Now().Add(s.skew))
}

func (s *rdsIAMServer) serve(t *testing.T, cfg *tls.Config) *net.TCPAddr {
	var addr *net.TCPAddr
	addr = fakeServer(t, func(c net.Conn) {
		tc, ok := acceptTLS(c, cfg)
		if !ok {
			return
		}
		be := pgproto3.NewBackend(tc, tc)
		sm, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		user := sm.(*pgproto3.StartupMessage).Parameters["user"]
		be.Send(&pgproto3.AuthenticationCleartextPassword{})
		if err := be.Flush(); err != nil {
			return
		}
		be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
		msg, err := be.Receive()
		if err != nil {
			return
		}
		pm, ok := msg.(*pgproto3.PasswordMessage)
		if !ok {
			return
		}
		var v string
		if s.check != nil {
			v = s.check(pm.Password, user)
		} else {
			v = s.verdict(pm.Password, "127.0.0.1:"+strconv.Itoa(addr.Port), user)
		}
		s.mu.Lock()
		s.seen = append(s.seen, v)
		s.mu.Unlock()
		if v != "accepted" {
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28000", Message: "PAM authentication failed for user \"" + user + "\""})
			_ = be.Flush()
			return
		}
		be.Send(&pgproto3.AuthenticationOk{})
		be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.8"})
		be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		_ = be.Flush()
		_, _ = be.Receive() // the client's Terminate
	})
	return addr
}

func (s *rdsIAMServer) verdicts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// TestAWSIAMAuth: with authMethod aws-iam the agent logs in with an RDS IAM token minted from
// its AWS identity for this endpoint, user and region, over verified TLS; the endpoint verifies
// the token's SigV4 signature with the test key and refuses an expired one (SourceAuthFailed).
// Without verified TLS, with a password, or without a region, nothing is sent.
func TestAWSIAMAuth(t *testing.T) {
	rdstest.UseKey(t, testAccessKey, testSecretKey)
	ca := newCA(t)
	cp, kp := ca.issue(t, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rdsIAMServer{region: "eu-west-1"}
	addr := srv.serve(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	caPEM := string(ca.PEM)
	iam := func(extra map[string]string) connectors.Credentials {
		c := tlsCreds(addr, map[string]string{"authMethod": "aws-iam", "awsRegion": "eu-west-1", "sslmode": "verify-full", "sslrootcert": caPEM})
		delete(c, "password")
		for k, v := range extra {
			if v == "" {
				delete(c, k)
			} else {
				c[k] = secrets.Value(v)
			}
		}
		return c
	}
	ctx := context.Background()
	s, err := Open(ctx, iam(nil), connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("a valid token was refused: %v (the endpoint said %v)", err, srv.verdicts())
	}
	_ = s.Close()

	// An expired token: the endpoint's clock is 16 minutes ahead.
	srv.skew = 16 * time.Minute
	_, err = Open(ctx, iam(nil), connectors.OpenOptions{})
	if secrets.KindOf(err) != secrets.SourceAuthFailed {
		t.Errorf("an expired token: %v", err)
	}
	srv.skew = 0
	if got := srv.verdicts(); len(got) != 2 || got[0] != "accepted" || got[1] != "expired" {
		t.Errorf("the endpoint decided %v, want [accepted expired]", got)
	}

	// Refused before anything is sent.
	for name, extra := range map[string]map[string]string{
		"TLS not verified":   {"sslmode": "require", "sslrootcert": ""},
		"a password as well": {"password": "pw"},
		"no region":          {"awsRegion": ""},
		"unknown method":     {"authMethod": "kerberos"},
	} {
		if _, err := Open(ctx, iam(extra), connectors.OpenOptions{}); secrets.KindOf(err) != secrets.InvalidInput {
			t.Errorf("%s: %v, want InvalidInput", name, err)
		}
	}
	if got := srv.verdicts(); len(got) != 2 {
		t.Errorf("the endpoint was asked %d more times", len(got)-2)
	}
	// A region without the method is refused too: it would be silently ignored.
	if _, err := Open(ctx, tlsCreds(addr, map[string]string{"awsRegion": "eu-west-1"}), connectors.OpenOptions{}); secrets.KindOf(err) != secrets.InvalidInput {
		t.Errorf("awsRegion without aws-iam: %v", err)
	}
}

// TestGCPIAMAuth: with authMethod gcp-iam the agent logs in with an OAuth2 access token of its
// Application Default Credentials: here a service account key whose token_uri is a local token
// endpoint, which checks the signed JWT assertion (RS256 with the key's public half, audience,
// scope sqlservice.login) before it issues the token; the fake Cloud SQL endpoint accepts exactly
// that token, over verified TLS.
func TestGCPIAMAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const accessToken = "ya29.cloudsql-iam-test-token"
	var assertions atomic.Int64
	var tokenURL string
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			http.Error(w, "bad grant", http.StatusBadRequest)
			return
		}
		parts := strings.Split(r.Form.Get("assertion"), ".")
		if len(parts) != 3 {
			http.Error(w, "bad assertion", http.StatusBadRequest)
			return
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c struct{ Aud, Scope, Iss string }
		if json.Unmarshal(claims, &c) != nil || c.Aud != tokenURL || !strings.Contains(c.Scope, iamauth.GCPLoginScope) || c.Iss != "agent@proj.iam.gserviceaccount.com" {
			http.Error(w, "bad claims", http.StatusUnauthorized)
			return
		}
		assertions.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token": "` + accessToken + `", "token_type": "Bearer", "expires_in": 3600}`))
	}))
	defer tokens.Close()
	tokenURL = tokens.URL + "/token"
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	saJSON, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "proj", "private_key_id": "k1",
		"private_key": string(keyPEM), "client_email": "agent@proj.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURL})
	saFile := t.TempDir() + "/sa.json"
	if err := os.WriteFile(saFile, saJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", saFile)

	ca := newCA(t)
	cp, kp := ca.issue(t, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rdsIAMServer{check: func(password, user string) string {
		if password == accessToken && user == "agent@proj.iam" {
			return "accepted"
		}
		return "wrong token or user"
	}}
	addr := srv.serve(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	creds := tlsCreds(addr, map[string]string{"authMethod": "gcp-iam", "sslmode": "verify-full", "sslrootcert": string(ca.PEM), "username": "agent@proj.iam"})
	delete(creds, "password")
	s, err := Open(context.Background(), creds, connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("the Cloud SQL login failed: %v (the endpoint said %v)", err, srv.verdicts())
	}
	_ = s.Close()
	if assertions.Load() != 1 || len(srv.verdicts()) != 1 {
		t.Errorf("%d token requests, endpoint verdicts %v", assertions.Load(), srv.verdicts())
	}
	creds["sslmode"] = secrets.Value("require")
	delete(creds, "sslrootcert")
	if _, err := Open(context.Background(), creds, connectors.OpenOptions{}); secrets.KindOf(err) != secrets.InvalidInput || assertions.Load() != 1 {
		t.Errorf("unverified TLS: %v (%d token requests)", err, assertions.Load())
	}
}

// TestAzureEntraAuth: with authMethod azure-entra the agent logs in with a Microsoft Entra access
// token for the OSS RDBMS resource, from the real azidentity client against a local Entra token
// endpoint over TLS that checks the client's secret and the scope before it issues the token; the
// fake Azure Database endpoint accepts exactly that token, over verified TLS.
func TestAzureEntraAuth(t *testing.T) {
	const entraToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.entra-test-token."
	var issued atomic.Int64
	var entra *httptest.Server
	entra = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tenant-1/v2.0/.well-known/openid-configuration" {
			// The authority's metadata, which MSAL reads first.
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"token_endpoint": "%[1]s/tenant-1/oauth2/v2.0/token", "authorization_endpoint": "%[1]s/tenant-1/oauth2/v2.0/authorize", "issuer": "%[1]s/tenant-1/v2.0"}`, entra.URL)
			return
		}
		if r.URL.Path != "/tenant-1/oauth2/v2.0/token" || r.ParseForm() != nil {
			http.NotFound(w, r)
			return
		}
		// MSAL adds OpenID scopes to the resource's.
		if r.Form.Get("client_id") != "client-1" || r.Form.Get("client_secret") != "entra-secret" ||
			!slices.Contains(strings.Fields(r.Form.Get("scope")), iamauth.AzureDatabaseScope) || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error": "invalid_client"}`, http.StatusUnauthorized)
			return
		}
		issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": "` + entraToken + `"}`))
	}))
	defer entra.Close()
	old := iamauth.AzureCredential
	t.Cleanup(func() { iamauth.AzureCredential = old })
	iamauth.AzureCredential = func() (azcore.TokenCredential, error) {
		return azidentity.NewClientSecretCredential("tenant-1", "client-1", "entra-secret", &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: entra.URL + "/"}, Transport: entra.Client()},
			DisableInstanceDiscovery: true,
		})
	}
	ca := newCA(t)
	cp, kp := ca.issue(t, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rdsIAMServer{check: func(password, user string) string {
		if password == entraToken && user == "catalog-agent" {
			return "accepted"
		}
		return "wrong token or user"
	}}
	addr := srv.serve(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	creds := tlsCreds(addr, map[string]string{"authMethod": "azure-entra", "sslmode": "verify-full", "sslrootcert": string(ca.PEM), "username": "catalog-agent"})
	delete(creds, "password")
	s, err := Open(context.Background(), creds, connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("the Entra login failed: %v (the endpoint said %v)", err, srv.verdicts())
	}
	_ = s.Close()
	if issued.Load() != 1 || len(srv.verdicts()) != 1 {
		t.Errorf("%d tokens issued, endpoint verdicts %v", issued.Load(), srv.verdicts())
	}
	// A wrong secret: no token, AuthFailed, and the endpoint is not asked.
	iamauth.AzureCredential = func() (azcore.TokenCredential, error) {
		return azidentity.NewClientSecretCredential("tenant-1", "client-1", "wrong", &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: entra.URL + "/"}, Transport: entra.Client()},
			DisableInstanceDiscovery: true,
		})
	}
	if _, err := Open(context.Background(), creds, connectors.OpenOptions{}); secrets.KindOf(err) != secrets.AuthFailed || len(srv.verdicts()) != 1 {
		t.Errorf("a refused identity: %v, endpoint verdicts %v", err, srv.verdicts())
	}
	if err != nil && strings.Contains(fmt.Sprint(err), "wrong") {
		t.Errorf("the error repeats the client secret")
	}
}

// TestAWSIAMAuthAssumesRole: with awsRoleArn (and awsExternalId) the agent first assumes the role
// through STS (a local endpoint speaking STS's query protocol, reached through
// AWS_ENDPOINT_URL_STS, which checks the role, the external id and that the call is signed with
// the agent's own key), and mints the RDS token with the role's temporary credentials: the fake
// RDS endpoint verifies the token against those, session token included.
func TestAWSIAMAuthAssumesRole(t *testing.T) {
	const roleARN, roleKey, roleSecret, roleToken = "arn:aws:iam::123456789012:role/catalog-db", "ASIAROLEKEY0000001", "role-secret-key", "role-session-token"
	var assumed atomic.Int64
	stsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() != nil || r.Form.Get("Action") != "AssumeRole" || r.Form.Get("RoleArn") != roleARN ||
			r.Form.Get("ExternalId") != "ext-42" || !strings.Contains(r.Header.Get("Authorization"), "Credential="+testAccessKey+"/") {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>denied</Message></Error></ErrorResponse>`))
			return
		}
		assumed.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		_, _ = fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>`+
			`<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration>`+
			`</Credentials><AssumedRoleUser><Arn>%s/agent</Arn><AssumedRoleId>AROA:agent</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>`+
			`<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			roleKey, roleSecret, roleToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), roleARN)
	}))
	defer stsSrv.Close()
	rdstest.UseKey(t, testAccessKey, testSecretKey)
	t.Setenv("AWS_ENDPOINT_URL_STS", stsSrv.URL)
	ca := newCA(t)
	cp, kp := ca.issue(t, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	var addr *net.TCPAddr
	srv := &rdsIAMServer{}
	srv.check = func(token, user string) string {
		return rdstest.Verify(token, "127.0.0.1:"+strconv.Itoa(addr.Port), user, "eu-west-1",
			aws.Credentials{AccessKeyID: roleKey, SecretAccessKey: roleSecret, SessionToken: roleToken}, time.Now())
	}
	addr = srv.serve(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	creds := tlsCreds(addr, map[string]string{"authMethod": "aws-iam", "awsRegion": "eu-west-1", "awsRoleArn": roleARN, "awsExternalId": "ext-42",
		"sslmode": "verify-full", "sslrootcert": string(ca.PEM)})
	delete(creds, "password")
	s, err := Open(context.Background(), creds, connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("the login with the assumed role failed: %v (the endpoint said %v)", err, srv.verdicts())
	}
	_ = s.Close()
	if assumed.Load() != 1 {
		t.Errorf("STS AssumeRole was called %d times", assumed.Load())
	}
	// Another external id: STS refuses, no token, the endpoint is not asked.
	creds["awsExternalId"] = secrets.Value("ext-wrong")
	if _, err := Open(context.Background(), creds, connectors.OpenOptions{}); secrets.KindOf(err) != secrets.AuthFailed || len(srv.verdicts()) != 1 {
		t.Errorf("a refused role: %v, endpoint verdicts %v", err, srv.verdicts())
	}
}
