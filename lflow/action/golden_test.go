package action_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

var update = flag.Bool("update", false, "rewrite golden files in lflow/testdata")

// golden runs fn on every input of a golden file and compares (or with
// -update rewrites) the "=> " lines that follow each input. Lines starting
// with '#' and blank lines are kept as they are.
func golden(t *testing.T, path string, fn func(input string) []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := 0; i < len(lines); {
		line := lines[i]
		i++
		if line == "" || strings.HasPrefix(line, "#") {
			out = append(out, line)
			continue
		}
		if strings.HasPrefix(line, "=>") {
			t.Errorf("%s:%d: result line without input", path, i)
			continue
		}
		var want []string
		for i < len(lines) && strings.HasPrefix(lines[i], "=>") {
			want = append(want, strings.TrimPrefix(strings.TrimPrefix(lines[i], "=>"), " "))
			i++
		}
		got := fn(line)
		out = append(out, line)
		for _, g := range got {
			out = append(out, "=> "+g)
		}
		if !*update && strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: input %q:\n got: %s\nwant: %s", path, line, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Test layout: logical ingress table N is OpenFlow table 8+N, egress table N
// is 40+N (both 0..29); output goes to 37, MAC bindings are in table 66.
func tableMap(p action.Pipeline, t int) (int, bool) {
	if t < 0 || t >= 30 {
		return 0, false
	}
	if p == action.Egress {
		return 40 + t, true
	}
	return 8 + t, true
}

var ports = map[string]uint32{"p1": 1, "p2": 2, "lsp-router": 3}

// groupAlloc hands out sequential ids, sharing one id for identical groups.
type groupAlloc struct{ ids map[string]uint32 }

func (a *groupAlloc) alloc(g of.Group) (uint32, error) {
	key := g.String()
	if id, ok := a.ids[key]; ok {
		return id, nil
	}
	if a.ids == nil {
		a.ids = map[string]uint32{}
	}
	id := uint32(len(a.ids) + 1)
	a.ids[key] = id
	return id, nil
}

// testParams returns the encode parameters for a golden input, which may
// start with option tags: [egress] (pipeline), [router] (router zones),
// [meter] (controller meter 7; log meter "m1" is 9).
func testParams(input string) (string, *action.EncodeParams) {
	p := &action.EncodeParams{
		Pipeline: action.Ingress, Table: 10, TableMap: tableMap, OutputTable: 37, MACBindingTable: 66,
		LookupMACTable: 67, LookupMACIPTable: 68, GetFDBTable: 71, LookupFDBTable: 72,
		LBHairpinTable: 73, LBHairpinReplyTable: 74, CTSNATHairpinTable: 75, LBAffinityTable: 76,
		Datapath: "ls1",
		LookupPort: func(dp, name string) (uint32, bool) {
			k, ok := ports[name]
			return k, ok && dp == "ls1"
		},
		AllocGroup: (&groupAlloc{}).alloc,
	}
	for {
		switch {
		case strings.HasPrefix(input, "[egress] "):
			p.Pipeline, p.OutputTable = action.Egress, 64
			input = strings.TrimPrefix(input, "[egress] ")
			continue
		case strings.HasPrefix(input, "[router] "):
			p.Router = true
			input = strings.TrimPrefix(input, "[router] ")
			continue
		case strings.HasPrefix(input, "[meter] "):
			p.ControllerMeter = 7
			p.LookupMeter = func(name string) (uint32, bool) { return 9, name == "m1" }
			input = strings.TrimPrefix(input, "[meter] ")
			continue
		}
		return input, p
	}
}

// run parses and encodes one golden input.
func run(input string) (lines []string, enc *action.Encoded) {
	src, params := testParams(input)
	st := symtab.Default()
	parsed, err := action.Parse(src, st)
	if err != nil {
		return []string{"error: " + err.Error()}, nil
	}
	lines = append(lines, parsed.String())
	// The canonical form must parse back to itself.
	again, err := action.Parse(parsed.String(), st)
	if err != nil || again.String() != parsed.String() {
		lines = append(lines, fmt.Sprintf("NOT IDEMPOTENT: %v %v", again, err))
	}
	if len(parsed.Prereqs) > 0 {
		lines = append(lines, "prereqs: "+strings.Join(parsed.Prereqs, " && "))
	}
	enc, err = action.Encode(parsed.Actions, params)
	if err != nil {
		return append(lines, "encode error: "+err.Error()), nil
	}
	lines = append(lines, "encodes as: "+enc.Actions.String())
	for _, g := range enc.Groups {
		lines = append(lines, "group: "+g.String())
	}
	for _, a := range enc.Actions {
		if c, ok := a.(of.Controller); ok {
			u, err := action.ParseUserData(c.UserData)
			if err != nil {
				lines = append(lines, "userdata error: "+err.Error())
				continue
			}
			switch u.Op {
			case action.OpLog:
				lines = append(lines, fmt.Sprintf("controller: %s verdict=%s severity=%s name=%q", u.Op, u.Verdict, u.Severity, u.Name))
			case action.OpPutARP, action.OpPutND, action.OpPutFDB, action.OpSvcCheck:
				lines = append(lines, "controller: "+u.Op.String())
			case action.OpDNSLookup:
				lines = append(lines, fmt.Sprintf("controller: %s result=%s", u.Op, u.Result))
			case action.OpPutDHCPOpts, action.OpPutDHCPv6Opts, action.OpPutNDRAOpts:
				var opts []string
				for _, o := range u.DHCPOptions {
					opts = append(opts, fmt.Sprintf("%d:%x", o.Code, o.Value))
				}
				lines = append(lines, fmt.Sprintf("controller: %s result=%s options %s", u.Op, u.Result, strings.Join(opts, " ")))
			default:
				lines = append(lines, "controller: "+u.Op.String()+" with actions "+u.Actions)
			}
		}
	}
	return lines, enc
}

func TestGolden(t *testing.T) {
	for _, name := range []string{"action-parse.txt", "action-errors.txt"} {
		t.Run(name, func(t *testing.T) {
			golden(t, "../testdata/"+name, func(in string) []string {
				lines, _ := run(in)
				return lines
			})
		})
	}
}

func symtabDefault() *symtab.Table { return symtab.Default() }
