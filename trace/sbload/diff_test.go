package sbload_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

// update is accepted so that `go test ./trace/... -update` works; the
// golden files live in package trace.
var _ = flag.Bool("update", false, "rewrite golden files (package trace)")

var sbDatabase = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}

// diffCase is a line of ../testdata/cases.txt.
type diffCase struct {
	name, fixture, datapath, opts, microflow string
}

func readCases(t *testing.T) []diffCase {
	t.Helper()
	f, err := os.Open("../testdata/cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cs []diffCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := strings.SplitN(l, "|", 5)
		if len(p) != 5 {
			t.Fatalf("bad case line %q", l)
		}
		for i := range p {
			p[i] = strings.TrimSpace(p[i])
		}
		cs = append(cs, diffCase{p[0], p[1], p[2], p[3], p[4]})
	}
	return cs
}

func traceOptions(t *testing.T, s string) (trace.Options, []string) {
	t.Helper()
	var o trace.Options
	var args []string
	for _, f := range strings.Fields(s) {
		switch {
		case f == "-":
		case strings.HasPrefix(f, "--ct="):
			st, err := trace.ParseCTState(strings.TrimPrefix(f, "--ct="))
			if err != nil {
				t.Fatal(err)
			}
			o.CT = append(o.CT, st)
			args = append(args, f)
		case strings.HasPrefix(f, "--lb-dst="):
			ap, err := netip.ParseAddrPort(strings.TrimPrefix(f, "--lb-dst="))
			if err != nil {
				t.Fatal(err)
			}
			o.LBDst = ap
			args = append(args, f)
		default:
			t.Fatalf("unknown option %q", f)
		}
	}
	return o, args
}

// loadFixture stores a fixture in a fresh real southbound ovsdb-server and
// reads it back with Load. It returns the server endpoint and the
// snapshot as govn's loader sees it.
func loadFixture(t *testing.T, name string) (string, *trace.Snapshot) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	fix, err := trace.ParseSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	srv := dbservertest.Start(t, sbDatabase, "", nil)
	return srv.Endpoint(), storeAndLoad(t, srv.Endpoint(), fix)
}

