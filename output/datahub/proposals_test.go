package datahub

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output/catalog"
)

// index holds a catalog's proposals by entity URN and aspect name, decoded.
type index map[string]map[string]map[string]any

func proposalsOf(t *testing.T, c *catalog.Catalog, o Options) ([]Proposal, index) {
	t.Helper()
	ps, err := Proposals(c, o)
	if err != nil {
		t.Fatal(err)
	}
	idx := index{}
	for _, p := range ps {
		if p.EntityType == "" || p.EntityURN == "" || p.AspectName == "" {
			t.Fatalf("incomplete proposal %+v", p)
		}
		var v map[string]any
		if err := json.Unmarshal(p.Aspect, &v); err != nil {
			t.Fatal(err)
		}
		if idx[p.EntityURN] == nil {
			idx[p.EntityURN] = map[string]map[string]any{}
		}
		if _, dup := idx[p.EntityURN][p.AspectName]; dup {
			t.Errorf("%s has two %s aspects", p.EntityURN, p.AspectName)
		}
		idx[p.EntityURN][p.AspectName] = v
	}
	return ps, idx
}

func (x index) aspect(t *testing.T, urn, name string) map[string]any {
	t.Helper()
	a, ok := x[urn][name]
	if !ok {
		t.Fatalf("%s has no %s aspect (it has %v)", urn, name, slices.Sorted(maps.Keys(x[urn])))
	}
	return a
}

// jsonOf re-encodes a decoded value (keys sorted, no HTML escaping), to compare it with an
// expected JSON text.
func jsonOf(v any) string {
	b, _ := marshal(v, "")
	return string(b)
}

const (
	pgCustomers     = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.customers,PROD)"
	pgCustomerNames = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.customer_names,PROD)"
	pgOrders        = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.sales.orders,PROD)"
	pgOrderTotals   = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.sales.order_totals,PROD)"
)

