package symtab

import (
	"fmt"
	"sync"

	"github.com/govn/govn/lflow/of"
)

// Register conventions: where the logical pipeline keeps its metadata in
// OpenFlow. This is the one place they are declared; northd, controller,
// actions and trace use these names, never raw register numbers.
const (
	// DatapathField holds the logical datapath's tunnel key.
	DatapathField = of.Metadata
	// InportField holds the logical input port's tunnel key (symbol inport).
	InportField = of.Reg14
	// OutportField holds the logical output port's tunnel key (symbol outport).
	OutportField = of.Reg15
	// FlagsField holds the logical flags (symbol flags, bits below).
	FlagsField = of.Reg10
	// DNATZoneField, SNATZoneField: conntrack zones of a logical router's
	// DNAT and SNAT (low 16 bits).
	DNATZoneField = of.Reg11
	SNATZoneField = of.Reg12
	// CTZoneField: conntrack zone of the logical switch port (low 16 bits).
	CTZoneField = of.Reg13

	// NumLogicalRegs logical registers reg0..reg9 map to OpenFlow reg0..reg9;
	// xreg0..4 to OpenFlow xreg0..4 and xxreg0..1 to OpenFlow xxreg0..1
	// (xxreg0 = reg0..reg3 with reg0 most significant; xxreg1 = reg4..reg7).
	NumLogicalRegs = 10
)

// ZoneSubfield returns the 16-bit conntrack zone in register f
// (e.g. ZoneSubfield(CTZoneField) = reg13[0..15]).
func ZoneSubfield(f of.Field) of.Subfield { return of.Subfield{Field: f, Ofs: 0, NBits: 16} }

// Logical flag bits in FlagsField (symbols flags.<name>).
const (
	FlagLoopback         = 0  // flags.loopback: allow output to the input port
	FlagForceSNATForDNAT = 2  // flags.force_snat_for_dnat
	FlagForceSNATForLB   = 3  // flags.force_snat_for_lb
	FlagLocalOnly        = 4  // flags.local_only: do not send to other chassis
	FlagNestedContainer  = 5  // flags.nested_container
	FlagLookupMAC        = 6  // scratch: result of a MAC-binding lookup (lookup_arp/lookup_nd, lflow/action)
	FlagLookupLBHairpin  = 7  // scratch: result of a load-balancer hairpin lookup
	FlagLookupFDB        = 8  // scratch: result of an FDB lookup (lookup_fdb, lflow/action)
	FlagSkipSNATForLB    = 9  // flags.skip_snat_for_lb
	FlagLocalport        = 10 // flags.localport
	FlagUseSNATZone      = 11 // flags.use_snat_zone
)

// ct_mark and ct_label bits used by the pipelines (symbols ct_mark.<name>,
// ct_label.<name>).
const (
	CTMarkBlocked   = 0 // ct_mark.blocked: ACL-blocked connection
	CTMarkNatted    = 1 // ct_mark.natted
	CTMarkSkipSNAT  = 2 // ct_mark.skip_snat
	CTMarkForceSNAT = 3 // ct_mark.force_snat (ct_lb_mark(...; force_snat))
)

var (
	defaultOnce  sync.Once
	defaultTable *Table
)

// Default returns the symbol table of the OVN logical pipelines. It is built
// once and shared; do not modify it.
func Default() *Table {
	defaultOnce.Do(func() {
		t, err := buildDefault()
		if err != nil {
			panic("symtab: default table: " + err.Error()) // a bug in this file, caught by tests
		}
		defaultTable = t
	})
	return defaultTable
}

type builder struct {
	t   *Table
	err error
}

func (b *builder) field(name string, f of.Field, prereqs string, writable bool, extra ...func(*FieldOpts)) {
	if b.err != nil {
		return
	}
	o := FieldOpts{Prereqs: prereqs, Writable: writable}
	for _, fn := range extra {
		fn(&o)
	}
	_, b.err = b.t.AddField(name, of.Whole(f), o)
}

func (b *builder) sub(name, parent string, lo, hi int, prereqs string, readOnly bool) {
	if b.err != nil {
		return
	}
	_, b.err = b.t.AddSubfield(name, parent, lo, hi, prereqs, readOnly)
}

