// Package controller declares the OpenFlow table layout of the integration
// bridge (br-int) that govn controller programs. Every other controller
// package names these constants; none uses a raw table number.
//
// A packet's path through br-int:
//
//	                  local VIF                      tunnel (Geneve)
//	                      │                                │
//	TableClassify (0) ────┤ metadata=datapath key,         │ metadata=tun_id (VNI),
//	                      │ reg14=inport, reg13=CT zone    │ reg14/reg15 from tun_metadata0
//	                      ▼                                │
//	TableLogIngress+0 … +32  (logical ingress pipeline)    │
//	                      │ output;                        │
//	                      ▼                                │
//	TableRemoteOutput (41): outport on another chassis →   │
//	  tunnel to it; multicast → each other chassis once    │
//	                      ▼                                ▼
//	TableLocalOutput (42): outport here (multicast: each local member)
//	                      ▼
//	TableCheckLoopback (43): inport == outport without flags.loopback → drop
//	                      ▼
//	TableLogEgress+0 … +32  (logical egress pipeline)
//	                      │ output;
//	                      ▼
//	TableLogToPhy (77): outport → OpenFlow port (or across a patch port into the
//	                    peer datapath's ingress pipeline)
//
// TableMACBinding (78) is searched by get_arp/get_nd (IP → MAC for a logical
// port); TableGetFDB/TableLookupFDB (79, 80) by get_fdb/lookup_fdb;
// TableLookupMAC/TableLookupMACIP (81, 82) by lookup_arp/lookup_nd(_ip);
// TableLBHairpin, TableLBHairpinReply, TableCTSNATHairpin (83..85) by
// chk_lb_hairpin, chk_lb_hairpin_reply and ct_snat_to_vip; TableLBAffinity
// (86) holds the flows commit_lb_aff learns, searched by chk_lb_aff. The layout follows OVN's (physical table 0, logical ingress at 8)
// but is govn's own: OVN's numbers after the ingress pipeline differ between
// releases, and nothing outside br-int depends on them.
package controller

import "fmt"

// OpenFlow tables of br-int, in packet order.
const (
	// TableClassify is the physical input table: it maps a local VIF's
	// OpenFlow port to its logical datapath and port (then the logical
	// ingress pipeline), and a tunnel port's packets to the logical datapath
	// and ports carried in the Geneve header (then TableLocalOutput).
	TableClassify uint8 = 0
	// TableLogIngress is logical ingress table 0; logical ingress table N is
	// TableLogIngress+N.
	TableLogIngress uint8 = 8
	// TableRemoteOutput sends packets whose logical outport lives on another
	// chassis through the tunnel to that chassis; multicast groups go to
	// every other chassis with a member once. Everything continues in
	// TableLocalOutput.
	TableRemoteOutput uint8 = TableLogIngress + NumLogicalTables // 41
	// TableLocalOutput delivers to outports on this chassis: it loads the
	// outport's conntrack zone and continues in TableCheckLoopback; multicast
	// groups are expanded into each local member.
	TableLocalOutput uint8 = TableRemoteOutput + 1 // 42
	// TableCheckLoopback drops a packet whose outport is its inport unless
	// flags.loopback is set, clears the logical registers reg0..reg9 and
	// enters the egress pipeline.
	TableCheckLoopback uint8 = TableLocalOutput + 1 // 43
	// TableLogEgress is logical egress table 0; logical egress table N is
	// TableLogEgress+N.
	TableLogEgress uint8 = TableCheckLoopback + 1 // 44
	// TableLogToPhy maps the logical outport to an OpenFlow port (egress
	// `output;` lands here).
	TableLogToPhy uint8 = TableLogEgress + NumLogicalTables // 77
	// TableMACBinding holds MAC_Binding rows: metadata, reg15 (port) and
	// reg0 (IPv4) or xxreg0 (IPv6) → eth.dst (get_arp, get_nd).
	TableMACBinding uint8 = TableLogToPhy + 1 // 78
	// TableGetFDB holds FDB rows for get_fdb: metadata and eth.dst → reg15
	// (the port key).
	TableGetFDB uint8 = TableMACBinding + 1 // 79
	// TableLookupFDB holds FDB rows for lookup_fdb: metadata, reg14 (port)
	// and eth.src → flags bit 8 set.
	TableLookupFDB uint8 = TableGetFDB + 1 // 80
	// TableLookupMAC holds MAC_Binding rows for lookup_arp/lookup_nd:
	// metadata, reg14 (port), reg0/xxreg0 (IP) and eth.src → flags bit 6.
	TableLookupMAC uint8 = TableLookupFDB + 1 // 81
	// TableLookupMACIP holds MAC_Binding rows for lookup_arp_ip /
	// lookup_nd_ip: metadata, reg14 and reg0/xxreg0 → flags bit 6.
	TableLookupMACIP uint8 = TableLookupMAC + 1 // 82
	// TableLBHairpin answers chk_lb_hairpin: a load-balanced packet (ct_mark
	// natted) from a backend to itself whose original destination (the
	// conntrack original tuple) is one of the backend's VIPs → flags bit 7.
	TableLBHairpin uint8 = TableLookupMACIP + 1 // 83
	// TableLBHairpinReply answers chk_lb_hairpin_reply: a reply from a
	// backend to the address its hairpinned connection was SNATed to (the
	// VIP, or the load balancer's hairpin_snat_ip) → flags bit 7.
	TableLBHairpinReply uint8 = TableLBHairpin + 1 // 84
	// TableCTSNATHairpin is ct_snat_to_vip: commit the hairpinned connection
	// in the datapath's SNAT zone (reg12) with its source translated to the
	// VIP (or hairpin_snat_ip).
	TableCTSNATHairpin uint8 = TableLBHairpinReply + 1 // 85
	// TableLBAffinity holds the load-balancer affinity sessions
	// commit_lb_aff learns (OpenFlow learn, idle_timeout = the LB's
	// affinity_timeout, cookie 0 so the flow installer never owns or
	// deletes them): metadata, client IP, VIP (+ protocol and port) → the
	// backend in reg4/xxreg1 and reg8[0..15], flags bit 14. chk_lb_aff
	// searches it; only the priority-0 miss flow is installed.
	TableLBAffinity uint8 = TableCTSNATHairpin + 1 // 86
)

