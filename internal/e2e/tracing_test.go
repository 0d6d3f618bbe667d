package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/internal/otlptest"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// The step kinds of each connector: one CatalogQuery span each per extraction batch.
var (
	sqliteStepKinds   = []string{"tables", "columns", "keys", "constraints", "indexes", "triggers", "lineage"}
	postgresStepKinds = []string{"tables", "columns", "keys", "constraints", "indexes", "sequences", "triggers", "types", "routines", "lineage"}
)

// TestTracingSQLiteOverGRPC runs a SQLite extraction and a run whose secret does not exist with
// tracing on, exporting over OTLP/gRPC to an in-process receiver. Each run is one trace (the
// client's start, the workflow, every activity of its history, the store call under
// ResolveSecrets, a catalog query span per entity kind under ExtractSchemas whose entity count is
// the summary's); the failed run's spans say SecretNotFound and nothing else. No span, event,
// status or resource holds the secret's value, the database's path, the secret's name, the
// store's address or a table's name.
func TestTracingSQLiteOverGRPC(t *testing.T) {
	canary := "canary-" + randomHex(t)
	dir := filepath.Join(t.TempDir(), canary) // the secret is a path: the canary is in it
	db := filepath.Join(dir, "shop.db")
	makeShop(t, db)
	secretName := "trace-" + canary
	storeURL := customStore(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimPrefix(r.URL.Path, "/") != secretName {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"db_path": db, "unused_password": canary + "-pw"})
	})
	recv := otlptest.Start(t)
	setOTelEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.GRPCEndpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_INSECURE": "true"})
	h := newHarness(t, func(s *worker.Settings) { s.CustomStoreHosts = []string{"127.0.0.1:*"} })

	good := h.start(workflows.ExtractionWorkflowName, customInput(storeURL, secretName))
	var sum workflows.Summary
	if err := good.Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	missing := h.start(workflows.ExtractionWorkflowName, customInput(storeURL, "missing-"+canary))
	if err := missing.Get(context.Background(), nil); err == nil {
		t.Fatal("the run with a missing secret succeeded")
	}
	h.agent.Stop() // exports the spans

	spans := recv.Spans()
	checkTraceCount(t, spans, 2)
	trace := checkRunTrace(t, h, spans, good)
	checkStoreCall(t, trace, "ok")
	checkCatalogQueries(t, trace, "sqlite", sqliteStepKinds, sum.Counts)
	failed := checkRunTrace(t, h, spans, missing)
	checkStoreCall(t, failed, "SecretNotFound")
	checkFailure(t, failed, "RunActivity:ResolveSecrets", "SecretNotFound")
	checkResource(t, spans, "secure-agent", "")
	checkNoLeak(t, recv, canary, db, secretName, storeURL, strings.TrimPrefix(storeURL, "http://"), "customers", "line items", "totals")
}

