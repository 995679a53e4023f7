package trace

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

func TestMicroflowDefaults(t *testing.T) {
	tc := fixture(t, "switch.json")
	for _, c := range []struct {
		mf       string
		packet   []string // substrings of the initial packet
		warnings []string
	}{
		{`inport == "p1" && tcp.dst == 80`, []string{"reg14=0x1", "metadata=0x1", "eth_type=0x800", "ip_proto=6", "nw_ttl=64", "tcp_dst=80"},
			[]string{"leaves the packet type open: tracing IPv4"}},
		{`inport == "p1" && ip6 && udp.src == 53`, []string{"eth_type=0x86dd", "ip_proto=17", "nw_ttl=64", "udp_src=53"}, nil},
		{`inport == "p1" && ip4 && ip.ttl == 3`, []string{"eth_type=0x800", "nw_ttl=3"}, nil},
		{`inport == "p2" && ip4.src == 10.0.0.0/8`, []string{"reg14=0x2", "ip_src=10.0.0.0"}, nil},
		{`eth.dst == 00:00:00:00:00:02`, []string{"metadata=0x1", "eth_dst=00:00:00:00:00:02"}, []string{"does not give inport"}},
		{`inport == "p1" && arp.op == 2 && arp.tpa == 10.0.0.2`, []string{"eth_type=0x806", "arp_op=2", "arp_tpa=10.0.0.2"}, nil},
	} {
		tr, err := tc.Run("sw0", c.mf, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.mf, err)
			continue
		}
		for _, w := range c.packet {
			if !strings.Contains(tr.Packet+",", w+",") {
				t.Errorf("%s: packet %s lacks %s", c.mf, tr.Packet, w)
			}
		}
		if len(tr.Warnings) != len(c.warnings) {
			t.Errorf("%s: warnings %q, want %q", c.mf, tr.Warnings, c.warnings)
		}
		for i, w := range c.warnings {
			if i < len(tr.Warnings) && !strings.Contains(tr.Warnings[i], w) {
				t.Errorf("%s: warning %q lacks %q", c.mf, tr.Warnings[i], w)
			}
		}
	}
}

func TestMicroflowErrors(t *testing.T) {
	tc := fixture(t, "switch.json")
	for _, c := range []struct{ mf, want string }{
		{``, "microflow 1:1: empty microflow"},
		{`inport == "p1" && ip4 && ip6`, "microflow 1:1: constraints are contradictory"},
		{`inport == "p1" && inport == "p2"`, "microflow 1:1: constraints are contradictory"},
		{`inport == "p1" && ip4.src == $web_clients`, "microflow 1:30: $web_clients is a set: give one value"},
		{`inport == "p1" && ip4.src == {10.0.0.1, 10.0.0.2}`, "microflow 1:19: ip4.src == {...} gives a set"},
		{`inport == "p1" && is_chassis_resident("p1")`, "microflow 1:39: is_chassis_resident() cannot describe a packet"},
		{`inport == "_MC_flood"`, `microflow 1:11: "_MC_flood" is a multicast group, not an input port`},
		{`inport == "p1" &&`, "microflow 1:18:"},
		{"inport == \"p1\" &&\n  ip4.dst == 10.0.0.256", "microflow 2:14: "},
		{`inport == "p1" || inport == "p2"`, "microflow 1:16: a microflow describes one packet"},
		{`inport == "p1" && !ip4`, "microflow 1:20: nominal predicate"},
		{`inport == "p1" && !eth.mcast && eth.dst == 00:00:00:00:00:02`, ""}, // a Boolean test is fine
	} {
		_, err := tc.Run("sw0", c.mf, Options{})
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.mf, err)
			}
			continue
		}
		var me *MicroflowError
		if !errors.As(err, &me) {
			t.Errorf("%q: error %v, want a *MicroflowError", c.mf, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s...", c.mf, err, c.want)
		}
		if me.Caret() == "" && c.mf != "" {
			t.Errorf("%q: no caret line", c.mf)
		}
	}
}

