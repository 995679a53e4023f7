package northd

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseLBVIP(t *testing.T) {
	for _, tc := range []struct {
		key, val string
		want     string // "addr port [backends]" or "error: ..."
	}{
		{"10.0.0.100:80", "10.0.0.11:8080,10.0.0.12:8080", "10.0.0.100 80 [10.0.0.11:8080 10.0.0.12:8080]"},
		{"10.0.0.100:80", " 10.0.0.11:8080 , 10.0.0.12 ", "10.0.0.100 80 [10.0.0.11:8080 10.0.0.12]"},
		{"10.0.0.200", "10.0.0.11,10.0.0.12", "10.0.0.200 0 [10.0.0.11 10.0.0.12]"},
		{"10.0.0.200", "", "10.0.0.200 0 []"},
		{"[fd00::100]:80", "[fd00::11]:8080,[fd00::12]:8080", "fd00::100 80 [[fd00::11]:8080 [fd00::12]:8080]"},
		{"fd00::200", "fd00::11", "fd00::200 0 [fd00::11]"},
		{"[fd00::200]", "[fd00::11]", "fd00::200 0 [fd00::11]"},
		{"10.0.0.300:80", "10.0.0.1", `error: vip "10.0.0.300:80": "10.0.0.300" is not an IP address`},
		{"10.0.0.1:0", "10.0.0.2", `error: vip "10.0.0.1:0": port "0" is not a number in 1..65535`},
		{"10.0.0.1:70000", "10.0.0.2", `error: vip "10.0.0.1:70000": port "70000" is not a number in 1..65535`},
		{"10.0.0.1:", "10.0.0.2", `error: vip "10.0.0.1:": empty port`},
		{"[fd00::1", "", `error: vip "[fd00::1": missing ']'`},
		{"[fd00::1]x", "", `error: vip "[fd00::1]x": unexpected "x" after ']'`},
		{"[10.0.0.1]:80", "", `error: vip "[10.0.0.1]:80": brackets around IPv4 address "10.0.0.1"`},
		{"fe80::1%eth0", "", `error: vip "fe80::1%eth0": "fe80::1%eth0" is not an IP address`},
		{"10.0.0.1:80", "fd00::1:80", `error: vip "10.0.0.1:80": backend "fd00::1:80" is not of the VIP's address family`},
		{"10.0.0.1:80", "10.0.0.2:80,bogus", `error: vip "10.0.0.1:80": backend "bogus": "bogus" is not an IP address`},
		{"10.0.0.1", "10.0.0.2:80", `error: vip "10.0.0.1": backend "10.0.0.2:80" has a port but the VIP has none`},
		{"10.0.0.1:80", "::ffff:10.0.0.2", `error: vip "10.0.0.1:80": backend "::ffff:10.0.0.2": "::ffff:10.0.0.2" is not an IP address`},
	} {
		v, err := ParseLBVIP(tc.key, tc.val)
		var got string
		if err != nil {
			got = "error: " + err.Error()
		} else {
			var bs []string
			for _, b := range v.Backends {
				bs = append(bs, b.String())
			}
			got = fmt.Sprintf("%s %d [%s]", v.Addr, v.Port, strings.Join(bs, " "))
		}
		if got != tc.want {
			t.Errorf("ParseLBVIP(%q, %q)\n got %s\nwant %s", tc.key, tc.val, got, tc.want)
		}
	}
}

func TestParseLB(t *testing.T) {
	lb, errs := ParseLB(&LoadBalancer{UUID: "u1", Name: "lb", Protocol: "udp",
		Vips: map[string]string{"10.0.0.1:53": "10.0.0.2:5353", "bad": "10.0.0.2", "[fd00::1]:53": "[fd00::2]:53"},
		Options: map[string]string{"reject": "true", "skip_snat": "true", "hairpin_snat_ip": "169.254.0.1 fd00::9",
			"affinity_timeout": "60"},
		SelectionFields: []string{"ip_src", "ip_dst"}})
	if lb.Protocol != "udp" || !lb.Reject || !lb.SkipSNAT || lb.AffinityTimeout != 60 ||
		lb.HairpinSNATv4.String() != "169.254.0.1" || lb.HairpinSNATv6.String() != "fd00::9" || lb.HashFields != "ip_dst,ip_src" {
		t.Errorf("options: %+v", lb)
	}
	if len(lb.VIPs) != 2 || lb.VIPs[0].Key != "10.0.0.1:53" || lb.VIPs[1].Key != "[fd00::1]:53" || lb.VIPs[1].BackendList() != "[fd00::2]:53" {
		t.Errorf("VIPs: %+v", lb.VIPs)
	}
	if len(errs) != 1 || errs[0].Error() != `vip "bad": "bad" is not an IP address` {
		t.Errorf("errors: %v", errs)
	}

	lb, errs = ParseLB(&LoadBalancer{UUID: "u2", Vips: map[string]string{"10.0.0.1": ""},
		Options: map[string]string{"hairpin_snat_ip": "1.1.1.1 2.2.2.2 x", "affinity_timeout": "-1"}})
	if lb.Protocol != "tcp" || lb.HairpinSNATv4.String() != "1.1.1.1" || lb.AffinityTimeout != 0 || len(lb.VIPs) != 1 {
		t.Errorf("defaults: %+v", lb)
	}
	want := []string{
		`options:hairpin_snat_ip "1.1.1.1 2.2.2.2 x": more than one address of a family`,
		`options:hairpin_snat_ip "1.1.1.1 2.2.2.2 x": "x" is not an IP address`,
		`options:affinity_timeout "-1" is not a number of seconds in 0..65535`,
	}
	if fmt.Sprint(errs) != fmt.Sprint(want) {
		t.Errorf("errors:\n got %v\nwant %v", errs, want)
	}
}

