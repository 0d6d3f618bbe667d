package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// createFlags are the flags of `secure-agent schedule create`, as typed.
type createFlags struct {
	id, input                         string
	cron, every, offset               string
	overlap, catchupWindow, jitter    string
	note, taskQueue, workflowIDPrefix string
	paused, pauseOnFailure            bool
}

// schedulePlan is what create sends once every flag has been checked.
type schedulePlan struct {
	spec           client.ScheduleSpec
	overlap        enumspb.ScheduleOverlapPolicy
	catchupWindow  time.Duration // zero: the server's default (one year)
	pauseOnFailure bool
}

// overlapPolicies are the values of --overlap, in the order the help lists them.
var overlapPolicies = []struct {
	name    string
	policy  enumspb.ScheduleOverlapPolicy
	meaning string
}{
	{"skip", enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, "no new run while one is still running (the default)"},
	{"buffer-one", enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE, "start at most one more run once the running one ends"},
	{"buffer-all", enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL, "start every missed run, one after the other"},
	{"cancel-other", enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER, "cancel the running run, then start the new one"},
	{"terminate-other", enumspb.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER, "terminate the running run, then start the new one"},
	{"allow-all", enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL, "start every run at once, however many are running"},
}

// overlapNames lists the accepted --overlap values.
func overlapNames() string {
	names := make([]string, len(overlapPolicies))
	for i, p := range overlapPolicies {
		names[i] = p.name
	}
	return strings.Join(names, ", ")
}

// parseOverlap maps an --overlap value to its policy; ok is false for an unknown value.
func parseOverlap(s string) (enumspb.ScheduleOverlapPolicy, bool) {
	for _, p := range overlapPolicies {
		if p.name == s {
			return p.policy, true
		}
	}
	return enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED, false
}

// overlapName is the --overlap spelling of a policy ("skip"), or the server's own name for one
// this command does not know.
func overlapName(p enumspb.ScheduleOverlapPolicy) string {
	for _, o := range overlapPolicies {
		if o.policy == p {
			return o.name
		}
	}
	if p == enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
		return "skip" // what the server applies
	}
	return p.String()
}

// scheduleIDPattern is what create accepts as a schedule id or workflow id prefix: text that
// needs no quoting in a shell, a URL or the Web UI. The server appends "-<time>" to the prefix.
var scheduleIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// minCatchupWindow is the server's floor: a shorter window would be raised to it silently.
const minCatchupWindow = 10 * time.Second

// plan checks every flag but --input and returns the schedule they describe, or every problem at
// once, each saying what is wrong and what is allowed.
func (f createFlags) plan() (schedulePlan, []string) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	p := schedulePlan{pauseOnFailure: f.pauseOnFailure}

	switch {
	case f.id == "":
		add("--id is required: the schedule's name, for example nightly-orders")
	case !scheduleIDPattern.MatchString(f.id):
		add("--id %q is not a schedule id: use 1 to 200 letters, digits, '.', '_' or '-', starting with a letter or digit", clipValue(f.id))
	}
	if f.input == "" {
		add("--input is required: the workflow input JSON file every run starts with (as for secure-agent run)")
	}
	if f.workflowIDPrefix != "" && !scheduleIDPattern.MatchString(f.workflowIDPrefix) {
		add("--workflow-id-prefix %q is not usable: use 1 to 200 letters, digits, '.', '_' or '-', starting with a letter or digit", clipValue(f.workflowIDPrefix))
	}

	switch {
	case f.cron != "" && f.every != "":
		add("--cron and --every are both set: give one of them")
	case f.cron == "" && f.every == "":
		add("when to run is missing: give --cron (for example \"0 2 * * *\", 02:00 UTC every day) or --every (for example 24h)")
	case f.cron != "":
		if problem := cronProblem(f.cron); problem != "" {
			add("%s", problem)
		} else {
			p.spec.CronExpressions = []string{strings.TrimSpace(f.cron)}
		}
		if f.offset != "" {
			add("--offset applies to --every only: with --cron, write the minute and hour in the expression")
		}
	default:
		every, okEvery := flagWholeSeconds("--every", f.every, time.Second, add)
		offset, okOffset := time.Duration(0), true
		if f.offset != "" {
			offset, okOffset = flagWholeSeconds("--offset", f.offset, 0, add)
		}
		if okEvery && okOffset && offset >= every {
			add("--offset %s is not shorter than --every %s: the offset shifts each interval and must be less than it", offset, every)
		}
		p.spec.Intervals = []client.ScheduleIntervalSpec{{Every: every, Offset: offset}}
	}

	if policy, ok := parseOverlap(f.overlap); ok {
		p.overlap = policy
	} else {
		add("--overlap %q is not a policy: use one of %s", clipValue(f.overlap), overlapNames())
	}
	if f.catchupWindow != "" {
		if d, ok := flagDuration("--catchup-window", f.catchupWindow, add); ok {
			if d < minCatchupWindow {
				add("--catchup-window %s is shorter than the Temporal service's minimum of %s: use %s or more (missed runs older than the window are skipped)", d, minCatchupWindow, minCatchupWindow)
			}
			p.catchupWindow = d
		}
	}
	if f.jitter != "" {
		if d, ok := flagDuration("--jitter", f.jitter, add); ok {
			if d < 0 {
				add("--jitter %s is negative: use 0 or a positive duration such as 10m", d)
			}
			p.spec.Jitter = d
		}
	}
	if strings.ContainsAny(f.note, "\n\r") || len(f.note) > 1000 {
		add("--note must be one line of at most 1000 characters")
	}
	return p, problems
}

