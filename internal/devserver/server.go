package devserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// defaultStartTimeout bounds Start when ctx has no deadline.
	defaultStartTimeout = 60 * time.Second
	// uiStopTimeout bounds how long Stop waits for the UI's HTTP server.
	uiStopTimeout = 10 * time.Second
	// clusterName is the name of the single, local cluster.
	clusterName = "active"
	// fileConnLifetime bounds the life of a connection to a database file.
	// The server's SQLite plugin keeps a process-wide connection pool that it
	// never closes; with a bounded lifetime, idle connections (and so the
	// file's descriptors) are closed at most about twice this long after Stop.
	fileConnLifetime = 2 * time.Second
)

// Server is a running dev server: Temporal's frontend, history, matching and
// worker services on SQLite, and the Web UI unless disabled. Its methods are
// safe for concurrent use.
//
// A fatal problem the Temporal server reports while running, after Start
// returned (one on which the server's own logger would exit the process),
// panics in the server goroutine that hit it; problems during Start and
// Stop are returned as errors instead.
type Server struct {
	frontendAddr string
	uiAddr       string
	namespace    string

	temporal temporal.Server
	ui       *uiServer
	// internalID is the client identity of the server's own clients when the frontend serves
	// TLS; nil otherwise.
	internalID *internalIdentity

	stopOnce sync.Once
	stopErr  error
}

// Start validates cfg (after applying defaults, see Config), starts the
// Temporal server and, if cfg.UIAddress is set, the Web UI, and returns once
// the frontend answers DescribeNamespace for every configured namespace and
// the UI answers its health check. Port 0 in an address picks a free port;
// the Server's address methods report the ports actually used.
//
// Server logs at cfg.LogLevel and above go to logger, with the attribute
// component=temporal-server; a nil logger discards them. Start's own errors
// are returned, not logged.
//
// ctx bounds the start-up only (one minute if it has no deadline); cancel it
// and Start stops what it started and returns ctx's error. Call Stop to shut
// down. Errors say what to fix, for example which key of temporal-dev.yaml
// to change when a port is in use.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("devserver: invalid configuration: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	level, _ := parseLogLevel(cfg.LogLevel) // validated above
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	slogger := newServerLogger(logger.With("component", "temporal-server"), level)

	ports, err := reservePorts(cfg)
	if err != nil {
		return nil, err
	}
	// Whatever is still held when Start returns is closed: everything on an
	// error path, nothing on success.
	defer ports.release()

	tlsConfig, internalID, err := prepareTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}

	sqlConfig, err := prepareDatabase(cfg)
	if err != nil {
		return nil, err
	}

	serverConfig := buildServerConfig(ports, sqlConfig)
	if tlsConfig != nil {
		serverConfig.Global.TLS = *tlsConfig
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&serverConfig.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: creating the authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&serverConfig.Global.Authorization, slogger)
	if err != nil {
		return nil, fmt.Errorf("devserver: creating the claim mapper: %w", err)
	}
	ports.releaseServerPorts() // the Temporal server binds them now
	ts, err := newTemporalServer(ports, serverConfig, slogger, authorizer, claimMapper)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("devserver: a port was taken while the Temporal server started: try again, or set frontendAddress in temporal-dev.yaml: %w", err)
		}
		return nil, fmt.Errorf("devserver: starting the Temporal server (frontend %s): %w", ports.frontendDial(), err)
	}

	s := &Server{
		frontendAddr: ports.frontendDial(),
		namespace:    cfg.Namespace,
		temporal:     ts,
		internalID:   internalID,
	}
	namespaces := append([]string{cfg.Namespace}, cfg.ExtraNamespaces...)
	if err := waitForFrontend(ctx, s.frontendAddr, internalID, namespaces); err != nil {
		_ = s.Stop()
		return nil, err
	}

	if ports.ui != nil {
		ui, err := startUI(ctx, cfg, *ports.ui, s.frontendAddr, internalID, ports.uiListener)
		ports.uiListener = nil // startUI owns it now
		if err != nil {
			_ = s.Stop()
			return nil, err
		}
		s.ui = ui
		s.uiAddr = ui.dialAddr
	}
	return s, nil
}

// newTemporalServer builds and starts the Temporal server. The server
// reports fatal problems (a port it cannot bind, ...) through its logger,
// whose Fatal panics; that panic is returned as the error.
func newTemporalServer(p *ports, serverConfig *config.Config, logger serverLogger, authorizer authorization.Authorizer, claimMapper authorization.ClaimMapper) (ts temporal.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(*serverFatal)
			if !ok {
				panic(r)
			}
			err = f
		}
		if err != nil && ts != nil {
			_ = stopTemporal(ts)
			ts = nil
		}
	}()
	internalHost := func(port int) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	ts, err = temporal.NewServer(
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithConfig(serverConfig),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(StaticConfig()),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(p.frontendDial()),
			primitives.HistoryService:  internalHost(p.history),
			primitives.MatchingService: internalHost(p.matching),
			primitives.WorkerService:   internalHost(p.worker),
		}),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
	)
	if err != nil {
		return nil, err
	}
	err = ts.Start()
	return ts, err // on error, the deferred function stops ts and returns nil
}

