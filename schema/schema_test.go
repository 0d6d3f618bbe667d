package schema_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/schema"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// compile compiles the schema; with content set, a custom store's config given as a string is
// checked too (contentSchema is only an annotation unless the validator asserts content).
func compile(t *testing.T, content bool) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.JSON()))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if content {
		c.AssertContent()
	}
	if err := c.AddResource(schema.ID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(schema.ID)
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return sch
}

var (
	compiledOnce sync.Once
	compiled     *jsonschema.Schema
)

// strict returns the schema compiled with content assertion, once per test binary.
func strict(t *testing.T) *jsonschema.Schema {
	t.Helper()
	compiledOnce.Do(func() { compiled = compile(t, true) })
	if compiled == nil {
		t.FailNow()
	}
	return compiled
}

func schemaAccepts(t *testing.T, sch *jsonschema.Schema, input []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(input))
	if err != nil {
		t.Fatalf("input is not JSON: %v", err)
	}
	return sch.Validate(v)
}

// goAccepts decodes input as `secure-agent run` does (unknown keys refused) and validates it as
// the workflow does. It returns the decoding error or the problems.
func goAccepts(input []byte) (workflows.Input, error) {
	var in workflows.Input
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, fmt.Errorf("decoding: %w", err)
	}
	if p := in.Validate(); len(p) > 0 {
		return in, fmt.Errorf("validation: %s", strings.Join(p, "; "))
	}
	return in, nil
}

func TestSchemaCompiles(t *testing.T) {
	compile(t, false)
	strict(t)
	var doc map[string]any
	if err := json.Unmarshal(schema.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["$id"] != schema.ID {
		t.Errorf("$id is %v, want %s", doc["$id"], schema.ID)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema is %v, want draft 2020-12", doc["$schema"])
	}
	a := schema.JSON()
	a[0] = 'x'
	if schema.JSON()[0] == 'x' {
		t.Error("JSON returns the embedded bytes, not a copy")
	}
}

func TestExamples(t *testing.T) {
	sch := strict(t)
	files, err := filepath.Glob("../examples/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	connectorsSeen, storesSeen := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := schemaAccepts(t, sch, b); err != nil {
				t.Errorf("schema refuses it: %v", err)
			}
			in, err := goAccepts(b)
			if err != nil {
				t.Fatalf("Go refuses it: %v", err)
			}
			connectorsSeen[in.Connector] = true
			if in.SecretStore != nil {
				storesSeen[in.SecretStore.Type] = true
			}
			// The file name starts with the connector and names the store.
			if name := filepath.Base(f); !strings.HasPrefix(name, in.Connector+"-") ||
				(in.SecretStore != nil && !strings.Contains(name, "-"+in.SecretStore.Type)) {
				t.Errorf("name %s does not say <connector>-<store>", name)
			}
			// A sensitive field is never a literal: it needs a store to name a secret in.
			spec, _ := connectors.Lookup(in.Connector)
			for _, fs := range append(slices.Clone(spec.Fields), activities.SinkFields...) {
				_, inConn := in.Connection[fs.Name]
				_, inCreds := in.Output.Credentials[fs.Name]
				if fs.Sensitive && (inConn || inCreds) && in.SecretStore == nil {
					t.Errorf("sensitive field %s is a literal (no secretStore)", fs.Name)
				}
			}
		})
	}
	for _, name := range connectors.Names() {
		if !connectorsSeen[name] {
			t.Errorf("no example uses connector %s", name)
		}
	}
	for _, typ := range stores.Types {
		if !storesSeen[typ] {
			t.Errorf("no example uses store %s", typ)
		}
	}
}

// node is a parsed schema, navigated by the helpers below.
type node = map[string]any

