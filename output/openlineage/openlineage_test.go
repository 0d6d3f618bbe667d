package openlineage

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output/catalog"
)

const producer = "https://github.com/secure-agent/secure-agent/tree/v1.2.3"

var finished = time.Date(2026, 8, 20, 12, 30, 45, 123456789, time.UTC)

func opts() Options { return Options{Producer: producer, EventTime: finished} }

func column(schema, table, name string, pos int, dataType, comment string) connectors.Column {
	return connectors.Column{Schema: schema, Table: table, Name: name, Position: pos, DataType: dataType, Comment: comment, Nullable: true}
}

func src(schema, table, col string) connectors.ColumnRef {
	return connectors.ColumnRef{Schema: schema, Table: table, Column: col}
}

// postgresCatalog has every relation type, a view with column lineage, a materialized view, a
// view whose lineage has a problem, an owner withheld, comments present and empty, and a table
// without columns.
func postgresCatalog() *catalog.Catalog {
	const s = "public"
	return &catalog.Catalog{
		Connector: "postgres",
		Source:    "prod-eu",
		Databases: []connectors.Database{{Source: "prod-eu", Name: "shop"}},
		Schemas:   []connectors.Schema{{Source: "prod-eu", Database: "shop", Name: s}},
		Tables: []connectors.Table{
			{Schema: s, Name: "customers", Type: connectors.TableTypeTable, OwnerIsLoginRole: true},
			{Schema: s, Name: "daily", Type: connectors.TableTypeMaterializedView, Owner: "bob", Comment: "Totals per day"},
			{Schema: s, Name: "empty", Type: connectors.TableTypeTable, Owner: "alice"},
			{Schema: s, Name: "events", Type: connectors.TableTypePartitioned},
			{Schema: s, Name: "events_2026", Type: connectors.TableTypePartition, ParentSchema: s, ParentTable: "events"},
			{Schema: s, Name: "odd", Type: connectors.TableTypeView},
			{Schema: s, Name: "order_totals", Type: connectors.TableTypeView, Owner: "alice"},
			{Schema: s, Name: "orders", Type: connectors.TableTypeTable, Owner: "alice", OwnerIsLoginRole: true, Comment: `Orders <b>"placed"</b> & paid`},
			{Schema: s, Name: "remote", Type: connectors.TableTypeForeign},
		},
		Columns: []connectors.Column{
			column(s, "customers", "id", 1, "bigint", ""),
			column(s, "customers", "name", 2, "text", "Full name"),
			column(s, "daily", "day", 1, "date", ""),
			column(s, "daily", "total", 2, "numeric", ""),
			column(s, "events", "at", 1, "timestamp with time zone", ""),
			column(s, "events_2026", "at", 1, "timestamp with time zone", ""),
			column(s, "odd", "x", 1, "integer", ""),
			column(s, "order_totals", "id", 1, "bigint", ""),
			column(s, "order_totals", "total", 2, "numeric(12,2)", "amount plus tax"),
			column(s, "order_totals", "label", 3, "text", ""),
			column(s, "orders", "id", 1, "bigint", "Order number"),
			column(s, "orders", "amount", 2, "numeric(10,2)", ""),
			column(s, "orders", "tax", 3, "numeric(10,2)", ""),
			column(s, "orders", "placed", 4, "date", ""),
			column(s, "remote", "k", 1, "character varying(255)", ""),
		},
		Lineage: []connectors.Lineage{
			{Schema: s, View: "daily", Method: "catalog", Upstream: []connectors.RelationRef{{Schema: s, Name: "orders"}},
				Columns: []connectors.ColumnLineage{
					{Column: "day", Sources: []connectors.ColumnRef{src(s, "orders", "placed")}, Transformation: connectors.LineageDirect},
					{Column: "total", Sources: []connectors.ColumnRef{src(s, "orders", "amount")}, Transformation: connectors.LineageExpression},
				}},
			{Schema: s, View: "odd", Method: "parser", Problem: "the definition uses a construct the parser does not follow"},
			{Schema: s, View: "order_totals", Method: "parser", Upstream: []connectors.RelationRef{{Schema: s, Name: "orders"}},
				Columns: []connectors.ColumnLineage{
					{Column: "id", Sources: []connectors.ColumnRef{src(s, "orders", "id")}, Transformation: connectors.LineageDirect},
					{Column: "total", Sources: []connectors.ColumnRef{src(s, "orders", "amount"), src(s, "orders", "tax")}, Transformation: connectors.LineageExpression},
					{Column: "label", Transformation: connectors.LineageExpression},
				}},
		},
	}
}

func mysqlCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Connector: "mysql",
		Source:    "mysql-main",
		Databases: []connectors.Database{{Source: "mysql-main", Name: ""}},
		Tables: []connectors.Table{
			{Schema: "shop", Name: "items", Type: connectors.TableTypeTable, Engine: "InnoDB", Comment: "Catalogue items"},
			{Schema: "shop", Name: "cheap_items", Type: connectors.TableTypeView, Owner: "app@%"},
			{Schema: "stats", Name: "seen", Type: connectors.TableTypeTable},
		},
		Columns: []connectors.Column{
			column("shop", "items", "id", 1, "int(11) unsigned", ""),
			column("shop", "items", "price", 2, "decimal(10,2)", "in cents"),
			column("shop", "cheap_items", "id", 1, "int(11) unsigned", ""),
			column("stats", "seen", "item", 1, "int(11)", ""),
		},
		Lineage: []connectors.Lineage{
			{Schema: "shop", View: "cheap_items", Method: "parser", Upstream: []connectors.RelationRef{{Schema: "shop", Name: "items"}},
				Columns: []connectors.ColumnLineage{{Column: "id", Sources: []connectors.ColumnRef{src("shop", "items", "id")}, Transformation: connectors.LineageDirect}}},
		},
	}
}

func sqliteCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Connector: "sqlite",
		Source:    "notes app",
		Databases: []connectors.Database{{Source: "notes app"}},
		Tables: []connectors.Table{
			{Schema: "main", Name: "notes", Type: connectors.TableTypeTable},
			{Schema: "main", Name: "notes_fts", Type: connectors.TableTypeVirtual},
			{Schema: "aux", Name: "tags", Type: connectors.TableTypeTable},
			{Schema: "main", Name: "recent", Type: connectors.TableTypeView},
		},
		Columns: []connectors.Column{
			column("main", "notes", "id", 1, "INTEGER", ""),
			column("main", "notes", "body", 2, "TEXT", ""),
			column("main", "notes_fts", "body", 1, "", ""),
			column("aux", "tags", "name", 1, "TEXT", ""),
			column("main", "recent", "body", 1, "TEXT", ""),
		},
		Lineage: []connectors.Lineage{
			{Schema: "main", View: "recent", Method: "parser", Upstream: []connectors.RelationRef{{Schema: "main", Name: "notes"}},
				Columns: []connectors.ColumnLineage{{Column: "body", Sources: []connectors.ColumnRef{src("main", "notes", "body")}, Transformation: connectors.LineageDirect}}},
		},
	}
}

