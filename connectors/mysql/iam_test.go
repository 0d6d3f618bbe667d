package mysql

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/rdstest"
	"github.com/secure-agent/secure-agent/secrets"
)

// TestAWSIAMAuth: with authMethod aws-iam the agent logs in to MySQL with an RDS IAM token sent
// with mysql_clear_password (as RDS's AWSAuthenticationPlugin asks) inside verified TLS: the
// fake server switches to mysql_clear_password and verifies the token's SigV4 signature with the
// test key, for its host:port, the user and the region. Without verified TLS, or with a password,
// nothing is sent; the clear-text plugin stays refused for password logins (the guard tests).
func TestAWSIAMAuth(t *testing.T) {
	const accessKey, secretKey = "AKIDMYSQLIAMTEST01", "mysql-iam-test-secret-key"
	rdstest.UseKey(t, accessKey, secretKey)
	k := newGuardKit(t)
	f := startAuthFake(t, k.server, "mysql_native_password", "switch-clear", "", k.key)
	var verdict string
	f.accepts = func(token, user string) bool {
		verdict = rdstest.Verify(token, net.JoinHostPort("127.0.0.1", f.port()), user, "eu-west-1",
			aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}, time.Now())
		return verdict == "accepted"
	}
	k.password = "" // no password field
	iam := map[string]string{FieldAuthMethod: "aws-iam", FieldAWSRegion: "eu-west-1", FieldTLS: "verify-full", FieldTLSCA: string(k.ca.PEM)}
	s, err := k.open(t, f, iam, connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v (the server said %q)", err, verdict)
	}
	_ = s.Close()
	log := f.next(t)
	if !log.tls || !log.loggedIn || !strings.Contains(log.password, "X-Amz-Signature=") {
		t.Fatalf("TLS %v, logged in %v, a token sent %v", log.tls, log.loggedIn, strings.Contains(log.password, "X-Amz-Signature="))
	}
	if strings.Contains(string(log.raw), "X-Amz-Signature=") {
		t.Errorf("the token is visible on the wire")
	}
	for name, extra := range map[string]map[string]string{
		"TLS not verified": {FieldTLS: "required", FieldTLSCA: ""},
		"no region":        {FieldAWSRegion: ""},
		"a password too":   {FieldPassword: "pw"},
	} {
		fields := map[string]string{}
		for k, v := range iam {
			fields[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(fields, k)
			} else {
				fields[k] = v
			}
		}
		if _, err := k.open(t, f, fields, connectors.OpenOptions{}); secrets.KindOf(err) != secrets.InvalidInput {
			t.Errorf("%s: %v, want InvalidInput", name, err)
		}
	}
	select {
	case l := <-f.logs:
		t.Errorf("the server was reached by a refused configuration (logged in %v)", l.loggedIn)
	default:
	}
}
