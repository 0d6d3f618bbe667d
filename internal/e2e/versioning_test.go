package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// versioningDeployment is the Worker Deployment the versioned agents of the test join.
const versioningDeployment = "secure-agent-e2e"

// TestVersioningPinsRunsToTheirBuild follows the README's upgrade procedure on the real
// `temporal server start-dev` with two builds of the production binary (stamped vtest-a and
// vtest-b with -ldflags "-X main.version=...", so the build ids come from the version stamp),
// every run held mid-way in ResolveSecrets by a custom secret store that answers when the test
// says so:
//
//  1. Versioning turned on under a running run: run 0 starts on an unversioned agent (same
//     binary, no SECURE_AGENT_DEPLOYMENT_NAME); build A joins the deployment and is made current
//     with `temporal worker deployment set-current-version`. Run 0's later workflow tasks are
//     completed by A (its history replays on another build, which is why the GetVersion gates
//     stay), while its leased steps still run on the unversioned agent that holds its lease.
//  2. Upgrade: run 1 starts on A and is held; build B joins and is made current; run 2 starts
//     and runs entirely on B; run 1, released, finishes entirely on A: every workflow task it
//     completed carries A's version, every activity ran in A's process, and it is pinned to A.
//  3. Drainage: `temporal worker deployment describe-version` says A is draining while run 1 is
//     open and drained once it has finished: when the procedure says A may go.
//
// Every run must succeed with the whole catalog.
func TestVersioningPinsRunsToTheirBuild(t *testing.T) {
	// Drainage is checked every 3 minutes by default: every second here.
	server := proctest.StartDevServer(t,
		"--dynamic-config-value", `matching.wv.VersionDrainageStatusRefreshInterval="1s"`,
		"--dynamic-config-value", `matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"`)
	dir := t.TempDir()
	binA, binB := buildStamped(t, dir, "vtest-a"), buildStamped(t, dir, "vtest-b")
	db := filepath.Join(dir, "data", "shop.db")
	tables, _ := makeShop(t, db)
	store := newHoldingStore(t, db, "hold-0", "hold-1")
	c := server.Client(t)
	queue := "e2e-versioning-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	start := func(name string, bin string, versioned bool) *proctest.Agent {
		env := map[string]string{
			// Later entries win: every agent polls the same shared queue.
			"SECURE_AGENT_TASK_QUEUE":         queue,
			"SECURE_AGENT_CUSTOM_STORE_HOSTS": "127.0.0.1:*",
			"SECURE_AGENT_SQLITE_DIRS":        filepath.Dir(db),
		}
		if versioned {
			env["SECURE_AGENT_DEPLOYMENT_NAME"] = versioningDeployment // no SECURE_AGENT_BUILD_ID: the stamp
		}
		a := proctest.StartAgent(t, bin, server, proctest.AgentOpts{Env: env})
		a.Proc.Name = "worker " + name
		return a
	}
	run := func(secret string) (id, runID string) {
		t.Helper()
		r, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
			ID: fmt.Sprintf("versioning-%s-%d", secret, time.Now().UnixNano()), TaskQueue: queue, WorkflowExecutionTimeout: 5 * time.Minute,
		}, workflows.ExtractionWorkflowName, store.input(secret))
		if err != nil {
			t.Fatal(err)
		}
		return r.GetID(), r.GetRunID()
	}
	succeeds := func(id, runID string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var sum workflows.Summary
		if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &sum); err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		if sum.Counts["tables"] != int64(tables) {
			t.Fatalf("run %s extracted %v, want %d tables", id, sum.Counts, tables)
		}
	}

	// 1. Versioning turned on under a running run.
	unversioned := start("unversioned", binA, false)
	id0, run0 := run("hold-0")
	store.waitAsked(t, "hold-0")
	a := start("A (vtest-a)", binA, true)
	setCurrentVersion(t, server, "vtest-a")
	store.release("hold-0")
	succeeds(id0, run0)
	h0 := readRunHistory(t, c, id0, run0)
	h0.wantTasks(t, "run 0 before versioning was on", unversioned, "", h0.beforeResolved())
	// After the switch the server may keep sending run 0's tasks to the unversioned worker for a
	// while (its sticky queue) before it moves the run to the current version: either is
	// allowed, nothing else is, and a move is one-way.
	moved := false
	for i, task := range h0.afterResolved() {
		onA := task.pid == a.Proc.Pid() && task.buildID == "vtest-a" && task.deploymentName == versioningDeployment
		onUnversioned := task.pid == unversioned.Proc.Pid() && task.buildID == "" && task.deploymentName == ""
		switch {
		case onA:
			moved = true
		case !onUnversioned || moved:
			t.Errorf("run 0 after build A was made current: workflow task %d completed by pid %d as %q/%q, want the unversioned worker (pid %d) or, from then on, A (pid %d) as %q/vtest-a",
				i, task.pid, task.deploymentName, task.buildID, unversioned.Proc.Pid(), a.Proc.Pid(), versioningDeployment)
		}
	}
	t.Logf("run 0 moved to build A after the switch: %t", moved)
	h0.wantActivities(t, "run 0", unversioned)

	// 2. Upgrade from A to B under a running run.
	id1, run1 := run("hold-1")
	store.waitAsked(t, "hold-1")
	wantPinned(t, c, id1, run1, "vtest-a")
	b := start("B (vtest-b)", binB, true)
	setCurrentVersion(t, server, "vtest-b")
	id2, run2 := run("free")
	succeeds(id2, run2)
	h2 := readRunHistory(t, c, id2, run2)
	h2.wantTasks(t, "run 2", b, "vtest-b", h2.tasks)
	h2.wantActivities(t, "run 2", b)
	wantPinned(t, c, id2, run2, "vtest-b")

	// 3. A drains: draining while run 1 is open, drained once it is done.
	waitDrainage(t, server, "vtest-a", "draining")
	store.release("hold-1")
	succeeds(id1, run1)
	h1 := readRunHistory(t, c, id1, run1)
	h1.wantTasks(t, "run 1", a, "vtest-a", h1.tasks)
	if len(h1.afterResolved()) < 2 {
		t.Errorf("run 1 completed %d workflow tasks after it was released: the test proves nothing about where it finished", len(h1.afterResolved()))
	}
	h1.wantActivities(t, "run 1", a)
	wantPinned(t, c, id1, run1, "vtest-a")
	waitDrainage(t, server, "vtest-a", "drained")
}

