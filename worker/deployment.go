package worker

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Worker Versioning (Temporal's Worker Deployments) is off unless SECURE_AGENT_DEPLOYMENT_NAME is
// set. When it is on, the worker on the shared task queue registers as the version
// (DeploymentName, BuildID) of that Worker Deployment, and ExtractionWorkflow and
// TestConnectionWorkflow are pinned: a run finishes on the build it started on, and new runs go
// to the deployment's current version (`temporal worker deployment set-current-version`).
//
// Only the shared task queue is versioned. The lease queue and its control queue are named for
// one process (LeaseQueue), so their tasks can only reach the build that process runs: versioning
// adds nothing there. It would cost: every process start would add a new queue to its
// version, and the server refuses to make a version current while a queue of the current one
// that still has tasks is missing from it, which a new build's fresh lease queues always are.
// The server sends a pinned run's activities on a queue outside its version to that queue's
// unversioned pollers (it calls them independent activities), which is what the lease queue has.

// maxDeploymentField bounds the deployment name and the build id, in bytes: the Temporal server's
// default limit for build ids (limit.workerBuildIdSize), which SQL persistence also needs.
const maxDeploymentField = 255

// deployment returns the options of the worker on the shared task queue: the zero value (off)
// without a deployment name; otherwise versioned as (DeploymentName, BuildID) with the workflows
// pinned. A deployment name without a build id is an error that says how to give one.
func (s Settings) deployment() (sdkworker.DeploymentOptions, error) {
	if s.DeploymentName == "" {
		return sdkworker.DeploymentOptions{}, nil
	}
	if s.BuildID == "" {
		return sdkworker.DeploymentOptions{}, fmt.Errorf("%s_DEPLOYMENT_NAME is set (Worker Versioning on), but this agent has no build id: "+
			"%s_BUILD_ID is unset and the binary carries no version stamp (it was built without -ldflags \"-X main.version=...\", "+
			"and not from an unmodified git checkout). Set %s_BUILD_ID to an id that names this build and no other "+
			"(its image tag or git commit), or unset %s_DEPLOYMENT_NAME", EnvPrefix, EnvPrefix, EnvPrefix, EnvPrefix)
	}
	return sdkworker.DeploymentOptions{
		UseVersioning:             true,
		Version:                   sdkworker.WorkerDeploymentVersion{DeploymentName: s.DeploymentName, BuildID: s.BuildID},
		DefaultVersioningBehavior: workflow.VersioningBehaviorPinned,
	}, nil
}

// WithVersionStamp returns s with BuildID, when versioning is on (SECURE_AGENT_DEPLOYMENT_NAME)
// and SECURE_AGENT_BUILD_ID is unset, set to the build id of the binary's version stamp
// (BuildIDFromStamp of ldflagsVersion and bi). It fails, saying how to fix it, when versioning is
// on and there is no build id, or when the stamp is not a valid one. Versioning off: s unchanged.
func (s Settings) WithVersionStamp(ldflagsVersion string, bi *debug.BuildInfo) (Settings, error) {
	if s.DeploymentName == "" {
		return s, nil
	}
	if s.BuildID == "" {
		s.BuildID = BuildIDFromStamp(ldflagsVersion, bi)
		if err := checkBuildID(s.BuildID); err != nil {
			return s, fmt.Errorf("the binary's version stamp %q is not a valid build id (%v): set %s_BUILD_ID", s.BuildID, err, EnvPrefix)
		}
	}
	_, err := s.deployment()
	return s, err
}

// BuildIDFromStamp returns the build id the version stamp of a binary gives: ldflagsVersion (set
// with -ldflags "-X main.version=v1.2.3") unless it is empty or "dev"; else the module version Go
// recorded (`go install ...@v1.2.3`, or the pseudo-version of the commit a git checkout was
// built from); else that commit. A build from a modified tree has none ("+dirty", vcs.modified):
// two different builds would share it, and a pinned run could then move to code it did not start
// on. "" when there is no stamp. bi may be nil.
func BuildIDFromStamp(ldflagsVersion string, bi *debug.BuildInfo) string {
	if ldflagsVersion != "" && ldflagsVersion != "dev" {
		return ldflagsVersion
	}
	if bi == nil {
		return ""
	}
	var rev string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				return ""
			}
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" && !strings.HasSuffix(v, "+dirty") {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return rev
}

// validateDeployment reports the problems of SECURE_AGENT_DEPLOYMENT_NAME and _BUILD_ID: what
// the Temporal server would refuse, and a build id set while versioning is off.
func (s Settings) validateDeployment() []error {
	var errs []error
	if s.DeploymentName != "" {
		err := checkField(s.DeploymentName)
		if err == nil && strings.ContainsAny(s.DeploymentName, ".:") {
			err = errors.New("must not contain '.' or ':' (Temporal writes a version as name:buildId)")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_DEPLOYMENT_NAME: %w, got %q", EnvPrefix, err, s.DeploymentName))
		}
	}
	if s.BuildID != "" {
		if s.DeploymentName == "" {
			errs = append(errs, fmt.Errorf("%s_BUILD_ID is set but %s_DEPLOYMENT_NAME is not, so Worker Versioning is off: set the deployment name too, or unset the build id", EnvPrefix, EnvPrefix))
		} else if err := checkBuildID(s.BuildID); err != nil {
			errs = append(errs, fmt.Errorf("%s_BUILD_ID: %w, got %q", EnvPrefix, err, s.BuildID))
		}
	}
	return errs
}

func checkBuildID(id string) error {
	if id == "" {
		return nil // no stamp: deployment says what to do
	}
	return checkField(id)
}

// checkField checks what the Temporal server requires of a deployment name or build id (at most
// maxDeploymentField bytes, not starting with "__", which it reserves) and what keeps one usable
// on a command line and in logs: printable ASCII, no spaces.
func checkField(v string) error {
	if len(v) > maxDeploymentField {
		return fmt.Errorf("must be at most %d bytes, got %d", maxDeploymentField, len(v))
	}
	if strings.HasPrefix(v, "__") {
		return errors.New("must not start with \"__\" (Temporal reserves it)")
	}
	for _, r := range v {
		if r <= ' ' || r > '~' {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	return nil
}