func loadSchema(t *testing.T) node {
	t.Helper()
	var doc node
	if err := json.Unmarshal(schema.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// deref follows a local "$ref" (#/$defs/name) to its definition.
func deref(t *testing.T, root, n node) node {
	t.Helper()
	for {
		ref, ok := n["$ref"].(string)
		if !ok {
			return n
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok {
			t.Fatalf("unexpected $ref %s", ref)
		}
		def, ok := root["$defs"].(node)[name].(node)
		if !ok {
			t.Fatalf("$ref %s names no definition", ref)
		}
		n = def
	}
}

func props(t *testing.T, n node) node {
	t.Helper()
	p, ok := n["properties"].(node)
	if !ok {
		t.Fatalf("schema node has no properties: %v", slices.Sorted(maps.Keys(n)))
	}
	return p
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	slices.Sort(out)
	return out
}

// jsonNames returns the JSON names of a struct type's fields, sorted.
func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func TestSchemaMatchesGoTypes(t *testing.T) {
	root := loadSchema(t)
	top := props(t, root)
	defs := root["$defs"].(node)
	for _, c := range []struct {
		where string
		n     node
		typ   reflect.Type
	}{
		{"top level", root, reflect.TypeFor[workflows.Input]()},
		{"output", deref(t, root, top["output"].(node)), reflect.TypeFor[workflows.OutputSpec]()},
		{"options", deref(t, root, top["options"].(node)), reflect.TypeFor[workflows.RunOptions]()},
		{"filters", deref(t, root, top["filters"].(node)), reflect.TypeFor[connectors.Filters]()},
	} {
		if got, want := keys(props(t, c.n)), jsonNames(c.typ); !slices.Equal(got, want) {
			t.Errorf("%s: schema properties %v, Go %s fields %v", c.where, got, c.typ, want)
		}
		if c.n["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false, but Go decoding refuses unknown fields", c.where)
		}
	}

	// Options: the ranges and defaults of the Go constants.
	opts := props(t, deref(t, root, top["options"].(node)))
	for name, want := range map[string][2]float64{
		"schemasPerBatch":       {0, workflows.MaxSchemasPerBatch}, // 0: split evenly (see below)
		"maxConcurrentBatches":  {workflows.DefaultMaxConcurrentBatches, workflows.MaxMaxConcurrentBatches},
		"resolveTimeoutSeconds": {workflows.DefaultResolveTimeout, workflows.MaxResolveTimeout},
	} {
		o := opts[name].(node)
		if o["default"] != want[0] || o["maximum"] != want[1] {
			t.Errorf("options.%s: default %v maximum %v, want %v and %v", name, o["default"], o["maximum"], want[0], want[1])
		}
	}

	if d, _ := opts["schemasPerBatch"].(node)["description"].(string); !strings.Contains(d, fmt.Sprintf("at most %d per batch", workflows.MaxEvenSchemasPerBatch)) {
		t.Errorf("options.schemasPerBatch's description %q does not give the even split's cap, %d", d, workflows.MaxEvenSchemasPerBatch)
	}

	// Secret stores: one branch per type, the union of their fields is stores.Spec, and each
	// branch lists exactly the fields stores.Validate accepts for that type.
	store := deref(t, root, top["secretStore"].(node))
	if got := strs(props(t, store)["type"].(node)["enum"]); !slices.Equal(got, slices.Sorted(slices.Values(stores.Types))) {
		t.Errorf("secretStore.type enum %v, want %v", got, stores.Types)
	}
	branches := map[string]node{}
	union := map[string]bool{}
	for _, b := range store["oneOf"].([]any) {
		br := deref(t, root, b.(node))
		typ, _ := props(t, br)["type"].(node)["const"].(string)
		if branches[typ] != nil {
			t.Errorf("two branches for store type %q", typ)
		}
		branches[typ] = br
		for k := range props(t, br) {
			union[k] = true
		}
		if br["additionalProperties"] != false {
			t.Errorf("store %s: additionalProperties is not false", typ)
		}
	}
	if got, want := keys(branches), slices.Sorted(slices.Values(stores.Types)); !slices.Equal(got, want) {
		t.Errorf("store branches %v, want one per stores.Types %v", got, want)
	}
	if got, want := slices.Sorted(maps.Keys(union)), jsonNames(reflect.TypeFor[stores.Spec]()); !slices.Equal(got, want) {
		t.Errorf("store branch fields %v, stores.Spec fields %v", got, want)
	}
	specType := reflect.TypeFor[stores.Spec]()
	for _, typ := range stores.Types {
		br := branches[typ]
		if br == nil {
			continue
		}
		for f := range specType.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "type" {
				continue
			}
			spec := stores.Spec{Type: typ}
			v := reflect.ValueOf(&spec).Elem().FieldByIndex(f.Index)
			switch v.Kind() {
			case reflect.String:
				v.SetString("x")
			case reflect.Map:
				v.Set(reflect.ValueOf(map[string]stores.SecretField{"password": {Secret: "x"}}))
			default:
				v.Set(reflect.ValueOf(json.RawMessage(`{}`)))
			}
			refused := slices.Contains(stores.Validate(spec), fmt.Sprintf("%s is not used by the %s store; remove it", name, typ))
			_, listed := props(t, br)[name]
			if listed == refused {
				t.Errorf("store %s: the schema lists %s: %v; stores.Validate accepts it: %v", typ, name, listed, !refused)
			}
		}
	}

	// Connectors: the enum is connectors.Names, and each connector's branch lists its fields,
	// no others, with the Go required/sensitive/default/doc.
	if got := strs(top["connector"].(node)["enum"]); !slices.Equal(got, connectors.Names()) {
		t.Errorf("connector enum %v, want %v", got, connectors.Names())
	}
	branchOf := map[string]node{}
	thenOf := map[string]node{}
	for _, a := range root["allOf"].([]any) {
		cond := a.(node)["if"].(node)
		byConnector, ok := props(t, cond)["connector"].(node)
		if !ok {
			continue // a rule of another field (output.formats needs source)
		}
		name := byConnector["const"].(string)
		conn := props(t, a.(node)["then"].(node))["connection"].(node)
		branchOf[name] = deref(t, root, conn)
		thenOf[name] = a.(node)["then"].(node)
	}
	if got := keys(branchOf); !slices.Equal(got, connectors.Names()) {
		t.Errorf("connection branches for %v, want %v", got, connectors.Names())
	}
	for _, name := range connectors.Names() {
		spec, _ := connectors.Lookup(name)
		br := branchOf[name]
		if br == nil {
			continue
		}
		if _, ok := defs[name+"Connection"]; !ok {
			t.Errorf("no $defs/%sConnection", name)
		}
		if br["additionalProperties"] != false {
			t.Errorf("%s connection: additionalProperties is not false", name)
		}
		if got, want := keys(props(t, br)), slices.Sorted(slices.Values(spec.FieldNames())); !slices.Equal(got, want) {
			t.Errorf("%s connection: schema fields %v, connector fields %v", name, got, want)
		}
		var required []string
		for _, f := range spec.Fields {
			if f.Required {
				required = append(required, f.Name)
			}
		}
		slices.Sort(required)
		// A required field is given in connection or named in secretStore.fields: the
		// connector's branch says so with one anyOf per field.
		if got := requiredEither(t, thenOf[name]); !slices.Equal(got, required) {
			t.Errorf("%s connection: required (in connection or secretStore.fields) %v, want %v", name, got, required)
		}
		if br["required"] != nil {
			t.Errorf("%s connection: lists required fields itself; they may be named in secretStore.fields instead", name)
		}
		checkFields(t, name+" connection", props(t, br), spec.Fields)
	}
	creds := deref(t, root, props(t, deref(t, root, top["output"].(node)))["credentials"].(node))
	if got, want := keys(props(t, creds)), slices.Sorted(slices.Values(connectors.Spec{Fields: activities.SinkFields}.FieldNames())); !slices.Equal(got, want) {
		t.Errorf("output.credentials: schema fields %v, activities.SinkFields %v", got, want)
	}
	checkFields(t, "output.credentials", props(t, creds), activities.SinkFields)
}

// checkFields compares the schema's field entries with their FieldSpecs.
func checkFields(t *testing.T, where string, p node, fields []connectors.FieldSpec) {
	t.Helper()
	for _, f := range fields {
		fn, ok := p[f.Name].(node)
		if !ok {
			continue
		}
		desc, _ := fn["description"].(string)
		if !strings.Contains(desc, f.Doc) {
			t.Errorf("%s.%s: description %q does not hold the field's doc %q", where, f.Name, desc, f.Doc)
		}
		marked := fn["x-sensitive"] == true
		noted := strings.Contains(desc, "Sensitive: must name a secret")
		if marked != f.Sensitive || noted != f.Sensitive {
			t.Errorf("%s.%s: x-sensitive %v, description notes it %v, but Sensitive is %v", where, f.Name, marked, noted, f.Sensitive)
		}
		def, _ := fn["default"].(string)
		if def != f.Default {
			t.Errorf("%s.%s: default %q, want %q", where, f.Name, def, f.Default)
		}
	}
}

// TestDescriptions checks that every property the schema names has a description.
func TestDescriptions(t *testing.T) {
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case node:
			if p, ok := v["properties"].(node); ok {
				for name, s := range p {
					sn, ok := s.(node)
					if !ok { // a "false" in a conditional branch
						continue
					}
					if d, _ := sn["description"].(string); d == "" && !isConditional(path) {
						t.Errorf("%s.properties.%s has no description", path, name)
					}
				}
			}
			for k, x := range v {
				walk(path+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s/%d", path, i), x)
			}
		}
	}
	walk("#", loadSchema(t))
}

