package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// Details formats progress as the run's current details: one markdown line that the Web UI
// shows on the run's page (and `temporal workflow describe` prints) without the progress query,
// e.g. "**extracting** · schemas 3/10 · tables 120 · columns 900". It holds the phase and counts,
// nothing from the input or the secrets.
func (p Progress) Details() string {
	return fmt.Sprintf("**%s** · schemas %d/%d · tables %d · columns %d",
		p.Phase, p.SchemasDone, p.SchemasTotal, p.Counts["tables"], p.Counts["columns"])
}

// enter moves the run to phase and shows it (see show).
func (p *Progress) enter(ctx workflow.Context, phase string) {
	p.Phase = phase
	p.show(ctx)
}

// show sets the run's current details to p.Details(). workflow.SetCurrentDetails only stores the
// string in the workflow's environment, which the built-in __temporal_workflow_metadata query
// reads (SDK v1.50 internal/internal_workflow.go: SetCurrentDetails assigns
// workflowEnvironmentOptions.currentDetails, getWorkflowMetadata returns it). It emits no command
// and records nothing in history, so calling it needs no workflow.GetVersion gate and changes no
// replay.
func (p *Progress) show(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, p.Details())
}
