package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
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
	region string
	skew   time.Duration
	mu     sync.Mutex
	seen   []string // "accepted" or why a token was refused
}

func (s *rdsIAMServer) verdict(token, endpoint, user string) string {
	u, err := url.Parse("https://" + token)
	if err != nil || u.Host != endpoint {
		return "not a token for this endpoint"
	}
	q := u.Query()
	if q.Get("Action") != "connect" || q.Get("DBUser") != user || q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return "not a connect token for this user"
	}
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(cred) != 5 || cred[0] != testAccessKey || cred[2] != s.region || cred[3] != "rds-db" {
		return "not signed by the test key for rds-db in the region"
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	expires, _ := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || expires <= 0 || expires > 900 {
		return "bad date or expiry"
	}
	if time.Now().Add(s.skew).After(signedAt.Add(time.Duration(expires) * time.Second)) {
		return "expired"
	}
	// Sign the same request again with the test key at the token's time: the signatures must match.
	req, _ := http.NewRequest(http.MethodGet, "https://"+endpoint+"/?Action=connect&DBUser="+url.QueryEscape(user), nil)
	vals := req.URL.Query()
	vals.Set("X-Amz-Expires", q.Get("X-Amz-Expires"))
	req.URL.RawQuery = vals.Encode()
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey},
		req, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "rds-db", s.region, signedAt)
	if err != nil {
		return "cannot sign"
	}
	su, _ := url.Parse(signed)
	if su.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
		return "bad signature"
	}
	return "accepted"
}

func (s *rdsIAMServer) serve(t *testing.T, cfg *tls.Config) *net.TCPAddr {
	var addr *net.TCPAddr
	addr = fakeServer(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var req [8]byte
		if _, err := io.ReadFull(c, req[:]); err != nil || binary.BigEndian.Uint32(req[4:]) != 80877103 {
			return
		}
		if _, err := c.Write([]byte{'S'}); err != nil {
			return
		}
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
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
		v := s.verdict(pm.Password, "127.0.0.1:"+strconv.Itoa(addr.Port), user)
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
	t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
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