func build(t *testing.T, c *catalog.Catalog) []DatasetEvent {
	t.Helper()
	events, err := DatasetEvents(c, opts())
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func byName(t *testing.T, events []DatasetEvent, name string) DatasetEvent {
	t.Helper()
	for _, e := range events {
		if e.Dataset.Name == name {
			return e
		}
	}
	t.Fatalf("no event for %s", name)
	return DatasetEvent{}
}

// TestEventsValidate checks every event of each connector's catalog against the schema, as
// WriteJSONL writes it.
func TestEventsValidate(t *testing.T) {
	for name, c := range map[string]*catalog.Catalog{"postgres": postgresCatalog(), "mysql": mysqlCatalog(), "sqlite": sqliteCatalog()} {
		t.Run(name, func(t *testing.T) {
			events := build(t, c)
			if len(events) != len(c.Tables) {
				t.Fatalf("%d events for %d relations", len(events), len(c.Tables))
			}
			validateLines(t, events)
		})
	}
}

func TestPostgresFacets(t *testing.T) {
	events := build(t, postgresCatalog())
	var names []string
	for _, e := range events {
		names = append(names, e.Dataset.Name)
		if e.Dataset.Namespace != "postgres://prod-eu" || e.Producer != producer || !e.EventTime.Equal(finished) ||
			e.SchemaURL != "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent" {
			t.Errorf("%s: event fields %+v", e.Dataset.Name, e)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("events not in name order: %v", names)
	}

	orders := byName(t, events, "shop.public.orders").Dataset.Facets
	if orders.Ownership == nil || !reflect.DeepEqual(orders.Ownership.Owners, []Owner{{Name: "user:alice", Type: "OWNER"}}) {
		t.Errorf("orders ownership %+v", orders.Ownership)
	}
	if orders.Documentation == nil || orders.Documentation.Description != `Orders <b>"placed"</b> & paid` {
		t.Errorf("orders documentation %+v", orders.Documentation)
	}
	wantFields := []SchemaField{
		{Name: "id", Type: "bigint", Description: "Order number", OrdinalPosition: 1},
		{Name: "amount", Type: "numeric(10,2)", OrdinalPosition: 2},
		{Name: "tax", Type: "numeric(10,2)", OrdinalPosition: 3},
		{Name: "placed", Type: "date", OrdinalPosition: 4},
	}
	if !reflect.DeepEqual(orders.Schema.Fields, wantFields) {
		t.Errorf("orders schema %+v", orders.Schema.Fields)
	}
	if orders.ColumnLineage != nil {
		t.Errorf("a table has column lineage: %+v", orders.ColumnLineage)
	}
	wantLevels := []HierarchyLevel{{"DATABASE", "shop"}, {"SCHEMA", "public"}, {"TABLE", "orders"}}
	if !reflect.DeepEqual(orders.Hierarchy.Hierarchy, wantLevels) {
		t.Errorf("orders hierarchy %+v", orders.Hierarchy.Hierarchy)
	}

	// The owner withheld (the login role, name not known), and no comment: neither facet.
	customers := byName(t, events, "shop.public.customers").Dataset.Facets
	if customers.Ownership != nil || customers.Documentation != nil {
		t.Errorf("customers: ownership %+v, documentation %+v", customers.Ownership, customers.Documentation)
	}

	// A table without columns: an empty list, written as [].
	empty := byName(t, events, "shop.public.empty")
	if empty.Dataset.Facets.Schema == nil || empty.Dataset.Facets.Schema.Fields == nil || len(empty.Dataset.Facets.Schema.Fields) != 0 {
		t.Errorf("empty schema %+v", empty.Dataset.Facets.Schema)
	}
	if b, _ := json.Marshal(empty); !bytes.Contains(b, []byte(`"fields":[]`)) {
		t.Errorf("empty schema written as %s", b)
	}

	types := map[string][2]string{
		"customers": {"TABLE", ""}, "daily": {"VIEW", "MATERIALIZED"}, "events": {"TABLE", "PARTITIONED"},
		"events_2026": {"TABLE", "PARTITION"}, "odd": {"VIEW", ""}, "order_totals": {"VIEW", ""},
		"remote": {"TABLE", "EXTERNAL"},
	}
	for table, want := range types {
		f := byName(t, events, "shop.public."+table).Dataset.Facets.DatasetType
		if got := [2]string{f.DatasetType, f.SubType}; got != want {
			t.Errorf("%s: datasetType %v, want %v", table, got, want)
		}
	}

	view := byName(t, events, "shop.public.order_totals").Dataset.Facets.ColumnLineage
	in := func(field, subtype string) InputField {
		return InputField{Namespace: "postgres://prod-eu", Name: "shop.public.orders", Field: field,
			Transformations: []Transformation{{Type: "DIRECT", Subtype: subtype}}}
	}
	wantLineage := map[string]ColumnLineageField{
		"id":    {InputFields: []InputField{in("id", "IDENTITY")}},
		"total": {InputFields: []InputField{in("amount", "TRANSFORMATION"), in("tax", "TRANSFORMATION")}},
	}
	if view == nil || !reflect.DeepEqual(view.Fields, wantLineage) {
		t.Errorf("order_totals column lineage %+v", view)
	}
	if mv := byName(t, events, "shop.public.daily").Dataset.Facets.ColumnLineage; mv == nil || len(mv.Fields) != 2 {
		t.Errorf("materialized view column lineage %+v", mv)
	}
	if odd := byName(t, events, "shop.public.odd").Dataset.Facets.ColumnLineage; odd != nil {
		t.Errorf("lineage with a problem gave %+v", odd)
	}

	daily := byName(t, events, "shop.public.daily").Dataset.Facets
	urls := map[string]BaseFacet{
		"https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet":               daily.Schema.BaseFacet,
		"https://openlineage.io/spec/facets/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet": daily.Documentation.BaseFacet,
		"https://openlineage.io/spec/facets/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet":         daily.Ownership.BaseFacet,
		"https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json#/$defs/DatasetTypeDatasetFacet":     daily.DatasetType.BaseFacet,
		"https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet": daily.ColumnLineage.BaseFacet,
		"https://openlineage.io/spec/facets/1-0-0/HierarchyDatasetFacet.json#/$defs/HierarchyDatasetFacet":         daily.Hierarchy.BaseFacet,
	}
	for url, base := range urls {
		if base != (BaseFacet{Producer: producer, SchemaURL: url}) {
			t.Errorf("facet %+v, want schema URL %s", base, url)
		}
	}
}

// regName is RFC 3986's reg-name (unreserved characters, percent-encoded octets, sub-delims),
// with an optional port.
var regName = regexp.MustCompile(`^([A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-F]{2})*(:[0-9]{1,5})?$`)

func TestNaming(t *testing.T) {
	cases := []struct {
		name      string
		c         *catalog.Catalog
		schema    string
		table     string
		namespace string
		dataset   string
		levels    []string
	}{
		{"postgres", postgresCatalog(), "public", "orders", "postgres://prod-eu", "shop.public.orders", []string{"DATABASE", "SCHEMA", "TABLE"}},
		{"postgres database withheld",
			&catalog.Catalog{Connector: "postgres", Source: "prod-eu", Databases: []connectors.Database{{Source: "prod-eu"}}},
			"sales", "orders", "postgres://prod-eu", "prod-eu.sales.orders", []string{"DATABASE", "SCHEMA", "TABLE"}},
		{"postgres without a database entity", &catalog.Catalog{Connector: "postgres", Source: "pg"},
			"public", "t", "postgres://pg", "pg.public.t", []string{"DATABASE", "SCHEMA", "TABLE"}},
		{"mysql", mysqlCatalog(), "shop", "items", "mysql://mysql-main", "shop.items", []string{"DATABASE", "TABLE"}},
		{"mysql with a database name",
			&catalog.Catalog{Connector: "mysql", Source: "m", Databases: []connectors.Database{{Name: "shop"}}},
			"stats", "seen", "mysql://m", "stats.seen", []string{"DATABASE", "TABLE"}},
		{"sqlite", sqliteCatalog(), "main", "notes", "sqlite://notes%20app", "main.notes", []string{"SCHEMA", "TABLE"}},
		{"sqlite attached", sqliteCatalog(), "aux", "tags", "sqlite://notes%20app", "aux.tags", []string{"SCHEMA", "TABLE"}},
		{"label escaped",
			&catalog.Catalog{Connector: "postgres", Source: "db:5432/x@y z?#[]%", Databases: []connectors.Database{{}}},
			"s", "t", "postgres://db%3A5432%2Fx%40y%20z%3F%23%5B%5D%25", "db:5432/x@y z?#[]%.s.t", []string{"DATABASE", "SCHEMA", "TABLE"}},
		{"label host:port keeps its colon",
			&catalog.Catalog{Connector: "postgres", Source: "db1.internal:5432", Databases: []connectors.Database{{Name: "shop"}}},
			"s", "t", "postgres://db1.internal:5432", "shop.s.t", []string{"DATABASE", "SCHEMA", "TABLE"}},
		{"label with two colons",
			&catalog.Catalog{Connector: "mysql", Source: "a:1:2", Databases: []connectors.Database{{}}},
			"s", "t", "mysql://a%3A1%3A2", "s.t", []string{"DATABASE", "TABLE"}},
		{"label unreserved and not ASCII", &catalog.Catalog{Connector: "mysql", Source: "Prod_1.eu-west~2 café"},
			"s", "t", "mysql://Prod_1.eu-west~2%20caf%C3%A9", "s.t", []string{"DATABASE", "TABLE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := Namespace(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			name, err := DatasetName(tc.c, tc.schema, tc.table)
			if err != nil {
				t.Fatal(err)
			}
			if ns != tc.namespace || name != tc.dataset {
				t.Errorf("got %s %s, want %s %s", ns, name, tc.namespace, tc.dataset)
			}
			scheme, authority, ok := strings.Cut(ns, "://")
			if !ok || scheme != tc.c.Connector || !regName.MatchString(authority) {
				t.Errorf("namespace %s is not <connector>://<reg-name>[:port]", ns)
			}
			n, _ := newNamer(tc.c)
			var types, names []string
			for _, l := range n.levels(tc.schema, tc.table) {
				types, names = append(types, l.Type), append(names, l.Name)
			}
			if !slices.Equal(types, tc.levels) || strings.Join(names, ".") != name {
				t.Errorf("hierarchy %v %v for name %s", types, names, name)
			}
		})
	}
}

// TestDeterministic checks that the same catalog and options give the same bytes: in two
// calls, with the catalog's entities in another order, and with the event time in another
// zone; and pins one line.
func TestDeterministic(t *testing.T) {
	write := func(c *catalog.Catalog, o Options) string {
		t.Helper()
		events, err := DatasetEvents(c, o)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteJSONL(&b, events); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	first := write(postgresCatalog(), opts())
	if again := write(postgresCatalog(), opts()); again != first {
		t.Errorf("two calls differ:\n%s\n%s", first, again)
	}
	shuffled := postgresCatalog()
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(shuffled.Tables), func(i, j int) { shuffled.Tables[i], shuffled.Tables[j] = shuffled.Tables[j], shuffled.Tables[i] })
	r.Shuffle(len(shuffled.Columns), func(i, j int) { shuffled.Columns[i], shuffled.Columns[j] = shuffled.Columns[j], shuffled.Columns[i] })
	r.Shuffle(len(shuffled.Lineage), func(i, j int) { shuffled.Lineage[i], shuffled.Lineage[j] = shuffled.Lineage[j], shuffled.Lineage[i] })
	if got := write(shuffled, opts()); got != first {
		t.Errorf("another order of entities gives other bytes:\n%s\n%s", first, got)
	}
	o := opts()
	o.EventTime = finished.In(time.FixedZone("CEST", 2*3600))
	if got := write(postgresCatalog(), o); got != first {
		t.Errorf("another zone gives other bytes:\n%s\n%s", first, got)
	}

	lines := strings.Split(strings.TrimSuffix(first, "\n"), "\n")
	const want = `{"eventTime":"2026-08-20T12:30:45.123456789Z","producer":"https://github.com/secure-agent/secure-agent/tree/v1.2.3",` +
		`"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent","dataset":{"namespace":"postgres://prod-eu",` +
		`"name":"shop.public.orders","facets":{` +
		`"datasetType":{"_producer":"https://github.com/secure-agent/secure-agent/tree/v1.2.3","_schemaURL":"https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json#/$defs/DatasetTypeDatasetFacet","datasetType":"TABLE"},` +
		`"documentation":{"_producer":"https://github.com/secure-agent/secure-agent/tree/v1.2.3","_schemaURL":"https://openlineage.io/spec/facets/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet","description":"Orders <b>\"placed\"</b> & paid"},` +
		`"hierarchy":{"_producer":"https://github.com/secure-agent/secure-agent/tree/v1.2.3","_schemaURL":"https://openlineage.io/spec/facets/1-0-0/HierarchyDatasetFacet.json#/$defs/HierarchyDatasetFacet","hierarchy":[{"type":"DATABASE","name":"shop"},{"type":"SCHEMA","name":"public"},{"type":"TABLE","name":"orders"}]},` +
		`"ownership":{"_producer":"https://github.com/secure-agent/secure-agent/tree/v1.2.3","_schemaURL":"https://openlineage.io/spec/facets/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet","owners":[{"name":"user:alice","type":"OWNER"}]},` +
		`"schema":{"_producer":"https://github.com/secure-agent/secure-agent/tree/v1.2.3","_schemaURL":"https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet","fields":[{"name":"id","type":"bigint","description":"Order number","ordinal_position":1},{"name":"amount","type":"numeric(10,2)","ordinal_position":2},{"name":"tax","type":"numeric(10,2)","ordinal_position":3},{"name":"placed","type":"date","ordinal_position":4}]}}}}`
	var got string
	for _, l := range lines {
		if strings.Contains(l, `"name":"shop.public.orders"`) {
			got = l
		}
	}
	if got != want {
		t.Errorf("orders line\n got %s\nwant %s", got, want)
	}
}

func TestDatasetEventsErrors(t *testing.T) {
	withTable := func(tb connectors.Table) *catalog.Catalog {
		c := postgresCatalog()
		c.Tables = append(c.Tables, tb)
		return c
	}
	withLineage := func(l connectors.Lineage) *catalog.Catalog {
		c := postgresCatalog()
		c.Lineage = append(c.Lineage, l)
		return c
	}
	cases := map[string]struct {
		c *catalog.Catalog
		o Options
	}{
		"no catalog":                     {nil, opts()},
		"unknown connector":              {&catalog.Catalog{Connector: "oracle", Source: "x"}, opts()},
		"no source label":                {&catalog.Catalog{Connector: "sqlite"}, opts()},
		"no producer":                    {postgresCatalog(), Options{EventTime: finished}},
		"relative producer":              {postgresCatalog(), Options{Producer: "secure-agent", EventTime: finished}},
		"bad producer":                   {postgresCatalog(), Options{Producer: "https://a b%zz", EventTime: finished}},
		"no event time":                  {postgresCatalog(), Options{Producer: producer}},
		"event time beyond 9999":         {postgresCatalog(), Options{Producer: producer, EventTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"unknown table type":             {withTable(connectors.Table{Schema: "public", Name: "s", Type: "sequence"}), opts()},
		"two lineage records for a view": {withLineage(connectors.Lineage{Schema: "public", View: "daily"}), opts()},
		"two lineage records for a column": {withLineage(connectors.Lineage{Schema: "public", View: "customers", Columns: []connectors.ColumnLineage{
			{Column: "id"}, {Column: "id"}}}), opts()},
		"unknown transformation": {withLineage(connectors.Lineage{Schema: "public", View: "customers", Columns: []connectors.ColumnLineage{
			{Column: "id", Sources: []connectors.ColumnRef{src("public", "orders", "id")}, Transformation: "guess"}}}), opts()},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			events, err := DatasetEvents(tc.c, tc.o)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %d events, error %v; want ErrInvalid", len(events), err)
			}
			t.Logf("refused: %v", err)
		})
	}
	// Two relations whose names join alike are both written, in the catalog's order.
	c := withTable(connectors.Table{Schema: "a.b", Name: "c", Type: connectors.TableTypeTable, Comment: "first"})
	c.Tables = append(c.Tables, connectors.Table{Schema: "a", Name: "b.c", Type: connectors.TableTypeTable, Comment: "second"})
	events, err := DatasetEvents(c, opts())
	if err != nil {
		t.Fatalf("same name twice: %v", err)
	}
	var comments []string
	for _, e := range events {
		if e.Dataset.Name == "shop.a.b.c" && e.Dataset.Facets.Documentation != nil {
			comments = append(comments, e.Dataset.Facets.Documentation.Description)
		}
	}
	if !slices.Equal(comments, []string{"first", "second"}) {
		t.Errorf("same name twice: documentation %q, want both, in the catalog's order", comments)
	}
	// A problem record beside a good one is not a duplicate.
	if _, err := DatasetEvents(withLineage(connectors.Lineage{Schema: "public", View: "daily", Problem: "later run"}), opts()); err != nil {
		t.Errorf("problem record: %v", err)
	}
}

type failingWriter struct{}

var errDisk = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDisk }

func TestWriteJSONL(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSONL(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("no events: %q, %v", b.String(), err)
	}
	events := build(t, sqliteCatalog())
	if err := WriteJSONL(failingWriter{}, events); !errors.Is(err, errDisk) {
		t.Errorf("writer error %v, want errDisk wrapped", err)
	}
	lines := validateLines(t, events)
	for i, l := range lines {
		var back DatasetEvent
		if err := json.Unmarshal([]byte(l), &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, events[i]) {
			t.Errorf("line %d reads back as %+v, want %+v", i, back, events[i])
		}
	}
}
