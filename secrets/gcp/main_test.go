package gcp

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain makes the test CA the only root of the process's default trust store before anything
// loads it (crypto/x509 reads SSL_CERT_FILE and SSL_CERT_DIR once). The client libraries build
// their own HTTP clients for the token exchange of Application Default Credentials, with no
// option to pass a CA, so this is how they come to trust the loopback HTTPS token services of
// federation_test.go. The gRPC tests pass their own pool and are unaffected.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	loadPKI()
	dir, err := os.MkdirTemp("", "gcp-test-ca-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, caPEM, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for k, v := range map[string]string{"SSL_CERT_FILE": file, "SSL_CERT_DIR": dir} {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}
