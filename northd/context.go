package northd

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
)

// Generator produces the logical flows of one feature for one logical
// switch. Generators are pure: they read the SwitchContext and append to the
// Builder.
type Generator interface {
	// Name is the source tag of the generator's flows, e.g. "northd/acl.go".
	Name() string
	Switch(sc *SwitchContext, b *Builder)
}

// DefaultGenerators are the logical switch features, in the order they run.
func DefaultGenerators() []Generator {
	return []Generator{portSecGen{}, aclGen{}, lbGen{}, arpGen{}, l2Gen{}, passGen{}}
}

// PortAddrs is one parsed "MAC [IP...]" entry of addresses or port_security.
type PortAddrs struct {
	MAC  string // canonical lowercase xx:xx:xx:xx:xx:xx
	IPv4 []netip.Prefix
	IPv6 []netip.Prefix
}

// Port is a logical switch port as the generators see it.
type Port struct {
	*SwitchPort
	Addrs   []PortAddrs // parsed static addresses
	Unknown bool        // addresses contain "unknown"
	PortSec []PortAddrs // parsed port_security
	// Skip is set when the port's row is bad: it keeps its Port_Binding
	// but gets no address-derived flows.
	Skip bool
	// Resident is, for a switch port of type router whose router port is
	// a distributed gateway port, that port's cr port: the router MAC is
	// reachable only on the chassis where it resides. FIPs are the
	// router's distributed floating IPs on that port (external MAC
	// reachable where their logical port resides).
	Resident string
	FIPs     []*NATCtx
}

// Stateful reports whether the ACL stages track connections: an
// allow-related ACL or a load balancer VIP applies (OVN 23.03's
// has_stateful).
func (sc *SwitchContext) Stateful() bool { return sc.HasStateful || sc.HasLBVIP }

// Enabled reports whether the port is administratively up (enabled unset or true).
func (p *Port) Enabled() bool { return p.SwitchPort.Enabled == nil || *p.SwitchPort.Enabled }

// IsVIF reports a VM/container port (type "").
func (p *Port) IsVIF() bool { return p.Type == "" }

// SwitchContext is everything generators need about one switch.
type SwitchContext struct {
	Switch *Switch
	Ports  []*Port // in Switch.Ports order, existing rows only
	ACLs   []*ACL  // the switch's own ACLs and those of port groups with a port on it, valid only
	// HasACLs/HasStateful: any ACL / any allow-related ACL applies.
	HasACLs, HasStateful bool
	HasUnknown           bool
	// LBs are the switch's load balancers (own and through groups),
	// parsed; HasLBVIP: one of them has a VIP (OVN's has_lb_vip).
	LBs      []*LB
	HasLBVIP bool
	Caps     Caps
	// IgnoreLSPDown is NB_Global options:ignore_lsp_down (default true):
	// answer ARP/ND for ports that are not up.
	IgnoreLSPDown bool
}

// Caps are optional logical-flow features; a generator uses a feature only
// if the validator accepts it, so northd never writes a flow the lflow
// parser rejects. ProbeCaps fills them in.
type Caps struct {
	MLD      bool // mldv1/mldv2 predicates
	FDB      bool // get_fdb / lookup_fdb / put_fdb actions
	SvcCheck bool // handle_svc_check action
	// NDNARouter: the nd_na_router action (router ND replies with the
	// router flag); without it routers answer with nd_na.
	NDNARouter bool
	// TCPReset: the tcp_reset action (TCP to a router address is reset).
	TCPReset bool
}

// ProbeCaps asks v which optional features it accepts.
func ProbeCaps(v Validator) Caps {
	return Caps{
		MLD: v.Match("mldv1 || mldv2") == nil,
		FDB: v.Actions("outport = get_fdb(eth.dst); next;") == nil &&
			v.Actions("reg0[11] = lookup_fdb(inport, eth.src); next;") == nil &&
			v.Actions("put_fdb(inport, eth.src); next;") == nil,
		SvcCheck:   v.Actions("handle_svc_check(inport);") == nil,
		NDNARouter: v.Actions("nd_na_router { output; };") == nil,
		TCPReset:   v.Actions("tcp_reset { output; };") == nil,
	}
}

