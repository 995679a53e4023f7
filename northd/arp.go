package northd

import "fmt"

// arpGen: ARP/ND responder for known addresses (ingress table 19). Requests
// from a localnet port are never answered; a port's own requests for its
// own address go on (so duplicate-address detection still works). As in
// OVN, ports with "unknown" addresses get no responder, ports that are
// down get none when NB_Global options:ignore_lsp_down=false, and router
// ports answer ARP but not ND.
type arpGen struct{}

func (arpGen) Name() string { return "northd/arp.go" }

func (arpGen) Switch(sc *SwitchContext, b *Builder) {
	b.Add(LSInARPRsp, 0, "1", "next;")
	for _, p := range sc.Ports {
		b.Ref(RefLSP, p.Name)
		in := "inport == " + quote(p.Name)
		if p.Type == "localnet" {
			b.Add(LSInARPRsp, 100, in, "next;")
			continue
		}
		if p.Skip || !p.Enabled() || p.Unknown || (p.Type != "" && p.Type != "localport" && p.Type != "router") {
			continue
		}
		if !sc.IgnoreLSPDown && p.IsVIF() && (p.Up == nil || !*p.Up) {
			continue
		}
		for _, a := range p.Addrs {
			for _, ip := range a.IPv4 {
				tpa := ip.Addr().String()
				m := "arp.tpa == " + tpa + " && arp.op == 1"
				if p.IsVIF() {
					b.Add(LSInARPRsp, 100, m+" && "+in, "next;")
				}
				b.Add(LSInARPRsp, 50, m, fmt.Sprintf(
					"eth.dst = eth.src; eth.src = %[1]s; arp.op = 2; arp.tha = arp.sha; arp.sha = %[1]s; "+
						"arp.tpa = arp.spa; arp.spa = %[2]s; outport = inport; flags.loopback = 1; output;", a.MAC, tpa))
			}
			if p.Type == "router" {
				continue
			}
			for _, ip := range a.IPv6 {
				t := ip.Addr().String()
				m := fmt.Sprintf("nd_ns && ip6.dst == {%s, %s} && nd.target == %s", t, solicitedNode(ip.Addr()), t)
				if p.IsVIF() {
					b.Add(LSInARPRsp, 100, m+" && "+in, "next;")
				}
				b.Add(LSInARPRsp, 50, m, fmt.Sprintf(
					"nd_na { eth.src = %[1]s; ip6.src = %[2]s; nd.target = %[2]s; nd.tll = %[1]s; "+
						"outport = inport; flags.loopback = 1; output; };", a.MAC, t))
			}
		}
	}
	b.Ref("", "")
}
