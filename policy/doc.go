// Package policy is the agent-side policy: what the agent may read and where credentials may go.
//
// Whoever can start a workflow controls its input, so the input cannot be trusted to decide which
// secrets the agent reads or where it sends them. The customer decides, in a policy file on the
// agent (Load), or, when no file is configured, through the agent's SECURE_AGENT_* settings
// (Default, the behaviour before policy files existed). A Policy is immutable once built, pure (no
// network, no environment, no clock) and safe for concurrent use.
//
// Every refusal is a *secrets.Error of Kind secrets.PolicyDenied whose message names the rule
// that refused it, the policy file, and how to allow it.
//
// # File format
//
// YAML, or JSON (which is YAML), at most MaxFileBytes. Unknown keys, repeated keys, null values,
// YAML aliases, explicit tags other than the standard !!str, !!int, !!bool, !!seq and !!map, and a
// second document are errors; Load reports every problem at once, each as "<file>:<line>:<column>:
// <key path>: <problem>". Messages name keys and positions but never repeat the file's values, in
// case a secret file was configured as the policy by mistake.
//
//	version: 1                          # required; the only version
//	stores: [aws, env]                  # store types the agent may use; omitted = all, [] = none
//	secrets:                            # allowed secret paths per store type (globs)
//	  aws: ["prod/catalog/*", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/*"]
//	  azure: ["https://myvault.vault.azure.net/secrets/catalog-*"]
//	  gcp: ["projects/my-project/secrets/catalog-*"]
//	  custom: ["vault.internal:8200/team/*"]   # matched against "<store_url host[:port]>/<secret_name>"
//	env:
//	  allow: ["DB_*"]                   # the env store's allowlist (the built-in denylist always applies)
//	customStores:
//	  hosts: ["vault.internal:8200"]    # hosts a custom store_url may name
//	  headerEnv: ["VAULT_TOKEN"]        # variables a custom store may send as headers
//	  versionPaths: {"vault.internal:8200": data.metadata.version}  # agent-side, never input
//	  caFiles: {"vault.internal:8200": /etc/secure-agent/vault-ca.pem}
//	destinations:                       # where credentials from a secret may be sent
//	  default: deny                     # deny | allow, for credentials no rule below covers
//	  rules:
//	    - secrets: ["prod/catalog/*"]   # secret paths (globs; any store; env: variable names)
//	      hosts: ["db.internal:5432", "*.replica.internal:5432", "/run/postgresql/.s.PGSQL.5432"]
//	      legacyPasswordAuth: false     # true: these servers may ask for MD5 / clear text without verified TLS
//	sqlite:
//	  dirs: ["/var/lib/secure-agent/sqlite"]   # the only directories SQLite files are opened in
//	outputs:
//	  s3:                               # where the s3 output may write, whatever its credentials
//	    buckets: ["acme-metadata"]
//	    hosts: ["s3.eu-west-1.amazonaws.com:443"]
//	allowSensitiveLiterals: false       # development only
//
// A YAML scalar that starts with "*" must be quoted ("*" alone is an alias in YAML).
//
// # Without a file
//
// Default (and Defaults.Policy) build the policy from the agent's SECURE_AGENT_* settings, the
// behaviour before policy files: every store type, every secret path, destinations not
// restricted; the env store limited to SECURE_AGENT_ENV_ALLOW (and the built-in denylist);
// custom-store hosts from SECURE_AGENT_CUSTOM_STORE_HOSTS. Those patterns are the stores' own
// settings (path.Match syntax) and are validated where the stores are built.
//
// # Omitted keys
//
// Everything a file leaves out is refused, except two things that are named explicitly:
//
//   - stores omitted: every store type may be used (each is still limited by its own section).
//   - destinations omitted entirely: destinations are not restricted. A destinations section
//     without default means default: deny.
//   - secrets omitted, or a store type missing under it: that store may read no secret. Write
//     ["*"] to allow every path. The env store is not listed here: env.allow governs it.
//   - env omitted: the env store may read no variable.
//   - customStores omitted: no custom store host is allowed (so custom stores are refused) and
//     custom stores may send no header variable.
//   - sqlite omitted: no SQLite file may be opened.
//   - outputs omitted: the s3 output is refused (a local output needs no rule).
//   - allowSensitiveLiterals omitted: false.
//
// # Patterns
//
// Patterns use connectors.Glob: "*" matches any run of characters ("/", "." and ":" included), "?"
// one character, everything else itself ("[" and "]" are literal). Patterns must be non-empty,
// valid UTF-8, at most 1024 bytes, without control characters, leading or trailing spaces or "\".
//
//   - secrets.aws, secrets.gcp: compared byte for byte, as the secret path is written in the input
//     (an ARN and a name are different spellings: list both if both are used).
//   - secrets.azure: compared ignoring case (Key Vault names are case-insensitive).
//   - secrets.custom: the text before the first "/" (host[:port]) is compared ignoring case, the
//     rest byte for byte. A custom secret must also name a host that customStores.hosts allows.
//   - env.allow, customStores.headerEnv: letters, digits, "_" and the wildcards "*" and "?" only
//     (so path.Match, which the stores use, and connectors.Glob agree), case-sensitive. A pattern
//     that can only match variables of the built-in denylist (env.Denied: AWS_*, AZURE_*, GOOGLE_*,
//     TEMPORAL_*, SECURE_AGENT_*, ...) is an error: those are never readable, whatever the policy.
//   - customStores.hosts: "host" (any port) or "host:port"; an IPv6 address is written without
//     brackets and matches any port (this is how the custom store compares hosts).
//   - destinations.rules[].hosts: "host" (any port), "host:port" or "host:*"; IPv6 in brackets,
//     "[2001:db8::1]:5432" or "[2001:db8::1]". Hosts compare ignoring case, one trailing "." is
//     ignored, and IP addresses compare in canonical form (RFC 5952; IPv4-mapped IPv6 as IPv4), so
//     an IPv6 pattern with wildcards must be written in canonical form.
//
// # Destinations
//
// CheckDestination(dest, secrets) decides whether a connection to dest may carry credentials
// taken from the given secret paths. dest is what the agent dials, in netguard's canonical form
// (no IPv6 zones, no numeric host forms a C resolver would read as an address). A Unix socket is
// allowed only when some rule lists its exact path among its hosts, even for literals.
// Credentials from no secret (literals) are otherwise not restricted. Each secret must be allowed
// on its own:
//
//   - the rules covering it are those with a secrets pattern that matches its path exactly;
//   - if some rule covers it, host:port must match a hosts pattern of one of those rules (any
//     covering rule suffices);
//   - if no rule covers it, default decides (deny, or allow).
//
// Under default: allow, a secret that no rule matches exactly is also checked against the rules
// ignoring case and in its other spellings (the name inside an AWS ARN with and without its
// 6-character suffix, the secret name inside an Azure secret URL, a GCP path without
// /versions/V), and if one of those matches, that rule restricts it. This only adds restrictions:
// it keeps a changed spelling from slipping past a rule. It cannot know every alias (an Azure name
// given with vaultName is not its URL), so default: deny is the setting that guarantees that
// only listed destinations receive credentials.
//
// A port outside 1-65535 matches nothing. An empty host, or one longer than 1024 bytes, matches
// nothing, not even "*". A secret path longer than MaxRefBytes is refused by CheckSecret and
// CheckDestination.
//
// LegacyPasswordAuth(dest) reports whether a rule with legacyPasswordAuth: true lists dest: the
// server there may then ask for an MD5 or clear-text password without verified TLS.
//
// # Outputs, SQLite, custom stores
//
// CheckOutput(bucket, endpoint) judges the s3 output whatever credentials it uses. SQLiteDirs,
// CustomVersionPath and CustomCAFile return agent-side settings that replaced input fields.
//
// # Allowlists
//
// An env.allow pattern of wildcards only, or one that can match a variable customStores.headerEnv
// lets custom stores send, is an error: the env store would hand those tokens to workflow input.
// Defaults.CheckDefaults applies the same rules to the SECURE_AGENT_* settings.
//
// The destination host may itself come from a secret, so denial messages name the secret path
// and the rule but never the host or the port: they say "the destination host".
package policy
