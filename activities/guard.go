package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/secrets"
)

// The result guard is the last line of defence behind the rule that nothing derived from a
// secret leaves the worker except to the connector or sink that needs it. Every activity of
// this worker runs inside it:
//
//   - before the activity, it takes the values of the sensitive fields of every lease the run
//     holds here, and hands the activity a Guard of its own in ctx, to which ResolveSecrets adds
//     the sensitive values it resolves (before any lease exists);
//   - after the activity, the JSON form of its result (what the data converter will encode) and
//     the text of its error are searched for those values; if one is found, the result or error
//     is withheld and the activity fails, final, with LeakPrevented, naming the field (never the
//     value), audited as leak.prevented;
//   - a heartbeat whose details hold one is dropped;
//   - a value that also occurs in what the caller supplied (the activity's input, the workflow
//     and run ids) is not a finding: a result may repeat the caller's own text (a connector
//     name, a field name, an output path built from the workflow id), and treating that as a leak
//     would turn the guard into an oracle that answers whether a guess equals the password.
//
// What it cannot see (values shorter than secrets.MinGuardLen, values transformed on the way,
// values of non-sensitive fields) is stated in SECURITY.md.

// guardKey keys the activity's guarded state in its context.
type guardKey struct{}

// activityGuard is what the result guard keeps for one activity: its own Guard, and the text the
// caller supplied.
type activityGuard struct {
	own    *secrets.Guard
	caller []byte
}

// guardOf returns the Guard of the running activity, or nil outside the result guard (a test
// that calls an activity directly).
func guardOf(ctx context.Context) *secrets.Guard {
	if g, ok := ctx.Value(guardKey{}).(*activityGuard); ok {
		return g.own
	}
	return nil
}

// callerText returns what the caller of the running activity supplied, or nil.
func callerText(ctx context.Context) []byte {
	if g, ok := ctx.Value(guardKey{}).(*activityGuard); ok {
		return g.caller
	}
	return nil
}

// ResultGuard returns the worker interceptor that applies the result guard to every activity
// the worker runs. Register it on every worker that runs these activities.
func (a *Activities) ResultGuard() interceptor.WorkerInterceptor {
	return &resultGuard{a: a}
}

type resultGuard struct {
	interceptor.WorkerInterceptorBase
	a *Activities
}

func (r *resultGuard) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &guardInbound{a: r.a}
	i.Next = next
	return i
}

type guardInbound struct {
	interceptor.ActivityInboundInterceptorBase
	a *Activities
}

func (i *guardInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	o := &guardOutbound{a: i.a}
	o.Next = outbound
	return i.Next.Init(o)
}

func (i *guardInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	own := &secrets.Guard{}
	defer own.Zero()
	run := i.a.Leases.Guard(info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	defer run.Zero()
	caller, merr := json.Marshal(in.Args)
	if merr != nil {
		caller = fmt.Appendf(nil, "%+v", in.Args)
	}
	caller = fmt.Appendf(caller, "\n%s\n%s", info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	res, err := i.Next.ExecuteActivity(context.WithValue(ctx, guardKey{}, &activityGuard{own: own, caller: caller}), in)

	find := func(b []byte) (string, bool) {
		if field, ok := own.FindExcept(b, caller); ok {
			return field, true
		}
		return run.FindExcept(b, caller)
	}
	if res != nil {
		b, merr := json.Marshal(res)
		if merr != nil {
			b = fmt.Appendf(nil, "%+v", res)
		}
		if field, found := find(b); found {
			return nil, i.a.leakPrevented(ctx, "result", field)
		}
	}
	if err != nil {
		if field, found := find([]byte(err.Error())); found {
			return nil, i.a.leakPrevented(ctx, "error", field)
		}
	}
	return res, err
}

type guardOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	a *Activities
}

// RecordHeartbeat drops a heartbeat whose details hold a guarded value.
func (o *guardOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	b, err := json.Marshal(details)
	if err != nil {
		b = fmt.Appendf(nil, "%+v", details)
	}
	info := o.Next.GetInfo(ctx)
	run := o.a.Leases.Guard(info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	defer run.Zero()
	caller := callerText(ctx)
	field, found := guardOf(ctx).FindExcept(b, caller)
	if !found {
		field, found = run.FindExcept(b, caller)
	}
	if found {
		o.a.logger().Error("a heartbeat held the value of a sensitive field and was dropped; please report this bug",
			"workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID, "activity", info.ActivityType.Name, "field", field)
		o.a.audit(ctx, audit.Event{Event: audit.LeakPrevented, Fields: []string{field}, Outcome: string(secrets.LeakPrevented), Reason: "heartbeat dropped"})
		return
	}
	o.Next.RecordHeartbeat(ctx, details...)
}

// leakPrevented records a withheld result or error and returns the final error that replaces it.
func (a *Activities) leakPrevented(ctx context.Context, what, field string) error {
	info := activity.GetInfo(ctx)
	a.logger().Error("a step's "+what+" held the value of a sensitive field and was withheld", "workflowId", info.WorkflowExecution.ID,
		"runId", info.WorkflowExecution.RunID, "activity", info.ActivityType.Name, "field", field)
	a.audit(ctx, audit.Event{Event: audit.LeakPrevented, Fields: []string{field}, Outcome: string(secrets.LeakPrevented), Reason: what + " withheld"})
	msg := fmt.Sprintf("%s: the %s of step %s held the value of field %q, so the worker withheld it; nothing of it was recorded. "+
		"This is a bug in the agent, or the value also appears in what the step read from the source (for example a name in the catalog equal to the password): change the credential, and report it",
		secrets.LeakPrevented, what, info.ActivityType.Name, field)
	return temporal.NewNonRetryableApplicationError(msg, string(secrets.LeakPrevented), nil)
}