func storeAndLoad(t *testing.T, endpoint string, fix *trace.Snapshot) *trace.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sbload.Connect(ctx, []string{endpoint}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops, err := sbload.StoreOps(c, nil, fix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	for {
		s, err := sbload.Load(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Flows) == len(fix.Flows) && len(s.Ports) == len(fix.Ports) && len(s.MulticastGroups) == len(fix.MulticastGroups) {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("snapshot never showed the stored rows: %d/%d flows", len(s.Flows), len(fix.Flows))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestLoadRoundTrip: what StoreOps writes, Load reads back with the same
// content (ids aside) and the same traces.
func TestLoadRoundTrip(t *testing.T) {
	dbservertest.RequireOVS(t)
	_, s := loadFixture(t, "switch.json")
	b, _ := os.ReadFile("../testdata/switch.json")
	fix, _ := trace.ParseSnapshot(b)
	fix.Sort()
	if len(s.Datapaths) != 1 || s.Datapaths[0].Name != "sw0" || s.Datapaths[0].Key != 1 {
		t.Fatalf("datapaths %+v", s.Datapaths)
	}
	key := func(f trace.Flow) string {
		return fmt.Sprintf("%s %d %d %s %s %v", f.Pipeline, f.Table, f.Priority, f.Match, f.Actions, f.ExternalIDs)
	}
	var got, want []string
	for _, f := range s.Flows {
		got = append(got, key(f))
	}
	for _, f := range fix.Flows {
		want = append(want, key(f))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("flows differ after a round trip:\ngot  %q\nwant %q", got, want)
	}
	if g := s.MulticastGroups; len(g) != 1 || !slices.Equal(g[0].Ports, []string{"p1", "p2", "p3"}) || g[0].Key != 32768 {
		t.Errorf("multicast groups %+v", g)
	}
	if !slices.Equal(s.AddressSets["web_clients"], fix.AddressSets["web_clients"]) {
		t.Errorf("address sets %v", s.AddressSets)
	}
}

// minimalBody drops the first line (the flow in each tool's own syntax).
func minimalBody(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 && strings.HasPrefix(s, "#") {
		return s[i+1:]
	}
	return s
}

// delivered lists the ports of output("...") lines.
func delivered(minimal string) []string {
	var out []string
	for _, l := range strings.Split(minimal, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, `output("`) {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(l, `output("`), `");`))
		}
	}
	slices.Sort(out)
	return out
}

// TestDifferentialOVNTrace stores each fixture in a real southbound
// database, then traces every golden case with the real ovn-trace and with
// govn's trace over the snapshot govn's loader read from that database:
// the minimal outputs (packet changes, conntrack passes, deliveries) must
// be identical, and the delivered ports the same.
func TestDifferentialOVNTrace(t *testing.T) {
	dbservertest.RequireOVS(t)
	if _, err := exec.LookPath("ovn-trace"); err != nil {
		t.Skip("ovn-trace not installed (apt install ovn-central)")
	}
	type loaded struct {
		endpoint string
		tracer   *trace.Tracer
	}
	dbs := map[string]loaded{}
	cases := readCases(t)
	for _, c := range cases {
		if _, ok := dbs[c.fixture]; ok {
			continue
		}
		ep, s := loadFixture(t, c.fixture)
		tr, err := trace.New(s)
		if err != nil {
			t.Fatal(err)
		}
		dbs[c.fixture] = loaded{ep, tr}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := dbs[c.fixture]
			opts, args := traceOptions(t, c.opts)
			got, err := l.tracer.Run(c.datapath, c.microflow, opts)
			if err != nil {
				t.Fatal(err)
			}
			ours := canonLog(minimalBody(got.String(trace.Minimal)))
			cmd := exec.Command("ovn-trace", append(append([]string{"--db=" + l.endpoint, "--minimal"}, args...), c.datapath, c.microflow)...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ovn-trace: %v\n%s", err, out)
			}
			theirs := canonLog(minimalBody(string(out)))
			if !sameMinimal(ours, theirs) {
				t.Errorf("minimal output differs\n--- govn\n%s--- ovn-trace\n%s", ours, theirs)
			}
			var ourPorts []string
			for _, o := range got.Outcomes {
				if o.Verdict == "output" {
					ourPorts = append(ourPorts, o.Port)
				}
			}
			slices.Sort(ourPorts)
			if !slices.Equal(ourPorts, delivered(theirs)) {
				t.Errorf("delivered to %v, ovn-trace says %v", ourPorts, delivered(theirs))
			}
			// The logical flows visited, in order (ovn-trace omits the
			// same trivial "1 / next;" flows our detailed output omits).
			det, err := exec.Command("ovn-trace", append(append([]string{"--db=" + l.endpoint, "--detailed"}, args...), c.datapath, c.microflow)...).Output()
			if err != nil {
				t.Fatalf("ovn-trace --detailed: %v\n%s", err, det)
			}
			ourFlows, theirFlows := visited(got.String(trace.Detailed)), visited(string(det))
			if why, ok := visitedDiffers[c.name]; ok {
				if slices.Equal(ourFlows, theirFlows) {
					t.Errorf("listed as a known divergence (%s) but the visited flows agree: update visitedDiffers", why)
				}
			} else if len(theirFlows) == 0 || !slices.Equal(ourFlows, theirFlows) {
				t.Errorf("visited flows differ\n--- govn\n%s\n--- ovn-trace\n%s\n%s", strings.Join(ourFlows, "\n"), strings.Join(theirFlows, "\n"), det)
			}
			t.Logf("%s: %d flows; %s", c.name, len(ourFlows), strings.Join(outcomeStrings(got), "; "))
		})
	}
}

// sameMinimal compares minimal outputs; multicast branches may come in
// another order (ovn-trace follows the members' row UUIDs, govn their
// names), so equal sorted lines also count.
func sameMinimal(a, b string) bool {
	if a == b {
		return true
	}
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	slices.Sort(la)
	slices.Sort(lb)
	return slices.Equal(la, lb)
}

// visitedDiffers lists cases whose visited flows differ from ovn-trace
// 23.03 on purpose (the verdict and minimal output still agree).
var visitedDiffers = map[string]string{
	"routed_arp_miss": ctClearDivergence,
	"router_ping":     ctClearDivergence,
}

const ctClearDivergence = "ovn-trace keeps ct_state when a packet crosses a patch port into the next datapath; " +
	"ovn-controller's and govn's physical flows clear it (ct_clear), and govn trace follows them, " +
	"so the ARP request generated by the router does not match ct.est flows in the switch"

// logPacket is the packet in a LOG: line: ovn-trace prints it in OVS's
// flow syntax (every field), govn in its own; the rest of the line is
// compared.
var logPacket = regexp.MustCompile(`packet="[^"]*";`)

func canonLog(s string) string { return logPacket.ReplaceAllString(s, `packet="...";`) }

var flowLine = regexp.MustCompile(`^\s*(\d+)\. .*, priority (\d+), uuid ([0-9a-f]{8})`)

// visited extracts "table priority uuid" of every logical flow line of a
// detailed trace.
func visited(detailed string) []string {
	var out []string
	for _, l := range strings.Split(detailed, "\n") {
		if m := flowLine.FindStringSubmatch(l); m != nil {
			out = append(out, m[1]+" "+m[2]+" "+m[3])
		}
	}
	return out
}

func outcomeStrings(tr *trace.Trace) []string {
	var s []string
	for i := range tr.Outcomes {
		s = append(s, tr.Outcomes[i].String())
	}
	return s
}