// TestTracingPostgresOverHTTP runs a PostgreSQL extraction and one whose password is wrong with
// tracing on, exporting over OTLP/HTTP (protobuf), every connection field from a secret, and
// checks the traces as TestTracingSQLiteOverGRPC does; the refused login's spans say
// SourceAuthFailed, and no span names the host, database, user, password, schema or table.
func TestTracingPostgresOverHTTP(t *testing.T) {
	_, admin := testenv.PGAdmin(t)
	suffix := randomHex(t)
	canary := "canary-" + suffix
	db, user, password, schema, table := traceDatabase(t, suffix, canary)
	secret := func(pw string) map[string]string {
		return map[string]string{"host": admin.Hostname(), "database": db, "username": user, "password": pw}
	}
	secrets := map[string]map[string]string{"pg-" + canary: secret(password), "pg-wrong-" + canary: secret("wrong-" + canary)}
	storeURL := customStore(t, func(w http.ResponseWriter, r *http.Request) {
		s, ok := secrets[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	})
	recv := otlptest.Start(t)
	setOTelEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.HTTPEndpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e"})
	h := newHarness(t, func(s *worker.Settings) { s.CustomStoreHosts, s.SQLiteDirs = []string{"127.0.0.1:*"}, nil })
	input := func(secretName string) workflows.Input {
		return workflows.Input{
			Connector: "postgres",
			Connection: map[string]workflows.FieldValue{"host": "host", "port": workflows.FieldValue(admin.Port()),
				"database": "database", "username": "username", "password": "password", "sslmode": "disable"},
			SecretStore: &stores.Spec{Type: stores.TypeCustom,
				Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": %q}`, storeURL, secretName))},
		}
	}

	good := h.start(workflows.ExtractionWorkflowName, input("pg-"+canary))
	var sum workflows.Summary
	if err := good.Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts["tables"] < 2 || sum.Counts["sequences"] < 1 || sum.Counts["triggers"] < 1 {
		t.Fatalf("the run extracted %v: too little for the trace to mean much", sum.Counts)
	}
	refused := h.start(workflows.ExtractionWorkflowName, input("pg-wrong-"+canary))
	if err := refused.Get(context.Background(), nil); err == nil {
		t.Fatal("the run with a wrong password succeeded")
	}
	h.agent.Stop()

	spans := recv.Spans()
	checkTraceCount(t, spans, 2)
	trace := checkRunTrace(t, h, spans, good)
	checkStoreCall(t, trace, "ok")
	checkCatalogQueries(t, trace, "postgres", postgresStepKinds, sum.Counts)
	failed := checkRunTrace(t, h, spans, refused)
	checkStoreCall(t, failed, "ok")
	checkFailure(t, failed, "RunActivity:Preflight", "SourceAuthFailed")
	checkResource(t, spans, "secure-agent", "deployment.environment")
	checkNoLeak(t, recv, canary, password, db, user, schema, table, admin.Hostname(), strings.TrimPrefix(storeURL, "http://"))
}

// setOTelEnv clears every OTEL_* variable of the process for the test and sets vars.
func setOTelEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OTEL_") {
			t.Setenv(name, "")
		}
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// traceDatabase creates a database with distinctive names — a schema with a table, a view, an
// index, a sequence, a type, a function and a trigger — and a login role that can read its
// catalog, all dropped when the test ends.
func traceDatabase(t *testing.T, suffix, canary string) (db, user, password, schema, table string) {
	t.Helper()
	adminConn, u := testenv.PGAdmin(t)
	ctx := context.Background()
	db, user, password = "trace_"+suffix, "tracer_"+suffix, "pw-"+canary
	schema, table = "tsch_"+suffix, "ttbl_"+suffix
	mustExec(t, adminConn, fmt.Sprintf(`CREATE DATABASE %s`, db))
	mustExec(t, adminConn, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, user, password))
	t.Cleanup(func() {
		_, _ = adminConn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, db))
		_, _ = adminConn.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, user))
	})
	dbURL := *u
	dbURL.Path = "/" + db
	conn, err := pgx.Connect(ctx, dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	mustExec(t, conn, fmt.Sprintf(`CREATE SCHEMA %[1]s; GRANT USAGE ON SCHEMA %[1]s TO %[3]s;
		CREATE TYPE %[1]s.mood AS ENUM ('calm', 'busy');
		CREATE SEQUENCE %[1]s.ids;
		CREATE TABLE %[1]s.%[2]s (id bigint PRIMARY KEY DEFAULT nextval('%[1]s.ids'), name text NOT NULL UNIQUE,
			state %[1]s.mood, parent bigint REFERENCES %[1]s.%[2]s(id), CHECK (id > 0));
		CREATE INDEX ON %[1]s.%[2]s (state);
		CREATE VIEW %[1]s.%[2]s_view AS SELECT id, name FROM %[1]s.%[2]s;
		CREATE FUNCTION %[1]s.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
		CREATE TRIGGER touch BEFORE INSERT ON %[1]s.%[2]s FOR EACH ROW EXECUTE FUNCTION %[1]s.touch();`, schema, table, user))
	return db, user, password, schema, table
}

// checkTraceCount checks that the spans received belong to exactly n traces.
func checkTraceCount(t *testing.T, spans []otlptest.Span, n int) {
	t.Helper()
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.TraceID()] = true
	}
	if len(ids) != n {
		t.Errorf("the spans received belong to %d traces, want %d (one per run):\n%s", len(ids), n, describeSpans(spans))
	}
}

