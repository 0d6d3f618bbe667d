package activities

import (
	"slices"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// TestRedactEntity: every string an entity holds (fields, slice items) loses the run's sensitive
// values; the entity handed in is not changed (the connector may reuse its slices); an entity
// without them passes as it is.
func TestRedactEntity(t *testing.T) {
	g := &secrets.Guard{}
	g.Add("password", []byte("s3cret-pw"))
	defer g.Zero()

	view := connectors.Table{Schema: "public", Name: "remote", Type: connectors.TableTypeView,
		Definition: "SELECT * FROM dblink('host=db user=u password=s3cret-pw', 'SELECT 1')", Comment: "pw s3cret-pw twice: s3cret-pw"}
	got, n := redactEntity(view, g)
	tab := got.(connectors.Table)
	if n != 3 || tab.Definition != "SELECT * FROM dblink('host=db user=u password=[REDACTED]', 'SELECT 1')" || tab.Comment != "pw [REDACTED] twice: [REDACTED]" {
		t.Fatalf("redacted %d: %+v", n, tab)
	}
	if view.Comment != "pw s3cret-pw twice: s3cret-pw" {
		t.Fatal("the original entity was changed")
	}

	cols := []string{"id", "lower('s3cret-pw')"}
	idx := connectors.Index{Schema: "public", Table: "t", Name: "i", Columns: cols}
	got, n = redactEntity(idx, g)
	if n != 1 || !slices.Equal(got.(connectors.Index).Columns, []string{"id", "lower('[REDACTED]')"}) {
		t.Fatalf("index: %d %+v", n, got)
	}
	if cols[1] != "lower('s3cret-pw')" {
		t.Fatal("the connector's slice was changed in place")
	}

	plain := connectors.Column{Schema: "public", Table: "t", Name: "c", DataType: "text"}
	if got, n := redactEntity(plain, g); n != 0 || got != connectors.Entity(plain) {
		t.Fatalf("an entity without secrets changed: %d %+v", n, got)
	}
	if _, n := redactEntity(view, &secrets.Guard{}); n != 0 {
		t.Fatal("an empty guard redacted")
	}
}