// buildStamped builds the production binary (-tags noserver) stamped with version, as the
// Dockerfile does.
func buildStamped(t *testing.T, dir, version string) string {
	t.Helper()
	bin := filepath.Join(dir, "secure-agent-"+version)
	cmd := exec.Command("go", "build", "-tags", "noserver", "-ldflags", "-X main.version="+version, "-o", bin, "./cmd/secure-agent")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", version, err, out)
	}
	return bin
}

// holdingStore is a custom secret store on loopback whose secret is the database path under
// key db_path. A request for a held secret waits until the test releases it; others are answered
// at once.
type holdingStore struct {
	url, db string
	mu      sync.Mutex
	asked   map[string]chan struct{} // closed at the first request for the secret
	gates   map[string]chan struct{} // closed to release the secret
}

func newHoldingStore(t *testing.T, db string, held ...string) *holdingStore {
	t.Helper()
	s := &holdingStore{db: db, asked: map[string]chan struct{}{}, gates: map[string]chan struct{}{}}
	for _, name := range held {
		s.asked[name], s.gates[name] = make(chan struct{}), make(chan struct{})
	}
	s.url = customStore(t, func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		s.mu.Lock()
		asked, gate := s.asked[name], s.gates[name]
		if asked != nil {
			select {
			case <-asked:
			default:
				close(asked)
			}
		}
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"db_path": s.db})
	})
	t.Cleanup(func() { // before the server's Close, which waits for held requests
		for _, name := range held {
			s.release(name)
		}
	})
	return s
}

// input is an extraction of the SQLite database whose path is the store's secret.
func (s *holdingStore) input(secret string) workflows.Input {
	return workflows.Input{
		Connector:  "sqlite",
		Connection: map[string]workflows.FieldValue{"path": "db_path"},
		SecretStore: &stores.Spec{Type: stores.TypeCustom,
			Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": %q, "timeout": "50s"}`, s.url, secret))},
	}
}

// waitAsked waits until the agent has asked for secret: its run is held in ResolveSecrets.
func (s *holdingStore) waitAsked(t *testing.T, secret string) {
	t.Helper()
	select {
	case <-s.asked[secret]:
	case <-time.After(60 * time.Second):
		t.Fatalf("no agent asked the store for %s within 60s", secret)
	}
}

func (s *holdingStore) release(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.gates[secret]:
	default:
		close(s.gates[secret])
	}
}

