package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// scheduleListEntry is one line of `schedule list`.
type scheduleListEntry struct {
	ID           string     `json:"id"`
	WorkflowType string     `json:"workflowType"`
	Spec         string     `json:"spec"`
	NextRun      *time.Time `json:"nextRun,omitempty"`
	Paused       bool       `json:"paused"`
	Note         string     `json:"note,omitempty"`
}

func runScheduleList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule list")
	all := fs.Bool("all", false, "list every schedule of the namespace, not only those that start "+workflows.ExtractionWorkflowName)
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := parseFlags(fs, args, scheduleHelp("list", scheduleSettings, "The list comes from the namespace's visibility store, which may show a schedule created a moment ago only after a short delay."), stdout, stderr); err != nil {
		return err
	}
	c, _, err := dialSchedules(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return fmt.Errorf("listing schedules: %w", err)
	}
	entries := []scheduleListEntry{}
	for it.HasNext() {
		s, err := it.Next()
		if err != nil {
			return fmt.Errorf("listing schedules: %w", err)
		}
		if !*all && s.WorkflowType.Name != workflows.ExtractionWorkflowName {
			continue
		}
		e := scheduleListEntry{ID: s.ID, WorkflowType: s.WorkflowType.Name, Spec: specWithJitter(s.Spec), Paused: s.Paused, Note: s.Note}
		if len(s.NextActionTimes) > 0 {
			e.NextRun = &s.NextActionTimes[0]
		}
		entries = append(entries, e)
	}
	if *asJSON {
		return writeIndentedJSON(stdout, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintln(stderr, "no schedules ('secure-agent schedule create' makes one; --all lists schedules of other workflows too)")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSPEC\tNEXT RUN\tPAUSED")
	for _, e := range entries {
		next := "-"
		if e.NextRun != nil && !e.Paused {
			next = e.NextRun.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ID, e.Spec, next, yesOrNo(e.Paused))
	}
	return tw.Flush()
}

// scheduleView is what `schedule describe` shows. It names the connector and the source label
// of the input, never a connection value.
type scheduleView struct {
	ID               string            `json:"id"`
	WorkflowType     string            `json:"workflowType"`
	TaskQueue        string            `json:"taskQueue"`
	WorkflowIDPrefix string            `json:"workflowIdPrefix"`
	Summary          string            `json:"summary,omitempty"`
	Connector        string            `json:"connector,omitempty"`
	Source           string            `json:"source,omitempty"`
	InputEncoding    string            `json:"inputEncoding"`
	InputNote        string            `json:"inputNote,omitempty"`
	Spec             string            `json:"spec"`
	Jitter           string            `json:"jitter"`
	Overlap          string            `json:"overlap"`
	CatchupWindow    string            `json:"catchupWindow"`
	PauseOnFailure   bool              `json:"pauseOnFailure"`
	Paused           bool              `json:"paused"`
	Note             string            `json:"note,omitempty"`
	Actions          int               `json:"actions"`
	SkippedOverlap   int               `json:"skippedOverlap"`
	MissedCatchup    int               `json:"missedCatchupWindow"`
	Running          []string          `json:"running"`
	RecentActions    []scheduleRun     `json:"recentActions"`
	NextRuns         []time.Time       `json:"nextRuns"`
	CreatedAt        time.Time         `json:"createdAt"`
	raw              *commonpb.Payload // the stored input, as readScheduleInput finds it
}

// scheduleRun is one action the schedule took and how its run ended.
type scheduleRun struct {
	ScheduledAt time.Time         `json:"scheduledAt"`
	StartedAt   time.Time         `json:"startedAt"`
	WorkflowID  string            `json:"workflowId"`
	RunID       string            `json:"runId"`
	Status      string            `json:"status"`
	Counts      map[string]int64  `json:"counts,omitempty"`
	Error       map[string]string `json:"error,omitempty"`
}

func runScheduleDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule describe")
	id, check := idFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON object")
	if err := parseFlags(fs, args, scheduleHelp("describe", scheduleSettings, "Of the stored input it shows the connector and the source label only, never a connection value; with codec keys set it decrypts the input to read them. Each recent run's status and result (entity counts, or the failure) is looked up."), stdout, stderr); err != nil {
		return err
	}
	if err := check(stderr); err != nil {
		return err
	}
	c, settings, err := dialSchedules(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	d, err := c.ScheduleClient().GetHandle(ctx, *id).Describe(ctx)
	if err != nil {
		if keys, _ := settings.Codec(); keys == nil && strings.Contains(err.Error(), "decode") {
			return fmt.Errorf("describing schedule %q: its payloads are encrypted: set SECURE_AGENT_CODEC_KEYS (or _FILE) as on the agent: %w", *id, err)
		}
		return scheduleFailure(*id, "describing", err)
	}
	v := describeSchedule(ctx, c, settings, *id, d)
	if *asJSON {
		return writeIndentedJSON(stdout, v)
	}
	printScheduleView(stdout, v)
	return nil
}

// describeSchedule builds the view of a described schedule, looking up how each recent run
// ended.
func describeSchedule(ctx context.Context, c client.Client, settings worker.Settings, id string, d *client.ScheduleDescription) scheduleView {
	v := scheduleView{
		ID:             id,
		Spec:           specText(d.Schedule.Spec),
		Overlap:        overlapName(d.Schedule.Policy.Overlap),
		CatchupWindow:  d.Schedule.Policy.CatchupWindow.String(),
		PauseOnFailure: d.Schedule.Policy.PauseOnFailure,
		Paused:         d.Schedule.State.Paused,
		Note:           d.Schedule.State.Note,
		Actions:        d.Info.NumActions,
		SkippedOverlap: d.Info.NumActionsSkippedOverlap,
		MissedCatchup:  d.Info.NumActionsMissedCatchupWindow,
		Running:        []string{},
		RecentActions:  []scheduleRun{},
		NextRuns:       d.Info.NextActionTimes,
		CreatedAt:      d.Info.CreatedAt,
	}
	if d.Schedule.Spec != nil {
		v.Jitter = d.Schedule.Spec.Jitter.String()
	}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		v.WorkflowType, _ = a.Workflow.(string)
		v.TaskQueue, v.WorkflowIDPrefix, v.Summary = a.TaskQueue, a.ID, a.StaticSummary
		if len(a.Args) > 0 {
			v.raw, _ = a.Args[0].(*commonpb.Payload)
		}
		readScheduleInput(&v, settings)
	}
	for _, w := range d.Info.RunningWorkflows {
		v.Running = append(v.Running, w.WorkflowID)
	}
	for _, a := range d.Info.RecentActions {
		r := scheduleRun{ScheduledAt: a.ScheduleTime, StartedAt: a.ActualTime}
		if a.StartWorkflowResult != nil {
			r.WorkflowID, r.RunID = a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID
			runOutcome(ctx, c, &r)
		}
		v.RecentActions = append(v.RecentActions, r)
	}
	return v
}