func TestPostgresProposals(t *testing.T) {
	_, x := proposalsOf(t, postgresCatalog(), Options{})
	db := containerURN(md5Hex(`{"database":"shop","instance":"PROD","platform":"postgres"}`))
	public := containerURN(md5Hex(`{"database":"shop","instance":"PROD","platform":"postgres","schema":"public"}`))
	sales := containerURN(md5Hex(`{"database":"shop","instance":"PROD","platform":"postgres","schema":"sales"}`))

	// Containers: the database, then a schema container under it.
	if got := jsonOf(x.aspect(t, db, "subTypes")); got != `{"typeNames":["Database"]}` {
		t.Errorf("database subTypes %s", got)
	}
	if got := jsonOf(x.aspect(t, db, "containerProperties")); got !=
		`{"customProperties":{"database":"shop","env":"PROD","platform":"postgres"},"description":"The shop's database","env":"PROD","name":"shop"}` {
		t.Errorf("database containerProperties %s", got)
	}
	if got := jsonOf(x.aspect(t, public, "container")); got != `{"container":"`+db+`"}` {
		t.Errorf("schema's parent %s", got)
	}
	if got := jsonOf(x.aspect(t, sales, "subTypes")); got != `{"typeNames":["Schema"]}` {
		t.Errorf("schema subTypes %s", got)
	}
	// An empty comment is no description; a withheld owner is no ownership.
	if _, ok := x.aspect(t, sales, "containerProperties")["description"]; ok {
		t.Error("the sales schema, without a comment, has a description")
	}
	if _, ok := x[sales]["ownership"]; ok {
		t.Error("the sales schema, its owner withheld, has an ownership aspect")
	}
	if got := jsonOf(x.aspect(t, public, "ownership")); got !=
		`{"lastModified":{"actor":"urn:li:corpuser:datahub","time":0},"owners":[{"owner":"urn:li:corpuser:dba","source":{"type":"DATABASE"},"type":"TECHNICAL_OWNER"}]}` {
		t.Errorf("public's ownership %s", got)
	}

	// A table.
	if got := jsonOf(x.aspect(t, pgCustomers, "container")); got != `{"container":"`+public+`"}` {
		t.Errorf("customers' container %s", got)
	}
	if got := jsonOf(x.aspect(t, pgCustomers, "browsePathsV2")); got !=
		`{"path":[{"id":"`+db+`","urn":"`+db+`"},{"id":"`+public+`","urn":"`+public+`"}]}` {
		t.Errorf("customers' browse path %s", got)
	}
	if got := jsonOf(x.aspect(t, pgCustomers, "datasetProperties")); got !=
		`{"customProperties":{"rowCount":"10","sizeBytes":"8192","type":"table"},"description":"People who buy <things> & more","name":"customers","tags":[]}` {
		t.Errorf("customers' datasetProperties %s", got)
	}
	sm := x.aspect(t, pgCustomers, "schemaMetadata")
	if sm["schemaName"] != "shop.public.customers" || sm["platform"] != "urn:li:dataPlatform:postgres" || jsonOf(sm["primaryKeys"]) != `["id"]` {
		t.Errorf("customers' schema %s", jsonOf(sm))
	}
	fields := sm["fields"].([]any)
	if len(fields) != 15 {
		t.Fatalf("%d fields", len(fields))
	}
	if got := jsonOf(fields[0]); got != `{"fieldPath":"id","isPartOfKey":true,"nativeDataType":"integer","nullable":false,"recursive":false,"type":{"type":{"com.linkedin.schema.NumberType":{}}}}` {
		t.Errorf("field id %s", got)
	}
	if got := jsonOf(fields[1]); got != `{"description":"full name","fieldPath":"name","isPartOfKey":false,"nativeDataType":"text","nullable":false,"recursive":false,"type":{"type":{"com.linkedin.schema.StringType":{}}}}` {
		t.Errorf("field name %s", got)
	}
	if got := jsonOf(fields[8].(map[string]any)["type"]); got != `{"type":{"com.linkedin.schema.ArrayType":{"nestedType":["text"]}}}` {
		t.Errorf("field tags' type %s", got)
	}
	if got := jsonOf(x.aspect(t, pgCustomers, "ownership")["owners"]); got != `[{"owner":"urn:li:corpuser:alice","source":{"type":"DATABASE"},"type":"TECHNICAL_OWNER"}]` {
		t.Errorf("customers' owners %s", got)
	}
	if _, ok := x[pgCustomers]["viewProperties"]; ok {
		t.Error("a table has viewProperties")
	}

	// A foreign key across schemas.
	if got := jsonOf(x.aspect(t, pgOrders, "schemaMetadata")["foreignKeys"]); got !=
		`[{"foreignDataset":"`+pgCustomers+`","foreignFields":["urn:li:schemaField:(`+pgCustomers+`,id)"],"name":"orders_customer_fk","sourceFields":["urn:li:schemaField:(`+pgOrders+`,customer_id)"]}]` {
		t.Errorf("orders' foreign keys %s", got)
	}

	// A view with lineage, its owner withheld.
	if got := jsonOf(x.aspect(t, pgCustomerNames, "subTypes")); got != `{"typeNames":["View"]}` {
		t.Errorf("view subTypes %s", got)
	}
	vp := x.aspect(t, pgCustomerNames, "viewProperties")
	if vp["materialized"] != false || vp["viewLanguage"] != "SQL" || !strings.Contains(vp["viewLogic"].(string), "upper(customers.name)") {
		t.Errorf("viewProperties %s", jsonOf(vp))
	}
	if _, ok := x[pgCustomerNames]["ownership"]; ok {
		t.Error("the view, its owner withheld, has an ownership aspect")
	}
	field := func(ds, f string) string { return "urn:li:schemaField:(" + ds + "," + f + ")" }
	want := `{"fineGrainedLineages":[` +
		`{"confidenceScore":0.9,"downstreamType":"FIELD","downstreams":["` + field(pgCustomerNames, "id") + `"],"transformOperation":"COPY","upstreamType":"FIELD_SET","upstreams":["` + field(pgCustomers, "id") + `"]},` +
		`{"confidenceScore":0.9,"downstreamType":"FIELD","downstreams":["` + field(pgCustomerNames, "name") + `"],"transformOperation":"SQL","upstreamType":"FIELD_SET","upstreams":["` + field(pgCustomers, "name") + `"]}],` +
		`"upstreams":[{"auditStamp":{"actor":"urn:li:corpuser:datahub","time":0},"dataset":"` + pgCustomers + `","type":"VIEW"}]}`
	if got := jsonOf(x.aspect(t, pgCustomerNames, "upstreamLineage")); got != want {
		t.Errorf("view lineage\n got %s\nwant %s", got, want)
	}

	// A materialized view whose lineage has a problem: no lineage is guessed.
	if x.aspect(t, pgOrderTotals, "viewProperties")["materialized"] != true {
		t.Error("the materialized view is not materialized")
	}
	if _, ok := x[pgOrderTotals]["upstreamLineage"]; ok {
		t.Error("lineage with a problem was proposed")
	}

	// Partitions, foreign tables, reserved characters.
	part := "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.events_2024,PROD)"
	if got := jsonOf(x.aspect(t, part, "datasetProperties")["customProperties"]); got !=
		`{"parent":"public.events","partitionBound":"FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')","type":"partition"}` {
		t.Errorf("partition properties %s", got)
	}
	foreign := "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.remote_rates,PROD)"
	if got := jsonOf(x.aspect(t, foreign, "subTypes")); got != `{"typeNames":["External Table"]}` {
		t.Errorf("foreign table subTypes %s", got)
	}
	odd := "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.odd%2Cname%281%29,PROD)"
	if got := x.aspect(t, odd, "schemaMetadata")["fields"].([]any)[0].(map[string]any)["fieldPath"]; got != "a,b (c)" {
		t.Errorf("field path %v", got)
	}

	// Every entity: containers and datasets only, each with status.
	for urn, aspects := range x {
		if !strings.HasPrefix(urn, "urn:li:container:") && !strings.HasPrefix(urn, "urn:li:dataset:") {
			t.Errorf("entity %s", urn)
		}
		if _, ok := aspects["status"]; !ok {
			t.Errorf("%s has no status", urn)
		}
	}
	if len(x) != 3+8 {
		t.Errorf("%d entities, want 3 containers and 8 datasets", len(x))
	}
}

