package e2e

import (
	"strings"
	"testing"
	"time"
)

// Two pods on different chassis on one switch ping each other over Geneve;
// two on the same chassis too.
func TestPingTwoChassis(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1")
	a := o.addPod(ch1, "ls1", "a", 1)
	b := o.addPod(ch1, "ls1", "b", 2)

	// The timed step: one lsp-add for a VIF already plugged on ch2.
	c := o.addVIF(ch2, "c", 3)
	start := time.Now()
	o.nbctl("lsp-add", "ls1", c.LSP, "--", "lsp-set-addresses", c.LSP, c.MAC+" "+c.IP.Addr().String())
	took := time.Since(start)
	if o.waitHV {
		// --wait=hv returned: ch2 must already have c's flows (table 0
		// classifies its OpenFlow port).
		if !o.hasInPortFlow(ch2, c.OFPort) {
			t.Fatalf("ovn-nbctl --wait=hv lsp-add returned but ch2 has no table 0 flow for in_port=%d", c.OFPort)
		}
		t.Logf("ovn-nbctl --wait=hv lsp-add -> flows on ch2: %v", took.Round(time.Millisecond))
	}

	// Same chassis.
	o.reach(a, b, 3)
	o.reach(b, a, 3)
	// Across Geneve, both directions.
	o.reach(a, c, 5)
	o.reach(c, b, 5)
	// What OVS does with such packets on ch1: a -> b stays on the chassis,
	// a -> c is Geneve-encapsulated towards ch2.
	if acts := o.traceICMP(ch1, a, b); strings.Contains(acts, "tnl_push") || acts == "drop" {
		t.Fatalf("a -> b (same chassis): datapath actions %q, want local delivery", acts)
	}
	if acts := o.traceICMP(ch1, a, c); !strings.Contains(acts, "tnl_push") || !strings.Contains(acts, "dst="+ch2.IP.String()) {
		t.Fatalf("a -> c: datapath actions %q, want a Geneve push towards %s", acts, ch2.IP)
	}
	// The cross-chassis traffic really used the tunnel.
	out, err := ch2.OVS.Vsctl("--bare", "--columns=name", "find", "Interface", "type=geneve")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("no Geneve interface on ch2: %q %v", out, err)
	}
	ofport, err := ch2.OVS.Vsctl("get", "Interface", strings.Fields(out)[0], "ofport")
	if err != nil {
		t.Fatal(err)
	}
	if stats, err := ch2.OVS.Ofctl("dump-ports", "br-int", strings.TrimSpace(ofport)); err != nil || strings.Contains(stats, "rx pkts=0,") {
		t.Fatalf("Geneve port on ch2 received nothing: %s %v", stats, err)
	}
	// TCP with payload across Geneve.
	if _, err := c.ListenTCP(5000); err != nil {
		t.Fatal(err)
	}
	o.tcpOK(a, c, 5000)
}

// Two logical switches on the same chassis pair are isolated from each other
// even with addresses in one subnet: each is its own Geneve VNI (datapath
// tunnel key).
func TestSwitchIsolation(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1", "--", "ls-add", "ls2")
	a := o.addPod(ch1, "ls1", "a", 1)
	b := o.addPod(ch2, "ls1", "b", 2)
	x := o.addPod(ch1, "ls2", "x", 3)
	y := o.addPod(ch2, "ls2", "y", 4)
	o.reach(a, b, 2)
	o.reach(x, y, 2)
	o.unreachable(a, x, 2) // same chassis, other switch
	o.unreachable(a, y, 2) // other chassis, other switch
	o.unreachable(y, b, 2)
}
