package northd

import "fmt"

// lrAdmissionGen: lr_in_admission (ingress 0). Frames with a VLAN tag or a
// multicast source are dropped; an enabled port admits broadcast/multicast
// and frames to its own MAC, remembering that MAC in xreg0[0..47] for the
// later stages (ARP and ICMP replies). Anything else misses and is dropped.
type lrAdmissionGen struct{}

func (lrAdmissionGen) Name() string { return "northd/lr_admission.go" }

func (lrAdmissionGen) Router(rc *RouterContext, b *Builder) {
	b.Add(LRInAdmission, 100, "vlan.present || eth.src[40]", "drop;")
	b.Add(LRInAdmission, 0, "1", "drop;")
	for _, p := range rc.Ports {
		if !p.Enabled() {
			continue
		}
		b.Ref(RefLRP, p.Name)
		in := "inport == " + quote(p.Name)
		set := "xreg0[0..47] = " + p.MAC + "; next;"
		b.Add(LRInAdmission, 50, "eth.mcast && "+in, set)
		b.Add(LRInAdmission, 50, "eth.dst == "+p.MAC+" && "+in+p.onGateway(), set)
	}
	// A distributed floating IP's external MAC is the gateway port's MAC
	// on the chassis of its logical port.
	for _, n := range rc.NATs {
		if n.Distributed && n.Port.Enabled() {
			b.Ref(RefNAT, n.UUID)
			b.Add(LRInAdmission, 50, fmt.Sprintf("eth.dst == %s && inport == %s && %s", n.ExtMAC, quote(n.Port.Name), n.resident()),
				"xreg0[0..47] = "+n.Port.MAC+"; next;")
		}
	}
	b.Ref("", "")
}