// checkRunTrace checks a run's trace and returns its spans. The trace is the one whose root is
// the client's StartWorkflow span of the run; under it the workflow's span, under that a
// StartActivity span for each activity the history schedules, each with its RunActivity span;
// and nothing but those, store calls and catalog queries.
func checkRunTrace(t *testing.T, h *harness, spans []otlptest.Span, run client.WorkflowRun) []otlptest.Span {
	t.Helper()
	var root *otlptest.Span
	for i, s := range spans {
		if s.GetName() == "StartWorkflow:"+workflows.ExtractionWorkflowName && s.Attr("temporalWorkflowID") == run.GetID() {
			if root != nil {
				t.Fatalf("two StartWorkflow spans for %s", run.GetID())
			}
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no StartWorkflow span for run %s:\n%s", run.GetID(), describeSpans(spans))
	}
	if root.ParentID() != "" {
		t.Errorf("the StartWorkflow span has a parent")
	}
	var trace []otlptest.Span
	byID := map[string]otlptest.Span{}
	for _, s := range spans {
		if s.TraceID() == root.TraceID() {
			trace = append(trace, s)
			byID[s.SpanID()] = s
		}
	}
	parentName := func(s otlptest.Span) string { return byID[s.ParentID()].GetName() }

	workflowSpans := 0
	ran := map[string]int{}
	for _, s := range trace {
		name := s.GetName()
		prefix, what, _ := strings.Cut(name, ":")
		switch prefix {
		case "StartWorkflow":
		case "RunWorkflow":
			workflowSpans++
			if what != workflows.ExtractionWorkflowName || s.ParentID() != root.SpanID() || s.Attr("temporalRunID") != run.GetRunID() {
				t.Errorf("workflow span %s under %q, run %q", name, parentName(s), s.Attr("temporalRunID"))
			}
		case "StartActivity":
			if parentName(s) != "RunWorkflow:"+workflows.ExtractionWorkflowName {
				t.Errorf("%s under %q, want the workflow's span", name, parentName(s))
			}
		case "RunActivity":
			ran[what]++
			if parentName(s) != "StartActivity:"+what {
				t.Errorf("%s under %q, want StartActivity:%s", name, parentName(s), what)
			}
		case "FetchSecrets", "CatalogQuery":
		default:
			t.Errorf("unexpected span %s in the trace", name)
		}
	}
	if workflowSpans == 0 {
		t.Errorf("no workflow span in the trace of %s:\n%s", run.GetID(), describeSpans(trace))
	}
	scheduled := map[string]bool{}
	for _, ev := range history(t, h.client, run).Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[a.GetActivityType().GetName()] = true
		}
	}
	for name := range scheduled {
		if ran[name] == 0 {
			t.Errorf("activity %s ran (the history says) but has no RunActivity span", name)
		}
	}
	for name := range ran {
		if !scheduled[name] {
			t.Errorf("a RunActivity:%s span, but the history schedules no %s", name, name)
		}
	}
	return trace
}

// checkStoreCall checks the trace's store calls: one under each ResolveSecrets span (the cache is
// off), each asking the custom store for one secret, with the given outcome.
func checkStoreCall(t *testing.T, trace []otlptest.Span, outcome string) {
	t.Helper()
	calls := named(trace, "FetchSecrets:")
	if len(calls) == 0 || len(calls) != len(named(trace, "RunActivity:ResolveSecrets")) {
		t.Fatalf("%d store call spans, want one per ResolveSecrets span:\n%s", len(calls), describeSpans(trace))
	}
	for _, c := range calls {
		if p := parentOf(trace, c); p.GetName() != "RunActivity:ResolveSecrets" {
			t.Errorf("the store call is under %q, want RunActivity:ResolveSecrets", p.GetName())
		}
		if c.GetName() != "FetchSecrets:custom" || c.Attr("secure_agent.store") != "custom" || c.Attr("secure_agent.store_call") != "fetch" ||
			c.Attr("secure_agent.secrets") != "1" || c.Attr("secure_agent.outcome") != outcome {
			t.Errorf("store call span %s attributes %v, want store custom, 1 secret, outcome %s", c.GetName(), c.GetAttributes(), outcome)
		}
		if outcome != "ok" && (c.GetStatus().GetMessage() != outcome || c.Attr("secure_agent.secrets_failed") != "1") {
			t.Errorf("failed store call: status %v, attributes %v", c.GetStatus(), c.GetAttributes())
		}
	}
}

