package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/secrets"
)

// ConnectionReport is the result of TestConnectionWorkflow: what was checked, without secrets.
type ConnectionReport struct {
	Connector     string                  `json:"connector"`
	ServerVersion string                  `json:"serverVersion,omitempty"`
	Identity      string                  `json:"identity,omitempty"`
	Fields        []string                `json:"fields"`
	Versions      []secrets.SecretVersion `json:"secretVersions,omitempty"`
	// MissingPrivileges names catalog privileges the credentials lack.
	MissingPrivileges []string `json:"missingPrivileges,omitempty"`
	// OutputProblem says why the worker cannot write output, if it cannot.
	OutputProblem string `json:"outputProblem,omitempty"`
}

// TestConnectionWorkflow validates the input, resolves the secrets, runs the preflight probe and
// releases the credentials, without extracting anything. It fails with the same classified
// errors as ExtractionWorkflow.
func TestConnectionWorkflow(ctx workflow.Context, in Input) (*ConnectionReport, error) {
	progress := &Progress{Phase: PhaseValidating, Counts: map[string]int64{}}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return *progress, nil }); err != nil {
		return nil, err
	}
	// The Web UI shows the phase as the run's current details (no command, no gate: see show).
	phase := func(p string) {
		progress.Phase = p
		workflow.SetCurrentDetails(ctx, "**"+p+"** · connection check")
	}
	phase(PhaseValidating)
	if problems := validateInput(ctx, in); len(problems) > 0 {
		phase(PhaseFailed)
		return nil, invalidInput(problems)
	}
	lease := newLeaseHolder(ctx, in, progress)
	defer lease.release()

	phase(PhaseResolving)
	if err := lease.resolve(ctx); err != nil {
		phase(PhaseFailed)
		return nil, err
	}
	phase(PhasePreflight)
	var report activities.PreflightResult
	if err := lease.run(ctx, func(ctx workflow.Context, li activities.LeaseInput) error {
		return workflow.ExecuteActivity(withOptions(ctx, preflightOptions, li.Lease), acts.Preflight, activities.PreflightInput{LeaseInput: li}).Get(ctx, &report)
	}); err != nil {
		phase(PhaseFailed)
		return nil, err
	}
	phase(PhaseReleasing)
	lease.release()
	phase(PhaseDone)
	return &ConnectionReport{
		Connector:         in.Connector,
		ServerVersion:     report.ServerVersion,
		Identity:          report.Identity,
		Fields:            lease.lease.Fields,
		Versions:          lease.versions(),
		MissingPrivileges: report.MissingPrivileges,
		OutputProblem:     report.OutputProblem,
	}, nil
}