// TestWithheldDatabaseName: when the input gave the database's name as a secret the catalog
// withholds it, and the source label names the database instead, everywhere.
func TestWithheldDatabaseName(t *testing.T) {
	c := postgresCatalog()
	c.Databases[0].Name = ""
	for i := range c.Schemas {
		c.Schemas[i].Database = ""
	}
	ps, x := proposalsOf(t, c, Options{})
	db := containerURN(md5Hex(`{"database":"prod-pg","instance":"PROD","platform":"postgres"}`))
	if got := x.aspect(t, db, "containerProperties")["name"]; got != "prod-pg" {
		t.Errorf("database container named %v", got)
	}
	if _, ok := x["urn:li:dataset:(urn:li:dataPlatform:postgres,prod-pg.public.customers,PROD)"]; !ok {
		t.Error("no dataset named by the source label")
	}
	for _, p := range ps {
		if strings.Contains(p.EntityURN, "shop") || bytes.Contains(p.Aspect, []byte(`"shop"`)) {
			t.Errorf("the withheld name is in %s %s", p.EntityURN, p.AspectName)
		}
	}
}

func TestMySQLProposals(t *testing.T) {
	ps, x := proposalsOf(t, mysqlCatalog(), Options{})
	appdb := containerURN(md5Hex(`{"database":"appdb","instance":"PROD","platform":"mysql"}`))
	reporting := containerURN(md5Hex(`{"database":"reporting","instance":"PROD","platform":"mysql"}`))
	// Two-tier: each schema is a top-level Database container; nothing else is a container.
	for _, urn := range []string{appdb, reporting} {
		if got := jsonOf(x.aspect(t, urn, "subTypes")); got != `{"typeNames":["Database"]}` {
			t.Errorf("%s subTypes %s", urn, got)
		}
		if _, ok := x[urn]["container"]; ok {
			t.Errorf("%s has a parent", urn)
		}
		if got := jsonOf(x.aspect(t, urn, "browsePathsV2")); got != `{"path":[]}` {
			t.Errorf("%s browse path %s", urn, got)
		}
	}
	if got := jsonOf(x.aspect(t, appdb, "containerProperties")); got !=
		`{"customProperties":{"database":"appdb","env":"PROD","platform":"mysql"},"description":"the application","env":"PROD","name":"appdb"}` {
		t.Errorf("appdb containerProperties %s", got)
	}
	users := "urn:li:dataset:(urn:li:dataPlatform:mysql,appdb.users,PROD)"
	if got := jsonOf(x.aspect(t, users, "container")); got != `{"container":"`+appdb+`"}` {
		t.Errorf("users' container %s", got)
	}
	if got := jsonOf(x.aspect(t, users, "browsePathsV2")); got != `{"path":[{"id":"`+appdb+`","urn":"`+appdb+`"}]}` {
		t.Errorf("users' browse path %s", got)
	}
	view := "urn:li:dataset:(urn:li:dataPlatform:mysql,reporting.active_users,PROD)"
	if got := x.aspect(t, view, "upstreamLineage")["upstreams"].([]any)[0].(map[string]any)["dataset"]; got != users {
		t.Errorf("view's upstream %v", got)
	}
	containers := 0
	for _, p := range ps {
		if p.EntityType == entityContainer && p.AspectName == "status" {
			containers++
		}
		// The connection's database is not a MySQL container, and the label never shows.
		if bytes.Contains(p.Aspect, []byte("crm-mysql")) || strings.Contains(p.EntityURN, "crm-mysql") {
			t.Errorf("the source label is in %s %s", p.EntityURN, p.AspectName)
		}
	}
	if containers != 2 {
		t.Errorf("%d containers, want 2", containers)
	}
}

