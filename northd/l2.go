package northd

import "fmt"

// l2Gen: MAC learning tables (ingress 2–3) and destination lookup (ingress
// 25–26): broadcast/multicast to _MC_flood, known MACs to their port,
// everything else to the FDB and then to _MC_unknown when some port has
// "unknown" addresses (else dropped).
type l2Gen struct{}

func (l2Gen) Name() string { return "northd/l2.go" }

func (l2Gen) Switch(sc *SwitchContext, b *Builder) {
	b.Add(LSInLookupFDB, 0, "1", "next;")
	b.Add(LSInPutFDB, 0, "1", "next;")
	if sc.Caps.SvcCheck {
		b.Add(LSInL2Lkup, 110, "eth.dst == $svc_monitor_mac && (tcp || icmp || icmp6)", "handle_svc_check(inport);")
	}
	b.Add(LSInL2Lkup, 70, "eth.mcast", "outport = "+quote(MCFlood)+"; output;")
	if sc.Caps.FDB {
		b.Add(LSInL2Lkup, 0, "1", "outport = get_fdb(eth.dst); next;")
	} else {
		// Without MAC learning the lookup always misses: outport "none"
		// (logical port key 0).
		b.Add(LSInL2Lkup, 0, "1", `outport = "none"; next;`)
	}
	b.Add(LSInL2Unknown, 0, "1", "output;")
	if sc.HasUnknown {
		b.Add(LSInL2Unknown, 50, `outport == "none"`, "outport = "+quote(MCUnknown)+"; output;")
	} else {
		b.Add(LSInL2Unknown, 50, `outport == "none"`, "drop;")
	}
	seen := map[string]bool{}
	for _, p := range sc.Ports {
		b.Ref(RefLSP, p.Name)
		if !p.Enabled() {
			b.Add(LSInL2Unknown, 50, "outport == "+quote(p.Name), "drop;")
			continue
		}
		if p.Skip {
			continue
		}
		if sc.Caps.FDB && p.Unknown && len(p.PortSec) == 0 && p.IsVIF() {
			in := "inport == " + quote(p.Name)
			b.Add(LSInLookupFDB, 100, in, "reg0[11] = lookup_fdb(inport, eth.src); next;")
			b.Add(LSInPutFDB, 100, in+" && reg0[11] == 0", "put_fdb(inport, eth.src); next;")
		}
		for _, a := range p.Addrs {
			if seen[a.MAC] {
				continue
			}
			seen[a.MAC] = true
			m := "eth.dst == " + a.MAC
			if p.Resident != "" {
				m += fmt.Sprintf(" && is_chassis_resident(%s)", quote(p.Resident))
			}
			b.Add(LSInL2Lkup, 50, m, "outport = "+quote(p.Name)+"; output;")
		}
		for _, n := range p.FIPs {
			if seen[n.ExtMAC] {
				continue
			}
			seen[n.ExtMAC] = true
			b.Add(LSInL2Lkup, 50, fmt.Sprintf("eth.dst == %s && %s", n.ExtMAC, n.resident()), "outport = "+quote(p.Name)+"; output;")
		}
	}
	b.Ref("", "")
}