// setCurrentVersion runs the README's `temporal worker deployment set-current-version`, again
// until the server knows the version (its workers have polled) or a minute has passed.
func setCurrentVersion(t *testing.T, server *proctest.DevServer, buildID string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := temporalCLI(t, server, "worker", "deployment", "set-current-version",
			"--deployment-name", versioningDeployment, "--build-id", buildID, "--yes")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("set-current-version %s: %v\n%s", buildID, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitDrainage waits until `temporal worker deployment describe-version` reports the version's
// drainage status as want (draining, drained).
func waitDrainage(t *testing.T, server *proctest.DevServer, buildID, want string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		out, err := temporalCLI(t, server, "worker", "deployment", "describe-version",
			"--deployment-name", versioningDeployment, "--build-id", buildID, "--output", "json")
		var v struct {
			DrainageInfo struct {
				DrainageStatus string `json:"drainageStatus"`
			} `json:"drainageInfo"`
		}
		if err == nil && json.Unmarshal(out, &v) == nil {
			last = v.DrainageInfo.DrainageStatus
			if last == want {
				return
			}
		} else {
			last = fmt.Sprintf("%v: %s", err, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %s was not %s within 90s: drainage status %s", buildID, want, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func temporalCLI(t *testing.T, server *proctest.DevServer, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(server.CLI, append(args, "--address", server.Addr(), "--namespace", "default")...)
	cmd.Env = proctest.MinimalEnv(t.TempDir())
	return cmd.CombinedOutput()
}

// wantPinned checks a run's versioning info: pinned to buildID of the test's deployment.
func wantPinned(t *testing.T, c client.Client, id, runID, buildID string) {
	t.Helper()
	desc, err := c.DescribeWorkflowExecution(context.Background(), id, runID)
	if err != nil {
		t.Fatal(err)
	}
	vi := desc.GetWorkflowExecutionInfo().GetVersioningInfo()
	if vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED || vi.GetDeploymentVersion().GetDeploymentName() != versioningDeployment ||
		vi.GetDeploymentVersion().GetBuildId() != buildID {
		t.Errorf("run %s: versioning info %v, want pinned to %s/%s", id, vi, versioningDeployment, buildID)
	}
}

// runHistory is what a run's history says about where it ran.
type runHistory struct {
	id         string
	tasks      []doneTask // completed workflow tasks, in order
	resolvedAt int        // index in tasks of the first one completed after ResolveSecrets completed
	activities []ranActivity
}

type doneTask struct {
	pid                     int
	deploymentName, buildID string
}

type ranActivity struct {
	name string
	pid  int
}

func (h runHistory) beforeResolved() []doneTask { return h.tasks[:h.resolvedAt] }
func (h runHistory) afterResolved() []doneTask  { return h.tasks[h.resolvedAt:] }

func readRunHistory(t *testing.T, c client.Client, id, runID string) runHistory {
	t.Helper()
	h := runHistory{id: id, resolvedAt: -1}
	scheduled := map[int64]string{}
	for _, ev := range proctest.History(t, c, id, runID).GetEvents() {
		switch {
		case ev.GetWorkflowTaskCompletedEventAttributes() != nil:
			a := ev.GetWorkflowTaskCompletedEventAttributes()
			h.tasks = append(h.tasks, doneTask{pid: identityPid(a.GetIdentity()),
				deploymentName: a.GetDeploymentVersion().GetDeploymentName(), buildID: a.GetDeploymentVersion().GetBuildId()})
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			a := ev.GetActivityTaskStartedEventAttributes()
			h.activities = append(h.activities, ranActivity{name: scheduled[a.GetScheduledEventId()], pid: identityPid(a.GetIdentity())})
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			if h.resolvedAt < 0 && scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] == "ResolveSecrets" {
				h.resolvedAt = len(h.tasks)
			}
		}
	}
	if h.resolvedAt < 0 || len(h.activities) < 3 {
		t.Fatalf("run %s: ResolveSecrets never completed, or too few activities ran (%v)", id, h.activities)
	}
	t.Logf("run %s: workflow tasks %v (ResolveSecrets completed before task %d), activities %v", id, h.tasks, h.resolvedAt, h.activities)
	return h
}

// identityPid is the process id at the end of a worker identity, secure-agent@host/pid.
func identityPid(identity string) int {
	pid, _ := strconv.Atoi(identity[strings.LastIndex(identity, "/")+1:])
	return pid
}

// wantTasks checks that every task in tasks was completed by agent's process, as version
// buildID of the test's deployment ("": unversioned), and that there is at least one.
func (h runHistory) wantTasks(t *testing.T, what string, agent *proctest.Agent, buildID string, tasks []doneTask) {
	t.Helper()
	if len(tasks) == 0 {
		t.Errorf("%s: no workflow task completed", what)
	}
	wantName := versioningDeployment
	if buildID == "" {
		wantName = ""
	}
	for i, task := range tasks {
		if task.pid != agent.Proc.Pid() || task.buildID != buildID || task.deploymentName != wantName {
			t.Errorf("%s: workflow task %d completed by pid %d as version %q/%q, want %s (pid %d) as %q/%q",
				what, i, task.pid, task.deploymentName, task.buildID, agent.Proc.Name, agent.Proc.Pid(), wantName, buildID)
		}
	}
}

// wantActivities checks that every activity of the run ran in agent's process.
func (h runHistory) wantActivities(t *testing.T, what string, agent *proctest.Agent) {
	t.Helper()
	for _, a := range h.activities {
		if a.pid != agent.Proc.Pid() {
			t.Errorf("%s: %s ran in pid %d, want %s (pid %d)", what, a.name, a.pid, agent.Proc.Name, agent.Proc.Pid())
		}
	}
}