func TestSQLiteProposals(t *testing.T) {
	_, x := proposalsOf(t, sqliteCatalog(), Options{})
	db := containerURN(md5Hex(`{"database":"app.db","instance":"PROD","platform":"sqlite"}`))
	main := containerURN(md5Hex(`{"database":"app.db","instance":"PROD","platform":"sqlite","schema":"main"}`))
	if got := x.aspect(t, db, "containerProperties")["name"]; got != "app.db" {
		t.Errorf("database container %v", got)
	}
	items := "urn:li:dataset:(urn:li:dataPlatform:sqlite,main.items,PROD)"
	if got := jsonOf(x.aspect(t, items, "container")); got != `{"container":"`+main+`"}` {
		t.Errorf("items' container %s", got)
	}
	notes := "urn:li:dataset:(urn:li:dataPlatform:sqlite,aux.notes,PROD)"
	if got := jsonOf(x.aspect(t, notes, "schemaMetadata")["foreignKeys"]); !strings.Contains(got, `"foreignFields":[]`) {
		t.Errorf("an unresolved foreign key %s", got)
	}
	if got := jsonOf(x.aspect(t, "urn:li:dataset:(urn:li:dataPlatform:sqlite,main.search,PROD)", "subTypes")); got != `{"typeNames":["Table"]}` {
		t.Errorf("virtual table subTypes %s", got)
	}
}

// reversed returns a copy of c with every list in reverse order.
func reversed(c *catalog.Catalog) *catalog.Catalog {
	r := *c
	r.Schemas = slices.Clone(c.Schemas)
	slices.Reverse(r.Schemas)
	r.Tables = slices.Clone(c.Tables)
	slices.Reverse(r.Tables)
	r.Columns = slices.Clone(c.Columns)
	slices.Reverse(r.Columns)
	r.Keys = slices.Clone(c.Keys)
	slices.Reverse(r.Keys)
	r.Lineage = slices.Clone(c.Lineage)
	slices.Reverse(r.Lineage)
	return &r
}

func fileBytes(t *testing.T, c *catalog.Catalog, o Options) []byte {
	t.Helper()
	ps, err := Proposals(c, o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteFile(&buf, ps); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDeterministic: the same catalog gives the same bytes, whatever the order of its lists.
func TestDeterministic(t *testing.T) {
	for _, c := range []*catalog.Catalog{postgresCatalog(), mysqlCatalog(), sqliteCatalog()} {
		first := fileBytes(t, c, Options{})
		if again := fileBytes(t, c, Options{}); !bytes.Equal(first, again) {
			t.Errorf("%s: two runs differ", c.Connector)
		}
		if shuffled := fileBytes(t, reversed(c), Options{}); !bytes.Equal(first, shuffled) {
			t.Errorf("%s: the catalog's order changes the bytes", c.Connector)
		}
		if !bytes.HasPrefix(first, []byte("[\n{\n    \"entityType\": ")) || !bytes.HasSuffix(first, []byte("}\n]\n")) {
			t.Errorf("%s: layout %q...", c.Connector, first[:40])
		}
		if bytes.Contains(first, []byte(`\u003c`)) {
			t.Errorf("%s: HTML-escaped output", c.Connector)
		}
	}
	var buf bytes.Buffer
	if err := WriteFile(&buf, nil); err != nil || buf.String() != "[]\n" {
		t.Errorf("no proposals: %q, %v", buf.String(), err)
	}
}

func TestEnv(t *testing.T) {
	objs := 0
	ps, err := Proposals(postgresCatalog(), Options{Env: "DEV"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.EntityType == entityDataset && !strings.HasSuffix(p.EntityURN, ",DEV)") {
			t.Errorf("dataset URN %s", p.EntityURN)
		}
		if bytes.Contains(p.Aspect, []byte(",PROD)")) {
			t.Errorf("%s %s names PROD", p.EntityURN, p.AspectName)
		}
		body, err := p.IngestBody()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, fileShape(t, body)); err != nil {
			t.Errorf("DEV proposal refused: %v", err)
		}
		objs++
	}
	if objs == 0 {
		t.Fatal("no proposals")
	}
	if dev := containerGUID(map[string]string{"platform": "postgres", "instance": "DEV", "database": "shop"}); !strings.Contains(ps[0].EntityURN, dev) {
		t.Errorf("the database container %s is not the DEV key's %s", ps[0].EntityURN, dev)
	}
}

// fileShape turns an ingestProposal body back into the file source's shape, checking the body's
// shape on the way.
func fileShape(t *testing.T, body []byte) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(top)); !slices.Equal(keys, []string{"proposal"}) {
		t.Fatalf("body keys %v", keys)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(top["proposal"], &p); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(p)); !slices.Equal(keys, []string{"aspect", "aspectName", "changeType", "entityType", "entityUrn"}) {
		t.Fatalf("proposal keys %v", keys)
	}
	var a map[string]any
	if err := json.Unmarshal(p["aspect"], &a); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(a)); !slices.Equal(keys, []string{"contentType", "value"}) || a["contentType"] != "application/json" {
		t.Fatalf("aspect %v", a)
	}
	value, ok := a["value"].(string)
	if !ok {
		t.Fatalf("value is not a string: %v", a["value"])
	}
	var aspect json.RawMessage
	if err := json.Unmarshal([]byte(value), &aspect); err != nil {
		t.Fatalf("value is not JSON: %v", err)
	}
	p["aspect"], _ = json.Marshal(map[string]json.RawMessage{"json": aspect})
	out, _ := json.Marshal(p)
	return out
}

