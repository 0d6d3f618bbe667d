package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// scheduleCommand is one subcommand of `secure-agent schedule`.
type scheduleCommand struct {
	name    string
	args    string // the synopsis after the name
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func scheduleCommands() []scheduleCommand {
	return []scheduleCommand{
		{"create", "--id ID --input FILE (--cron EXPR | --every D) [flags]", "validate an input and create a schedule that starts ExtractionWorkflow with it", runScheduleCreate},
		{"list", "[--all] [--json]", "list the extraction schedules: id, when, next run, paused", runScheduleList},
		{"describe", "--id ID [--json]", "show a schedule: spec, policies, recent runs with their results, next runs", runScheduleDescribe},
		{"trigger", "--id ID [--overlap POLICY]", "start a run now", runScheduleTrigger},
		{"pause", "--id ID [--note TEXT]", "stop starting runs until unpaused", runSchedulePause},
		{"unpause", "--id ID [--note TEXT]", "start runs again", runScheduleUnpause},
		{"delete", "--id ID", "delete a schedule (runs it started go on)", runScheduleDelete},
	}
}

// runSchedule dispatches `secure-agent schedule <subcommand>`.
func runSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		scheduleUsage(stderr)
		return exitError{2}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		scheduleUsage(stdout)
		return nil
	}
	for _, c := range scheduleCommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "secure-agent schedule: unknown subcommand %q\n\n", clipValue(args[0]))
	scheduleUsage(stderr)
	return exitError{2}
}

func scheduleUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: secure-agent schedule <subcommand> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Schedules on the Temporal service that start ExtractionWorkflow with a fixed input.")
	fmt.Fprintln(w)
	for _, c := range scheduleCommands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'secure-agent schedule <subcommand> --help' for its flags and settings.")
}

// Settings each subcommand reads, listed by --help.
var (
	scheduleSettings = settingsOf(temporalSettings, agentSettings("CODEC_KEYS", "CODEC_KEYS_FILE", "LOG_LEVEL", "LOG_FORMAT"))
	// create also checks the input as run does, and defaults --task-queue.
	scheduleCreateSettings = settingsOf(temporalSettings, agentSettings("TASK_QUEUE", "POLICY_FILE", "ALLOW_SENSITIVE_LITERALS",
		"CODEC_KEYS", "CODEC_KEYS_FILE", "LOG_LEVEL", "LOG_FORMAT"))
)

// scheduleHelp is the --help text of a subcommand.
func scheduleHelp(name string, settings []setting, about string) helpText {
	for _, c := range scheduleCommands() {
		if c.name == name {
			return helpText{usage: "secure-agent schedule " + name + " " + c.args, about: strings.ToUpper(c.summary[:1]) + c.summary[1:] + ". " + about, settings: settings}
		}
	}
	panic("no schedule subcommand " + name)
}

// dialSchedules connects as `run` does: the agent's settings, Temporal's own connection
// variables, and the codec's encryption when keys are configured.
func dialSchedules(ctx context.Context) (client.Client, worker.Settings, error) {
	settings, err := worker.LoadSettings()
	if err != nil {
		return nil, settings, err
	}
	c, err := worker.Dial(ctx, settings, settings.NewLogger())
	return c, settings, err
}

// scheduleFailure explains a failed call on the schedule id: a missing schedule says how to
// find the existing ones.
func scheduleFailure(id, what string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%s schedule %q: no such schedule in this namespace ('secure-agent schedule list' shows those there): %w", what, id, err)
	}
	return fmt.Errorf("%s schedule %q: %w", what, id, err)
}

func runScheduleCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule create")
	var f createFlags
	fs.StringVar(&f.id, "id", "", "schedule `ID` (required): letters, digits, '.', '_', '-'")
	fs.StringVar(&f.input, "input", "", "workflow input JSON `FILE` every run starts with (required; - for standard input), checked as secure-agent run checks it")
	fs.StringVar(&f.cron, "cron", "", "when to run, a cron `EXPR` in UTC: \"0 2 * * *\" is 02:00 every day; \"CRON_TZ=Europe/Paris 0 2 * * *\" sets a zone; @daily, @hourly, ... work")
	fs.StringVar(&f.every, "every", "", "when to run: every `DURATION`, counted from the Unix epoch: 24h, 6h, 30m (whole seconds, at least 1s)")
	fs.StringVar(&f.offset, "offset", "", "with --every: shift each interval by `DURATION`, less than --every (24h with offset 2h runs at 02:00 UTC)")
	fs.StringVar(&f.overlap, "overlap", "skip", "what a due run does while the previous one still runs, a `POLICY`: "+overlapNames())
	fs.StringVar(&f.catchupWindow, "catchup-window", "", "after the Temporal service was unavailable, start missed runs at most `DURATION` late (at least 10s; default: the service's, one year)")
	fs.StringVar(&f.jitter, "jitter", "", "delay each run by a random time up to `DURATION` (for example 10m), so many schedules do not start at once")
	fs.StringVar(&f.note, "note", "", "a one-line note (`TEXT`) shown with the schedule")
	fs.StringVar(&f.taskQueue, "task-queue", "", "task `QUEUE` the agent polls (default: SECURE_AGENT_TASK_QUEUE, else secure-agent)")
	fs.StringVar(&f.workflowIDPrefix, "workflow-id-prefix", "", "workflow id `PREFIX` of each run; the service appends \"-<time>\" (default: the schedule id)")
	fs.BoolVar(&f.paused, "paused", false, "create the schedule paused")
	fs.BoolVar(&f.pauseOnFailure, "pause-on-failure", false, "pause the schedule when a run fails, until someone unpauses it")
	if err := parseFlags(fs, args, scheduleHelp("create", scheduleCreateSettings, "The input file is checked as secure-agent run checks it (unknown fields, sensitive literals, every field's rules), and so is every flag, before anything is created: a problem exits 2 and creates nothing. The schedule stores the input, encrypted when codec keys are set. Each run is an ordinary ExtractionWorkflow: the agent resolves its secrets and applies its policy at every run."), stdout, stderr); err != nil {
		return err
	}

	plan, problems := f.plan()
	settings, err := worker.LoadSettings()
	if err != nil {
		return err
	}
	var in workflows.Input
	if f.input != "" {
		var readErr error
		in, readErr = readInput(f.input)
		var unreadable inputProblems
		switch {
		case errors.As(readErr, &unreadable):
			problems = append(problems, unreadable...)
		case readErr != nil:
			problems = append(problems, readErr.Error())
		default:
			for _, p := range startProblems(settings, in) {
				problems = append(problems, "input: "+p)
			}
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "secure-agent schedule create: %d problem(s); nothing was created:\n", len(problems))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  - %s\n", p)
		}
		return exitError{2}
	}
	if f.taskQueue == "" {
		f.taskQueue = settings.TaskQueue
	}
	if f.workflowIDPrefix == "" {
		f.workflowIDPrefix = f.id
	}

	c, err := worker.Dial(ctx, settings, settings.NewLogger())
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	summary, details := startMetadata(in, "schedule "+markdownText(f.id)+" (`secure-agent schedule`)")
	h, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:             f.id,
		Spec:           plan.spec,
		Overlap:        plan.overlap,
		CatchupWindow:  plan.catchupWindow,
		PauseOnFailure: plan.pauseOnFailure,
		Paused:         f.paused,
		Note:           f.note,
		Action: &client.ScheduleWorkflowAction{
			ID:            f.workflowIDPrefix,
			Workflow:      workflows.ExtractionWorkflowName,
			Args:          []any{in},
			TaskQueue:     f.taskQueue,
			StaticSummary: summary,
			StaticDetails: details,
		},
	})
	var invalid *serviceerror.InvalidArgument
	switch {
	case errors.Is(err, temporal.ErrScheduleAlreadyRunning):
		return fmt.Errorf("a schedule %q already exists: 'secure-agent schedule describe --id %s' shows it; delete it first or choose another id", f.id, f.id)
	case errors.As(err, &invalid):
		fmt.Fprintf(stderr, "secure-agent schedule create: the Temporal service refused the schedule; nothing was created: %s\n", invalid.Message)
		return exitError{2}
	case err != nil:
		return fmt.Errorf("creating schedule %q: %w", f.id, err)
	}
	fmt.Fprintf(stdout, "created schedule %s: %s, overlap %s; runs start %s on task queue %s\n",
		f.id, specWithJitter(&plan.spec), overlapName(plan.overlap), workflows.ExtractionWorkflowName, f.taskQueue)
	switch d, err := h.Describe(ctx); {
	case f.paused:
		fmt.Fprintln(stdout, "the schedule is paused: 'secure-agent schedule unpause --id "+f.id+"' starts it")
	case err == nil && len(d.Info.NextActionTimes) > 0:
		fmt.Fprintf(stdout, "next run %s\n", d.Info.NextActionTimes[0].UTC().Format(time.RFC3339))
	}
	return nil
}