// isConditional reports whether a schema path is inside if/then/else/not, where properties
// restrict ones described elsewhere.
func isConditional(path string) bool {
	for _, k := range []string{"/if", "/then", "/else", "/not"} {
		if strings.Contains(path, k) {
			return true
		}
	}
	return false
}

// TestRefusedByBoth lists inputs the Go decoding or validation refuses for structural reasons,
// and checks the schema refuses them too.
func TestRefusedByBoth(t *testing.T) {
	sch := strict(t)
	const pg = `"connector": "postgres", "connection": {"host": "db", "database": "d", "username": "u", "password": "password"}`
	const aws = `"secretStore": {"type": "aws", "secretPath": "prod/db", "region": "eu-west-1"`
	for _, c := range []struct{ name, input string }{
		{"unknown top-level field", `{` + pg + `, "conector": "postgres"}`},
		{"misspelled top-level field", `{"connector": "postgres", "connections": {"host": "db"}}`},
		{"missing connector", `{"connection": {"path": "DB_PATH"}, "secretStore": {"type": "env"}}`},
		{"unknown connector", `{"connector": "oracle", "connection": {"host": "db"}}`},
		{"field of another connector", `{` + pg[:len(pg)-1] + `, "tls": "required"}}`},
		{"unknown connection field", `{"connector": "sqlite", "connection": {"path": "DB_PATH", "mode": "ro"}}`},
		{"missing required connection field", `{"connector": "postgres", "connection": {"host": "db", "username": "u"}}`},
		{"blank required connection field", `{"connector": "sqlite", "connection": {"path": "  "}}`},
		{"connection value an object", `{"connector": "sqlite", "connection": {"path": {"key": "p"}}}`},
		{"connection value null", `{"connector": "sqlite", "connection": {"path": null}}`},
		{"connection value too long", `{"connector": "sqlite", "connection": {"path": "` + strings.Repeat("a", 4097) + `"}}`},
		{"unknown store type", `{` + pg + `, "secretStore": {"type": "hsm", "secretPath": "x"}}`},
		{"missing store type", `{` + pg + `, "secretStore": {"secretPath": "prod/db"}}`},
		{"unknown store field", `{` + pg + `, ` + aws + `, "profile": "prod"}}`},
		{"field of another store", `{` + pg + `, ` + aws + `, "vaultName": "myvault"}}`},
		{"aws without secretPath", `{` + pg + `, "secretStore": {"type": "aws", "region": "eu-west-1"}}`},
		{"aws without region", `{` + pg + `, "secretStore": {"type": "aws", "secretPath": "prod/db"}}`},
		{"aws unknown authMethod", `{` + pg + `, ` + aws + `, "authMethod": "password"}}`},
		{"aws assume-role without roleArn", `{` + pg + `, ` + aws + `, "authMethod": "assume-role"}}`},
		{"aws roleArn without assume-role", `{` + pg + `, ` + aws + `, "roleArn": "arn:aws:iam::123456789012:role/r"}}`},
		{"aws malformed ARN", `{` + pg + `, "secretStore": {"type": "aws", "secretPath": "arn:aws:s3:::bucket", "region": "eu-west-1"}}`},
		{"azure unknown authMethod", `{` + pg + `, "secretStore": {"type": "azure", "secretPath": "https://v1.vault.azure.net/secrets/db", "authMethod": "password"}}`},
		{"azure bare name without vaultName", `{` + pg + `, "secretStore": {"type": "azure", "secretPath": "db"}}`},
		{"gcp malformed path", `{` + pg + `, "secretStore": {"type": "gcp", "secretPath": "my-project/db"}}`},
		{"env with secretPath", `{"connector": "sqlite", "connection": {"path": "DB_PATH"}, "secretStore": {"type": "env", "secretPath": "x"}}`},
		{"custom without config", `{` + pg + `, "secretStore": {"type": "custom"}}`},
		{"custom config without secret_name", `{` + pg + `, "secretStore": {"type": "custom", "config": {"store_url": "https://s.example.com"}}}`},
		{"custom config unknown key", `{` + pg + `, "secretStore": {"type": "custom", "config": {"store_url": "https://s.example.com", "secret_name": "db", "token": "abc"}}}`},
		{"custom config plain http", `{` + pg + `, "secretStore": {"type": "custom", "config": {"store_url": "http://s.example.com", "secret_name": "db"}}}`},
		{"custom config an array", `{` + pg + `, "secretStore": {"type": "custom", "config": ["https://s.example.com"]}}`},
		{"custom config string not JSON", `{` + pg + `, "secretStore": {"type": "custom", "config": "store_url=https://s.example.com"}}`},
		{"custom config string missing store_url", `{` + pg + `, "secretStore": {"type": "custom", "config": "{\"secret_name\": \"db\"}"}}`},
		{"custom header value not a variable name", `{` + pg + `, "secretStore": {"type": "custom", "config": {"store_url": "https://s.example.com", "secret_name": "db", "headers": {"X-Token": "s.3cr3t value"}}}}`},
		{"unknown filter", `{"connector": "sqlite", "connection": {"path": "p"}, "filters": {"includeTable": ["a.b"]}}`},
		{"empty filter pattern", `{"connector": "sqlite", "connection": {"path": "p"}, "filters": {"excludeSchemas": [""]}}`},
		{"unknown output type", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"type": "gcs", "bucket": "b"}}`},
		{"unknown output field", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"dir": "/tmp"}}`},
		{"local output with bucket", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"bucket": "metadata"}}`},
		{"local output climbing out", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"prefix": "../other-team"}}`},
		{"absolute output prefix", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"prefix": "/etc"}}`},
		{"s3 without bucket", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"type": "s3", "region": "eu-west-1"}}`},
		{"s3 without region or endpoint", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"type": "s3", "bucket": "metadata"}}`},
		{"s3 bad bucket", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"type": "s3", "bucket": "My_Bucket", "region": "eu-west-1"}}`},
		{"s3 endpoint with path", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"type": "s3", "bucket": "metadata", "endpoint": "https://minio:9000/metadata"}}`},
		{"s3 half credentials", `{"connector": "sqlite", "connection": {"path": "p"}, "secretStore": {"type": "env"}, "output": {"type": "s3", "bucket": "metadata", "region": "eu-west-1", "credentials": {"accessKeyId": "KEY_ID"}}}`},
		{"s3 unknown credential", `{"connector": "sqlite", "connection": {"path": "p"}, "secretStore": {"type": "env"}, "output": {"type": "s3", "bucket": "metadata", "region": "eu-west-1", "credentials": {"password": "PW"}}}`},
		{"unknown catalog format", `{"connector": "sqlite", "source": "s", "connection": {"path": "p"}, "output": {"formats": ["atlas"]}}`},
		{"catalog format twice", `{"connector": "sqlite", "source": "s", "connection": {"path": "p"}, "output": {"formats": ["datahub", "datahub"]}}`},
		{"catalog formats without source", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"formats": ["openlineage"]}}`},
		{"push without url", `{"connector": "sqlite", "source": "s", "connection": {"path": "p"}, "secretStore": {"type": "env"}, "output": {"push": {"openlineage": {"apiKey": "OL_KEY"}}}}`},
		{"push field of another catalog", `{"connector": "sqlite", "source": "s", "connection": {"path": "p"}, "secretStore": {"type": "env"}, "output": {"push": {"datahub": {"url": "GMS_URL", "apiKey": "K"}}}}`},
		{"push to no catalog", `{"connector": "sqlite", "source": "s", "connection": {"path": "p"}, "output": {"push": {}}}`},
		{"push without source", `{"connector": "sqlite", "connection": {"path": "p"}, "secretStore": {"type": "env"}, "output": {"push": {"datahub": {"url": "GMS_URL"}}}}`},
		{"schemasPerBatch too large", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"schemasPerBatch": 5000}}`},
		{"maxConcurrentBatches negative", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"maxConcurrentBatches": -1}}`},
		{"schemasPerBatch not an integer", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"schemasPerBatch": 2.5}}`},
		{"unknown option", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"batchSize": 5}}`},
		{"resolveTimeoutSeconds below the minimum", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"resolveTimeoutSeconds": 9}}`},
		{"resolveTimeoutSeconds above the maximum", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"resolveTimeoutSeconds": 3601}}`},
		{"resolveTimeoutSeconds as a duration string", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"resolveTimeoutSeconds": "10m"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := goAccepts([]byte(c.input)); err == nil {
				t.Errorf("Go accepts it")
			}
			if err := schemaAccepts(t, sch, []byte(c.input)); err == nil {
				t.Errorf("the schema accepts it")
			}
		})
	}
}

