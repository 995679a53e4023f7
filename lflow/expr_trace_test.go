package lflow_test

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// traceFlow prints a packet as an exact flow for ofproto/trace.
func traceFlow(p *of.Packet, extra string) string {
	parts := []string{"in_port=LOCAL", extra}
	for f := of.Field(1); f.Valid(); f++ {
		if (f >= of.XReg0 && f <= of.XXReg3) || f == of.ConjID || f == of.InPort {
			continue
		}
		v := p.Get(f)
		if v.IsZero() {
			continue
		}
		var s string
		switch f.Format() {
		case of.FormatCTState:
			var flags []string
			for i, n := range []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"} {
				if v.Bit(i) {
					flags = append(flags, n)
				}
			}
			s = strings.Join(flags, "|")
		case of.FormatFrag:
			s = map[uint64]string{1: "first", 3: "later", 2: "later"}[v.Lo]
		default:
			s = of.FormatValue(f.Format(), v)
		}
		parts = append(parts, f.String()+"="+s)
	}
	return strings.Join(parts, ",")
}

// TestOVSAgreesWithEvaluate installs the compiled flows of every golden
// expression (one table each) into a real ovs-vswitchd and checks, with
// ofproto/trace on packets built to sit on both sides of each expression,
// that OpenFlow classification (conjunctions included) agrees with
// expr.Evaluate.
func TestOVSAgreesWithEvaluate(t *testing.T) {
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		t.Skip("ovs-vswitchd not installed")
	}
	data, err := os.ReadFile(filepath.Join("testdata", "expr-flows.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]uint32{"lsp1": 1, "lsp2": 2, "lsp3": 3, "lsp123": 0x7b}
	opts := &expr.Options{
		Ports: func(n string) (uint32, bool) { k, ok := ports[n]; return k, ok },
		AddressSets: func(n string) ([]string, bool) {
			return map[string][]string{
				"as1": {"10.0.0.1", "192.168.0.0/16"}, "as_ip6": {"fd00::1"}, "as_mac": {"00:00:00:00:00:01"},
				"empty": {}, "pg_ip4": {"10.1.0.1"},
			}[n], true
		},
		PortGroups:      func(n string) ([]string, bool) { return []string{"lsp1", "lsp2"}, true },
		ChassisResident: func(p string) bool { return p == "lsp1" },
	}
	st := symtab.Default()
	c := expr.NewCompiler(st)
	type item struct {
		src   string
		e     *expr.Expr
		table int
	}
	var items []item
	var flows strings.Builder
	conj := uint32(1)
	mark := of.Actions{of.SetField{Dst: of.Whole(of.Reg9), Value: bits.From64(1)}}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := expr.Parse(line, st)
		if err != nil {
			continue
		}
		opts.ConjIDBase = conj
		res, err := c.Compile(e, opts)
		if err != nil {
			continue
		}
		conj += uint32(res.NConj())
		table := len(items) + 1
		items = append(items, item{line, e, table})
		flows.WriteString(of.FlowsString(res.Flows(uint8(table), 100, 0, of.Match{}, mark)))
		// Dispatch: reg8 selects the expression's table.
		d := of.Flow{Table: 0, Priority: 1, Actions: of.Actions{of.Resubmit{Table: table}}}
		d.Match.Set(of.Reg8, bits.From64(uint64(table)), bits.Ones(32))
		flows.WriteString(d.String() + "\n")
	}
	v := ovstest.Start(t, ovstest.Options{Bridges: []string{"br0"}, PrivateNetns: true})
	if out, err := v.OfctlStdin(flows.String(), "-O", "OpenFlow15", "--bundle", "add-flows", "br0", "-"); err != nil {
		t.Fatalf("add-flows: %v\n%s", err, out)
	}
	r := rand.New(rand.NewSource(3))
	checked, matched := 0, 0
	for _, it := range items {
		var packets []of.Packet
		for _, x := range []*expr.Expr{it.e, expr.Not(it.e)} {
			p, err := c.Satisfy(x, opts)
			if err != nil {
				continue
			}
			packets = append(packets, p)
			// Variants: flip a few bits of fields the packet sets.
			for k := 0; k < 1; k++ {
				q := p
				for f := of.Field(1); f.Valid(); f++ {
					if f.IsPrereq() || f == of.IPFrag || f == of.CTState ||
						(f >= of.XReg0 && f <= of.XXReg3) || p.Get(f).IsZero() || r.Intn(2) == 0 {
						continue
					}
					q.SetMasked(f, bits.Ones(128), bits.From64(1).Lsh(uint(r.Intn(f.Width()))))
				}
				packets = append(packets, q)
			}
		}
		for i := range packets {
			p := &packets[i]
			if !p.Get(of.IPFrag).IsZero() && !(p.Get(of.TCPDst).IsZero() && p.Get(of.UDPDst).IsZero() &&
				p.Get(of.TCPSrc).IsZero() && p.Get(of.UDPSrc).IsZero()) {
				continue // OVS zeroes L4 ports of fragments; the logical model does not
			}
			want, err := c.Evaluate(it.e, p, opts)
			if err != nil {
				t.Fatal(err)
			}
			out, err := v.Appctl("ofproto/trace", "br0", traceFlow(p, fmt.Sprintf("reg8=%d", it.table)))
			if err != nil {
				t.Fatalf("%s: trace %s: %v\n%s", it.src, traceFlow(p, ""), err, out)
			}
			got := strings.Contains(out, "reg9=0x1")
			if got != want {
				t.Errorf("%s\npacket %s: Evaluate=%v, OVS=%v\n%s", it.src, p.String(), want, got, out)
			}
			checked++
			if want {
				matched++
			}
		}
	}
	t.Logf("%d expressions, %d packets traced, %d matching", len(items), checked, matched)
	if checked < 2*len(items) || matched == 0 || matched == checked {
		t.Fatalf("too few informative packets: %d checked, %d matched", checked, matched)
	}
}
