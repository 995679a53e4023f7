package northd

import (
	"fmt"
	"strings"
)

// portSecGen: admission control and port security, ingress tables 0–1 and
// egress tables 8–9.
//
// OVN 23.03 evaluates port security with the check_in_port_sec() and
// check_out_port_sec() actions, which ovn-controller expands from
// Port_Binding.port_security. govn keeps OVN's stages and register
// (REGBIT_PORT_SEC_DROP = reg0[15]) but writes the checks as ordinary
// logical flows, so the controller and trace need no special action:
//
//	prio 100  vlan.present / eth.src[40]           drop
//	prio 100  inport == P (disabled port)          reg0[15] = 1
//	prio  90  inport == P && eth.src == M && <allowed IP/ARP/ND>  next
//	prio  85  inport == P && eth.src == M && (ip || arp)         reg0[15] = 1
//	prio  84  inport == P && eth.src == M                        next
//	prio  80  inport == P (port with port_security)              reg0[15] = 1
//	prio  50  1                                    next
type portSecGen struct{}

func (portSecGen) Name() string { return "northd/portsec.go" }

func (portSecGen) Switch(sc *SwitchContext, b *Builder) {
	drop := regbitPortSecDrop + " = 1; next;"
	b.Add(LSInCheckPortSec, 100, "vlan.present", "drop;")
	b.Add(LSInCheckPortSec, 100, "eth.src[40]", "drop;")
	b.Add(LSInCheckPortSec, 50, "1", "next;")
	b.Add(LSInApplyPortSec, 50, regbitPortSecDrop+" == 1", "drop;")
	b.Add(LSInApplyPortSec, 0, "1", "next;")

	b.Add(LSOutCheckPortSec, 100, "eth.mcast", regbitPortSecDrop+" = 0; next;")
	b.Add(LSOutCheckPortSec, 0, "1", regbitPortSecDrop+" = 0; next;")
	b.Add(LSOutApplyPortSec, 50, regbitPortSecDrop+" == 1", "drop;")
	b.Add(LSOutApplyPortSec, 0, "1", "output;")

	for _, p := range sc.Ports {
		b.Ref(RefLSP, p.Name)
		in := "inport == " + quote(p.Name)
		out := "outport == " + quote(p.Name)
		if !p.Enabled() {
			b.Add(LSInCheckPortSec, 100, in, drop)
			continue
		}
		if p.Skip || len(p.PortSec) == 0 {
			continue
		}
		b.Add(LSInCheckPortSec, 80, in, drop)
		b.Add(LSOutCheckPortSec, 80, out, drop)
		for _, ps := range p.PortSec {
			inPortSec(b, in, ps)
			outPortSec(b, out, ps)
		}
	}
	b.Ref("", "")
}

func inPortSec(b *Builder, in string, ps PortAddrs) {
	ok := "next;"
	base := in + " && eth.src == " + ps.MAC
	if len(ps.IPv4) == 0 && len(ps.IPv6) == 0 {
		b.Add(LSInCheckPortSec, 90, base, ok)
		return
	}
	// Other IP/ARP traffic from this MAC is blocked; non-IP traffic passes.
	b.Add(LSInCheckPortSec, 85, base+" && (ip || arp)", regbitPortSecDrop+" = 1; next;")
	b.Add(LSInCheckPortSec, 84, base, ok)
	if len(ps.IPv4) > 0 {
		b.Add(LSInCheckPortSec, 90, base+" && ip4.src == "+ipList(ps.IPv4), ok)
		b.Add(LSInCheckPortSec, 90, base+" && ip4.src == 0.0.0.0 && ip4.dst == 255.255.255.255 && udp.src == 68 && udp.dst == 67", ok)
		b.Add(LSInCheckPortSec, 90, base+" && arp.sha == "+ps.MAC+" && arp.spa == "+ipList(ps.IPv4), ok)
	}
	if len(ps.IPv6) > 0 {
		l := lla(ps.MAC)
		ips := append([]string{l.String()}, strings.Split(strings.Trim(ipList(ps.IPv6), "{}"), ", ")...)
		b.Add(LSInCheckPortSec, 90, base+" && ip6.src == "+setOf(ips), ok)
		b.Add(LSInCheckPortSec, 90, base+" && ip6.src == :: && ip6.dst == ff02::/16 && icmp6.type == {131, 135, 143}", ok)
		b.Add(LSInCheckPortSec, 90, fmt.Sprintf("%s && nd_ns && (nd.sll == 00:00:00:00:00:00 || nd.sll == %s)", base, ps.MAC), ok)
		b.Add(LSInCheckPortSec, 90, fmt.Sprintf("%s && nd_na && nd.target == %s && (nd.tll == 00:00:00:00:00:00 || nd.tll == %s)", base, setOf(ips), ps.MAC), ok)
	}
}

func outPortSec(b *Builder, out string, ps PortAddrs) {
	ok := regbitPortSecDrop + " = 0; next;"
	base := out + " && eth.dst == " + ps.MAC
	if len(ps.IPv4) == 0 && len(ps.IPv6) == 0 {
		b.Add(LSOutCheckPortSec, 90, base, ok)
		return
	}
	b.Add(LSOutCheckPortSec, 85, base+" && ip", regbitPortSecDrop+" = 1; next;")
	b.Add(LSOutCheckPortSec, 84, base, ok)
	if len(ps.IPv4) > 0 {
		dsts := strings.Split(strings.Trim(ipList(ps.IPv4), "{}"), ", ")
		dsts = append(dsts, "255.255.255.255", "224.0.0.0/4")
		b.Add(LSOutCheckPortSec, 90, base+" && ip4.dst == "+setOf(dsts), ok)
	}
	if len(ps.IPv6) > 0 {
		dsts := []string{lla(ps.MAC).String()}
		dsts = append(dsts, strings.Split(strings.Trim(ipList(ps.IPv6), "{}"), ", ")...)
		dsts = append(dsts, "ff00::/8")
		b.Add(LSOutCheckPortSec, 90, base+" && ip6.dst == "+setOf(dsts), ok)
	}
}
