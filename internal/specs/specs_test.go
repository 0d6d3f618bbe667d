package specs

import (
	"encoding/json"
	"testing"
)

// TestSchemasCompile checks both restatements compile (formats asserted) and name themselves
// as draft 2020-12 documents of this package.
func TestSchemasCompile(t *testing.T) {
	for name, c := range map[string]*compiled{"openlineage": openLineage, "datahub": dataHub} {
		if _, err := c.schema(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		var doc map[string]any
		if err := json.Unmarshal(c.doc, &doc); err != nil {
			t.Fatal(err)
		}
		if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" ||
			doc["$id"] != "https://github.com/secure-agent/secure-agent/internal/specs/"+name+".schema.json" {
			t.Errorf("%s: $schema %v, $id %v", name, doc["$schema"], doc["$id"])
		}
	}
	if err := ValidateOpenLineageEvent([]byte(`{}`)); err == nil {
		t.Error("an empty object passes as an OpenLineage event")
	}
	if err := ValidateDataHubProposal([]byte(`{}`)); err == nil {
		t.Error("an empty object passes as a DataHub proposal")
	}
}