// NumLogicalTables is the number of logical tables per pipeline (the SB
// schema allows Logical_Flow.table_id 0..32).
const NumLogicalTables = 33

// Pipeline is a logical pipeline.
type Pipeline uint8

// The two logical pipelines.
const (
	Ingress Pipeline = iota
	Egress
)

func (p Pipeline) String() string {
	if p == Egress {
		return "egress"
	}
	return "ingress"
}

// LogicalTable returns the OpenFlow table of logical table n of pipeline p,
// or an error if n is out of range.
func LogicalTable(p Pipeline, n int) (uint8, error) {
	if n < 0 || n >= NumLogicalTables {
		return 0, fmt.Errorf("logical %s table %d out of range 0..%d", p, n, NumLogicalTables-1)
	}
	if p == Egress {
		return TableLogEgress + uint8(n), nil
	}
	return TableLogIngress + uint8(n), nil
}

// OutputTable is where a logical pipeline's `output;` action resubmits.
func OutputTable(p Pipeline) uint8 {
	if p == Egress {
		return TableLogToPhy
	}
	return TableRemoteOutput
}

// TableName names an OpenFlow table for logs and metrics.
func TableName(t uint8) string {
	switch {
	case t == TableClassify:
		return "classify"
	case t >= TableLogIngress && t < TableLogIngress+NumLogicalTables:
		return fmt.Sprintf("ingress-%d", t-TableLogIngress)
	case t == TableRemoteOutput:
		return "remote-output"
	case t == TableLocalOutput:
		return "local-output"
	case t == TableCheckLoopback:
		return "check-loopback"
	case t >= TableLogEgress && t < TableLogEgress+NumLogicalTables:
		return fmt.Sprintf("egress-%d", t-TableLogEgress)
	case t == TableLogToPhy:
		return "log-to-phy"
	case t == TableMACBinding:
		return "mac-binding"
	case t == TableGetFDB:
		return "get-fdb"
	case t == TableLookupFDB:
		return "lookup-fdb"
	case t == TableLookupMAC:
		return "lookup-mac"
	case t == TableLookupMACIP:
		return "lookup-mac-ip"
	case t == TableLBHairpin:
		return "lb-hairpin"
	case t == TableLBHairpinReply:
		return "lb-hairpin-reply"
	case t == TableCTSNATHairpin:
		return "ct-snat-hairpin"
	case t == TableLBAffinity:
		return "lb-affinity"
	}
	return fmt.Sprintf("table-%d", t)
}

// Register bits the physical tables use beyond the logical symbol table's
// conventions (lflow/symtab): flags (reg10) bit 1 is set on packets that
// arrived through a tunnel, so that multicast delivery does not cross patch
// ports a second time on the receiving chassis.
const FlagFromTunnelBit = 1

// Result bits (in flags, reg10) the lookup tables set on a hit; they are
// lflow/action's LookupMACResult, LookupHairpinResult, LookupFDBResult and
// LookupLBAffResult.
const (
	FlagLookupMACBit       = 6
	FlagLookupLBHairpinBit = 7
	FlagLookupFDBBit       = 8
	FlagLookupLBAffBit     = 14
)

// Geneve option that carries the logical ingress and egress port keys, as
// OVN's: class 0x0102, type 0x80, 4 bytes, mapped to tun_metadata0 with
// `ovs-ofctl add-tlv-map br-int "{class=0x102,type=0x80,len=4}->tun_metadata0"`.
// Bits 16..30 hold the ingress port key, bits 0..15 the egress port (or
// multicast group) key. The Geneve VNI (tun_id) is the datapath key.
const (
	GeneveOptionClass = 0x0102
	GeneveOptionType  = 0x80
	GeneveOptionLen   = 4
	// TLVMap is the argument of ovs-ofctl add-tlv-map.
	TLVMap = "{class=0x102,type=0x80,len=4}->tun_metadata0"
)
