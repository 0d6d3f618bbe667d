package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/internal/specs"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestCatalogFormats runs extractions with output.formats on the real Temporal server against
// real PostgreSQL and MariaDB: the run writes openlineage.jsonl and datahub.json, the manifest
// lists them with their counts and digests, every OpenLineage event and DataHub proposal
// validates against the specifications (internal/specs), there is one event per table and
// view, the view's column lineage is there, and nothing holds the run's password.
//
// The PostgreSQL run's password is then set to "<database>.c.t1": no single name in the
// output holds it, but a format composes it (an OpenLineage dataset name, a DataHub URN). The
// records that would hold it must be redacted, and the file must not hold it.
func TestCatalogFormats(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T) incrementalEngine{
		"postgres": postgresIncremental, "mariadb": mariadbIncremental,
	} {
		t.Run(name, func(t *testing.T) {
			eng := setup(t)
			h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_INC_*"} })
			in := eng.input("")
			in.Output.Formats = []string{output.FormatOpenLineage, output.FormatDataHub}
			sum := runFormats(t, h, in)
			password := os.Getenv(map[string]string{"postgres": "E2E_INC_PG_PASSWORD", "mariadb": "E2E_INC_MYSQL_PASSWORD"}[name])
			scanRunForCanary(t, sum.OutputDir, password)

			events := readLines(t, filepath.Join(sum.OutputDir, output.OpenLineageName))
			proposals := readArray(t, filepath.Join(sum.OutputDir, output.DataHubName))
			m, err := output.ReadManifest(sum.OutputDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Formats) != 2 || m.Formats[0].Name != output.OpenLineageName || m.Formats[0].Count != int64(len(events)) ||
				m.Formats[1].Name != output.DataHubName || m.Formats[1].Count != int64(len(proposals)) {
				t.Fatalf("the manifest's formats %+v do not describe the files (%d events, %d proposals)", m.Formats, len(events), len(proposals))
			}
			for _, f := range m.Formats {
				if sum, err := output.FileSHA256(filepath.Join(sum.OutputDir, f.Name)); err != nil || sum != f.SHA256 {
					t.Errorf("%s: digest %s, the manifest says %s (%v)", f.Name, sum, f.SHA256, err)
				}
			}
			if int64(len(events)) != sum.Counts["tables"] {
				t.Errorf("%d OpenLineage events for %d tables and views", len(events), sum.Counts["tables"])
			}
			for i, e := range events {
				if err := specs.ValidateOpenLineageEvent(e); err != nil {
					t.Errorf("event %d does not validate: %v\n%s", i, err, e)
				}
			}
			for i, p := range proposals {
				if err := specs.ValidateDataHubProposal(p); err != nil {
					t.Errorf("proposal %d does not validate: %v\n%s", i, err, p)
				}
			}
			// The view b.v reads a.t: its event carries column lineage, its dataset upstream lineage.
			if !anyHolds(events, `"columnLineage"`, `.v"`) {
				t.Errorf("no OpenLineage event of the view carries columnLineage")
			}
			if !anyHolds(proposals, `"aspectName":"upstreamLineage"`, `fineGrainedLineages`) {
				t.Errorf("no DataHub proposal carries the view's fine-grained lineage")
			}
			if t.Failed() || name != "postgres" {
				return
			}

			// A password the formats would compose from names.
			db := string(in.Connection["database"])
			composed := db + ".c.t1"
			eng.exec(t, "ALTER ROLE "+string(in.Connection["username"])+" PASSWORD '"+composed+"'")
			t.Setenv("E2E_INC_PG_PASSWORD", composed)
			sum = runFormats(t, h, in)
			for _, name := range []string{output.OpenLineageName, output.DataHubName} {
				b, err := os.ReadFile(filepath.Join(sum.OutputDir, name))
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(b), composed) {
					t.Errorf("%s holds the password the format composed from names", name)
				}
				if !strings.Contains(string(b), "[REDACTED]") {
					t.Errorf("%s has no redacted record: the composed name was not caught", name)
				}
			}
			for i, e := range readLines(t, filepath.Join(sum.OutputDir, output.OpenLineageName)) {
				if err := specs.ValidateOpenLineageEvent(e); err != nil && !strings.Contains(string(e), "[REDACTED]") {
					t.Errorf("event %d does not validate: %v", i, err)
				}
			}
		})
	}
}

func runFormats(t *testing.T, h *harness, in workflows.Input) workflows.Summary {
	t.Helper()
	run := h.start(workflows.ExtractionWorkflowName, in)
	var sum workflows.Summary
	if err := run.Get(t.Context(), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Formats) != 2 {
		t.Fatalf("the summary lists formats %v", sum.Formats)
	}
	return sum
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readArray(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s is not a JSON array: %v", path, err)
	}
	out := make([][]byte, len(raw))
	for i, r := range raw {
		var compact bytes.Buffer
		if err := json.Compact(&compact, r); err != nil {
			t.Fatal(err)
		}
		out[i] = compact.Bytes()
	}
	return out
}

// anyHolds reports whether one record holds every needle.
func anyHolds(records [][]byte, needles ...string) bool {
	for _, r := range records {
		all := true
		for _, n := range needles {
			all = all && strings.Contains(string(r), n)
		}
		if all {
			return true
		}
	}
	return false
}
