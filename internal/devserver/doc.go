// Package devserver runs a real Temporal server and, beside it, the Temporal
// Web UI inside the current process, for `secure-agent dev`, `secure-agent
// demo` and tests.
//
// The server is go.temporal.io/server built with its public API
// (temporal.NewServer) on SQLite: in memory by default, or in a file that
// survives restarts. All four services (frontend, history, matching, worker)
// run in this process and find each other through static hosts, so nothing
// but the frontend (and the UI, when enabled) is meant for clients.
//
// The dev server has no authentication and no TLS. Its addresses must
// therefore be loopback addresses unless the configuration says
// allowNonLoopback: true.
//
// Typical use:
//
//	cfg, err := devserver.LoadConfig("temporal-dev.yaml")
//	if err != nil { ... }
//	srv, err := devserver.Start(ctx, cfg, logger)
//	if err != nil { ... }
//	defer srv.Stop()
//	// dial srv.FrontendAddress() in namespace srv.Namespace(); open srv.UIURL()
//
// Importing this package pulls in the whole Temporal server; only the dev and
// demo commands and tests may import it, never the worker path.
package devserver
