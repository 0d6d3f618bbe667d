// Package proctest runs the agent the way operators do, for the tests that need real processes:
// the production binary (built with -tags noserver) as `secure-agent worker` processes, and the
// real `temporal server start-dev` in a process of its own. It also holds the searches those
// tests make for leaked values: a run's history with every payload's bytes, and a directory's
// files with gzip ones decompressed. Only tests import it.
package proctest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/secure-agent/secure-agent/internal/testenv"
)

// Build builds the production binary (-tags noserver, no embedded Temporal server) into dir and
// returns its path. moduleRoot is the module's directory, relative to the caller's.
func Build(dir, moduleRoot string) (string, error) {
	binary := filepath.Join(dir, "secure-agent")
	build := exec.Command("go", "build", "-tags", "noserver", "-o", binary, "./cmd/secure-agent")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the secure-agent binary: %v\n%s", err, out)
	}
	return binary, nil
}

// procs are the process groups Start started and that were not killed yet.
var procs struct {
	sync.Mutex
	pgids map[int]bool
}

// KillAll kills every process group Start started that is still running (a test that failed
// half-way). Call it from TestMain.
func KillAll() {
	procs.Lock()
	defer procs.Unlock()
	for pgid := range procs.pgids {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

func register(pgid int, on bool) {
	procs.Lock()
	defer procs.Unlock()
	if procs.pgids == nil {
		procs.pgids = map[int]bool{}
	}
	if on {
		procs.pgids[pgid] = true
	} else {
		delete(procs.pgids, pgid)
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// MinimalEnv is the environment a child starts from: nothing of the test's own (no TEMPORAL_* or
// SECURE_AGENT_* settings leak in), a PATH, and a HOME of its own.
func MinimalEnv(home string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + os.TempDir()}
}

// Proc is a child process in its own process group, its output in a file.
type Proc struct {
	Name   string
	Cmd    *exec.Cmd
	Log    string
	exited chan struct{} // closed when the process has exited
}

// Start starts cmd in a process group of its own, stdout and stderr into logPath.
func Start(t testing.TB, name string, cmd *exec.Cmd, logPath string) *Proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	register(cmd.Process.Pid, true)
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p
}

// Pid is the process id (and process group id).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return syscall.Kill(p.Pid(), 0) == nil
	}
}

// Kill sends SIGKILL to the process group and waits for the process to be gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.Pid())
	}
	register(p.Pid(), false)
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DevServer is `temporal server start-dev` in a process of its own, its state in a SQLite file
// so that it can be restarted with its workflows.
type DevServer struct {
	t                          testing.TB
	CLI, DB, log               string
	port, httpPort, metricPort int
	extra                      []string
	p                          *Proc
}

// StartDevServer starts a dev server and waits until it answers; it is killed when the test
// ends (its log tail printed if the test failed). extraArgs are more `start-dev` flags (e.g.
// "--dynamic-config-value", "key=value"), kept for restarts.
func StartDevServer(t testing.TB, extraArgs ...string) *DevServer {
	t.Helper()
	dir := t.TempDir()
	s := &DevServer{
		t: t, CLI: testenv.TemporalCLI(t), DB: filepath.Join(dir, "temporal.db"), log: filepath.Join(dir, "temporal.log"),
		port: FreePort(t), httpPort: FreePort(t), metricPort: FreePort(t), extra: extraArgs,
	}
	s.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("temporal dev server log (tail):\n%s", s.p.Tail(40))
		}
		s.p.Kill(t)
	})
	return s
}

