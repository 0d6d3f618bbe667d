package workflows_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/workflows"
)

// FuzzInputValidate decodes arbitrary bytes as a workflow input, the way the SDK does when the
// Web UI or the CLI starts a run, and validates it. Nothing may panic; any valid JSON must decode
// (so the run reaches validation and fails with InvalidInput, never with a decoding error); and
// every problem must be a sentence.
func FuzzInputValidate(f *testing.F) {
	for _, seed := range []string{
		`{"connector":"sqlite","connection":{"path":"DB"},"secretStore":{"type":"env"}}`,
		`{"connector":"postgres","connection":{"host":"h","port":5432,"database":"d","username":"u","password":"pw"},"secretStore":{"type":"aws","secretPath":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x","region":"eu-west-1"}}`,
		`{"connector":"mysql","connection":{"host":"h","username":"u"},"secretStore":{"type":"azure","secretPath":"https://v.vault.azure.net/secrets/s/0123456789abcdef0123456789abcdef"}}`,
		`{"connector":"sqlite","connection":{"path":"p"},"secretStore":{"type":"custom","config":"{\"store_url\":\"https://x\",\"secret_name\":\"../a\"}"}}`,
		`{"connector":"sqlite","connection":{"path":"p"},"secretStore":{"type":"gcp","secretPath":"projects/p/secrets/s/versions/x"},"filters":{"includeTables":["*"]},"output":{"type":"s3","bucket":"b","prefix":"../x"}}`,
		`{"connector":"sqlite","connection":{"path":{"a":1}},"options":{"schemasPerBatch":"x","resolveTimeoutSeconds":5},"filter":{}}`,
		`{}`, `[]`, `null`, `{"connector":5}`, `"text"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in workflows.Input
		err := json.Unmarshal(data, &in)
		if !json.Valid(data) {
			return // not JSON: the SDK's own payload handling refuses it before the workflow
		}
		if err != nil {
			t.Fatalf("valid JSON %q did not decode: %v", data, err)
		}
		problems := in.Validate()
		for _, p := range problems {
			if strings.TrimSpace(p) == "" {
				t.Fatalf("an empty problem for %q", data)
			}
		}
		if len(problems) == 0 {
			// An accepted input survives the trip through history unchanged.
			again, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var back workflows.Input
			if err := json.Unmarshal(again, &back); err != nil || len(back.Validate()) != 0 {
				t.Fatalf("%q was accepted, but its re-encoding %q is not (%v)", data, again, back.Validate())
			}
		}
	})
}