// stopTemporal stops ts, returning a fatal problem it reports through its
// logger (see serverLogger) as an error.
func stopTemporal(ts temporal.Server) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(*serverFatal)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	return ts.Stop()
}

// FrontendAddress returns the host:port clients dial to reach the frontend,
// with the real port when the configuration said 0. For a frontend bound to
// all interfaces (0.0.0.0 or ::) it names the loopback address.
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// UIAddress returns the host:port of the Web UI, with the real port when the
// configuration said 0, or "" when the UI is disabled.
func (s *Server) UIAddress() string { return s.uiAddr }

// UIURL returns the Web UI's base URL, such as "http://127.0.0.1:8233", or
// "" when the UI is disabled.
func (s *Server) UIURL() string {
	if s.uiAddr == "" {
		return ""
	}
	return "http://" + s.uiAddr
}

// Namespace returns the configured namespace, which exists and is ready.
func (s *Server) Namespace() string { return s.namespace }

// ClientTLS returns the TLS settings an in-process client (the agent of `dev` and `demo`) uses to
// reach a TLS frontend: the server's own internal identity, over loopback. Nil when the frontend
// serves plain gRPC.
func (s *Server) ClientTLS() *tls.Config {
	if s.internalID == nil {
		return nil
	}
	return s.internalID.clientTLS()
}

// Stop shuts down the Web UI and the Temporal server and frees their ports;
// when Stop returns, new listeners can bind them. With a database file, the
// data is on disk when Stop returns; the file's descriptors are released
// within a few seconds (the server's SQLite plugin pools connections
// process-wide). An in-memory database is discarded. Stop is idempotent and
// safe to call concurrently: later calls wait for the first and return its
// result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.ui != nil {
			if err := s.ui.stop(uiStopTimeout); err != nil {
				errs = append(errs, err)
			}
		}
		if err := stopTemporal(s.temporal); err != nil {
			errs = append(errs, fmt.Errorf("devserver: stopping the Temporal server: %w", err))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// ports holds the addresses Start uses, with listeners that keep them
// reserved (and distinct) until the servers bind them.
type ports struct {
	frontend                  address
	history, matching, worker int
	ui                        *address
	uiListener                net.Listener
	held                      []net.Listener
}

// frontendDial is the address clients dial to reach the frontend.
func (p *ports) frontendDial() string {
	return net.JoinHostPort(p.frontend.dialIP().String(), strconv.Itoa(p.frontend.port))
}

// releaseServerPorts closes the listeners held for the Temporal services.
func (p *ports) releaseServerPorts() {
	for _, l := range p.held {
		_ = l.Close()
	}
	p.held = nil
}

// release closes every listener still held; safe to call more than once.
func (p *ports) release() {
	p.releaseServerPorts()
	if p.uiListener != nil {
		_ = p.uiListener.Close()
		p.uiListener = nil
	}
}

// reservePorts binds every port Start needs: the frontend's and UI's as
// configured (a free one for port 0) and a free loopback port for each
// internal service.
func reservePorts(cfg Config) (*ports, error) {
	p := &ports{}
	ok := false
	defer func() {
		if !ok {
			p.release()
		}
	}()

	frontend, _ := parseAddress("frontendAddress", cfg.FrontendAddress, cfg.AllowNonLoopback) // validated
	l, err := listen(frontend, "frontendAddress", "stop the other Temporal server (another `secure-agent dev` or `temporal server start-dev`)")
	if err != nil {
		return nil, err
	}
	p.held = append(p.held, l)
	frontend.port = l.Addr().(*net.TCPAddr).Port
	p.frontend = frontend

	for _, port := range []*int{&p.history, &p.matching, &p.worker} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("devserver: finding a free loopback port for an internal Temporal service: %w", err)
		}
		p.held = append(p.held, l)
		*port = l.Addr().(*net.TCPAddr).Port
	}

	if cfg.UIAddress != "" {
		ui, _ := parseAddress("uiAddress", cfg.UIAddress, cfg.AllowNonLoopback) // validated
		l, err := listen(ui, "uiAddress", "stop the other Temporal Web UI (another `secure-agent dev` or `temporal server start-dev`)")
		if err != nil {
			return nil, err
		}
		p.uiListener = l
		ui.port = l.Addr().(*net.TCPAddr).Port
		p.ui = &ui
	}
	ok = true
	return p, nil
}

// listen binds a, turning "address in use" into an error that says what to do.
func listen(a address, key, stopHint string) (net.Listener, error) {
	l, err := net.Listen("tcp", a.hostPort())
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("devserver: port %d is in use (%s %s): %s, or set %s in temporal-dev.yaml: %w",
			a.port, key, a.hostPort(), stopHint, key, err)
	}
	if err != nil {
		return nil, fmt.Errorf("devserver: cannot listen on %s (%s): check the address in temporal-dev.yaml: %w", a.hostPort(), key, err)
	}
	return l, nil
}