// TestLBDirty: changing a load balancer or its group recomputes exactly
// the switches that use it.
func TestLBDirty(t *testing.T) {
	nb := NewNB()
	nb.SetLoadBalancer(&LoadBalancer{UUID: "lb1", Vips: map[string]string{"10.0.0.1": "10.0.0.2"}})
	nb.SetLoadBalancer(&LoadBalancer{UUID: "lb2"})
	nb.SetLoadBalancerGroup(&LoadBalancerGroup{UUID: "g1", LoadBalancers: []string{"lb2"}})
	nb.SetSwitch(&Switch{UUID: "s1", LoadBalancers: []string{"lb1"}})
	nb.SetSwitch(&Switch{UUID: "s2", LBGroups: []string{"g1"}})
	nb.SetSwitch(&Switch{UUID: "s3"})
	e := NewEngine(nil, nil)
	e.Run(nb)
	for _, tc := range []struct {
		change func()
		want   string
	}{
		{func() {
			nb.SetLoadBalancer(&LoadBalancer{UUID: "lb1", Vips: map[string]string{"10.0.0.1": "10.0.0.3"}})
		}, "[s1]"},
		{func() { nb.SetLoadBalancer(&LoadBalancer{UUID: "lb2", Name: "x"}) }, "[s2]"},
		{func() { nb.SetLoadBalancerGroup(&LoadBalancerGroup{UUID: "g1", LoadBalancers: []string{"lb1", "lb2"}}) }, "[s2]"},
		{func() { nb.SetLoadBalancer(&LoadBalancer{UUID: "lb1"}) }, "[s1 s2]"},
		{func() { nb.DeleteLoadBalancerGroup("g1") }, "[s2]"},
		{func() { nb.DeleteLoadBalancer("lb1") }, "[s1]"},
		{func() { nb.SetLoadBalancer(&LoadBalancer{UUID: "lb3"}) }, "[]"},
	} {
		tc.change()
		if got := fmt.Sprint(sortedKeys(nb.dirty)); got != tc.want || !nb.lbDirty {
			t.Errorf("dirty %s lbDirty %v, want %s", got, nb.lbDirty, tc.want)
		}
		e.Run(nb)
	}
	got := nb.DatapathLBs([]string{"lb2", "missing"}, []string{"g-missing"})
	if len(got) != 1 || got[0].UUID != "lb2" {
		t.Errorf("DatapathLBs: %v", got)
	}
}

// TestLBIncrementalMatchesFull: load balancer, group and switch reference
// changes applied incrementally give the same flows and SB Load_Balancer
// specs as a full recompute.
func TestLBIncrementalMatchesFull(t *testing.T) {
	nb := loadFixture(t, "testdata/lb.json")
	e := NewEngine(nil, nil)
	e.SetCaps(goldenCaps)
	e.Run(nb)
	sw := func(name string) *Switch {
		for _, s := range nb.Switches {
			if s.Name == name {
				c := *s
				return &c
			}
		}
		t.Fatalf("no switch %s", name)
		return nil
	}
	lbID := func(name string) string {
		for id, l := range nb.LoadBalancers {
			if l.Name == name {
				return id
			}
		}
		t.Fatalf("no load balancer %s", name)
		return ""
	}
	steps := []func(){
		// A backend removed, a VIP added.
		func() {
			l := *nb.LoadBalancers[lbID("lb-tcp")]
			l.Vips = map[string]string{"10.0.0.100:80": "10.0.0.12:8080", "10.0.0.150:443": "10.0.0.11:8443"}
			nb.SetLoadBalancer(&l)
		},
		// reject turned off: the no-backend VIP drops.
		func() {
			l := *nb.LoadBalancers[lbID("lb-reject")]
			l.Options = nil
			nb.SetLoadBalancer(&l)
		},
		// sw0 loses all its own load balancers but joins the group.
		func() {
			s := sw("sw0")
			s.LoadBalancers, s.LBGroups = nil, []string{fakeUUID(10, 1)}
			nb.SetSwitch(s)
		},
		// The group loses lb-hash; lb-hash is deleted.
		func() {
			g := *nb.LBGroups[fakeUUID(10, 1)]
			g.LoadBalancers = []string{lbID("lb-tcp")}
			nb.SetLoadBalancerGroup(&g)
			nb.DeleteLoadBalancer(lbID("lb-hash"))
		},
		// sw2 (VIP-less LB) gets one with a VIP; sw1 is deleted.
		func() {
			s := sw("sw2")
			s.LoadBalancers = append(s.LoadBalancers, lbID("lb-v6"))
			nb.SetSwitch(s)
			nb.DeleteSwitch(sw("sw1").UUID)
		},
		// The group is deleted.
		func() { nb.DeleteLoadBalancerGroup(fakeUUID(10, 1)) },
	}
	for i, step := range steps {
		step()
		if st := e.Run(nb); st.Full {
			t.Fatalf("step %d: a load balancer change should not need a full recompute", i)
		}
		inc := dumpEngine(e)
		nb.MarkAllDirty()
		fresh := NewEngine(nil, nil)
		fresh.SetCaps(goldenCaps)
		fresh.Run(nb)
		if full := dumpEngine(fresh); full != inc {
			t.Fatalf("step %d: incremental result differs from full recompute:\n%s", i, lineDiff(full, inc))
		}
		e.Run(nb) // consume the MarkAllDirty
	}
}
