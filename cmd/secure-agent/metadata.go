package main

import (
	"fmt"
	"strings"

	"github.com/secure-agent/secure-agent/workflows"
)

// startMetadata returns the Temporal user metadata a CLI-started extraction carries
// (StartWorkflowOptions.StaticSummary and StaticDetails), which the Web UI shows in its list and
// on the run's page without a query: the connector, the source label, the secret store type and
// the output type (and prefix). It never holds a connection value, a secret name or a secret:
// only fields that say what kind of run it is. The source label and prefix are the input's own
// (already in history); they are escaped so they show as text, not as markdown.
//
// startedBy names what started the run, as shown in the details (e.g. "`secure-agent run`").
func startMetadata(in workflows.Input, startedBy string) (summary, details string) {
	output := in.Output.Type
	if output == "" {
		output = "local"
	}
	summary = in.Connector + " extraction"
	if in.Source != "" {
		summary += " of " + markdownText(in.Source)
	}
	summary += " → " + output + " output"

	var b strings.Builder
	fmt.Fprintf(&b, "**connector** %s  \n", markdownText(in.Connector))
	if in.Source != "" {
		fmt.Fprintf(&b, "**source** %s  \n", markdownText(in.Source))
	}
	if in.SecretStore != nil {
		fmt.Fprintf(&b, "**secret store** %s  \n", markdownText(in.SecretStore.Type))
	}
	fmt.Fprintf(&b, "**output** %s", output)
	if in.Output.Prefix != "" {
		fmt.Fprintf(&b, ", prefix %s", markdownText(in.Output.Prefix))
	}
	fmt.Fprintf(&b, "  \nstarted by %s; live progress: the current details, or `temporal workflow query --type progress`", startedBy)
	return summary, b.String()
}

// markdownText escapes the characters that Temporal markdown would take as formatting or links,
// and drops line breaks, so a label shows as the text it is.
func markdownText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r':
			b.WriteByte(' ')
		case strings.ContainsRune("\\`*_[]<>|~", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