// prepareDatabase returns the SQLite persistence settings, creating the
// schema of a new database file, and creates the configured namespaces that
// do not exist yet.
func prepareDatabase(cfg Config) (*config.SQL, error) {
	sqlConfig := &config.SQL{PluginName: sqliteplugin.PluginName}
	if cfg.DatabaseFile == "" {
		// A shared-cache in-memory database, unique to this Start: the
		// plugin creates the schema when it first opens it.
		sqlConfig.DatabaseName = "devserver-" + strconv.FormatUint(rand.Uint64(), 36)
		sqlConfig.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		sqlConfig.DatabaseName = cfg.DatabaseFile
		sqlConfig.ConnectAttributes = map[string]string{"mode": "rwc"}
		sqlConfig.MaxConnLifetime = fileConnLifetime

		dir := filepath.Dir(cfg.DatabaseFile)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("devserver: databaseFile %s: directory %s does not exist: create it, or change databaseFile in temporal-dev.yaml", cfg.DatabaseFile, dir)
		}
		st, err := os.Stat(cfg.DatabaseFile)
		switch {
		case errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0):
			if err := sqliteschema.SetupSchema(sqlConfig); err != nil {
				return nil, fmt.Errorf("devserver: creating the Temporal schema in databaseFile %s: %w", cfg.DatabaseFile, err)
			}
		case err != nil:
			return nil, fmt.Errorf("devserver: databaseFile %s: %w", cfg.DatabaseFile, err)
		case st.IsDir():
			return nil, fmt.Errorf("devserver: databaseFile %s is a directory: give a file name such as temporal-dev.db", cfg.DatabaseFile)
		}
	}

	var namespaces []*sqliteschema.NamespaceConfig
	for _, name := range append([]string{cfg.Namespace}, cfg.ExtraNamespaces...) {
		ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, nil)
		if err != nil {
			return nil, fmt.Errorf("devserver: namespace %q: %w", name, err)
		}
		ns.Detail.Config.Retention = durationpb.New(cfg.Retention)
		namespaces = append(namespaces, ns)
	}
	if err := sqliteschema.CreateNamespaces(sqlConfig, namespaces...); err != nil {
		if cfg.DatabaseFile != "" {
			return nil, fmt.Errorf("devserver: creating namespaces in databaseFile %s (is it a database of this dev server? delete it to start afresh): %w", cfg.DatabaseFile, err)
		}
		return nil, fmt.Errorf("devserver: creating namespaces: %w", err)
	}
	return sqlConfig, nil
}

// buildServerConfig is the static configuration of a single-process cluster
// on SQLite: no archival, no metrics, no pprof, one history shard.
//
// StaticConfig is its dynamic configuration, which the test servers use too.
func buildServerConfig(p *ports, sqlConfig *config.SQL) *config.Config {
	var c config.Config
	c.Persistence = config.Persistence{
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlConfig}},
	}
	c.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             p.frontendDial(),
			},
		},
	}
	c.DCRedirectionPolicy.Policy = "noop"
	internal := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: "127.0.0.1"}}
	}
	c.Services = map[string]config.Service{
		string(primitives.FrontendService): {RPC: config.RPC{GRPCPort: p.frontend.port, BindOnIP: p.frontend.ip.String()}},
		string(primitives.HistoryService):  internal(p.history),
		string(primitives.MatchingService): internal(p.matching),
		string(primitives.WorkerService):   internal(p.worker),
	}
	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	c.PublicClient.HostPort = p.frontendDial()
	return &c
}

// waitForFrontend polls the frontend until it describes every namespace. id,
// when not nil, is the internal identity for a TLS frontend.
func waitForFrontend(ctx context.Context, addr string, id *internalIdentity, namespaces []string) error {
	creds := insecure.NewCredentials()
	if id != nil {
		creds = credentials.NewTLS(id.clientTLS())
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("devserver: connecting to the frontend at %s: %w", addr, err)
	}
	defer func() { _ = conn.Close() }()
	client := workflowservice.NewWorkflowServiceClient(conn)

	var lastErr error
	for _, ns := range namespaces {
		for {
			callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, lastErr = client.DescribeNamespace(callCtx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
			cancel()
			if lastErr == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("devserver: the frontend at %s did not become ready (namespace %q): %w (last error: %v)", addr, ns, ctx.Err(), lastErr)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// StaticConfig is the dynamic configuration of a single-node server on one machine (`dev`,
// `demo` and the test servers of internal/e2e and internal/load).
//
// The one that matters for latency: the history shard's transfer queue, which hands every
// scheduled workflow and activity task to matching, polls at most
// history.transferProcessorMaxPollRPS times a second (20 by default, a per-shard figure sized for
// clusters of hundreds of shards). A single-node server has one shard, so once more than 20 tasks
// a second are scheduled (a few small runs back to back) each waits its turn: about 40 ms per
// round trip, measured with the event timestamps of real histories. 1000 removes the wait.
func StaticConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// A smaller mutable-state cache than the production default (128000 entries): this is
		// one process on a workstation.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
		// The UI lists and counts workflows often.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// New search attributes are visible at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// Dispatch without the one-shard pacing (see above).
		dynamicconfig.TransferProcessorMaxPollRPS.Key(): 1000,
	}
}
