package worker

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/secure-agent/secure-agent/output"
)

// cleanupInterval is how often the agent looks for leftovers in its output directory (and once
// at start-up).
const cleanupInterval = time.Hour

// cleanupMinAge is how old a leftover must be before it is removed: a run that just started may
// not be visible to Temporal's describe yet.
const cleanupMinAge = 10 * time.Minute

// CleanupResult counts what CleanOutput removed.
type CleanupResult struct {
	// Finished are run directories with a manifest whose leftover parts or temporary files were
	// removed; Orphaned are run directories without a manifest, of runs that are closed or gone,
	// removed whole.
	Finished, Orphaned int
}

// CleanOutput removes what runs left behind in the output directory: the parts and temporary
// files of runs that finalized here (a Finalize that crashed after the manifest), and the whole
// directory of a run that never finalized here and is no longer running (its output was written
// on another replica, or it failed): the parts a lost worker's disk keeps when it comes back.
//
// It never removes what a live run may still need: a run directory is touched only when its
// names decode to the run's workflow and run ids exactly (long ids are shortened into a hash and
// cannot be asked about: kept), its leftovers are older than cleanupMinAge, and, for a directory
// without a manifest, Temporal says the run is closed or does not exist. When Temporal cannot be
// asked, nothing is removed. The incremental state and push ledgers are not run directories.
func (a *Agent) CleanOutput(ctx context.Context) CleanupResult {
	var res CleanupResult
	root := a.settings.OutputDir
	if root == "" {
		return res
	}
	now := time.Now()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || ctx.Err() != nil {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, "%") && p != root {
			return filepath.SkipDir // %incremental, %pushed
		}
		if name != output.PartsDir {
			return nil
		}
		runDir := filepath.Dir(p)
		info, err := d.Info()
		if err != nil || now.Sub(info.ModTime()) < cleanupMinAge {
			return filepath.SkipDir
		}
		workflowID, runID, ok := runIDs(runDir)
		if !ok {
			return filepath.SkipDir
		}
		if _, err := os.Stat(output.ManifestPath(runDir)); err == nil {
			if output.Cleanup(runDir) == nil {
				res.Finished++
			}
			return filepath.SkipDir
		}
		if a.runClosed(ctx, workflowID, runID) && os.RemoveAll(runDir) == nil {
			res.Orphaned++
			a.logger.Info("removed the parts of a run that did not finalize here and is no longer running",
				"workflowId", workflowID, "runId", runID)
		}
		return filepath.SkipDir
	})
	return res
}

// runIDs decodes a run directory's last two names into the workflow and run ids, when they
// round-trip exactly through output.SafeComponent.
func runIDs(runDir string) (workflowID, runID string, ok bool) {
	wfName, runName := filepath.Base(filepath.Dir(runDir)), filepath.Base(runDir)
	wf, err1 := url.PathUnescape(wfName)
	run, err2 := url.PathUnescape(runName)
	if err1 != nil || err2 != nil || output.SafeComponent(wf) != wfName || output.SafeComponent(run) != runName {
		return "", "", false
	}
	return wf, run, true
}

// runClosed reports whether Temporal says the run is closed or does not exist (false when it
// cannot be asked).
func (a *Agent) runClosed(ctx context.Context, workflowID, runID string) bool {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	desc, err := a.client.DescribeWorkflowExecution(dctx, workflowID, runID)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return true
	case err != nil:
		return false
	}
	return desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}
