package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/e2e/harness"
)

// A load balancer on a switch (OVN's usual layout: the VIP is outside the
// pods' subnet, so clients send to their router's MAC and the switch's
// ls_in_lb stage rewrites the destination to a backend with ct_lb_mark):
//   - nc to VIP:port from a pod on another chassis reaches every backend
//     (backends on both chassis), and the backend sees the client's own
//     address (a switch LB does not SNAT); UDP VIPs too;
//   - a backend reaching a VIP whose only backend is itself works (hairpin:
//     the backend sees the VIP as source, OVN's default hairpin SNAT);
//   - removing a backend from the VIP stops traffic to it;
//   - a VIP without backends and options:reject=true refuses connections at
//     once (TCP RST), instead of letting them time out;
//   - govnctl trace of the VIP packet (--ct new) names ls_in_lb's
//     ct_lb_mark, and --lb-dst picks the backend it is delivered to.
func TestLoadBalancer(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1", "--", "lr-add", "lr0")
	o.connectRouter("lr0", "ls1", 1)
	c := o.addSubnetPod(ch1, "ls1", "c", 1, 10, "")
	b1 := o.addSubnetPod(ch2, "ls1", "b1", 1, 21, "")
	b2 := o.addSubnetPod(ch2, "ls1", "b2", 1, 22, "")
	b3 := o.addSubnetPod(ch1, "ls1", "b3", 1, 23, "")
	backends := []*pod{b1, b2, b3}
	o.serve("tcp", 8080, backends...)
	o.serve("udp", 5353, backends...)
	o.reach(c, b1, 2)

	vip := netip.MustParseAddr("10.96.0.10")
	hairVIP := netip.MustParseAddr("10.96.0.11")
	rejVIP := netip.MustParseAddr("10.96.0.12")
	be := func(port int, ps ...*pod) string {
		var s []string
		for _, p := range ps {
			s = append(s, fmt.Sprintf("%s:%d", p.IP.Addr(), port))
		}
		return strings.Join(s, ",")
	}
	// Control: nothing answers on the VIPs before the load balancers exist.
	if r, err := c.Request("tcp", vip, 80, time.Second); err == nil {
		t.Fatalf("tcp to %s:80 answered (%s) before any load balancer", vip, r)
	}

	o.nbctl("lb-add", "lb0", vip.String()+":80", be(8080, b1, b2, b3), "tcp",
		"--", "lb-add", "lbu", vip.String()+":53", be(5353, b1, b2, b3), "udp",
		"--", "lb-add", "lbh", hairVIP.String()+":80", be(8080, b1), "tcp",
		"--", "ls-lb-add", "ls1", "lb0", "--", "ls-lb-add", "ls1", "lbu", "--", "ls-lb-add", "ls1", "lbh")
	o.sbLoadBalancers("lb0", "lbu", "lbh")

	t.Log("TCP: connections from c (ch1) spread over all backends (ch1 and ch2)")
	o.answered(c, "tcp", vip, 80)
	rs, err := requestN(c, "tcp", vip, 80, 30)
	if err != nil {
		t.Fatal(err)
	}
	got := countFrom(rs)
	for _, p := range backends {
		if got[p.Name] == 0 {
			t.Fatalf("30 connections to %s:80 reached %v, never %s", vip, got, p.Name)
		}
	}
	if len(got) != len(backends) {
		t.Fatalf("answers from %v, want only the backends", sortedKeys(got))
	}
	for _, r := range rs {
		if r.Peer != c.IP.Addr() {
			t.Fatalf("backend %s saw the client as %s, want %s (no SNAT on a switch LB)", r.From, r.Peer, c.IP.Addr())
		}
	}
	t.Logf("TCP spread over backends: %v", got)

	t.Log("UDP VIP")
	o.answered(c, "udp", vip, 53)
	rs, err = requestN(c, "udp", vip, 53, 16)
	if err != nil {
		t.Fatal(err)
	}
	if got := countFrom(rs); len(got) < 2 {
		t.Fatalf("16 UDP requests to %s:53 all answered by %v, want at least two backends", vip, got)
	} else {
		t.Logf("UDP spread over backends: %v", got)
	}

	t.Log("hairpin: b1 reaches the VIP whose only backend is b1")
	if r := o.answered(b1, "tcp", hairVIP, 80); r.From != b1.Name || r.Peer != hairVIP {
		t.Fatalf("b1 -> %s:80 answered %q, want %q (hairpin SNAT to the VIP)", hairVIP, r, b1.Name+" "+hairVIP.String())
	}
	// And a backend reaching the shared VIP works whichever backend is
	// chosen (itself included).
	rs, err = requestN(b2, "tcp", vip, 80, 12)
	if err != nil {
		t.Fatalf("b2 -> %s:80: %v", vip, err)
	}
	for _, r := range rs {
		want := b2.IP.Addr()
		if r.From == b2.Name {
			want = vip
		}
		if r.Peer != want {
			t.Fatalf("b2 -> %s:80 served by %s which saw %s, want %s", vip, r.From, r.Peer, want)
		}
	}

	if !o.reference {
		t.Log("govnctl trace: the VIP packet takes the LB branch (--ct new), to the backend --lb-dst names")
		flow := fmt.Sprintf(`inport == "%s" && eth.src == %s && eth.dst == 00:00:00:00:ff:01 && ip4.src == %s && ip4.dst == %s && tcp.dst == 80 && tcp.src == 40000`,
			c.LSP, c.MAC, c.IP.Addr(), vip)
		// A new connection: ls_in_lb's ct_lb_mark(backends=...) picks the
		// first backend when no --lb-dst is given.
		tr := o.trace("ls1", flow, "--ct", "new")
		if len(tr.visited("ls_in_lb", "ct_lb_mark(backends=")) == 0 {
			t.Fatalf("trace of %s:80 --ct new does not pass ct_lb_mark(backends=...) in ls_in_lb:\n%s", vip, tr.dump())
		}
		if d := tr.delivered(); !slices.Equal(d, []string{b1.LSP}) {
			t.Fatalf("trace of %s:80 --ct new delivered to %v, want [%s] (the first backend):\n%s", vip, d, b1.LSP, tr.dump())
		}
		// --lb-dst chooses the backend (ovn-trace applies it at the first
		// ct_lb_mark, the pre-stateful one).
		tr = o.trace("ls1", flow, "--ct", "new", "--lb-dst", b2.IP.Addr().String()+":8080")
		if len(tr.visited("", "ct_lb_mark")) == 0 {
			t.Fatalf("trace of %s:80 --lb-dst passes no ct_lb_mark:\n%s", vip, tr.dump())
		}
		if d := tr.delivered(); !slices.Equal(d, []string{b2.LSP}) {
			t.Fatalf("trace of %s:80 --lb-dst %s delivered to %v, want [%s]:\n%s", vip, b2.IP.Addr(), d, b2.LSP, tr.dump())
		}
	}

	t.Log("removing b3 from the VIP stops traffic to it")
	o.nbctl("--may-exist", "lb-add", "lb0", vip.String()+":80", be(8080, b1, b2), "tcp")
	o.eventually(settle, "no new connection reaches b3", func() error {
		rs, err := requestN(c, "tcp", vip, 80, 16)
		if err != nil {
			return err
		}
		if got := countFrom(rs); got[b3.Name] != 0 {
			return fmt.Errorf("answers %v", got)
		}
		return nil
	})
	rs, err = requestN(c, "tcp", vip, 80, 20)
	if err != nil {
		t.Fatal(err)
	}
	if got := countFrom(rs); got[b3.Name] != 0 || got[b1.Name] == 0 || got[b2.Name] == 0 {
		t.Fatalf("after removing b3: answers %v, want b1 and b2 only", got)
	}

	t.Log("a VIP without backends and reject=true refuses at once")
	o.nbctl("--reject", "lb-add", "lbr", rejVIP.String()+":80", "", "tcp", "--", "ls-lb-add", "ls1", "lbr")
	o.eventually(20*time.Second, "connection to the reject VIP refused", func() error {
		start := time.Now()
		_, err := c.Request("tcp", rejVIP, 80, 5*time.Second)
		if !errors.Is(err, harness.ErrRefused) {
			return fmt.Errorf("want connection refused: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			return fmt.Errorf("refused after %v, want at once", d)
		}
		return nil
	})
}

// sbLoadBalancers waits until the SB has a Load_Balancer row for each NB
// load balancer named (govn writes them as OVN 23.03 does).
func (o *ovn) sbLoadBalancers(names ...string) {
	o.t.Helper()
	o.eventually(20*time.Second, "SB Load_Balancer rows", func() error {
		out, err := o.sbctlErr("--bare", "--columns=name", "list", "Load_Balancer")
		if err != nil {
			return err
		}
		have := strings.Fields(out)
		for _, n := range names {
			if !slices.Contains(have, n) {
				return fmt.Errorf("no SB Load_Balancer %s (have %v)", n, have)
			}
		}
		return nil
	})
}
