// Package specs validates what the agent writes for catalogs against its own restatements of
// their specifications: OpenLineage's DatasetEvent and dataset facets, and DataHub's metadata
// change proposals and the aspects the agent emits. The restatements (openlineage.schema.json,
// datahub.schema.json, JSON Schema draft 2020-12) were written for this project from the
// official specifications, whose commits each names; the official files are not copied, and
// tests cannot reach them. Used by tests only.
package specs

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed openlineage.schema.json
var openLineageSchema []byte

//go:embed datahub.schema.json
var dataHubSchema []byte

// compiled is one schema, compiled once, with formats (date-time, uri) asserted.
type compiled struct {
	doc  []byte
	once sync.Once
	s    *jsonschema.Schema
	err  error
}

func (c *compiled) schema() (*jsonschema.Schema, error) {
	c.once.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(c.doc))
		if err != nil {
			c.err = err
			return
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		comp := jsonschema.NewCompiler()
		comp.AssertFormat()
		if err := comp.AddResource(id, doc); err != nil {
			c.err = err
			return
		}
		c.s, c.err = comp.Compile(id)
	})
	return c.s, c.err
}

var (
	openLineage = &compiled{doc: openLineageSchema}
	dataHub     = &compiled{doc: dataHubSchema}
)

func validate(c *compiled, doc []byte) error {
	s, err := c.schema()
	if err != nil {
		return fmt.Errorf("specs: the schema does not compile: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(v)
}

// ValidateOpenLineageEvent checks one OpenLineage DatasetEvent (a line of openlineage.jsonl).
func ValidateOpenLineageEvent(doc []byte) error { return validate(openLineage, doc) }

// ValidateDataHubProposal checks one metadata change proposal (an element of datahub.json).
func ValidateDataHubProposal(doc []byte) error { return validate(dataHub, doc) }
