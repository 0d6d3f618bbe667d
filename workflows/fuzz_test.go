package workflows_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/workflows"
)

// FuzzInputValidate decodes arbitrary bytes as a workflow input, as the Web UI or the CLI would
// hand it over, and validates it: nothing may panic, and every problem must be a sentence.
func FuzzInputValidate(f *testing.F) {
	for _, seed := range []string{
		`{"connector":"sqlite","connection":{"path":"DB"},"secretStore":{"type":"env"}}`,
		`{"connector":"postgres","connection":{"host":"h","port":5432,"database":"d","username":"u","password":"pw"},"secretStore":{"type":"aws","secretPath":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x","region":"eu-west-1"}}`,
		`{"connector":"mysql","connection":{"host":"h","username":"u"},"secretStore":{"type":"azure","secretPath":"https://v.vault.azure.net/secrets/s/0123456789abcdef0123456789abcdef"}}`,
		`{"connector":"sqlite","connection":{"path":"p"},"secretStore":{"type":"custom","config":"{\"store_url\":\"https://x\",\"secret_name\":\"../a\"}"}}`,
		`{"connector":"sqlite","connection":{"path":"p"},"secretStore":{"type":"gcp","secretPath":"projects/p/secrets/s/versions/x"},"filters":{"includeTables":["*"]},"output":{"type":"s3","bucket":"b","prefix":"../x"}}`,
		`{}`, `[]`, `null`, `{"connector":5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in workflows.Input
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if dec.Decode(&in) != nil {
			return // the SDK refuses to start a workflow with an input it cannot decode
		}
		for _, p := range in.Validate() {
			if strings.TrimSpace(p) == "" {
				t.Fatalf("an empty problem for %q", data)
			}
		}
	})
}
