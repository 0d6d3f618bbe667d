package datahub

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/internal/specs"
	"github.com/secure-agent/secure-agent/output/catalog"
)

// validate checks one proposal, as JSON text, against the project's restatement of the model
// (internal/specs).
func validate(t *testing.T, mcp []byte) error {
	t.Helper()
	return specs.ValidateDataHubProposal(mcp)
}

// fileObjects returns the proposals of c as WriteFile writes them, one JSON object each.
func fileObjects(t *testing.T, c *catalog.Catalog) []json.RawMessage {
	t.Helper()
	ps, err := Proposals(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteFile(&buf, ps); err != nil {
		t.Fatal(err)
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &objs); err != nil {
		t.Fatalf("the file is not a JSON array: %v", err)
	}
	if len(objs) != len(ps) {
		t.Fatalf("the file holds %d objects for %d proposals", len(objs), len(ps))
	}
	return objs
}

// TestEveryProposalValidates checks every proposal of each connector's catalog against the
// model, and that every aspect the package emits occurs in at least one of them.
func TestEveryProposalValidates(t *testing.T) {
	aspects := map[string]bool{}
	for name, c := range map[string]*catalog.Catalog{
		"postgres": postgresCatalog(), "mysql": mysqlCatalog(), "sqlite": sqliteCatalog(),
	} {
		t.Run(name, func(t *testing.T) {
			for _, obj := range fileObjects(t, c) {
				if err := validate(t, obj); err != nil {
					t.Errorf("%s\nis refused: %v", obj, err)
				}
				var p struct{ AspectName string }
				_ = json.Unmarshal(obj, &p)
				aspects[p.AspectName] = true
			}
		})
	}
	for _, a := range []string{"container", "containerProperties", "status", "dataPlatformInstance", "subTypes",
		"ownership", "browsePathsV2", "datasetProperties", "schemaMetadata", "viewProperties", "upstreamLineage"} {
		if !aspects[a] {
			t.Errorf("no test catalog gives a %s aspect", a)
		}
	}
}

// proposalOf returns the first proposal of c with the aspect named, decoded, for a negative
// test to break.
func proposalOf(t *testing.T, c *catalog.Catalog, aspectName, urnPart string) map[string]any {
	t.Helper()
	for _, obj := range fileObjects(t, c) {
		var m map[string]any
		if err := json.Unmarshal(obj, &m); err != nil {
			t.Fatal(err)
		}
		if m["aspectName"] == aspectName && strings.Contains(m["entityUrn"].(string), urnPart) {
			return m
		}
	}
	t.Fatalf("no %s proposal for %s", aspectName, urnPart)
	return nil
}

func aspectJSON(m map[string]any) map[string]any {
	return m["aspect"].(map[string]any)["json"].(map[string]any)
}

// TestValidatorCatches breaks valid proposals one way each and expects the model to refuse
// every one: the validator is not vacuous.
func TestValidatorCatches(t *testing.T) {
	c := postgresCatalog()
	cases := []struct {
		name   string
		aspect string
		urn    string
		breakq func(m map[string]any)
	}{
		{"missing schemaMetadata.hash", "schemaMetadata", "customers", func(m map[string]any) {
			delete(aspectJSON(m), "hash")
		}},
		{"missing field nativeDataType", "schemaMetadata", "customers", func(m map[string]any) {
			delete(aspectJSON(m)["fields"].([]any)[0].(map[string]any), "nativeDataType")
		}},
		{"missing viewProperties.viewLogic", "viewProperties", "customer_names", func(m map[string]any) {
			delete(aspectJSON(m), "viewLogic")
		}},
		{"missing envelope changeType", "status", "customers", func(m map[string]any) {
			delete(m, "changeType")
		}},
		{"missing containerProperties.name", "containerProperties", "container", func(m map[string]any) {
			delete(aspectJSON(m), "name")
		}},
		{"wrong OwnershipType", "ownership", "customers", func(m map[string]any) {
			aspectJSON(m)["owners"].([]any)[0].(map[string]any)["type"] = "BOSS"
		}},
		{"wrong DatasetLineageType", "upstreamLineage", "customer_names", func(m map[string]any) {
			aspectJSON(m)["upstreams"].([]any)[0].(map[string]any)["type"] = "DERIVED"
		}},
		{"wrong FabricType in containerProperties.env", "containerProperties", "container", func(m map[string]any) {
			aspectJSON(m)["env"] = "PRODUCTION"
		}},
		{"wrong changeType", "status", "customers", func(m map[string]any) {
			m["changeType"] = "MERGE"
		}},
		{"dataset URN with an unknown fabric", "status", "customers", func(m map[string]any) {
			m["entityUrn"] = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.customers,PRODUCTION)"
		}},
		{"dataset URN without its fabric", "status", "customers", func(m map[string]any) {
			m["entityUrn"] = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.customers)"
		}},
		{"dataset URN with a raw comma in its name", "status", "customers", func(m map[string]any) {
			m["entityUrn"] = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.a,b,PROD)"
		}},
		{"container URN on a dataset", "status", "customers", func(m map[string]any) {
			m["entityUrn"] = "urn:li:container:0123456789abcdef0123456789abcdef"
		}},
		{"malformed schemaField URN in a foreign key", "schemaMetadata", "orders", func(m map[string]any) {
			fk := aspectJSON(m)["foreignKeys"].([]any)[0].(map[string]any)
			fk["foreignFields"] = []any{"urn:li:schemaField:customers.id"}
		}},
		{"platform that is not a dataPlatform URN", "schemaMetadata", "customers", func(m map[string]any) {
			aspectJSON(m)["platform"] = "postgres"
		}},
		{"field type with two union members", "schemaMetadata", "customers", func(m map[string]any) {
			ty := aspectJSON(m)["fields"].([]any)[0].(map[string]any)["type"].(map[string]any)["type"].(map[string]any)
			ty["com.linkedin.schema.StringType"] = map[string]any{}
		}},
		{"field type that is no union member", "schemaMetadata", "customers", func(m map[string]any) {
			aspectJSON(m)["fields"].([]any)[0].(map[string]any)["type"] = map[string]any{"type": map[string]any{"com.linkedin.schema.IntegerType": map[string]any{}}}
		}},
		{"platformSchema as a bare record", "schemaMetadata", "customers", func(m map[string]any) {
			aspectJSON(m)["platformSchema"] = map[string]any{"tableSchema": ""}
		}},
		{"audit stamp time as a string", "schemaMetadata", "customers", func(m map[string]any) {
			aspectJSON(m)["created"].(map[string]any)["time"] = "0"
		}},
		{"unknown aspect field", "datasetProperties", "customers", func(m map[string]any) {
			aspectJSON(m)["owner"] = "alice"
		}},
		{"aspect the entity does not have", "status", "customers", func(m map[string]any) {
			m["aspectName"] = "containerProperties"
		}},
		{"aspect in the REST shape", "status", "customers", func(m map[string]any) {
			m["aspect"] = map[string]any{"value": `{"removed":false}`, "contentType": "application/json"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := proposalOf(t, c, tc.aspect, tc.urn)
			before, _ := json.Marshal(m)
			if err := validate(t, before); err != nil {
				t.Fatalf("the unbroken proposal is refused: %v", err)
			}
			tc.breakq(m)
			after, _ := json.Marshal(m)
			if err := validate(t, after); err == nil {
				t.Errorf("the model accepts %s", after)
			}
		})
	}
}
