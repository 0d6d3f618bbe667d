package openlineage

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/internal/specs"
)

// validate checks one JSON document against the project's restatement of the specification
// (internal/specs).
func validate(t *testing.T, doc []byte) error {
	t.Helper()
	return specs.ValidateOpenLineageEvent(doc)
}

// validateLines checks every line WriteJSONL wrote for events, and returns the lines.
func validateLines(t *testing.T, events []DatasetEvent) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, events); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if buf.Len() == 0 {
		lines = nil
	}
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events", len(lines), len(events))
	}
	for _, l := range lines {
		if err := validate(t, []byte(l)); err != nil {
			t.Errorf("event does not validate: %v\n%s", err, l)
		}
	}
	return lines
}

// validEvent is a small event that validates, for the negative tests to break.
const validEvent = `{
  "eventTime": "2026-08-20T12:00:00Z",
  "producer": "https://github.com/secure-agent/secure-agent/tree/v1.2.3",
  "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
  "dataset": {
    "namespace": "postgres://prod",
    "name": "shop.public.orders",
    "facets": {
      "schema": {
        "_producer": "https://github.com/secure-agent/secure-agent/tree/v1.2.3",
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        "fields": [{"name": "id", "type": "bigint", "ordinal_position": 1}]
      },
      "columnLineage": {
        "_producer": "https://github.com/secure-agent/secure-agent/tree/v1.2.3",
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
        "fields": {"id": {"inputFields": [{"namespace": "postgres://prod", "name": "shop.public.raw", "field": "id",
          "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]}}
      }
    }
  }
}`

