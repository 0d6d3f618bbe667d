package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

var runHelp = helpText{
	usage: "secure-agent run --input FILE [--json | --quiet] [--workflow-id ID] [--task-queue NAME]",
	about: "Start an ExtractionWorkflow with the input in FILE (the same JSON as the Web UI's \"Start Workflow\" box) on " +
		"the Temporal service the TEMPORAL_* settings name, show its progress on stderr and print the summary on stdout. " +
		"An agent (secure-agent worker) must poll the task queue. Exit codes: 0 done, 1 the run failed, 2 invalid " +
		"input or flags (nothing was started).",
	settings: settingsOf(temporalSettings, agentSettings("TASK_QUEUE", "CODEC_KEYS", "CODEC_KEYS_FILE", "POLICY_FILE", "ALLOW_SENSITIVE_LITERALS", "LOG_LEVEL", "LOG_FORMAT")),
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run")
	inputPath := fs.String("input", "", "path of the workflow input JSON `FILE` (- for standard input)")
	workflowID := fs.String("workflow-id", "", "workflow `ID` (default: extraction-<connector>-<time>)")
	taskQueue := fs.String("task-queue", "", "`NAME` of the task queue the agent polls (default: SECURE_AGENT_TASK_QUEUE, else secure-agent)")
	quiet := fs.Bool("quiet", false, "print only the summary (or the failure): no \"started\" line, no progress")
	asJSON := fs.Bool("json", false, "print the result, the failure or the input's problems as JSON on stdout, nothing else there")
	if err := parseFlags(fs, args, runHelp, stdout, stderr); err != nil {
		return err
	}
	if *inputPath == "" {
		fmt.Fprintln(stderr, "secure-agent run: --input is required: the path of a workflow input JSON file (see examples/), or - for standard input")
		return exitError{2}
	}
	in, err := readInput(*inputPath)
	var problems inputProblems
	if errors.As(err, &problems) {
		return reportInputProblems("run", problems, *asJSON, stdout, stderr)
	}
	settings, err := worker.LoadSettings()
	if err != nil {
		return err
	}
	if *taskQueue == "" {
		*taskQueue = settings.TaskQueue // the agent's own queue, as schedule create
	}
	if problems := startProblems(settings, in); len(problems) > 0 {
		return reportInputProblems("run", problems, *asJSON, stdout, stderr)
	}
	c, err := worker.Dial(ctx, settings, settings.NewLogger())
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	mode := followProgress
	switch {
	case *asJSON:
		mode = followJSON
	case *quiet:
		mode = followQuiet
	}
	return startAndFollow(ctx, c, payloadConverter(settings), *taskQueue, *workflowID, in, mode, stdout, stderr)
}

// payloadConverter decodes what the agent's workers encode: through the codec when the
// settings hold its keys.
func payloadConverter(s worker.Settings) converter.DataConverter {
	if keys, err := s.Codec(); err == nil && keys != nil {
		dc, _ := codec.ClientOptions(keys)
		return dc
	}
	return converter.GetDefaultDataConverter()
}

// startProblems is what run and check refuse before anything is started (see
// workflows.Input.StartProblems): sensitive literals are let through only where this machine's
// own settings allow them (local development).
func startProblems(s worker.Settings, in workflows.Input) inputProblems {
	allow := s.AllowSensitiveLiterals
	if pol, err := s.Policy(); err == nil {
		allow = pol.AllowSensitiveLiterals()
	}
	return in.StartProblems(allow)
}

// followMode says how startAndFollow reports.
type followMode int

const (
	followProgress followMode = iota // live progress on stderr, summary on stdout
	followQuiet                      // summary on stdout only
	followJSON                       // the result or the failure as JSON on stdout only
)