// Addr is the server's frontend address.
func (s *DevServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the server process on s's ports and database file and waits until the default
// namespace can be described.
func (s *DevServer) Start() {
	s.t.Helper()
	cmd := exec.Command(s.CLI, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--port", strconv.Itoa(s.port), "--http-port", strconv.Itoa(s.httpPort),
		"--metrics-port", strconv.Itoa(s.metricPort), "--db-filename", s.DB, "--log-level", "error",
		// As devserver.StaticConfig: no pacing of dispatch by the one history shard.
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000")
	cmd.Args = append(cmd.Args, s.extra...)
	cmd.Env = MinimalEnv(filepath.Dir(s.DB))
	s.p = Start(s.t, "temporal dev server", cmd, s.log)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		select {
		case <-s.p.exited:
			s.t.Fatalf("the temporal dev server exited while starting:\n%s", s.p.Tail(40))
		default:
		}
		c, err := client.Dial(client.Options{HostPort: s.Addr(), Namespace: "default", Logger: QuietLogger{}})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			if err == nil {
				_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
			}
			c.Close()
			if err == nil {
				return
			}
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("the temporal dev server on %s did not answer within 90s: %v\n%s", s.Addr(), last, s.p.Tail(40))
}

// Stop stops the server gracefully (SIGTERM), or with SIGKILL when it has not exited in 10 s.
func (s *DevServer) Stop() {
	s.t.Helper()
	s.halt(syscall.SIGTERM)
}

// Crash kills the server with SIGKILL: no shutdown, whatever was in flight is cut off.
func (s *DevServer) Crash() {
	s.t.Helper()
	s.halt(syscall.SIGKILL)
}

func (s *DevServer) halt(sig syscall.Signal) {
	s.t.Helper()
	_ = syscall.Kill(s.p.Pid(), sig)
	select {
	case <-s.p.exited:
	case <-time.After(10 * time.Second):
		s.t.Logf("the dev server did not exit 10s after SIGTERM: SIGKILL")
		_ = syscall.Kill(-s.p.Pid(), syscall.SIGKILL)
		<-s.p.exited
	}
	_ = syscall.Kill(-s.p.Pid(), syscall.SIGKILL) // anything left in its group
	register(s.p.Pid(), false)
}

// Client dials the server as the control plane would; closed when the test ends.
func (s *DevServer) Client(t testing.TB) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.Addr(), Namespace: "default", Logger: QuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// QuietLogger drops a test client's SDK logs (the workers' logs are what matter).
type QuietLogger struct{}

func (QuietLogger) Debug(string, ...any) {}
func (QuietLogger) Info(string, ...any)  {}
func (QuietLogger) Warn(string, ...any)  {}
func (QuietLogger) Error(string, ...any) {}

// History returns every event of a run.
func History(t testing.TB, c client.Client, workflowID, runID string) *historypb.History {
	t.Helper()
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return &historypb.History{Events: events}
}

// Haystack renders a proto message for a leak search: its JSON form, plus the raw bytes of every
// Payload inside it (protojson shows payload data base64-encoded, where a search would miss it).
func Haystack(t testing.TB, m proto.Message) string {
	t.Helper()
	js, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(js)
	walkPayloads(m.ProtoReflect(), func(p *commonpb.Payload) {
		b.WriteByte('\n')
		b.Write(p.GetData())
		for k, v := range p.GetMetadata() {
			b.WriteString(k)
			b.Write(v)
		}
	})
	return b.String()
}

// walkPayloads calls fn for every common.v1.Payload reachable from m.
func walkPayloads(m protoreflect.Message, fn func(*commonpb.Payload)) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		fn(p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := 0; i < v.List().Len(); i++ {
				walkPayloads(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walkPayloads(mv.Message(), fn)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
			walkPayloads(v.Message(), fn)
		}
		return true
	})
}

// OutputText returns every file under dir (its path, then its contents), gzip files
// decompressed. A missing dir is empty.
func OutputText(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b.WriteString(path + "\n")
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return err
			}
			if data, err = io.ReadAll(zr); err != nil {
				return err
			}
		}
		b.Write(data)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b.String()
}

// Main is the TestMain of a package whose tests run the production binary: it builds the binary
// into a temporary directory (moduleRoot is the module's directory relative to the package),
// stores its path in *binary, runs the tests and kills whatever process they left behind. It
// returns the exit code for os.Exit.
func Main(m *testing.M, moduleRoot string, binary *string) int {
	dir, err := os.MkdirTemp("", "secure-agent-proctest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *binary, err = Build(dir, moduleRoot); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer KillAll()
	return m.Run()
}

// HangingServer is a server that never answers: it accepts every connection, keeps it open and
// reads what the client sends. A database source pointed at it waits for the connector's
// connect timeout, which holds a run's step (and its lease) as long as the test needs.
type HangingServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	data  bytes.Buffer
}

// NewHangingServer listens on a loopback port until Close or the end of the test.
func NewHangingServer(t testing.TB) *HangingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &HangingServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					s.mu.Lock()
					s.data.Write(buf[:n])
					s.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// Port is the server's port.
func (s *HangingServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Received is everything clients sent.
func (s *HangingServer) Received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.String()
}

// Connections is how many connections it accepted.
func (s *HangingServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting and drops every held connection, so a waiting client fails at once.
func (s *HangingServer) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}
