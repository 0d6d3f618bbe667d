// Package worker builds the agent: its settings (environment variables with the SECURE_AGENT_
// prefix), its Temporal client (Temporal's own TEMPORAL_* variables), and its two workers — one
// on the shared task queue, one on this process's own lease queue.
//
// This package is on the production path: it must never import the Temporal server.
package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/policy"
)

// EnvPrefix is the prefix of every agent setting.
const EnvPrefix = "SECURE_AGENT"

// Settings are the agent's own settings, read from SECURE_AGENT_* environment variables. They are
// the customer's, set where the agent is deployed; workflow input can change none of them.
type Settings struct {
	// TaskQueue is the shared queue control planes start workflows on.
	TaskQueue string `envconfig:"TASK_QUEUE" default:"secure-agent"`
	// OutputDir is the root of local output.
	OutputDir string `envconfig:"OUTPUT_DIR" default:"./secure-agent-output"`
	// EnvAllow lists glob patterns of variables the env store may read (comma-separated).
	// Empty: the env store can read nothing.
	EnvAllow []string `envconfig:"ENV_ALLOW"`
	// CustomStoreEnvAllow lists glob patterns of variables the custom store may send as
	// headers or bearer tokens. Empty: none.
	CustomStoreEnvAllow []string `envconfig:"CUSTOM_STORE_ENV_ALLOW"`
	// CustomStoreHosts lists glob patterns of hosts ("host" or "host:port") a custom store's
	// store_url may name. Empty: custom stores are refused.
	CustomStoreHosts []string `envconfig:"CUSTOM_STORE_HOSTS"`
	// AllowSensitiveLiterals lets sensitive fields hold literals. Local development only.
	AllowSensitiveLiterals bool `envconfig:"ALLOW_SENSITIVE_LITERALS" default:"false"`
	// LeaseTTL is how long resolved credentials stay in memory after their last use or the last
	// time the agent saw their run alive (it asks every LeaseCheckInterval).
	LeaseTTL time.Duration `envconfig:"LEASE_TTL" default:"10m"`
	// LeaseCheckInterval is how often the agent asks Temporal whether the runs holding its
	// leases are still running, and drops the leases of closed ones (zero: 20s).
	LeaseCheckInterval time.Duration `envconfig:"LEASE_CHECK_INTERVAL" default:"20s"`
	// MaxLeases bounds the credential leases this agent holds at once (zero: 1024).
	MaxLeases int `envconfig:"MAX_LEASES" default:"1024"`
	// SQLiteDirs lists the directories SQLite database files may be opened in (comma-separated
	// absolute paths). Empty: SQLite files are refused. With a policy file: sqlite.dirs there.
	SQLiteDirs []string `envconfig:"SQLITE_DIRS"`
	// CustomStoreVersionPaths and CustomStoreCAFiles are "host[:port]=value" entries: where a
	// custom store's JSON answer holds the version id, and the CA bundle it is verified with.
	CustomStoreVersionPaths []string `envconfig:"CUSTOM_STORE_VERSION_PATHS"`
	CustomStoreCAFiles      []string `envconfig:"CUSTOM_STORE_CA_FILES"`
	// Vault (HashiCorp Vault or OpenBao) for secretStore type "vault": the server's address
	// (https; http only to loopback), an Enterprise namespace, the CA its certificate is verified
	// with (a PEM file; else the system roots), and how the agent logs in: VaultAuth "token" (the
	// token in VaultTokenFile, else SECURE_AGENT_VAULT_TOKEN), "approle" (VaultRoleID and the
	// secret id in VaultSecretIDFile), "kubernetes" (VaultRole and the service account token in
	// VaultJWTFile, default the pod's own) or "jwt" (VaultRole and the JWT in VaultJWTFile),
	// at VaultAuthMount (default: the method's name). Empty address: no Vault.
	VaultAddr         string `envconfig:"VAULT_ADDR"`
	VaultNamespace    string `envconfig:"VAULT_NAMESPACE"`
	VaultCAFile       string `envconfig:"VAULT_CA_FILE"`
	VaultAuth         string `envconfig:"VAULT_AUTH" default:"token"`
	VaultAuthMount    string `envconfig:"VAULT_AUTH_MOUNT"`
	VaultToken        string `envconfig:"VAULT_TOKEN"`
	VaultTokenFile    string `envconfig:"VAULT_TOKEN_FILE"`
	VaultRole         string `envconfig:"VAULT_ROLE"`
	VaultRoleID       string `envconfig:"VAULT_ROLE_ID"`
	VaultSecretIDFile string `envconfig:"VAULT_SECRET_ID_FILE"`
	VaultJWTFile      string `envconfig:"VAULT_JWT_FILE"`
	// SecretCacheTTL enables the secret cache when positive. Off by default.
	SecretCacheTTL time.Duration `envconfig:"SECRET_CACHE_TTL" default:"0s"`
	// SecretCacheSize bounds the cache.
	SecretCacheSize int `envconfig:"SECRET_CACHE_SIZE" default:"256"`
	// AWSSessionName names the agent's assume-role sessions in CloudTrail.
	AWSSessionName string `envconfig:"AWS_SESSION_NAME" default:"secure-agent"`
	// MaxConcurrentActivities bounds activities running at once on each of the two workers.
	MaxConcurrentActivities int `envconfig:"MAX_CONCURRENT_ACTIVITIES" default:"8"`
	// MaxConcurrentWorkflowTasks bounds workflow tasks running at once.
	MaxConcurrentWorkflowTasks int `envconfig:"MAX_CONCURRENT_WORKFLOW_TASKS" default:"8"`
	// StopTimeout is how long running activities get to finish on shutdown.
	StopTimeout time.Duration `envconfig:"STOP_TIMEOUT" default:"30s"`
	// ProgressInterval is how often an extraction batch reports the entities it has written so
	// far (a heartbeat, sent to Temporal at most this often): what `run` adds to its progress
	// line inside a batch. 0 (the zero value, for settings built in code) means 1s.
	ProgressInterval time.Duration `envconfig:"PROGRESS_INTERVAL" default:"1s"`
	// PolicyFile is the agent-side policy (see package policy). When set, it alone says which
	// stores, secrets, variables, custom hosts and destinations are allowed.
	PolicyFile string `envconfig:"POLICY_FILE"`
	// Audit is where the audit trail goes: stdout, stderr, off, or a file path.
	Audit string `envconfig:"AUDIT" default:"stdout"`
	// CodecKeys are the payload encryption keys, "id:base64key,..." (the first encrypts, all
	// decrypt); CodecKeysFile is a file of them. Neither: payloads are not encrypted.
	CodecKeys     string `envconfig:"CODEC_KEYS"`
	CodecKeysFile string `envconfig:"CODEC_KEYS_FILE"`
	// HTTPAddress, when set ("127.0.0.1:9090", ":9090"), serves /metrics (Prometheus), /healthz
	// and /readyz there. Empty: off.
	HTTPAddress string `envconfig:"HTTP_ADDRESS"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
	// LogFormat is json or text.
	LogFormat string `envconfig:"LOG_FORMAT" default:"json"`
	// DeploymentName, when set, turns Worker Versioning on (see deployment.go): the worker on the
	// shared task queue joins this Temporal Worker Deployment as version BuildID, and runs are
	// pinned to the build that started them. Empty: off, every worker takes every run.
	DeploymentName string `envconfig:"DEPLOYMENT_NAME"`
	// BuildID names this build within the deployment. Empty: the binary's version stamp (see
	// WithVersionStamp, which `secure-agent worker` applies). Only with DeploymentName.
	BuildID string `envconfig:"BUILD_ID"`
}

// LoadSettings reads the settings from the environment and validates them, reporting every
// problem at once.
func LoadSettings() (Settings, error) {
	var s Settings
	if err := envconfig.Process(EnvPrefix, &s); err != nil {
		return s, fmt.Errorf("reading %s_* settings: %w", EnvPrefix, err)
	}
	if abs, err := filepath.Abs(s.OutputDir); err == nil && s.OutputDir != "" {
		s.OutputDir = abs // results and logs then say exactly where output went
	}
	return s, s.Validate()
}

// Validate reports every invalid setting at once.
func (s Settings) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s_%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(s.TaskQueue) == "" {
		bad("TASK_QUEUE", "must not be empty")
	}
	if strings.TrimSpace(s.OutputDir) == "" {
		bad("OUTPUT_DIR", "must not be empty")
	}
	if s.LeaseTTL < time.Minute {
		bad("LEASE_TTL", "must be at least 1m, got %s", s.LeaseTTL)
	}
	if s.LeaseCheckInterval != 0 && (s.LeaseCheckInterval < time.Second || s.LeaseCheckInterval > 40*time.Second) {
		bad("LEASE_CHECK_INTERVAL", "must be between 1s and 40s (leases must end within a minute of their run), got %s", s.LeaseCheckInterval)
	}
	if s.MaxLeases < 0 {
		bad("MAX_LEASES", "must be at least 1")
	}
	if s.SecretCacheTTL < 0 {
		bad("SECRET_CACHE_TTL", "must not be negative")
	}
	if s.SecretCacheSize < 1 {
		bad("SECRET_CACHE_SIZE", "must be at least 1")
	}
	if s.MaxConcurrentActivities < 1 {
		bad("MAX_CONCURRENT_ACTIVITIES", "must be at least 1")
	}
	if s.MaxConcurrentWorkflowTasks < 2 {
		bad("MAX_CONCURRENT_WORKFLOW_TASKS", "must be at least 2 (the Temporal SDK needs two pollers)")
	}
	if s.StopTimeout < 0 {
		bad("STOP_TIMEOUT", "must not be negative")
	}
	if p := s.ProgressInterval; p != 0 && (p < 10*time.Millisecond || p > 5*time.Second) {
		bad("PROGRESS_INTERVAL", "must be between 10ms and 5s (the extraction's heartbeat timeout is 20s), got %s", p)
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		bad("LOG_LEVEL", "%v", err)
	}
	if s.HTTPAddress != "" {
		if _, _, err := net.SplitHostPort(s.HTTPAddress); err != nil {
			bad("HTTP_ADDRESS", "must be host:port or :port, got %q", s.HTTPAddress)
		}
	}
	if s.LogFormat != "json" && s.LogFormat != "text" {
		bad("LOG_FORMAT", "must be json or text, got %q", s.LogFormat)
	}
	if s.CodecKeys != "" && s.CodecKeysFile != "" {
		bad("CODEC_KEYS", "set either SECURE_AGENT_CODEC_KEYS or SECURE_AGENT_CODEC_KEYS_FILE, not both")
	}
	if s.PolicyFile != "" && (len(s.EnvAllow) > 0 || len(s.CustomStoreHosts) > 0 || len(s.CustomStoreEnvAllow) > 0 ||
		len(s.SQLiteDirs) > 0 || len(s.CustomStoreVersionPaths) > 0 || len(s.CustomStoreCAFiles) > 0) {
		bad("POLICY_FILE", "the policy file says what the stores and connectors may use: move SECURE_AGENT_ENV_ALLOW, SECURE_AGENT_CUSTOM_STORE_HOSTS, SECURE_AGENT_CUSTOM_STORE_ENV_ALLOW, SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS, SECURE_AGENT_CUSTOM_STORE_CA_FILES and SECURE_AGENT_SQLITE_DIRS into it")
	}
	errs = append(errs, s.validateDeployment()...)
	if s.PolicyFile == "" {
		if err := s.defaults().CheckDefaults(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.VaultAddr != "" {
		if msg := vaultAddrProblem(s.VaultAddr); msg != "" {
			bad("VAULT_ADDR", "%s", msg)
		}
		switch s.VaultAuth {
		case "token":
			if s.VaultToken == "" && s.VaultTokenFile == "" {
				bad("VAULT_TOKEN_FILE", "the token login needs the token: set SECURE_AGENT_VAULT_TOKEN_FILE (a file) or SECURE_AGENT_VAULT_TOKEN")
			}
		case "approle":
			if s.VaultRoleID == "" || s.VaultSecretIDFile == "" {
				bad("VAULT_ROLE_ID", "the approle login needs SECURE_AGENT_VAULT_ROLE_ID and SECURE_AGENT_VAULT_SECRET_ID_FILE")
			}
		case "kubernetes", "jwt":
			if s.VaultRole == "" {
				bad("VAULT_ROLE", "the %s login needs the Vault role to log in as", s.VaultAuth)
			}
			if s.VaultAuth == "jwt" && s.VaultJWTFile == "" {
				bad("VAULT_JWT_FILE", "the jwt login needs the file that holds the JWT")
			}
		default:
			bad("VAULT_AUTH", "%q is not a login method: use token, approle, kubernetes or jwt", s.VaultAuth)
		}
	}
	return errors.Join(errs...)
}

// NewLogger returns the agent's structured logger, writing to stderr. Every line passes the log
// guard: one that holds a value of a sensitive field of a lease held in this process is withheld.
func (s Settings) NewLogger() *slog.Logger {
	level, _ := parseLevel(s.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if s.LogFormat == "text" {
		return slog.New(newGuardHandler(slog.NewTextHandler(os.Stderr, opts)))
	}
	return slog.New(newGuardHandler(slog.NewJSONHandler(os.Stderr, opts)))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// Codec returns the payload encryption keys, or nil when none are configured.
func (s Settings) Codec() (*codec.Keys, error) {
	switch {
	case s.CodecKeys != "":
		k, err := codec.ParseKeys(s.CodecKeys)
		if err != nil {
			return nil, fmt.Errorf("%s_CODEC_KEYS: %w", EnvPrefix, err)
		}
		return k, nil
	case s.CodecKeysFile != "":
		k, err := codec.LoadKeysFile(s.CodecKeysFile)
		if err != nil {
			return nil, fmt.Errorf("%s_CODEC_KEYS_FILE: %w", EnvPrefix, err)
		}
		return k, nil
	}
	return nil, nil
}

// Policy returns the agent-side policy: the policy file, or the defaults built from the
// SECURE_AGENT_ENV_ALLOW and SECURE_AGENT_CUSTOM_STORE_* settings.
func (s Settings) Policy() (*policy.Policy, error) {
	if s.PolicyFile == "" {
		return s.defaults().Policy(), nil
	}
	p, err := policy.Load(s.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("%s_POLICY_FILE: %w", EnvPrefix, err)
	}
	return p, nil
}

// defaults are the settings that make up the policy when there is no policy file.
func (s Settings) defaults() policy.Defaults {
	return policy.Defaults{EnvAllow: s.EnvAllow, CustomHosts: s.CustomStoreHosts,
		CustomHeaderEnv: s.CustomStoreEnvAllow, AllowSensitiveLiterals: s.AllowSensitiveLiterals,
		CustomVersionPaths: s.CustomStoreVersionPaths, CustomCAFiles: s.CustomStoreCAFiles, SQLiteDirs: s.SQLiteDirs}
}

// ResolveSQLiteDirs returns the directories SQLite files may be opened in, as the SQLite
// connector compares them: absolute, with symbolic links resolved. A directory that does not
// exist is an error: the agent would otherwise refuse every path under it without saying why.
func ResolveSQLiteDirs(dirs []string) ([]string, error) {
	var out, missing []string
	for _, d := range dirs {
		r, err := filepath.EvalSymlinks(d)
		if err != nil {
			missing = append(missing, d)
			continue
		}
		if fi, err := os.Stat(r); err != nil || !fi.IsDir() {
			missing = append(missing, d)
			continue
		}
		out = append(out, r)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the SQLite directories %q do not exist or are not directories (SECURE_AGENT_SQLITE_DIRS, or sqlite.dirs in the policy file)", missing)
	}
	return out, nil
}

// vaultAddrProblem says what is wrong with a Vault address ("" when nothing): an https URL, or
// http to a loopback address, with no path, query or credentials.
func vaultAddrProblem(addr string) string {
	u, err := url.Parse(addr)
	switch {
	case err != nil || u.Host == "":
		return "is not a URL such as https://vault.internal:8200"
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return "must be the server's address alone, such as https://vault.internal:8200"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return ""
		}
		return "must be https (plain http only to a loopback address): the agent's Vault token goes there"
	}
	return "must be an https URL"
}