// specWithJitter is specText plus the jitter, when there is one.
func specWithJitter(s *client.ScheduleSpec) string {
	text := specText(s)
	if s != nil && s.Jitter > 0 {
		text += ", jitter " + s.Jitter.String()
	}
	return text
}

// idFlag adds the required --id flag and returns a check that reports it missing.
func idFlag(fs *flag.FlagSet) (*string, func(stderr io.Writer) error) {
	id := fs.String("id", "", "schedule `ID` (required)")
	return id, func(stderr io.Writer) error {
		if *id == "" {
			fmt.Fprintf(stderr, "secure-agent %s: --id is required ('secure-agent schedule list' shows the ids)\n", fs.Name())
			return exitError{2}
		}
		return nil
	}
}

func runScheduleTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule trigger")
	id, check := idFlag(fs)
	overlap := fs.String("overlap", "", "overlap `POLICY` for this run only (default: the schedule's): "+overlapNames())
	if err := parseFlags(fs, args, scheduleHelp("trigger", scheduleSettings, "The schedule's overlap policy applies unless --overlap overrides it: with skip, a trigger while a run is still running starts nothing."), stdout, stderr); err != nil {
		return err
	}
	if err := check(stderr); err != nil {
		return err
	}
	policy := enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED
	if *overlap != "" {
		var ok bool
		if policy, ok = parseOverlap(*overlap); !ok {
			fmt.Fprintf(stderr, "secure-agent schedule trigger: --overlap %q is not a policy: use one of %s\n", clipValue(*overlap), overlapNames())
			return exitError{2}
		}
	}
	c, _, err := dialSchedules(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	if err := c.ScheduleClient().GetHandle(ctx, *id).Trigger(ctx, client.ScheduleTriggerOptions{Overlap: policy}); err != nil {
		return scheduleFailure(*id, "triggering", err)
	}
	fmt.Fprintf(stdout, "triggered schedule %s: 'secure-agent schedule describe --id %s' shows the run and its result\n", *id, *id)
	return nil
}

func runSchedulePause(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return pauseOrUnpause(ctx, "pause", args, stdout, stderr)
}

func runScheduleUnpause(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return pauseOrUnpause(ctx, "unpause", args, stdout, stderr)
}

func pauseOrUnpause(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule " + verb)
	id, check := idFlag(fs)
	note := fs.String("note", "", "why (`TEXT`), shown with the schedule (default: \""+verb+"d with secure-agent\")")
	if err := parseFlags(fs, args, scheduleHelp(verb, scheduleSettings, "A run already running goes on either way."), stdout, stderr); err != nil {
		return err
	}
	if err := check(stderr); err != nil {
		return err
	}
	if *note == "" {
		*note = verb + "d with secure-agent"
	}
	c, _, err := dialSchedules(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	h := c.ScheduleClient().GetHandle(ctx, *id)
	if verb == "pause" {
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: *note})
	} else {
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: *note})
	}
	if err != nil {
		return scheduleFailure(*id, strings.TrimSuffix(verb, "e")+"ing", err)
	}
	fmt.Fprintf(stdout, "%sd schedule %s\n", verb, *id)
	return nil
}

func runScheduleDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schedule delete")
	id, check := idFlag(fs)
	if err := parseFlags(fs, args, scheduleHelp("delete", scheduleSettings, "Runs the schedule already started are neither cancelled nor terminated."), stdout, stderr); err != nil {
		return err
	}
	if err := check(stderr); err != nil {
		return err
	}
	c, _, err := dialSchedules(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	if err := c.ScheduleClient().GetHandle(ctx, *id).Delete(ctx); err != nil {
		return scheduleFailure(*id, "deleting", err)
	}
	fmt.Fprintf(stdout, "deleted schedule %s; runs it already started go on\n", *id)
	return nil
}
