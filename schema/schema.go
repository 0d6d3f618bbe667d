// Package schema holds the JSON Schema (draft 2020-12) of the workflow input: what a person types
// into the Web UI's "Start Workflow" box for ExtractionWorkflow or TestConnectionWorkflow, or passes
// with `temporal workflow start --input` or `secure-agent run --input`. The Go types in
// package workflows (Input), secrets/stores (Spec) and connectors (Filters and the connectors'
// fields) are the contract; the tests of this package keep the schema in step with them.
//
// The schema lets an editor or a Web UI check an input while it is typed. It is not the authority:
// the workflow validates every input again (workflows.Input.Validate), including what a JSON
// Schema cannot express.
package schema

import (
	"bytes"
	_ "embed"
)

// ID is the schema's $id.
const ID = "https://github.com/secure-agent/secure-agent/schema/input.schema.json"

//go:embed input.schema.json
var inputSchema []byte

// JSON returns the JSON Schema of the workflow input. Each call returns a fresh copy.
func JSON() []byte { return bytes.Clone(inputSchema) }