func TestCaret(t *testing.T) {
	e := &MicroflowError{Input: "a &&\n\tip4.dst == x", Pos: lex.Pos{Line: 2, Col: 12}, Msg: "m"}
	if got, want := e.Caret(), "\tip4.dst == x\n\t          ^"; got != want {
		t.Errorf("caret %q, want %q", got, want)
	}
}

func TestDatapathLookup(t *testing.T) {
	tc := fixture(t, "router.json")
	for name, want := range map[string]string{"sw1": "sw1", "lr0": "lr0", "2": "sw1",
		"00000000-0000-0000-0004-000000000001": "lr0"} {
		d, err := tc.Datapath(name)
		if err != nil || d.Name != want {
			t.Errorf("Datapath(%q) = %v, %v; want %s", name, d, err, want)
		}
	}
	if _, err := tc.Datapath("sw9"); err == nil || !strings.Contains(err.Error(), "known: lr0, sw0, sw1") {
		t.Errorf("unknown datapath: %v", err)
	}
	s := &Snapshot{Datapaths: []Datapath{{ID: "a", Name: "x", Key: 1}, {ID: "b", Name: "x", Key: 2}}}
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Datapath("x"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous name: %v", err)
	}
	if d, err := tr.Datapath("b"); err != nil || d.Key != 2 {
		t.Errorf("by id: %v %v", d, err)
	}
}

func TestDatapathFromInport(t *testing.T) {
	tc := fixture(t, "router.json")
	tr, err := tc.Run("", `inport == "q1" && eth.dst == ff:ff:ff:ff:ff:ff`, Options{})
	if err != nil || tr.Datapath != "sw1" {
		t.Fatalf("datapath %q, %v", tr.Datapath, err)
	}
	for mf, want := range map[string]string{`eth.dst == ff:ff:ff:ff:ff:ff`: "names no inport", `inport == "zz"`: `inport "zz" is no logical port`} {
		if _, err := tc.Run("", mf, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", mf, err, want)
		}
	}
}

func TestSnapshotValidate(t *testing.T) {
	dp := []Datapath{{ID: "d", Name: "sw", Key: 1}}
	for _, c := range []struct {
		s    Snapshot
		want string
	}{
		{Snapshot{Datapaths: []Datapath{{ID: "d", Key: 1}, {ID: "e", Key: 1}}}, `datapaths "d" and "e" share tunnel key 1`},
		{Snapshot{Datapaths: dp, Ports: []Port{{Name: "p", Datapath: "x", Key: 1}}}, `port "p": unknown datapath "x"`},
		{Snapshot{Datapaths: dp, Ports: []Port{{Name: "p", Datapath: "d", Key: 1}, {Name: "q", Datapath: "d", Key: 1}}}, `ports "p" and "q" share tunnel key 1`},
		{Snapshot{Datapaths: dp, MulticastGroups: []MulticastGroup{{Name: "g", Datapath: "d", Key: 32768, Ports: []string{"zz"}}}}, `unknown member port "zz"`},
		{Snapshot{Datapaths: dp, Flows: []Flow{{UUID: "f", Datapaths: []string{"d"}, Pipeline: "sideways"}}}, `pipeline "sideways"`},
		{Snapshot{Datapaths: dp, Flows: []Flow{{UUID: "f", Pipeline: "ingress"}}}, `flow 0 (f): no datapath`},
	} {
		err := c.s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
	if _, err := ParseSnapshot([]byte(`{"datapaths": [], "flws": []}`)); err == nil || !strings.Contains(err.Error(), `unknown field "flws"`) {
		t.Errorf("unknown field: %v", err)
	}
}

// TestBadFlowsSkipped: a flow that does not parse is reported and skipped;
// the next lower-priority flow applies.
func TestBadFlowsSkipped(t *testing.T) {
	s := loopSnapshot(false)
	s.Flows = append(s.Flows, Flow{UUID: "bad", Datapaths: []string{"a"}, Pipeline: "ingress", Table: 0, Priority: 200,
		Match: "1", Actions: "frobnicate;"})
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Warnings) != 1 || !strings.Contains(tr.Warnings[0], "logical flow bad (ingress table 0 priority 200): actions \"frobnicate;\"") {
		t.Fatalf("warnings %q", tr.Warnings)
	}
	got, err := tr.Run("a", `inport == "a1"`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Warnings) != 1 || got.Root.Children[0].Flow.UUID == "bad" {
		t.Errorf("bad flow used or not reported: %+v", got.Root.Children[0].Flow)
	}
}