// TestAcceptedByBoth lists edge cases both accept.
func TestAcceptedByBoth(t *testing.T) {
	sch := strict(t)
	for _, c := range []struct{ name, input string }{
		{"sensitive field absent", `{"connector": "postgres", "connection": {"host": "db", "database": "d", "username": "u"}}`},
		{"port as a number, boolean value", `{"connector": "mysql", "connection": {"host": "h", "port": 3306, "username": "u", "tls": true}}`},
		{"empty blocks", `{"connector": "sqlite", "connection": {"path": "p"}, "filters": {}, "output": {}, "options": {}}`},
		{"zero options take the defaults", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"schemasPerBatch": 0}}`},
		{"both catalog formats", `{"connector": "sqlite", "source": "crm", "connection": {"path": "p"}, "output": {"formats": ["openlineage", "datahub"]}}`},
		{"push to both catalogs", `{"connector": "sqlite", "source": "crm", "connection": {"path": "p"}, "secretStore": {"type": "env"}, "output": {"push": {"openlineage": {"url": "OL_URL", "apiKey": "OL_KEY"}, "datahub": {"url": "https://gms.internal:8080", "token": "GMS_TOKEN"}}}}`},
		{"no catalog format", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"formats": []}}`},
		{"resolveTimeoutSeconds at its bounds", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"resolveTimeoutSeconds": 10}}`},
		{"s3 with endpoint and no region", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"type": "s3", "bucket": "metadata", "endpoint": "http://127.0.0.1:9000"}}`},
		{"aws access-key", `{"connector": "sqlite", "connection": {"path": "db_path"}, "secretStore": {"type": "aws", "secretPath": "prod/db", "region": "us-gov-west-1", "authMethod": "access-key", "versionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"}}`},
		{"azure secret URL with version", `{"connector": "sqlite", "connection": {"path": "db-path"}, "secretStore": {"type": "azure", "secretPath": "https://myvault.vault.azure.net/secrets/catalog/0123456789abcdef0123456789abcdef", "vaultName": "myvault"}}`},
		{"custom config string with spaces", `{"connector": "sqlite", "connection": {"path": "p"}, "secretStore": {"type": "custom", "config": " {\"store_url\": \"http://localhost:8200\", \"secret_name\": \"a/b\", \"version\": \"7\"} "}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := goAccepts([]byte(c.input)); err != nil {
				t.Errorf("Go refuses it: %v", err)
			}
			if err := schemaAccepts(t, sch, []byte(c.input)); err != nil {
				t.Errorf("the schema refuses it: %v", err)
			}
		})
	}
}

// TestStringConfigNeedsContentAssertion documents a limit: a custom store's config given as a
// string is checked against the configuration schema only by validators that assert content
// (contentSchema is an annotation by default in draft 2020-12).
func TestStringConfigNeedsContentAssertion(t *testing.T) {
	in := []byte(`{"connector": "sqlite", "connection": {"path": "p"}, "secretStore": {"type": "custom", "config": "{\"secret_name\": \"db\"}"}}`)
	if err := schemaAccepts(t, compile(t, false), in); err != nil {
		t.Errorf("without content assertion the schema refuses it (%v): update the documented limit", err)
	}
	if err := schemaAccepts(t, strict(t), in); err == nil {
		t.Error("with content assertion the schema accepts a string config without store_url")
	}
}

// requiredEither returns the fields a connector's branch requires in connection or in
// secretStore.fields: each an anyOf of those two requirements, for the same field.
func requiredEither(t *testing.T, then node) []string {
	t.Helper()
	var out []string
	all, _ := then["allOf"].([]any)
	for _, a := range all {
		alts := a.(node)["anyOf"].([]any)
		inConn := strs(props(t, alts[0].(node))["connection"].(node)["required"])
		store := props(t, alts[1].(node))["secretStore"].(node)
		inFields := strs(props(t, store)["fields"].(node)["required"])
		if len(inConn) != 1 || !slices.Equal(inConn, inFields) {
			t.Errorf("a requirement that is not connection-or-fields for one field: %v", a)
			continue
		}
		out = append(out, inConn[0])
	}
	slices.Sort(out)
	return out
}
