package workflows_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/workflows"
)

// TestMalformedInputBecomesProblems: whatever JSON the Web UI or the CLI hands over decodes, and
// what does not fit the input becomes a problem naming the field and what it must be, never
// quoting the value given.
func TestMalformedInputBecomesProblems(t *testing.T) {
	const canary = "hunter2-canary-7f3a"
	for _, c := range []struct{ name, input, want string }{
		{"connector of the wrong type", `{"connector": 5}`, "connector must be a string, not a JSON number"},
		{"an array for the whole input", `[1, 2]`, "the input must be a JSON object"},
		{"a string for the whole input", `"` + canary + `"`, "the input must be a JSON object"},
		{"connection field that is an object", `{"connector": "sqlite", "connection": {"path": {"k": "` + canary + `"}}}`,
			"connection.path must be a string, number or boolean, not an object"},
		{"credential that is an array", `{"connector": "sqlite", "connection": {"path": "p"}, "output": {"credentials": {"secretAccessKey": ["` + canary + `"]}}}`,
			"output.credentials.secretAccessKey must be a string, number or boolean, not an array"},
		{"option as a string", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"schemasPerBatch": "` + canary + `"}}`,
			"options.schemasPerBatch must be a whole number, not a JSON string"},
		{"option as a fraction", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"schemasPerBatch": 2.5}}`,
			"options.schemasPerBatch must be a whole number, not a JSON number"},
		{"filters as a string", `{"connector": "sqlite", "connection": {"path": "p"}, "filters": "` + canary + `"}`,
			"filters must be a JSON object, not a JSON string"},
		{"unknown top-level field", `{"connector": "sqlite", "connection": {"path": "p"}, "filter": {"includeSchemas": ["x"]}}`,
			`unknown field "filter"`},
		{"unknown nested field", `{"connector": "sqlite", "connection": {"path": "p"}, "options": {"batchSize": 5}}`,
			`unknown field "batchSize"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var in workflows.Input
			if err := json.Unmarshal([]byte(c.input), &in); err != nil {
				t.Fatalf("decoding failed (%v): the SDK would fail the run with a generic error", err)
			}
			problems := strings.Join(in.Validate(), "\n")
			if !strings.Contains(problems, c.want) {
				t.Errorf("problems %q do not say %q", problems, c.want)
			}
			if strings.Contains(problems, canary) || strings.Contains(problems, "2.5") {
				t.Errorf("problems quote the value given: %q", problems)
			}
		})
	}
	var in workflows.Input
	if err := json.Unmarshal([]byte(`{"connector": "sqlite", "connection": {"path": "p", "x": true, "n": 5}}`), &in); err != nil || in.Connection["n"] != "5" {
		t.Fatalf("a well-formed input: %v, %+v", err, in)
	}
}

// TestUnknownFieldFailsTheRun: a typo in a field name fails the run with InvalidInput instead of
// being ignored (a misspelt "filters" would otherwise extract everything).
func TestUnknownFieldFailsTheRun(t *testing.T) {
	f := newFixture(t)
	env := f.env()
	var calls activityCalls
	calls.listen(env)
	env.ExecuteWorkflow(workflows.ExtractionWorkflowName, map[string]any{
		"connector": "sqlite", "connection": map[string]any{"path": "p"}, "filter": map[string]any{"excludeTables": []string{"*"}},
	})
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != "InvalidInput" || !strings.Contains(ae.Error(), `unknown field "filter"`) {
		t.Fatalf("err = %v, want InvalidInput naming the unknown field", err)
	}
	if len(calls.names) != 0 {
		t.Errorf("activities ran: %v", calls.names)
	}
}