// loopSnapshot: datapaths a and b joined by patch ports; every packet goes
// out of the patch port (or, with selfLoop, back to table 0 of a).
func loopSnapshot(selfLoop bool) *Snapshot {
	s := &Snapshot{
		Datapaths: []Datapath{{ID: "a", Name: "a", Key: 1}, {ID: "b", Name: "b", Key: 2}},
		Ports: []Port{{Name: "a1", Datapath: "a", Key: 1}, {Name: "a-b", Datapath: "a", Key: 2, Type: "patch", Options: map[string]string{"peer": "b-a"}},
			{Name: "b-a", Datapath: "b", Key: 1, Type: "patch", Options: map[string]string{"peer": "a-b"}}},
	}
	for _, d := range []struct{ dp, out string }{{"a", "a-b"}, {"b", "b-a"}} {
		s.Flows = append(s.Flows,
			Flow{UUID: d.dp + "-in", Datapaths: []string{d.dp}, Pipeline: "ingress", Priority: 0, Match: "1",
				Actions: fmt.Sprintf(`outport = %q; flags.loopback = 1; output;`, d.out)},
			Flow{UUID: d.dp + "-out", Datapaths: []string{d.dp}, Pipeline: "egress", Priority: 0, Match: "1", Actions: "output;"})
	}
	if selfLoop {
		s.Flows[0].Actions = "next(0);"
	}
	return s
}

