//go:build !noserver

package main

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

//go:embed demo_sample.sql
var demoSampleSQL string

// demoPathVar is the environment variable that plays the role of the secret in the demo: the
// input names it, the env store resolves it, and its value never enters workflow history.
const demoPathVar = "DEMO_SQLITE_PATH"

var demoHelp = helpText{
	usage: "secure-agent demo [--config FILE]",
	about: "Start what dev starts, run one extraction of a bundled sample SQLite database (its path is read from " +
		demoPathVar + " through the env store, as a secret would be), print the summary and exit. The TEMPORAL_* " +
		"settings are not read: the server's addresses come from --config.",
	settings: settingsOf(agentSettings(), cloudSettings),
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo")
	configPath := fs.String("config", "temporal-dev.yaml", "embedded server configuration (defaults apply when the file is missing)")
	if err := parseFlags(fs, args, demoHelp, stdout, stderr); err != nil {
		return err
	}
	settings, err := devSettings("warn")
	if err != nil {
		return err
	}
	cleanup, err := prepareSample(ctx, &settings)
	if err != nil {
		return err
	}
	defer cleanup()

	d, err := startDev(ctx, *configPath, settings, stderr)
	if err != nil {
		return err
	}
	defer d.stop()
	in := workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"path": demoPathVar},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	}
	return startAndFollow(ctx, d.client, payloadConverter(settings), settings.TaskQueue, "", in, followProgress, stdout, stderr)
}

// prepareSample writes the sample SQLite database into a new temporary directory, exports its
// path as demoPathVar, and lets the agent's settings read that variable and open files in that
// directory (SQLite paths are confined to allowed directories). With a policy file the file
// must allow both itself. cleanup removes the directory.
func prepareSample(ctx context.Context, settings *worker.Settings) (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "secure-agent-sample-")
	if err != nil {
		return nil, err
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	dbPath := filepath.Join(dir, "shop.db")
	if err := writeSampleDB(ctx, dbPath); err != nil {
		cleanup()
		return nil, fmt.Errorf("creating the sample database: %w", err)
	}
	if err := os.Setenv(demoPathVar, dbPath); err != nil {
		cleanup()
		return nil, err
	}
	if settings.PolicyFile == "" {
		settings.EnvAllow = append(settings.EnvAllow, demoPathVar)
		settings.SQLiteDirs = append(settings.SQLiteDirs, dir)
	}
	return cleanup, nil
}

// writeSampleDB creates the demo's SQLite database.
func writeSampleDB(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, demoSampleSQL)
	return err
}