// mutate returns validEvent with edit applied to its decoded form.
func mutate(t *testing.T, edit func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(validEvent), &ev); err != nil {
		t.Fatal(err)
	}
	edit(ev)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func obj(v any, keys ...string) map[string]any {
	m := v.(map[string]any)
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

// TestSchemaRejects shows the validator can fail: each broken event is refused.
func TestSchemaRejects(t *testing.T) {
	if err := validate(t, []byte(validEvent)); err != nil {
		t.Fatalf("the valid event does not validate: %v", err)
	}
	facets := func(ev map[string]any) map[string]any { return obj(ev, "dataset", "facets") }
	cases := map[string]func(ev map[string]any){
		"missing eventTime":        func(ev map[string]any) { delete(ev, "eventTime") },
		"missing schemaURL":        func(ev map[string]any) { delete(ev, "schemaURL") },
		"missing dataset":          func(ev map[string]any) { delete(ev, "dataset") },
		"missing dataset name":     func(ev map[string]any) { delete(obj(ev, "dataset"), "name") },
		"missing facet _producer":  func(ev map[string]any) { delete(obj(facets(ev), "schema"), "_producer") },
		"missing facet _schemaURL": func(ev map[string]any) { delete(obj(facets(ev), "columnLineage"), "_schemaURL") },
		"missing schema field name": func(ev map[string]any) {
			delete(obj(facets(ev), "schema")["fields"].([]any)[0].(map[string]any), "name")
		},
		"missing inputFields": func(ev map[string]any) {
			delete(obj(facets(ev), "columnLineage", "fields", "id"), "inputFields")
		},
		"missing documentation description": func(ev map[string]any) {
			facets(ev)["documentation"] = map[string]any{"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s"}
		},
		"unknown facet without _producer": func(ev map[string]any) {
			facets(ev)["symlinks"] = map[string]any{"_schemaURL": "https://x.example/s"}
		},
		"namespace not a string": func(ev map[string]any) { obj(ev, "dataset")["namespace"] = 5432 },
		"ordinal_position a string": func(ev map[string]any) {
			obj(facets(ev), "schema")["fields"].([]any)[0].(map[string]any)["ordinal_position"] = "1"
		},
		"fields an object": func(ev map[string]any) { obj(facets(ev), "schema")["fields"] = map[string]any{} },
		"bad date-time":    func(ev map[string]any) { ev["eventTime"] = "2026-08-20 12:00:00Z" },
		"impossible date":  func(ev map[string]any) { ev["eventTime"] = "2026-02-30T12:00:00Z" },
		"relative producer": func(ev map[string]any) {
			ev["producer"] = "secure-agent/v1.2.3"
		},
		"relative facet _schemaURL": func(ev map[string]any) {
			obj(facets(ev), "schema")["_schemaURL"] = "SchemaDatasetFacet.json"
		},
		"unknown transformation type": func(ev map[string]any) {
			in := obj(facets(ev), "columnLineage", "fields", "id")["inputFields"].([]any)[0].(map[string]any)
			in["transformations"] = []any{map[string]any{"type": "SIDEWAYS"}}
		},
		"indirect subtype on direct": func(ev map[string]any) {
			in := obj(facets(ev), "columnLineage", "fields", "id")["inputFields"].([]any)[0].(map[string]any)
			in["transformations"] = []any{map[string]any{"type": "DIRECT", "subtype": "JOIN"}}
		},
		"a job too": func(ev map[string]any) { ev["job"] = map[string]any{"namespace": "n", "name": "j"} },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			doc := mutate(t, edit)
			err := validate(t, doc)
			if err == nil {
				t.Fatalf("validates:\n%s", doc)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestSchemaAcceptsSpecExamples wraps facets like those of the spec's own test files
// (spec/tests/<Facet>/1.json), restated with other values, in a DatasetEvent: what the spec
// accepts, including fields this package never emits, our schema accepts too.
func TestSchemaAcceptsSpecExamples(t *testing.T) {
	const event = `{"eventTime": "2024-01-02T03:04:05.678+02:00", "producer": "https://example.com/producer",
	  "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
	  "dataset": {"namespace": "warehouse", "name": "sales.customers", "facets": {%s}}}`
	examples := map[string]string{
		"schema with nested fields": `"schema": {
		  "_producer": "https://example.com/producer",
		  "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SchemaDatasetFacet.json",
		  "fields": [
		    {"name": "customer_id", "type": "int64", "ordinal_position": 1},
		    {"name": "emails", "type": "array", "description": "Addresses we may write to", "ordinal_position": 2,
		     "fields": [{"name": "_element", "type": "string"}]},
		    {"name": "home", "type": "struct", "ordinal_position": 3, "fields": [
		      {"name": "city", "type": "string", "description": "Town", "ordinal_position": 1},
		      {"name": "postcode", "type": "string", "ordinal_position": 2}]},
		    {"name": "labels", "type": "map", "ordinal_position": 4, "fields": [
		      {"name": "key", "type": "string"},
		      {"name": "value", "type": "union", "fields": [{"name": "_0", "type": "string"}, {"name": "_1", "type": "int64"}]}]}
		  ]}`,
		"documentation with content type": `"documentation": {"description": "Everyone who bought something",
		  "contentType": "text/markdown", "_producer": "https://example.com/producer",
		  "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/DocumentationDatasetFacet.json"}`,
		"ownership without type": `"ownership": {"_producer": "https://example.com/producer",
		  "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/OwnershipDatasetFacet.json", "owners": [{"name": "team:sales"}]}`,
		"materialized view": `"datasetType": {"datasetType": "VIEW", "subType": "MATERIALIZED",
		  "_producer": "https://example.com/producer", "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/DatasetTypeDatasetFacet.json"}`,
		"hierarchy": `"hierarchy": {"_producer": "https://example.com/producer",
		  "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/HierarchyDatasetFacet.json#/$defs/HierarchyDatasetFacet",
		  "hierarchy": [{"type": "DATABASE", "name": "crm"}, {"type": "SCHEMA", "name": "sales"}, {"type": "TABLE", "name": "customers"}]}`,
		"column lineage, legacy and dataset-wide": `"columnLineage": {
		  "_producer": "https://example.com/producer",
		  "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
		  "fields": {
		    "FULL_NAME": {"inputFields": [
		      {"namespace": "warehouse", "name": "PEOPLE", "field": "FIRST", "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION", "description": "", "masking": false}]},
		      {"namespace": "warehouse", "name": "PEOPLE", "field": "ID", "transformations": [{"type": "INDIRECT", "subtype": "JOIN", "description": "ON (A.ID = PEOPLE.ID)"}]}],
		     "transformationDescription": "FIRST || LAST", "transformationType": "IDENTITY"},
		    "TOTAL": {"inputFields": [{"namespace": "warehouse", "name": "ORDERS", "field": "AMOUNT",
		      "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION", "masking": true}]}]}
		  },
		  "dataset": [{"namespace": "warehouse", "name": "ORDERS", "field": "PLACED_AT",
		    "transformations": [{"type": "INDIRECT", "subtype": "SORT"}]}]}`,
		"a facet this package does not know": `"symlinks": {"identifiers": [{"namespace": "/tmp/wh", "name": "default.customers", "type": "TABLE"}],
		  "_producer": "https://example.com/producer", "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/SymlinksDatasetFacet.json"}`,
	}
	for name, facet := range examples {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(event, "%s", facet, 1)
			if err := validate(t, []byte(doc)); err != nil {
				t.Errorf("does not validate: %v\n%s", err, doc)
			}
		})
	}
}