// TestIngestBody checks the REST body of every proposal: GMS's ingestProposal shape, the
// aspect's JSON (compact) as the value string, and, turned back, a proposal the model accepts.
func TestIngestBody(t *testing.T) {
	ps, err := Proposals(postgresCatalog(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		body, err := p.IngestBody()
		if err != nil {
			t.Fatal(err)
		}
		again, _ := p.IngestBody()
		if !bytes.Equal(body, again) {
			t.Errorf("%s %s: two bodies differ", p.EntityURN, p.AspectName)
		}
		var b ingestBody
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, p.Aspect)
		if b.Proposal.EntityType != p.EntityType || b.Proposal.EntityURN != p.EntityURN || b.Proposal.AspectName != p.AspectName ||
			b.Proposal.ChangeType != "UPSERT" || b.Proposal.Aspect.Value != compact.String() {
			t.Errorf("body %s", body)
		}
		if err := validate(t, fileShape(t, body)); err != nil {
			t.Errorf("%s %s: %v", p.EntityURN, p.AspectName, err)
		}
	}
	want := `{"proposal":{"entityType":"dataset","entityUrn":"u","changeType":"UPSERT","aspectName":"status","aspect":{"value":"{\"removed\":false}","contentType":"application/json"}}}`
	if got, _ := (Proposal{EntityType: "dataset", EntityURN: "u", AspectName: "status", Aspect: json.RawMessage(`{ "removed": false }`)}).IngestBody(); string(got) != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestErrors(t *testing.T) {
	if _, err := Proposals(nil, Options{}); err == nil {
		t.Error("nil catalog accepted")
	}
	c := postgresCatalog()
	c.Connector = "oracle"
	if _, err := Proposals(c, Options{}); err == nil {
		t.Error("unknown connector accepted")
	}
	if _, err := Proposals(postgresCatalog(), Options{Env: "prod"}); err == nil {
		t.Error("env prod (not a fabric type) accepted")
	}
	c = postgresCatalog()
	c.Databases, c.Source = nil, ""
	if _, err := Proposals(c, Options{}); err == nil {
		t.Error("a database without name or label accepted")
	}
	c = postgresCatalog()
	c.Tables = append(c.Tables, connectors.Table{Schema: "public", Type: connectors.TableTypeTable})
	if _, err := Proposals(c, Options{}); err == nil {
		t.Error("a table without a name accepted")
	}
	if err := WriteFile(failingWriter{}, []Proposal{{EntityType: "dataset", EntityURN: "u", AspectName: "status", Aspect: json.RawMessage(`{"removed":false}`)}}); !errors.Is(err, errDiskFull) {
		t.Errorf("writer error: %v", err)
	}
	for _, p := range []Proposal{
		{EntityType: "dataset", EntityURN: "u", AspectName: "status", Aspect: json.RawMessage(`{}`)},
		{EntityType: "dataset", EntityURN: "u", AspectName: "status", Aspect: json.RawMessage(`[1]`)},
		{EntityType: "dataset", EntityURN: "u", AspectName: "status", Aspect: json.RawMessage(`{`)},
		{EntityType: "dataset", AspectName: "status", Aspect: json.RawMessage(`{"removed":false}`)},
	} {
		if err := WriteFile(&bytes.Buffer{}, []Proposal{p}); err == nil {
			t.Errorf("WriteFile accepts %+v", p)
		}
		if _, err := p.IngestBody(); err == nil {
			t.Errorf("IngestBody accepts %+v", p)
		}
	}
}