// startAndFollow starts an ExtractionWorkflow, reports its progress while it runs and its
// summary at the end, as mode says. A failed run returns exitError{1} after reporting why.
func startAndFollow(ctx context.Context, c client.Client, dc converter.DataConverter, taskQueue, id string, in workflows.Input, mode followMode, stdout, stderr io.Writer) error {
	if id == "" {
		id = fmt.Sprintf("extraction-%s-%s", in.Connector, time.Now().UTC().Format("20060102T150405.000"))
	}
	summary, details := startMetadata(in, "the secure-agent CLI")
	opts := client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue, StaticSummary: summary, StaticDetails: details}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.ExtractionWorkflowName, in)
	if err != nil {
		return fmt.Errorf("starting the workflow: %w", err)
	}
	if mode == followProgress {
		fmt.Fprintf(stderr, "started %s (run %s) on task queue %s\n", run.GetID(), run.GetRunID(), taskQueue)
	}

	done := make(chan error, 1)
	var sum workflows.Summary
	go func() { done <- run.Get(ctx, &sum) }()
	bar := newProgressBar(stderr, mode == followProgress)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	// Interrupted: only this command stops. The run goes on in Temporal; say how to follow or
	// stop it, and exit 130 like other commands a signal ends.
	interrupted := func() error {
		bar.finish()
		fmt.Fprintf(stderr, "interrupted: stopped following %s (run %s); the run goes on in Temporal.\n"+
			"  follow it:  temporal workflow show --workflow-id %s\n"+
			"  stop it:    temporal workflow cancel --workflow-id %s\n", run.GetID(), run.GetRunID(), shellQuote(run.GetID()), shellQuote(run.GetID()))
		return exitError{130}
	}
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() != nil {
				return interrupted() // run.Get gave up because ctx ended, not because the run failed
			}
			if err == nil {
				bar.update(doneProgress(sum))
			}
			bar.finish()
			if err != nil {
				if mode == followJSON {
					_ = json.NewEncoder(stdout).Encode(map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID(), "error": failureJSON(err)})
				} else {
					fmt.Fprintf(stderr, "extraction failed: %s\n", describeFailure(err))
				}
				return exitError{1}
			}
			if mode == followJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID(), "summary": sum})
			}
			printSummary(stdout, run, sum)
			return nil
		case <-tick.C:
			if mode == followProgress {
				if p, ok := queryProgress(ctx, c, run); ok {
					if p.Phase == workflows.PhaseExtracting {
						p.Counts = withRunning(p.Counts, runningCounts(ctx, c, dc, run))
					}
					bar.update(p)
				}
			}
		case <-ctx.Done():
			return interrupted()
		}
	}
}

func queryProgress(ctx context.Context, c client.Client, run client.WorkflowRun) (workflows.Progress, bool) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var p workflows.Progress
	v, err := c.QueryWorkflow(qctx, run.GetID(), run.GetRunID(), workflows.QueryProgress)
	if err != nil || v.Get(&p) != nil {
		return p, false
	}
	return p, true
}

// runningCounts adds up what the run's extraction batches still in progress have written so
// far, from their last heartbeats (activities.Cursor.Running): counts inside a batch, which the
// workflow learns only when the batch ends. Best effort: nil when the run cannot be described.
func runningCounts(ctx context.Context, c client.Client, dc converter.DataConverter, run client.WorkflowRun) map[string]int64 {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(dctx, run.GetID(), run.GetRunID())
	if err != nil {
		return nil
	}
	return sumRunning(desc.GetPendingActivities(), dc)
}

// sumRunning adds up the running counts in the heartbeats of pending ExtractSchemas activities.
func sumRunning(pending []*workflowpb.PendingActivityInfo, dc converter.DataConverter) map[string]int64 {
	out := map[string]int64{}
	for _, pa := range pending {
		if pa.GetActivityType().GetName() != extractActivity || pa.GetHeartbeatDetails() == nil {
			continue
		}
		var cur activities.Cursor
		if dc.FromPayloads(pa.GetHeartbeatDetails(), &cur) != nil {
			continue
		}
		for k, n := range cur.Running {
			out[k] += n
		}
	}
	return out
}

