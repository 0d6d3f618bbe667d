package activities

import (
	"bytes"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output/catalog"
	"github.com/secure-agent/secure-agent/output/datahub"
	"github.com/secure-agent/secure-agent/secrets"
)

// TestFormatGuard: a record whose composed names spell a sensitive value has its strings
// redacted, the source label excepted (a label equal to the value is never redacted, so the
// output does not tell the starter whether a guess was right); clean records keep their bytes,
// and the DataHub file keeps datahub.WriteFile's layout.
func TestFormatGuard(t *testing.T) {
	c := &catalog.Catalog{Connector: "postgres", Source: "shop-prod",
		Databases: []connectors.Database{{Name: "shop"}},
		Schemas:   []connectors.Schema{{Database: "shop", Name: "public"}},
		Tables: []connectors.Table{
			{Database: "shop", Schema: "public", Name: "orders", Type: connectors.TableTypeTable},
			{Database: "shop", Schema: "public", Name: "invoices", Type: connectors.TableTypeTable},
		}}
	ps, err := datahub.Proposals(c, datahub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := datahub.WriteFile(&file, ps); err != nil {
		t.Fatal(err)
	}
	guardOf := func(value string) formatGuard {
		g := &secrets.Guard{}
		g.Add("password", []byte(value))
		return newFormatGuard(g, c.Source)
	}

	var clean bytes.Buffer
	if _, err := guardOf("nowhere-in-the-catalog").writeArray(&clean, file.Bytes()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(clean.Bytes(), file.Bytes()) {
		t.Errorf("a clean file was rewritten:\n%s\nwant\n%s", clean.String(), file.String())
	}

	var red bytes.Buffer
	n, err := guardOf("shop.public.orders").writeArray(&red, file.Bytes())
	if err != nil || n != int64(len(ps)) {
		t.Fatalf("%d records: %v", n, err)
	}
	if strings.Contains(red.String(), "shop.public.orders") || !strings.Contains(red.String(), secrets.Redacted) ||
		!strings.Contains(red.String(), "shop.public.invoices") {
		t.Errorf("the composed name is not redacted in its records only:\n%s", red.String())
	}

	var label bytes.Buffer
	if _, err := guardOf("shop-prod").writeArray(&label, file.Bytes()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(label.Bytes(), file.Bytes()) {
		t.Errorf("a value equal to the source label changed the file: the label is an oracle")
	}
}
