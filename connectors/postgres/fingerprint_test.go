package postgres

import (
	"context"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// TestFingerprintsFollowChanges takes fingerprints, each call with the state of the one before,
// across DDL changes: a schema's fingerprint moves exactly when a change touches what its
// entities say (its own objects, or the names of objects in another schema it refers to), and
// stays when nothing did, also when the state is reused from call to call. A missed change here
// is stale output in an incremental run; internal/e2e compares whole runs byte for byte.
func TestFingerprintsFollowChanges(t *testing.T) {
	db := newTestDB(t,
		// The first schema also covers the database's size, which most of the changes below
		// move: schema "0" is first, so that a, b and c show only their own changes.
		`CREATE SCHEMA "0"`, `CREATE SCHEMA a`, `CREATE SCHEMA b`, `CREATE SCHEMA c`,
		`GRANT USAGE ON SCHEMA a, b, c TO ROLE`,
		`CREATE TABLE a.t (id int PRIMARY KEY, x text)`,
		`CREATE VIEW b.v AS SELECT t.id, t.x FROM a.t AS t`,
		`CREATE TABLE c.t (id int)`,
		`ANALYZE`,
	)
	src := db.open(t)
	ctx := context.Background()
	schemas := []string{"a", "b", "c"}
	owner := "sa_fp_owner_" + randomHex(6)
	t.Cleanup(func() {
		_, _ = db.admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+owner)
		_, _ = db.admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+owner+`_renamed`)
	})
	var state []byte
	take := func() map[string]string {
		t.Helper()
		fps, next, err := src.Fingerprints(ctx, schemas, connectors.Filters{}, state)
		if err != nil {
			t.Fatal(err)
		}
		if len(fps) != len(schemas) || len(next) == 0 {
			t.Fatalf("fingerprints %v, state of %d bytes", fps, len(next))
		}
		state = next
		return fps
	}
	before := take()
	if again := take(); !equalMaps(before, again) {
		t.Fatalf("nothing changed, but the fingerprints did:\n%v\n%v", before, again)
	}
	for _, step := range []struct {
		ddl     string
		changed []string
	}{
		{`ALTER TABLE c.t ADD COLUMN y text`, []string{"c"}},
		{`ALTER TABLE c.t DROP COLUMN y`, []string{"c"}},
		{`COMMENT ON COLUMN c.t.id IS 'the id'`, []string{"c"}},
		{`COMMENT ON COLUMN c.t.id IS NULL`, []string{"c"}},
		{`ALTER TABLE c.t ALTER COLUMN id SET NOT NULL`, []string{"c"}},
		// A row removed in one schema and one written in another: the new row points at b,
		// and only the sums show that c lost one.
		{`COMMENT ON COLUMN c.t.id IS 'again'`, []string{"c"}},
		{`COMMENT ON COLUMN c.t.id IS NULL; COMMENT ON VIEW b.v IS 'the view'`, []string{"b", "c"}},
		{`CREATE FUNCTION c.f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'`, []string{"c"}},
		{`CREATE TRIGGER tr BEFORE INSERT ON c.t FOR EACH ROW EXECUTE FUNCTION c.f()`, []string{"c"}},
		{`DROP TRIGGER tr ON c.t`, []string{"c"}},
		{`CREATE INDEX ct_id ON c.t (id)`, []string{"c"}},
		{`ALTER TABLE a.t RENAME COLUMN x TO y`, []string{"a", "b"}},
		{`ALTER TABLE a.t RENAME TO u`, []string{"a", "b"}},
		{`ALTER SCHEMA a RENAME TO a2`, nil}, // a is gone: asked below without it
		{`ALTER SCHEMA a2 RENAME TO a`, []string{"a", "b"}},
		{`ALTER TABLE a.u SET SCHEMA c`, []string{"a", "b", "c"}},
		{`ALTER TABLE c.u RENAME TO w`, []string{"b", "c"}},
		// Owners: a role renamed changes the names of what it owns, and nothing else.
		{`CREATE ROLE ` + owner, nil},
		{`ALTER TABLE c.t OWNER TO ` + owner, []string{"c"}},
		{`ALTER ROLE ` + owner + ` RENAME TO ` + owner + `_renamed`, []string{"c"}},
		{`ALTER TABLE c.t OWNER TO CURRENT_USER`, []string{"c"}},
		{`INSERT INTO c.t SELECT g FROM generate_series(1, 1000) AS g`, nil}, // data only: estimates unchanged until ANALYZE
		{`ANALYZE c.t`, []string{"c"}},
	} {
		if _, err := db.admin.Exec(ctx, step.ddl); err != nil {
			t.Fatalf("%s: %v", step.ddl, err)
		}
		if step.ddl == `ALTER SCHEMA a RENAME TO a2` {
			schemas = []string{"a2", "b", "c"}
			before = take()
			schemas = []string{"a", "b", "c"}
			continue
		}
		after := take()
		for _, s := range schemas {
			moved := before[s] != after[s]
			want := false
			for _, c := range step.changed {
				want = want || c == s
			}
			if moved != want && !(s == "a" && before["a"] == "") {
				t.Errorf("%s: schema %s's fingerprint moved %v, want %v", step.ddl, s, moved, want)
			}
		}
		before = after
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