func TestLoopProtection(t *testing.T) {
	got, err := Run(loopSnapshot(false), "a", `inport == "a1"`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Outcomes) != 1 || !strings.Contains(got.Outcomes[0].Reason, "more than 32 patch port crossings") {
		t.Errorf("patch loop: %+v", got.Outcomes)
	}
	got, err = Run(loopSnapshot(true), "a", `inport == "a1"`, Options{MaxDepth: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Outcomes) != 1 || !strings.Contains(got.Outcomes[0].Reason, "more than 50 logical flow lookups") {
		t.Errorf("next(0) loop: %+v", got.Outcomes)
	}
}

func TestMaxNodes(t *testing.T) {
	tc := fixture(t, "switch.json")
	got, err := tc.Run("sw0", `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == ff:ff:ff:ff:ff:ff`, Options{MaxNodes: 12})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Truncated || !strings.Contains(got.String(Detailed), "trace truncated") {
		t.Errorf("not truncated:\n%s", got.String(Detailed))
	}
}

func TestParseCTState(t *testing.T) {
	for in, want := range map[string]uint32{"new": of.CSNew | of.CSTrk, "est,rpl": of.CSEst | of.CSRpl | of.CSTrk,
		"trk|inv": of.CSInv | of.CSTrk, "rel dnat": of.CSRel | of.CSDNAT | of.CSTrk} {
		if got, err := ParseCTState(in); err != nil || got != want {
			t.Errorf("ParseCTState(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "new,bogus", ","} {
		if _, err := ParseCTState(bad); err == nil {
			t.Errorf("ParseCTState(%q) accepted", bad)
		}
	}
}

func TestRenderUnknownForm(t *testing.T) {
	tc := fixture(t, "switch.json")
	tr, err := tc.Run("sw0", `inport == "p1"`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Render(&strings.Builder{}, tr, "fancy"); err == nil || !strings.Contains(err.Error(), `unknown trace output form "fancy"`) {
		t.Errorf("Render(fancy) = %v", err)
	}
}

// FuzzRun: no microflow makes the tracer panic.
func FuzzRun(f *testing.F) {
	for _, s := range []string{`inport == "p1" && eth.dst == ff:ff:ff:ff:ff:ff`, `inport == "p1" && tcp.dst == 22 && ip4`,
		`inport == "p2" && arp.op == 1 && arp.tpa == 10.0.0.1`, `ip4.src == 1.2.3.4/8`, `!(inport == "p1")`, `reg0[3..5] == 7`} {
		f.Add(s)
	}
	tc := fixture(f, "switch.json")
	f.Fuzz(func(t *testing.T, mf string) {
		tr, err := tc.Run("sw0", mf, Options{MaxNodes: 2000})
		if err != nil {
			var me *MicroflowError
			if !errors.As(err, &me) {
				t.Fatalf("%q: error %T %v is not a *MicroflowError", mf, err, err)
			}
			return
		}
		for _, form := range []Format{Detailed, Summary, Minimal} {
			_ = tr.String(form)
		}
	})
}

func BenchmarkRunRouted(b *testing.B) {
	tc := fixture(b, "router.json")
	mf := `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:ff:01 && ip4.src == 10.0.0.1 && ip4.dst == 10.1.0.2 && ip.ttl == 64 && udp.dst == 53`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tc.Run("sw0", mf, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewRouter(b *testing.B) {
	tc := fixture(b, "router.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(tc.Snapshot()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDetraceAndOpenFlowFlow(t *testing.T) {
	tc := fixture(t, "switch.json")
	tr, err := tc.Run("sw0", `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && tcp.dst == 80`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.OpenFlowFlow(7), "in_port=7,eth_src=00:00:00:00:00:01,eth_dst=00:00:00:00:00:02,eth_type=0x800,ip_src=10.0.0.1,ip_dst=10.0.0.2,ip_proto=6,nw_ttl=64,tcp_dst=80"; got != want {
		t.Errorf("OpenFlowFlow = %s\nwant %s", got, want)
	}
	out := " 0. in_port=7, priority 100, cookie 0x6776000000000000\n" +
		"    resubmit(,8)\n" +
		"13. tcp,reg0=0x200/0x200, priority 2001, cookie 0x6776000000001014\n" +
		"    drop\n" +
		"14. priority 0, cookie 0xdeadbeef\n"
	got, lines := tc.Detrace(out)
	want := out[:strings.Index(out, "    drop")] +
		"    * logical flow 00001014-0000-4000-8000-000000000015: datapath sw0, ingress table 5 (ls_in_acl), priority 2001\n" +
		"      match (reg0[9] == 1 && (ip4 && tcp.dst == 22)) actions (drop;) from ACL 00000000-0000-0000-0003-000000000001\n" +
		"    drop\n14. priority 0, cookie 0xdeadbeef\n" +
		"    * no logical flow with cookie 0xdeadbeef in the southbound snapshot\n"
	if got != want {
		t.Errorf("Detrace:\n%s\nwant\n%s", got, want)
	}
	if len(lines) != 1 || lines[0].Flow.Stage != "ls_in_acl" || lines[0].Cookie != "0x6776000000001014" {
		t.Errorf("lines %+v", lines)
	}
	if got := CTNextFlags(of.CSNew | of.CSTrk); got != "trk,new" {
		t.Errorf("CTNextFlags = %q", got)
	}
}

// TestConcurrentRuns: one Tracer serves concurrent traces (the API server
// shares it); run with -race.
func TestConcurrentRuns(t *testing.T) {
	b, err := os.ReadFile("testdata/router.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	want := fixture(t, "router.json")
	mf := `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:ff:01 && ip4.src == 10.0.0.1 && ip4.dst == 10.1.0.2 && udp.dst == 53`
	ref, err := want.Run("sw0", mf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			tr, err := tc.Run("sw0", mf, Options{})
			if err == nil && tr.String(Detailed) != ref.String(Detailed) {
				err = fmt.Errorf("concurrent trace differs")
			}
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