// readScheduleInput fills the connector and the source label from the stored input, decrypting
// it when the settings hold codec keys. Nothing else of the input is kept.
func readScheduleInput(v *scheduleView, settings worker.Settings) {
	if v.raw == nil {
		v.InputNote = "no input"
		return
	}
	v.InputEncoding = string(v.raw.GetMetadata()[converter.MetadataEncoding])
	dc := converter.GetDefaultDataConverter()
	keys, err := settings.Codec()
	switch {
	case err != nil:
		v.InputNote = "not read: " + err.Error()
		return
	case keys != nil:
		dc, _ = codec.ClientOptions(keys)
	case v.InputEncoding == codec.EncodingEncrypted:
		v.InputNote = "encrypted: set SECURE_AGENT_CODEC_KEYS (or _FILE) as on the agent to read its connector"
		return
	}
	var in workflows.Input
	if err := dc.FromPayload(v.raw, &in); err != nil {
		v.InputNote = "not readable with these settings (were other codec keys used?)"
		return
	}
	v.Connector, v.Source = in.Connector, in.Source
}

// runOutcome looks up how a run the schedule started stands: its status, and for a closed run
// its entity counts or its failure.
func runOutcome(ctx context.Context, c client.Client, r *scheduleRun) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
	if err != nil {
		r.Status = "unknown (" + err.Error() + ")"
		return
	}
	status := desc.GetWorkflowExecutionInfo().GetStatus()
	r.Status = status.String()
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || status == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
		return
	}
	var sum workflows.Summary
	if err := c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &sum); err != nil {
		r.Error = failureJSON(err)
		return
	}
	r.Counts = sum.Counts
}

func printScheduleView(w io.Writer, v scheduleView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("schedule", "%s", v.ID)
	row("action", "%s on task queue %s, workflow ids %s-<time>", v.WorkflowType, v.TaskQueue, v.WorkflowIDPrefix)
	input := v.Connector
	if v.Source != "" {
		input += ", source " + v.Source
	}
	if v.InputNote != "" {
		input = strings.TrimPrefix(input+", ", ", ") + v.InputNote
	}
	row("input", "%s (stored %s)", input, orDash(v.InputEncoding))
	if v.Summary != "" {
		row("summary", "%s", v.Summary)
	}
	row("spec", "%s", v.Spec)
	row("jitter", "%s", orDash(v.Jitter))
	row("overlap", "%s", v.Overlap)
	row("catch-up window", "%s", v.CatchupWindow)
	row("pause on failure", "%s", yesOrNo(v.PauseOnFailure))
	state := "active"
	if v.Paused {
		state = "paused"
	}
	if v.Note != "" {
		state += " (" + v.Note + ")"
	}
	row("state", "%s", state)
	row("actions", "%d taken, %d skipped by the overlap policy, %d missed the catch-up window", v.Actions, v.SkippedOverlap, v.MissedCatchup)
	if len(v.Running) > 0 {
		row("running", "%s", strings.Join(v.Running, ", "))
	}
	for i, r := range v.RecentActions {
		k := ""
		if i == 0 {
			k = "recent runs"
		}
		result := ""
		switch {
		case r.Counts != nil:
			result = " " + formatCounts(r.Counts)
		case r.Error != nil:
			result = " " + describeFailureJSON(r.Error)
		}
		row(k, "%s %s %s%s", r.StartedAt.UTC().Format(time.RFC3339), r.WorkflowID, r.Status, result)
	}
	for i, t := range v.NextRuns {
		if i == 5 {
			break
		}
		k := ""
		if i == 0 {
			k = "next runs"
		}
		row(k, "%s", t.UTC().Format(time.RFC3339))
	}
	row("created", "%s", v.CreatedAt.UTC().Format(time.RFC3339))
	_ = tw.Flush()
}

// describeFailureJSON writes a failureJSON map as describeFailure writes an error.
func describeFailureJSON(f map[string]string) string {
	if f["type"] == "" || strings.HasPrefix(f["message"], f["type"]+": ") {
		return f["message"]
	}
	return f["type"] + ": " + f["message"]
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

func yesOrNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