func (b *builder) pred(name, expansion string) {
	if b.err != nil {
		return
	}
	_, b.err = b.t.AddPredicate(name, expansion)
}

func hexFormat(o *FieldOpts)   { o.Format, o.FormatSet = of.FormatHex, true }
func stringField(o *FieldOpts) { o.String = true }
func nominal(o *FieldOpts)     { o.Nominal = true }

func buildDefault() (*Table, error) {
	b := &builder{t: New()}

	// Logical ports and metadata.
	b.field("inport", InportField, "", true, stringField)
	b.field("outport", OutportField, "", true, stringField)
	for i := 0; i < NumLogicalRegs; i++ {
		b.field(fmt.Sprintf("reg%d", i), of.Reg(i), "", true)
	}
	for i := 0; i < NumLogicalRegs/2; i++ {
		b.field(fmt.Sprintf("xreg%d", i), of.XReg(i), "", true)
	}
	for i := 0; i < 2; i++ {
		b.field(fmt.Sprintf("xxreg%d", i), of.XXReg(i), "", true)
	}
	b.field("flags", FlagsField, "", true)
	for _, fl := range []struct {
		name string
		bit  int
	}{
		{"loopback", FlagLoopback}, {"force_snat_for_dnat", FlagForceSNATForDNAT},
		{"force_snat_for_lb", FlagForceSNATForLB}, {"local_only", FlagLocalOnly},
		{"nested_container", FlagNestedContainer}, {"skip_snat_for_lb", FlagSkipSNATForLB},
		{"localport", FlagLocalport}, {"use_snat_zone", FlagUseSNATZone},
	} {
		b.sub("flags."+fl.name, "flags", fl.bit, fl.bit, "", false)
	}
	b.field("pkt.mark", of.PktMark, "", true)

	// Connection tracking. ct_mark/ct_label are written only through
	// ct_commit, so they are read-only as assignment targets.
	b.field("ct_state", of.CTState, "", false, hexFormat)
	b.field("ct_mark", of.CTMark, "", false)
	b.field("ct_label", of.CTLabel, "", false)
	b.sub("ct.trk", "ct_state", 5, 5, "", true)
	for _, c := range []struct {
		name string
		bit  int
	}{{"new", 0}, {"est", 1}, {"rel", 2}, {"rpl", 3}, {"inv", 4}, {"snat", 6}, {"dnat", 7}} {
		b.sub("ct."+c.name, "ct_state", c.bit, c.bit, "ct.trk", true)
	}
	b.sub("ct_mark.blocked", "ct_mark", CTMarkBlocked, CTMarkBlocked, "", true)
	b.sub("ct_mark.natted", "ct_mark", CTMarkNatted, CTMarkNatted, "", true)
	b.sub("ct_mark.skip_snat", "ct_mark", CTMarkSkipSNAT, CTMarkSkipSNAT, "", true)
	b.sub("ct_mark.force_snat", "ct_mark", CTMarkForceSNAT, CTMarkForceSNAT, "", true)
	b.sub("ct_mark.ecmp_reply_port", "ct_mark", 16, 31, "", true)
	b.sub("ct_label.blocked", "ct_label", 0, 0, "", true)
	b.sub("ct_label.natted", "ct_label", 1, 1, "", true)
	b.sub("ct_label.ecmp_reply_eth", "ct_label", 32, 79, "", true)
	b.sub("ct_label.ecmp_reply_port", "ct_label", 80, 95, "", true)
	b.sub("ct_label.label", "ct_label", 96, 127, "", true)

	// Ethernet and VLAN.
	b.field("eth.src", of.EthSrc, "", true)
	b.field("eth.dst", of.EthDst, "", true)
	b.field("eth.type", of.EthType, "", false)
	b.pred("eth.bcast", "eth.dst == ff:ff:ff:ff:ff:ff")
	b.pred("eth.mcast", "eth.dst[40]")
	b.field("vlan.tci", of.VLANTCI, "", true)
	b.pred("vlan.present", "vlan.tci[12]")
	b.sub("vlan.vid", "vlan.tci", 0, 11, "vlan.present", false)
	b.sub("vlan.pcp", "vlan.tci", 13, 15, "vlan.present", false)

	// IP.
	b.pred("ip4", "eth.type == 0x800")
	b.pred("ip6", "eth.type == 0x86dd")
	b.pred("ip", "ip4 || ip6")
	b.field("ip.proto", of.IPProto, "ip", false)
	b.field("ip.dscp", of.IPDSCP, "ip", true)
	b.field("ip.ecn", of.IPECN, "ip", true)
	b.field("ip.ttl", of.IPTTL, "ip", true)
	b.field("ip.frag", of.IPFrag, "ip", false, hexFormat)
	b.pred("ip.is_frag", "ip.frag[0]")
	b.pred("ip.later_frag", "ip.frag[1]")
	b.pred("ip.first_frag", "ip.is_frag && !ip.later_frag")
	b.field("ip4.src", of.IPSrc, "ip4", true)
	b.field("ip4.dst", of.IPDst, "ip4", true)
	b.pred("ip4.src_mcast", "ip4.src[28..31] == 0xe")
	b.pred("ip4.mcast", "ip4.dst[28..31] == 0xe")
	b.field("ip6.src", of.IPv6Src, "ip6", true)
	b.field("ip6.dst", of.IPv6Dst, "ip6", true)
	b.field("ip6.label", of.IPv6Label, "ip6", true)
	b.pred("ip6.mcast", "ip6.dst[120..127] == 0xff")

	// ICMP.
	b.pred("icmp4", "ip4 && ip.proto == 1")
	b.field("icmp4.type", of.ICMPv4Type, "icmp4", true)
	b.field("icmp4.code", of.ICMPv4Code, "icmp4", true)
	b.pred("icmp6", "ip6 && ip.proto == 58")
	b.field("icmp6.type", of.ICMPv6Type, "icmp6", true)
	b.field("icmp6.code", of.ICMPv6Code, "icmp6", true)
	b.pred("icmp", "icmp4 || icmp6")
	b.pred("igmp", "ip4 && ip.proto == 2")

	// ARP and RARP (same OpenFlow fields, different eth.type).
	b.pred("arp", "eth.type == 0x806")
	b.pred("rarp", "eth.type == 0x8035")
	for _, p := range []string{"arp", "rarp"} {
		b.field(p+".op", of.ARPOp, p, true)
		b.field(p+".spa", of.ARPSPA, p, true)
		b.field(p+".tpa", of.ARPTPA, p, true)
		b.field(p+".sha", of.ARPSHA, p, true)
		b.field(p+".tha", of.ARPTHA, p, true)
	}

	// IPv6 neighbor discovery.
	b.pred("nd", "icmp6.type == {135, 136} && icmp6.code == 0 && ip.ttl == 255")
	b.pred("nd_ns", "icmp6.type == 135 && icmp6.code == 0 && ip.ttl == 255")
	b.pred("nd_na", "icmp6.type == 136 && icmp6.code == 0 && ip.ttl == 255")
	b.pred("nd_rs", "icmp6.type == 133 && icmp6.code == 0 && ip.ttl == 255")
	b.pred("nd_ra", "icmp6.type == 134 && icmp6.code == 0 && ip.ttl == 255")
	b.field("nd.target", of.NDTarget, "nd", true)
	b.field("nd.sll", of.NDSLL, "nd_ns", true)
	b.field("nd.tll", of.NDTLL, "nd_na", true)

	// L4.
	b.pred("tcp", "ip.proto == 6")
	b.field("tcp.src", of.TCPSrc, "tcp", true)
	b.field("tcp.dst", of.TCPDst, "tcp", true)
	b.field("tcp.flags", of.TCPFlags, "tcp", false)
	b.pred("udp", "ip.proto == 17")
	b.field("udp.src", of.UDPSrc, "udp", true)
	b.field("udp.dst", of.UDPDst, "udp", true)
	b.pred("sctp", "ip.proto == 132")
	b.field("sctp.src", of.SCTPSrc, "sctp", true)
	b.field("sctp.dst", of.SCTPDst, "sctp", true)

	if b.err != nil {
		return nil, b.err
	}
	return b.t, nil
}

// FlagLookupLBAff is the scratch flag bit (in FlagsField) a load-balancer
// affinity hit sets: chk_lb_aff's result, loaded by the flows
// commit_lb_aff learns (OVN's MLF_USE_LB_AFF_SESSION_BIT).
const FlagLookupLBAff = 14
