package trace

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite trace/testdata/golden/*.txt")

// goldenCase is one line of testdata/cases.txt.
type goldenCase struct {
	Name, Fixture, Datapath, Microflow string
	Opts                               Options
}

func parseOptions(s string) (Options, error) {
	var o Options
	for _, f := range strings.Fields(s) {
		switch {
		case f == "-":
		case strings.HasPrefix(f, "--ct="):
			st, err := ParseCTState(strings.TrimPrefix(f, "--ct="))
			if err != nil {
				return o, err
			}
			o.CT = append(o.CT, st)
		case strings.HasPrefix(f, "--lb-dst="):
			v := strings.TrimPrefix(f, "--lb-dst=")
			ap, err := netip.ParseAddrPort(v)
			if err != nil {
				a, err2 := netip.ParseAddr(v)
				if err2 != nil {
					return o, err
				}
				ap = netip.AddrPortFrom(a, 0)
			}
			o.LBDst = ap
		default:
			return o, fmt.Errorf("unknown option %q", f)
		}
	}
	return o, nil
}

func readCases(t *testing.T) []goldenCase {
	t.Helper()
	f, err := os.Open("testdata/cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cs []goldenCase
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		parts := strings.SplitN(l, "|", 5)
		if len(parts) != 5 {
			t.Fatalf("cases.txt:%d: want 5 |-separated fields", ln)
		}
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		o, err := parseOptions(parts[3])
		if err != nil {
			t.Fatalf("cases.txt:%d: %v", ln, err)
		}
		cs = append(cs, goldenCase{Name: parts[0], Fixture: parts[1], Datapath: parts[2], Opts: o, Microflow: parts[4]})
	}
	return cs
}

var fixtures = map[string]*Tracer{}

func fixture(t testing.TB, name string) *Tracer {
	t.Helper()
	if tr, ok := fixtures[name]; ok {
		return tr
	}
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSnapshot(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tr, err := New(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(tr.Warnings) > 0 {
		t.Fatalf("%s: %s", name, strings.Join(tr.Warnings, "\n"))
	}
	fixtures[name] = tr
	return tr
}

// renderAll is the golden file content of a trace: all three forms and the
// outcomes as JSON.
func renderAll(tr *Trace) string {
	var sb strings.Builder
	for _, f := range []Format{Detailed, Summary, Minimal} {
		sb.WriteString("=== " + string(f) + "\n")
		sb.WriteString(tr.String(f))
	}
	sb.WriteString("=== outcomes\n")
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(tr.Outcomes)
	return sb.String()
}

func TestGolden(t *testing.T) {
	for _, c := range readCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			tc := fixture(t, c.Fixture)
			tr, err := tc.Run(c.Datapath, c.Microflow, c.Opts)
			if err != nil {
				t.Fatal(err)
			}
			got := renderAll(tr)
			path := filepath.Join("testdata", "golden", c.Name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./trace -update)", err)
			}
			if got != string(want) {
				t.Errorf("trace differs from %s (go test ./trace -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}
