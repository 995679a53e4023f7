package northd

import (
	"fmt"
	"testing"
)

// benchNB builds 100 switches with ports ports in total, each port with a
// MAC and an IPv4 address (the shape of make bench-northd).
func benchNB(switches, ports int) *NB {
	nb := NewNB()
	nb.SetSvcMonitorMAC("3a:ab:e1:3c:9b:50")
	per := ports / switches
	n := 0
	for s := 0; s < switches; s++ {
		sw := &Switch{UUID: fmt.Sprintf("00000000-0000-0000-0001-%012d", s), Name: fmt.Sprintf("sw%d", s)}
		for p := 0; p < per; p++ {
			n++
			id := fmt.Sprintf("00000000-0000-0000-0002-%012d", n)
			nb.SetPort(&SwitchPort{UUID: id, Name: fmt.Sprintf("sw%d-p%d", s, p),
				Addresses: []string{fmt.Sprintf("0a:00:00:%02x:%02x:%02x 10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff, s, p/250, p%250+1)}})
			sw.Ports = append(sw.Ports, id)
		}
		nb.SetSwitch(sw)
	}
	return nb
}

// BenchmarkRecompute: a full recompute in a running northd: every switch's
// flows regenerated and diffed against the desired table and the SB mirror
// (which are up to date, so no operations result).
func BenchmarkRecompute(b *testing.B) {
	for _, ports := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			nb := benchNB(100, ports)
			e := NewEngine(nil, nil)
			e.Run(nb)
			sb := NewSBState()
			txn, err := sb.Sync(e, SyncOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range txn.fix {
				f.set(fmt.Sprintf("00000000-0000-0000-0000-%012d", f.op))
			}
			b.ReportMetric(float64(e.NumFlows()), "lflows")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				nb.MarkAllDirty()
				e.Run(nb)
				txn, err := sb.Sync(e, SyncOptions{})
				if err != nil || len(txn.Ops) != 1 { // SB_Global is rewritten only if nb_cfg changed: 0 ops
					if err != nil || len(txn.Ops) != 0 {
						b.Fatalf("recompute of an unchanged NB produced %d ops (err %v)", len(txn.Ops), err)
					}
				}
			}
		})
	}
}

// BenchmarkColdStart: a new engine computing everything from scratch
// (validator cache cold) and the SB transaction for an empty SB.
func BenchmarkColdStart(b *testing.B) {
	for _, ports := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				nb := benchNB(100, ports)
				b.StartTimer()
				e := NewEngine(nil, nil)
				e.Run(nb)
				if _, err := NewSBState().Sync(e, SyncOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddPort: one port added to a 10k-port NB (the lsp-add path).
func BenchmarkAddPort(b *testing.B) {
	nb := benchNB(100, 10000)
	e := NewEngine(nil, nil)
	e.Run(nb)
	sb := NewSBState()
	txn, _ := sb.Sync(e, SyncOptions{})
	for _, f := range txn.fix {
		f.set(fmt.Sprintf("00000000-0000-0000-0000-%012d", f.op))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sw := nb.Switches["00000000-0000-0000-0001-000000000007"]
		id := fmt.Sprintf("00000000-0000-0000-0009-%012d", i)
		nb.SetPort(&SwitchPort{UUID: id, Name: fmt.Sprintf("new%d", i), Addresses: []string{fmt.Sprintf("0e:00:00:%02x:%02x:%02x 10.200.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff, i/250%250, i%250+1)}})
		cp := *sw
		cp.Ports = append(append([]string(nil), sw.Ports...), id)
		nb.SetSwitch(&cp)
		e.Run(nb)
		txn, err := sb.Sync(e, SyncOptions{})
		if err != nil || len(txn.Ops) == 0 {
			b.Fatalf("add port: %d ops, %v", len(txn.Ops), err)
		}
		for _, f := range txn.fix {
			f.set(fmt.Sprintf("00000000-0000-0000-0008-%012d", i*100+f.op))
		}
	}
}

// routedBenchNB is benchNB plus one router with a port on every switch
// (10.<s>.255.1/16), so every switch port is a static neighbour of the
// router.
func routedBenchNB(switches, ports int) *NB {
	nb := benchNB(switches, ports)
	r := &Router{UUID: "00000000-0000-0000-0006-000000000001", Name: "lr0"}
	for s := 0; s < switches; s++ {
		lrp := &RouterPort{UUID: fmt.Sprintf("00000000-0000-0000-0007-%012d", s), Name: fmt.Sprintf("lrp%d", s),
			MAC: fmt.Sprintf("0c:00:00:00:00:%02x", s), Networks: []string{fmt.Sprintf("10.%d.255.1/16", s)}}
		nb.SetRouterPort(lrp)
		r.Ports = append(r.Ports, lrp.UUID)
		lsp := &SwitchPort{UUID: fmt.Sprintf("00000000-0000-0000-0003-%012d", s), Name: fmt.Sprintf("sw%d-rtr", s),
			Type: "router", Addresses: []string{"router"}, Options: map[string]string{"router-port": lrp.Name}}
		nb.SetPort(lsp)
		sw := *nb.Switches[fmt.Sprintf("00000000-0000-0000-0001-%012d", s)]
		sw.Ports = append(append([]string(nil), sw.Ports...), lsp.UUID)
		nb.SetSwitch(&sw)
	}
	nb.SetRouter(r)
	return nb
}

// BenchmarkAddPortRouted: BenchmarkAddPort with a router on every switch:
// the router (10k static neighbour flows) is recomputed on each change.
func BenchmarkAddPortRouted(b *testing.B) {
	nb := routedBenchNB(100, 10000)
	e := NewEngine(nil, nil)
	e.Run(nb)
	if errs := e.FlowErrors(); len(errs) > 0 {
		b.Fatal(errs[0])
	}
	sb := NewSBState()
	txn, _ := sb.Sync(e, SyncOptions{})
	for _, f := range txn.fix {
		f.set(fmt.Sprintf("00000000-0000-0000-0000-%012d", f.op))
	}
	b.ReportMetric(float64(e.NumFlows()), "lflows")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sw := nb.Switches["00000000-0000-0000-0001-000000000007"]
		id := fmt.Sprintf("00000000-0000-0000-0009-%012d", i)
		nb.SetPort(&SwitchPort{UUID: id, Name: fmt.Sprintf("new%d", i), Addresses: []string{fmt.Sprintf("0e:00:00:%02x:%02x:%02x 10.7.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff, 200+i/250%50, i%250+1)}})
		cp := *sw
		cp.Ports = append(append([]string(nil), sw.Ports...), id)
		nb.SetSwitch(&cp)
		e.Run(nb)
		txn, err := sb.Sync(e, SyncOptions{})
		if err != nil || len(txn.Ops) == 0 {
			b.Fatalf("add port: %d ops, %v", len(txn.Ops), err)
		}
		for _, f := range txn.fix {
			f.set(fmt.Sprintf("00000000-0000-0000-0008-%012d", i*100+f.op))
		}
	}
}

// benchLBNB is benchNB plus lbs load balancers (one TCP VIP, three
// backends each) in one Load_Balancer_Group that every switch uses (the
// shape of a Kubernetes cluster's services).
func benchLBNB(switches, ports, lbs int) *NB {
	nb := benchNB(switches, ports)
	g := &LoadBalancerGroup{UUID: "00000000-0000-0000-0010-000000000001", Name: "cluster"}
	for i := 0; i < lbs; i++ {
		id := fmt.Sprintf("00000000-0000-0000-0009-%012d", i)
		nb.SetLoadBalancer(&LoadBalancer{UUID: id, Name: fmt.Sprintf("svc%d", i), Protocol: "tcp",
			Vips: map[string]string{fmt.Sprintf("172.30.%d.%d:80", i/250, i%250+1): fmt.Sprintf("10.0.0.%d:8080,10.1.0.%d:8080,10.2.0.%d:8080", i%250+1, i%250+1, i%250+1)}})
		g.LoadBalancers = append(g.LoadBalancers, id)
	}
	nb.SetLoadBalancerGroup(g)
	for _, sw := range nb.Switches {
		s := *sw
		s.LBGroups = []string{g.UUID}
		nb.SetSwitch(&s)
	}
	return nb
}

// BenchmarkLB: 1000 ports on 100 switches, 1000 load balancers in a group
// on every switch. recompute: full recompute + SB diff of an unchanged NB;
// change-backends: one load balancer's backends change (every switch using
// the group is recomputed) + SB diff.
func BenchmarkLB(b *testing.B) {
	nb := benchLBNB(100, 1000, 1000)
	e := NewEngine(nil, nil)
	e.Run(nb)
	sb := NewSBState()
	txn, err := sb.Sync(e, SyncOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range txn.fix {
		f.set(fmt.Sprintf("00000000-0000-0000-0000-%012d", f.op))
	}
	b.Run("recompute", func(b *testing.B) {
		b.ReportMetric(float64(e.NumFlows()), "lflows")
		for i := 0; i < b.N; i++ {
			nb.MarkAllDirty()
			e.Run(nb)
			if txn, err := sb.Sync(e, SyncOptions{}); err != nil || len(txn.Ops) != 0 {
				b.Fatalf("recompute of an unchanged NB produced %d ops (err %v)", len(txn.Ops), err)
			}
		}
	})
	n := 0
	b.Run("change-backends", func(b *testing.B) {
		lb := *nb.LoadBalancers["00000000-0000-0000-0009-000000000007"]
		for j := 0; j < b.N; j++ {
			n++ // distinct across the benchmark's runs
			i := n
			lb.Vips = map[string]string{"172.30.0.8:80": fmt.Sprintf("10.9.%d.%d:8080", i/250%250, i%250+1)}
			l := lb
			nb.SetLoadBalancer(&l)
			e.Run(nb)
			txn, err := sb.Sync(e, SyncOptions{})
			if err != nil || len(txn.Ops) == 0 {
				b.Fatalf("a backend change produced %d ops (err %v)", len(txn.Ops), err)
			}
			for _, f := range txn.fix {
				f.set(fmt.Sprintf("00000000-0000-0001-%04d-%012d", i%10000, f.op))
			}
		}
	})
}