// extractActivity is the activity type whose heartbeats carry running counts.
const extractActivity = "ExtractSchemas"

// withRunning returns counts plus running, in a new map.
func withRunning(counts, running map[string]int64) map[string]int64 {
	out := maps.Clone(counts)
	if out == nil {
		out = map[string]int64{}
	}
	for k, n := range running {
		out[k] += n
	}
	return out
}

// failureJSON describes a failed run for --json: the error kind and its message.
func failureJSON(err error) map[string]string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return map[string]string{"type": ae.Type(), "message": ae.Message()}
	}
	return map[string]string{"type": "", "message": err.Error()}
}

func formatCounts(counts map[string]int64) string {
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s=%d", k, counts[k])
	}
	return strings.Join(parts, " ")
}

func printSummary(w io.Writer, run client.WorkflowRun, sum workflows.Summary) {
	fmt.Fprintf(w, "\nextraction complete: %s (run %s)\n", run.GetID(), run.GetRunID())
	printSummaryBody(w, sum)
}

// printSummaryBody prints the summary's lines below printSummary's heading.
func printSummaryBody(w io.Writer, sum workflows.Summary) {
	fmt.Fprintf(w, "  connector   %s %s\n", sum.Connector, sum.ServerVersion)
	fmt.Fprintf(w, "  schemas     %d\n", sum.Schemas)
	fmt.Fprintf(w, "  entities    %s\n", formatCounts(sum.Counts))
	fmt.Fprintf(w, "  output      %s\n", sum.OutputDir)
	fmt.Fprintf(w, "  manifest    %s\n", sum.Manifest)
	if len(sum.Formats) > 0 {
		fmt.Fprintf(w, "  formats     %s\n", strings.Join(sum.Formats, ", "))
	}
	if len(sum.Pushed) > 0 {
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(sum.Pushed)) {
			r := sum.Pushed[name]
			parts = append(parts, fmt.Sprintf("%s %d sent, %d already there", name, r.Sent, r.Skipped))
		}
		fmt.Fprintf(w, "  pushed      %s\n", strings.Join(parts, "; "))
	}
	if c := sum.Changes; c != nil {
		fmt.Fprintf(w, "  changes     since run %s: %d schema(s) reused, %d extracted, %d added, %d removed; %d object(s) removed (removed.jsonl.gz)\n",
			c.Previous.RunID, c.ReusedSchemas, c.ExtractedSchemas, c.AddedSchemas, c.RemovedSchemas, c.RemovedObjects)
	}
	fmt.Fprintf(w, "  durations   resolve %s, preflight %s, extract %s, finalize %s, total %s\n",
		sum.Durations["resolve"], sum.Durations["preflight"], sum.Durations["extract"], sum.Durations["finalize"], sum.Durations["total"])
	for _, v := range sum.Versions {
		fmt.Fprintf(w, "  secret      %s version %s\n", v.Ref.Path, orDash(v.Version))
	}
	if sum.Rotations > 0 {
		fmt.Fprintf(w, "  rotated     %d× during the run; replaced:", sum.Rotations)
		for _, v := range sum.PreviousVersions {
			fmt.Fprintf(w, " %s version %s", v.Ref.Path, orDash(v.Version))
		}
		fmt.Fprintln(w)
	}
	if sum.Redactions > 0 {
		fmt.Fprintf(w, "  redacted    %d value(s) of sensitive fields found in extracted text, written as [REDACTED]\n", sum.Redactions)
	}
}

// describeFailure names the error type (the kind) and message of a failed workflow.
func describeFailure(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		if strings.HasPrefix(ae.Message(), ae.Type()+": ") {
			return ae.Message() // classified errors already start with their kind
		}
		return fmt.Sprintf("%s: %s", ae.Type(), ae.Message())
	}
	return err.Error()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shellQuote quotes s for a POSIX shell when it holds anything but letters, digits and ._:/@-
// (an IPv6 address's brackets would be a glob).
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:/@-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
