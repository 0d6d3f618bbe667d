// Package rdstest checks RDS IAM authentication tokens as an RDS endpoint does, for tests of the
// connectors' aws-iam logins against fake endpoints: the token must be a SigV4-presigned
// "connect" request for the endpoint, the user and the region (service rds-db), signed with the
// given key, and not expired.
package rdstest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// emptySHA256 is the payload hash of a GET without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Verify returns "accepted", or why the token is refused. It recomputes the signature with the
// AWS SDK's SigV4 signer over the same request, at the token's own time.
func Verify(token, endpoint, user, region string, key aws.Credentials, now time.Time) string {
	u, err := url.Parse("https://" + token)
	if err != nil || u.Host != endpoint {
		return "not a token for this endpoint"
	}
	q := u.Query()
	if q.Get("Action") != "connect" || q.Get("DBUser") != user || q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return "not a connect token for this user"
	}
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(cred) != 5 || cred[0] != key.AccessKeyID || cred[2] != region || cred[3] != "rds-db" {
		return "not signed by the key for rds-db in the region"
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	expires, _ := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || expires <= 0 || expires > 900 {
		return "bad date or expiry"
	}
	if now.After(signedAt.Add(time.Duration(expires) * time.Second)) {
		return "expired"
	}
	req, err := http.NewRequest(http.MethodGet, "https://"+endpoint+"/?Action=connect&DBUser="+url.QueryEscape(user), nil)
	if err != nil {
		return "cannot rebuild the request"
	}
	vals := req.URL.Query()
	vals.Set("X-Amz-Expires", q.Get("X-Amz-Expires"))
	req.URL.RawQuery = vals.Encode()
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), key, req, emptySHA256, "rds-db", region, signedAt)
	if err != nil {
		return "cannot sign"
	}
	su, err := url.Parse(signed)
	if err != nil || su.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
		return "bad signature"
	}
	return "accepted"
}

// UseKey makes key the AWS identity of the test's process (the SDK's default chain reads it from
// the environment), with nothing else it could pick up: no profile, no config files, no instance
// metadata.
func UseKey(t interface{ Setenv(key, value string) }, accessKey, secretKey string) {
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
