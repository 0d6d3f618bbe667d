package sqlite

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/secure-agent/secure-agent/secrets"
)

// The database path comes from workflow input, which is untrusted: left alone it could name any
// file the agent can read, and the different answers for a missing file, a directory, a device
// and a database would map the agent's file system. So a path is confined to the directories the
// agent's operator allows (connectors.OpenOptions.SQLiteDirs), and every path outside them gets
// one refusal, byte for byte, whatever is there.

// msgOutside is the whole message of the refusal. It names the settings, never the path.
const msgOutside = "sqlite: the database path is not inside a directory the agent allows for SQLite files (SECURE_AGENT_SQLITE_DIRS, or sqlite.dirs in the policy file); put the file there or ask the agent's operator to allow its directory"

// errOutside returns the refusal for a path outside every allowed directory: PolicyDenied
// (final), field "path", no cause and no detail, so that nothing in it depends on the path.
func errOutside() error {
	return &secrets.Error{Kind: secrets.PolicyDenied, Field: FieldPath, Msg: msgOutside}
}

// confine returns the path to open for path: path with its symbolic links resolved, strictly
// inside one of dirs. Every path that is not gets errOutside.
//
// The lexical checks come first and touch nothing: an empty dirs, a relative path (it would be
// judged against the agent's working directory, which no input should depend on; this covers
// "file:" URIs too), a NUL byte, or a cleaned path that is not strictly inside a directory of
// dirs (the directory itself is not a file) is refused before the file system is asked anything,
// so those refusals cannot differ in timing or text with what is there. Only then are symbolic
// links resolved, and a path that resolves outside every directory is refused the same way.
//
// A path that does not exist (or cannot be examined) inside an allowed directory is returned as
// far as it resolves, for checkFile to report what is wrong: the operator chose to expose those
// directories. A symbolic link whose target cannot be resolved is refused, as its target cannot be
// shown to be inside.
//
// dirs are absolute, clean and with symbolic links resolved (the agent resolves them at
// start-up); an entry that is not absolute and clean allows nothing, and neither does "/".
//
// What remains is a race: a directory component replaced by a symbolic link between this check
// and SQLite's open would be followed. The agent does not write these directories and workflow
// input cannot create files, so only someone who can already write there could use it.
func confine(path string, dirs []string) (string, error) {
	if len(dirs) == 0 || !filepath.IsAbs(path) || strings.IndexByte(path, 0) >= 0 {
		return "", errOutside()
	}
	clean := filepath.Clean(path)
	if !insideAny(clean, dirs) {
		return "", errOutside()
	}
	resolved, err := resolve(clean)
	if err != nil {
		return "", err
	}
	if !insideAny(resolved, dirs) {
		return "", errOutside()
	}
	return resolved, nil
}

// resolve resolves the symbolic links of clean, an absolute and clean path. When the whole path
// does not resolve (it does not exist, a component is a file, a directory cannot be searched),
// it resolves the longest leading part that does and appends the rest unchanged: that rest
// starts with a name that is not there (or cannot be examined), so no link in it is followed by
// the open that checkFile then tries. If that first name exists after all, it is a symbolic link
// whose target cannot be resolved (dangling, a loop, behind a directory that cannot be searched),
// and the path is refused.
func resolve(clean string) (string, error) {
	if r, err := filepath.EvalSymlinks(clean); err == nil {
		return r, nil
	}
	prefix, rest := filepath.Dir(clean), filepath.Base(clean)
	for {
		if r, err := filepath.EvalSymlinks(prefix); err == nil {
			// EvalSymlinks could not follow prefix/first. If Lstat finds something there, it is
			// a symbolic link whose target cannot be resolved.
			first, _, _ := strings.Cut(rest, string(filepath.Separator))
			if _, err := os.Lstat(filepath.Join(r, first)); err == nil {
				return "", errOutside()
			}
			return filepath.Join(r, rest), nil
		}
		if prefix == filepath.Dir(prefix) { // not even the root resolves
			return "", errOutside()
		}
		rest = filepath.Join(filepath.Base(prefix), rest)
		prefix = filepath.Dir(prefix)
	}
}

// insideAny reports whether clean, an absolute and clean path, lies strictly inside one of dirs.
func insideAny(clean string, dirs []string) bool {
	for _, d := range dirs {
		if d == "" || !filepath.IsAbs(d) || filepath.Clean(d) != d || d == string(filepath.Separator) {
			continue
		}
		if strings.HasPrefix(clean, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