// ParseAddresses parses one Logical_Switch_Port addresses or port_security
// entry: "MAC", "MAC IP...", where each IP may carry a prefix length.
func ParseAddresses(s string) (PortAddrs, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return PortAddrs{}, fmt.Errorf("empty address")
	}
	hw, err := net.ParseMAC(f[0])
	if err != nil || len(hw) != 6 {
		return PortAddrs{}, fmt.Errorf("%q is not an Ethernet address (in %q)", f[0], s)
	}
	pa := PortAddrs{MAC: hw.String()}
	for _, a := range f[1:] {
		var p netip.Prefix
		if strings.Contains(a, "/") {
			p, err = netip.ParsePrefix(a)
		} else {
			var ip netip.Addr
			ip, err = netip.ParseAddr(a)
			if err == nil {
				p = netip.PrefixFrom(ip, ip.BitLen())
			}
		}
		if err != nil || p.Addr().Zone() != "" {
			return PortAddrs{}, fmt.Errorf("%q is not an IP address (in %q)", a, s)
		}
		if p.Addr().Is4() {
			pa.IPv4 = append(pa.IPv4, p)
		} else if p.Addr().Is4In6() {
			return PortAddrs{}, fmt.Errorf("%q is not an IP address (in %q)", a, s)
		} else {
			pa.IPv6 = append(pa.IPv6, p)
		}
	}
	return pa, nil
}

// newPort parses a port's addresses; errors make the port Skip.
func newPort(sp *SwitchPort, b *Builder) *Port {
	p := &Port{SwitchPort: sp}
	for _, a := range sp.Addresses {
		switch strings.TrimSpace(a) {
		case "unknown":
			p.Unknown = true
			continue
		case "router", "dynamic", "":
			// "router": the peer router port's addresses (no routers yet);
			// "dynamic": allocated addresses are not supported.
			continue
		}
		pa, err := ParseAddresses(a)
		if err != nil {
			if strings.HasSuffix(strings.TrimSpace(a), " dynamic") {
				continue
			}
			b.Bad("Logical_Switch_Port", sp.UUID, sp.Name, fmt.Errorf("addresses: %w", err))
			p.Skip = true
			return p
		}
		p.Addrs = append(p.Addrs, pa)
	}
	for _, a := range sp.PortSecurity {
		pa, err := ParseAddresses(a)
		if err != nil {
			b.Bad("Logical_Switch_Port", sp.UUID, sp.Name, fmt.Errorf("port_security: %w", err))
			p.Skip = true
			return p
		}
		p.PortSec = append(p.PortSec, pa)
	}
	return p
}

// ipList formats addresses for a match: "10.0.0.1" or "{a, b}".
func ipList(ps []netip.Prefix) string {
	ss := make([]string, len(ps))
	for i, p := range ps {
		ss[i] = prefixString(p)
	}
	return setOf(ss)
}

func setOf(ss []string) string {
	if len(ss) == 1 {
		return ss[0]
	}
	return "{" + strings.Join(ss, ", ") + "}"
}

// prefixString prints a host address without /32 or /128.
func prefixString(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.Masked().String()
}

// lla is the IPv6 link-local address derived from a MAC (EUI-64).
func lla(mac string) netip.Addr {
	hw, _ := net.ParseMAC(mac)
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8] = hw[0] ^ 0x02
	b[9], b[10] = hw[1], hw[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b)
}

// solicitedNode is the solicited-node multicast address of ip.
func solicitedNode(ip netip.Addr) netip.Addr {
	a := ip.As16()
	var b [16]byte
	b[0], b[1] = 0xff, 0x02
	b[11] = 0x01
	b[12] = 0xff
	b[13], b[14], b[15] = a[13], a[14], a[15]
	return netip.AddrFrom16(b)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
