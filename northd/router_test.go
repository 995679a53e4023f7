package northd

import (
	"strings"
	"testing"
)

// TestRouterIncrementalMatchesFull: changes to switch ports behind a
// router, router ports, routes and the router itself, applied
// incrementally, give the same state as a computation from scratch.
func TestRouterIncrementalMatchesFull(t *testing.T) {
	nb := loadFixture(t, "testdata/router.json")
	e := NewEngine(nil, nil)
	e.SetCaps(goldenCaps)
	e.Run(nb)
	check := func(step string) {
		t.Helper()
		inc := dumpEngine(e)
		full := NewEngine(nil, nil)
		full.SetCaps(goldenCaps)
		nb2 := *nb
		nb2.MarkAllDirty()
		full.Run(&nb2)
		if want := dumpEngine(full); want != inc {
			t.Errorf("%s: incremental result differs from full recompute:\n%s", step, lineDiff(want, inc))
		}
	}

	// A VIF behind lrp-b changes its IP: the router's static ARP entry follows.
	p := *nb.Ports[fakeUUID(2, 3)] // b1
	p.Addresses = []string{"00:00:00:00:0b:01 10.0.2.12"}
	nb.SetPort(&p)
	if st := e.Run(nb); st.Full {
		t.Errorf("a port change should not need a full recompute")
	}
	if got := dumpEngine(e); !strings.Contains(got, `outport == "lrp-b" && reg0 == 10.0.2.12`) {
		t.Errorf("router did not pick up b1's new address")
	}
	check("port address")

	// The router port's MAC changes: the switch's L2 lookup follows.
	rp := *nb.RouterPorts[fakeUUID(7, 1)] // lrp-a
	rp.MAC = "00:00:00:00:ff:11"
	nb.SetRouterPort(&rp)
	e.Run(nb)
	if got := dumpEngine(e); !strings.Contains(got, `eth.dst == 00:00:00:00:ff:11) actions=(outport = "a-rtr"; output;)`) {
		t.Errorf("sw-a did not pick up lrp-a's new MAC")
	}
	check("router port MAC")

	// The router-type port leaves sw-b (row kept): the router loses its
	// static neighbours behind lrp-b.
	swb := *nb.Switches[fakeUUID(1, 2)]
	var keep []string
	for _, id := range swb.Ports {
		if nb.Ports[id].Type != "router" {
			keep = append(keep, id)
		}
	}
	swb.Ports = keep
	nb.SetSwitch(&swb)
	e.Run(nb)
	if got := dumpEngine(e); strings.Contains(got, `outport == "lrp-b" && reg0 ==`) {
		t.Errorf("router kept neighbours of a switch it is no longer connected to")
	}
	check("router port removed from switch")

	// A route goes away; then the whole router.
	r := *nb.Routers[fakeUUID(6, 1)]
	r.StaticRoutes = r.StaticRoutes[1:]
	nb.SetRouter(&r)
	nb.DeleteStaticRoute(fakeUUID(8, 1))
	e.Run(nb)
	if got := dumpEngine(e); strings.Contains(got, "192.168.0.0/16") {
		t.Errorf("deleted route still routed")
	}
	check("route delete")
	nb.DeleteRouter(r.UUID)
	e.Run(nb)
	if got := dumpEngine(e); strings.Contains(got, "lr_in_") || strings.Contains(got, "Datapath lr0") {
		t.Errorf("router flows left after the router was deleted")
	}
	check("router delete")
}

// TestNATIncrementalMatchesFull: NAT rows, gateway chassis and the
// gateway-router option changed incrementally give the same state as a
// computation from scratch (router flows, switch lookups, bindings, HA
// groups).
func TestNATIncrementalMatchesFull(t *testing.T) {
	nb := loadFixture(t, "testdata/nat_distributed.json")
	e := NewEngine(nil, nil)
	e.SetCaps(goldenCaps)
	e.Run(nb)
	check := func(step string) {
		t.Helper()
		inc := dumpEngine(e)
		full := NewEngine(nil, nil)
		full.SetCaps(goldenCaps)
		nb2 := *nb
		nb2.MarkAllDirty()
		full.Run(&nb2)
		if want := dumpEngine(full); want != inc {
			t.Errorf("%s: incremental result differs from full recompute:\n%s", step, lineDiff(want, inc))
		}
	}
	// The floating IP loses its external MAC: it is centralised on the
	// gateway chassis and the switch no longer looks up its MAC.
	n := *nb.NATs[fakeUUID(12, 3)]
	n.ExternalMAC = ""
	nb.SetNAT(&n)
	e.Run(nb)
	if got := dumpEngine(e); strings.Contains(got, "00:00:00:00:fa:02") || !strings.Contains(got, `ct_dnat_in_czone(10.0.0.12);`) {
		t.Errorf("floating IP still distributed after its external_mac was removed")
	}
	check("fip centralised")

	// A gateway chassis goes away: the HA group follows.
	lrp := *nb.RouterPorts[fakeUUID(7, 1)] // lr0-ext
	lrp.GatewayChassis = lrp.GatewayChassis[:1]
	nb.SetRouterPort(&lrp)
	e.Run(nb)
	if got := dumpEngine(e); !strings.Contains(got, "ha_chassis_group lr0-ext [{hv1 20}]") {
		t.Errorf("HA group did not follow the gateway chassis removal:\n%s", grepLines(got, "ha_chassis_group"))
	}
	check("gateway chassis removed")

	// The router becomes a gateway router: no cr ports, l3gateway
	// bindings on both ends, gateway-router NAT flows.
	r := *nb.Routers[fakeUUID(6, 1)]
	r.Options = map[string]string{"chassis": "hv9"}
	nb.SetRouter(&r)
	e.Run(nb)
	got := dumpEngine(e)
	if strings.Contains(got, "chassisredirect") || strings.Contains(got, "is_chassis_resident") ||
		!strings.Contains(got, `port ext-lr0 type="l3gateway"`) || !strings.Contains(got, "ct_snat(172.16.0.100);") {
		t.Errorf("router did not become a gateway router:\n%s", got)
	}
	check("gateway router")

	// A router load balancer's VIPs change: with nat-addresses=router the
	// peer switch port's nat_addresses follow.
	sp := *nb.Ports[fakeUUID(2, 5)] // ext-lr0
	sp.Options = map[string]string{"router-port": "lr0-ext", "nat-addresses": "router"}
	nb.SetPort(&sp)
	r.LoadBalancers = []string{fakeUUID(9, 1)}
	nb.SetRouter(&r)
	e.Run(nb)
	lb := *nb.LoadBalancers[fakeUUID(9, 1)]
	lb.Vips = map[string]string{"172.16.0.222:80": "10.0.0.11:80"}
	nb.SetLoadBalancer(&lb)
	e.Run(nb)
	if got := dumpEngine(e); !strings.Contains(got, "172.16.0.222") || !strings.Contains(grepLines(got, "port ext-lr0"), "172.16.0.222") {
		t.Errorf("nat_addresses did not follow the router VIP change:\n%s", grepLines(got, "port ext-lr0"))
	}
	check("router lb vip")

	// NAT rows deleted.
	for i := 1; i <= 9; i++ {
		nb.DeleteNAT(fakeUUID(12, i))
	}
	e.Run(nb)
	if got := dumpEngine(e); strings.Contains(got, "ct_snat") || strings.Contains(got, "nb-nat=") {
		t.Errorf("NAT flows left after the NAT rows were deleted")
	}
	check("nat deleted")
}