// checkCatalogQueries checks the trace's catalog query spans: one per step kind, under
// ExtractSchemas (the run has one batch), each ok, and the entities each wrote add up to what the
// summary counts for its kind.
func checkCatalogQueries(t *testing.T, trace []otlptest.Span, connector string, kinds []string, counts map[string]int64) {
	t.Helper()
	batches := len(named(trace, "RunActivity:ExtractSchemas"))
	if batches == 0 {
		t.Fatalf("no RunActivity:ExtractSchemas span:\n%s", describeSpans(trace))
	}
	for _, kind := range kinds {
		// One span per kind per batch, each under its own batch's activity; together they
		// count what the summary counts.
		qs := named(trace, "CatalogQuery:"+kind)
		if len(qs) != batches {
			t.Errorf("%d CatalogQuery:%s spans, want one per batch (%d)", len(qs), kind, batches)
			continue
		}
		parents := map[string]bool{}
		var total int64
		for _, q := range qs {
			p := parentOf(trace, q)
			if p.GetName() != "RunActivity:ExtractSchemas" {
				t.Errorf("CatalogQuery:%s under %q, want RunActivity:ExtractSchemas", kind, p.GetName())
			}
			parents[string(p.GetSpanId())] = true
			if q.Attr("secure_agent.connector") != connector || q.Attr("secure_agent.entity_kind") != kind || q.Attr("secure_agent.outcome") != "ok" {
				t.Errorf("CatalogQuery:%s attributes %v", kind, q.GetAttributes())
			}
			n, err := strconv.ParseInt(q.Attr("secure_agent.entities"), 10, 64)
			if err != nil {
				t.Errorf("CatalogQuery:%s says %q entities", kind, q.Attr("secure_agent.entities"))
			}
			total += n
		}
		if len(parents) != batches {
			t.Errorf("CatalogQuery:%s spans under %d batches, want %d", kind, len(parents), batches)
		}
		if total != counts[kind] {
			t.Errorf("CatalogQuery:%s spans count %d entities, the summary %d", kind, total, counts[kind])
		}
	}
}

// checkFailure checks that the named span and the workflow's span failed with the given kind as
// their status, and that the activity's exception event holds the kind and no message.
func checkFailure(t *testing.T, trace []otlptest.Span, name, kind string) {
	t.Helper()
	spans := named(trace, name)
	if len(spans) == 0 {
		t.Fatalf("no %s span:\n%s", name, describeSpans(trace))
	}
	for _, s := range append(spans, named(trace, "RunWorkflow:")...) {
		if s.GetStatus().GetCode().String() != "STATUS_CODE_ERROR" || s.GetStatus().GetMessage() != kind {
			t.Errorf("%s: status %v, want an error saying %s", s.GetName(), s.GetStatus(), kind)
		}
	}
	ev := spans[0].GetEvents()
	if len(ev) != 1 || ev[0].GetName() != "exception" || len(ev[0].GetAttributes()) != 1 ||
		ev[0].GetAttributes()[0].GetKey() != "exception.type" || ev[0].GetAttributes()[0].GetValue().GetStringValue() != kind {
		t.Errorf("%s events %v, want one exception event holding only exception.type %s", name, ev, kind)
	}
}

// checkResource checks that every span came with service.name and, when extra is set, that
// resource attribute from OTEL_RESOURCE_ATTRIBUTES.
func checkResource(t *testing.T, spans []otlptest.Span, service, extra string) {
	t.Helper()
	for _, s := range spans {
		attrs := map[string]string{}
		for _, kv := range s.Resource.GetAttributes() {
			attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		if attrs["service.name"] != service || extra != "" && attrs[extra] == "" {
			t.Fatalf("span %s has resource %v, want service.name %s", s.GetName(), attrs, service)
		}
	}
}

// checkNoLeak searches everything received (every span's name, attributes, events, links,
// status and resource) for each needle.
func checkNoLeak(t *testing.T, recv *otlptest.Receiver, needles ...string) {
	t.Helper()
	hay := recv.Haystack(t)
	if !strings.Contains(hay, "secure_agent.entity_kind") {
		t.Fatalf("the haystack does not hold the spans")
	}
	for _, n := range needles {
		if i := strings.Index(hay, n); i >= 0 {
			t.Errorf("the exported spans hold %q: …%s…", n, hay[max(0, i-160):min(len(hay), i+len(n)+40)])
		}
	}
}

func named(spans []otlptest.Span, prefix string) []otlptest.Span {
	var out []otlptest.Span
	for _, s := range spans {
		if strings.HasPrefix(s.GetName(), prefix) {
			out = append(out, s)
		}
	}
	return out
}

func parentOf(spans []otlptest.Span, s otlptest.Span) otlptest.Span {
	for _, p := range spans {
		if p.SpanID() == s.ParentID() {
			return p
		}
	}
	return otlptest.Span{}
}

func describeSpans(spans []otlptest.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s trace=%s span=%s parent=%s status=%v\n", s.GetName(), s.TraceID(), s.SpanID(), s.ParentID(), s.GetStatus())
	}
	return b.String()
}
