// Package catalog reads a finished run's data files back into the entity model, for the
// formats catalogs ingest (OpenLineage, DataHub) to be built from.
package catalog

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output"
)

// Catalog is what one run extracted from one source, in the order the run wrote it (schemas
// sorted by name; within a schema, the connector's order: tables by name, columns by position).
// Names are as the output holds them: already redacted where they matched a secret, and the
// database's name empty when the input gave it as a secret reference.
type Catalog struct {
	// Connector is the connector's name: "postgres", "mysql" or "sqlite".
	Connector string
	// Source is the label the workflow input gave the source (never read from a secret).
	Source      string
	Databases   []connectors.Database
	Schemas     []connectors.Schema
	Tables      []connectors.Table
	Columns     []connectors.Column
	Keys        []connectors.Key
	Constraints []connectors.Constraint
	Indexes     []connectors.Index
	Lineage     []connectors.Lineage
}

// FromFiles loads a catalog from a run's data files (as the manifest lists them, relative to
// runDir). Kinds the formats do not use (sequences, triggers, types, routines) are not read.
func FromFiles(connector, runDir string, dataFiles []output.File) (*Catalog, error) {
	c := &Catalog{Connector: connector}
	files := map[string]string{}
	for _, f := range dataFiles {
		files[f.Entity] = filepath.Join(runDir, f.Name)
	}
	for _, r := range []struct {
		kind string
		into func(dec *json.Decoder) error
	}{
		{connectors.KindDatabases, appendTo(&c.Databases)},
		{connectors.KindSchemas, appendTo(&c.Schemas)},
		{connectors.KindTables, appendTo(&c.Tables)},
		{connectors.KindColumns, appendTo(&c.Columns)},
		{connectors.KindKeys, appendTo(&c.Keys)},
		{connectors.KindConstraints, appendTo(&c.Constraints)},
		{connectors.KindIndexes, appendTo(&c.Indexes)},
		{connectors.KindLineage, appendTo(&c.Lineage)},
	} {
		name, ok := files[r.kind]
		if !ok {
			continue // a kind the connector does not extract
		}
		if err := readFile(name, r.into); err != nil {
			return nil, fmt.Errorf("catalog: reading %s: %w", filepath.Base(name), err)
		}
	}
	for _, d := range c.Databases {
		if d.Source != "" {
			c.Source = d.Source
		}
	}
	if c.Source == "" && len(c.Schemas) > 0 {
		c.Source = c.Schemas[0].Source
	}
	return c, nil
}

// appendTo returns the decoder step that appends one entity to *list.
func appendTo[T any](list *[]T) func(dec *json.Decoder) error {
	return func(dec *json.Decoder) error {
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*list = append(*list, v)
		return nil
	}
}

// readFile decodes every JSON line of a gzip data file (one or more members) with step.
func readFile(name string, step func(dec *json.Decoder) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(zr)
	for {
		if err := step(dec); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// TableColumns returns the columns of each table, keyed by schema and table name, in position
// order.
func (c *Catalog) TableColumns() map[connectors.RelationRef][]connectors.Column {
	out := map[connectors.RelationRef][]connectors.Column{}
	for _, col := range c.Columns {
		k := connectors.RelationRef{Schema: col.Schema, Name: col.Table}
		out[k] = append(out[k], col)
	}
	return out
}

// Database is the name the source's database goes by in names built for catalogs: the
// database's name when the input gave it as a literal, and otherwise (it may be a secret, and
// the output withholds it) the source label.
func (c *Catalog) Database() string {
	for _, d := range c.Databases {
		if d.Name != "" {
			return d.Name
		}
	}
	return c.Source
}