// flagDuration parses a flag's Go duration, reporting a problem in plain words.
func flagDuration(flagName, s string, add func(string, ...any)) (time.Duration, bool) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		add("%s %q is not a duration: write it like 90s, 10m or 24h (units s, m, h)", flagName, clipValue(s))
		return 0, false
	}
	return d, true
}

// flagWholeSeconds parses a duration that must be a whole number of seconds and at least least.
func flagWholeSeconds(flagName, s string, least time.Duration, add func(string, ...any)) (time.Duration, bool) {
	d, ok := flagDuration(flagName, s, add)
	switch {
	case !ok:
		return 0, false
	case d < least:
		if least == 0 {
			add("%s %s is negative: use 0 or more", flagName, d)
		} else {
			add("%s %s is too short: schedules run at most once a second, use %s or more", flagName, d, least)
		}
		return 0, false
	case d%time.Second != 0:
		add("%s %s is not a whole number of seconds: schedules count in seconds", flagName, d)
		return 0, false
	}
	return d, true
}

// cronShorthands are the @-forms the Temporal service accepts besides "@every <duration>".
var cronShorthands = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// cronProblem checks the shape of a cron expression as the Temporal service reads it: an
// optional "CRON_TZ=<zone> " prefix, 5 to 7 fields (or a shorthand), an optional "# comment".
// The service checks each field's values when the schedule is created and refuses a bad one
// before anything is stored; create reports that refusal the same way.
func cronProblem(expr string) string {
	body := strings.TrimSpace(expr)
	if strings.HasPrefix(body, "TZ=") || strings.HasPrefix(body, "CRON_TZ=") {
		_, rest, found := strings.Cut(body, " ")
		if !found {
			return fmt.Sprintf("--cron %q names a time zone but no time: write for example \"CRON_TZ=Europe/Paris 0 2 * * *\"", clipValue(expr))
		}
		body = rest
	}
	body, _, _ = strings.Cut(body, "#")
	body = strings.TrimSpace(body)
	if strings.HasPrefix(body, "@") {
		if strings.HasPrefix(body, "@every ") {
			return ""
		}
		for _, s := range cronShorthands {
			if body == s {
				return ""
			}
		}
		return fmt.Sprintf("--cron %q is not a known shorthand: use one of %s, or \"@every 6h\"", clipValue(expr), strings.Join(cronShorthands, ", "))
	}
	fields := strings.Fields(body)
	if len(fields) < 5 || len(fields) > 7 {
		return fmt.Sprintf("--cron %q has %d fields: write 5 (minute hour day-of-month month day-of-week, for example \"0 2 * * *\" for 02:00 UTC every day), 6 (a year last) or 7 (a second first, a year last)", clipValue(expr), len(fields))
	}
	for _, f := range fields {
		if strings.Trim(f, "0123456789*,-/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			return fmt.Sprintf("--cron %q: field %q holds characters a cron field cannot (use digits, names such as MON or JAN, and * , - /)", clipValue(expr), clipValue(f))
		}
	}
	return ""
}

// clipValue shortens a flag value for an error message.
func clipValue(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// specText describes a schedule spec in one line: its calendars as cron fields
// ("cron 0 2 * * *"), cron expressions not yet compiled into calendars as given, its intervals
// ("every 24h0m0s offset 5m0s"), and the time zone of the calendars.
func specText(s *client.ScheduleSpec) string {
	if s == nil {
		return "-"
	}
	var parts []string
	zoned := len(s.Calendars) > 0
	for _, c := range s.Calendars {
		parts = append(parts, "cron "+calendarCron(c))
	}
	for _, expr := range s.CronExpressions { // as given, before the service turns them into calendars
		if strings.Contains(expr, "TZ=") {
			parts = append(parts, "cron "+expr)
		} else {
			parts, zoned = append(parts, "cron "+expr), true
		}
	}
	for _, iv := range s.Intervals {
		t := "every " + iv.Every.String()
		if iv.Offset > 0 {
			t += " offset " + iv.Offset.String()
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "no times (runs only when triggered)"
	}
	text := strings.Join(parts, "; ")
	if zoned {
		tz := s.TimeZoneName
		if tz == "" {
			tz = "UTC"
		}
		text += " " + tz
	}
	return text
}

// calendarCron writes a calendar as cron fields: minute hour day-of-month month day-of-week,
// with the second first when it is not 0 and the year last when it is restricted.
func calendarCron(c client.ScheduleCalendarSpec) string {
	fields := []string{
		cronField(c.Minute, 0, 59), cronField(c.Hour, 0, 23), cronField(c.DayOfMonth, 1, 31),
		cronField(c.Month, 1, 12), cronField(c.DayOfWeek, 0, 6),
	}
	if sec := cronField(c.Second, 0, 59); sec != "0" || len(c.Year) > 0 {
		fields = append([]string{sec}, fields...)
		fields = append(fields, cronField(c.Year, 0, 0))
	}
	text := strings.Join(fields, " ")
	if c.Comment != "" {
		text += " # " + c.Comment
	}
	return text
}

// cronField writes one calendar field's ranges; lo..hi is the field's full range ("*").
func cronField(ranges []client.ScheduleRange, lo, hi int) string {
	if len(ranges) == 0 {
		return "*"
	}
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		end := max(r.End, r.Start)
		full := r.Start == lo && end == hi && hi > 0
		switch {
		case full && r.Step <= 1:
			parts[i] = "*"
		case full:
			parts[i] = "*/" + strconv.Itoa(r.Step)
		case end == r.Start:
			parts[i] = strconv.Itoa(r.Start)
		default:
			parts[i] = strconv.Itoa(r.Start) + "-" + strconv.Itoa(end)
			if r.Step > 1 {
				parts[i] += "/" + strconv.Itoa(r.Step)
			}
		}
	}
	return strings.Join(parts, ",")
}
