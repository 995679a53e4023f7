package action

import (
	"encoding/binary"
	"fmt"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Zones are the register bits holding conntrack zone ids (set by the
// physical tables before the logical pipelines run).
type Zones struct {
	CT   of.Subfield // logical switches: every ct action
	DNAT of.Subfield // logical routers: ct_next, ct_commit, ct_dnat*, ct_lb*, *_in_czone
	SNAT of.Subfield // logical routers: ct_snat
}

// Registers that carry arguments between encoded actions and the
// OpenFlow tables / controller that consume them. They are the contract
// with the controller's MAC-binding table and packet-in handlers:
//
//   - get_arp/get_nd: the port key is in MACBindingPort (reg15, the logical
//     output port), the IPv4 address in MACBindingIP4 (reg0) or the IPv6
//     address in MACBindingIP6 (xxreg0); eth.dst is zeroed, then the
//     MAC-binding table is searched and sets eth.dst on a hit. The registers
//     are restored afterwards.
//   - put_arp/put_nd: controller packet-in with the port key in PutMACPort
//     (reg14, the logical input port), the IP address in reg0 / xxreg0 and
//     the MAC address in PutMACMAC (eth.src). Restored afterwards.
var (
	MACBindingPort = of.Whole(symtab.OutportField)
	MACBindingIP4  = of.Whole(of.Reg0)
	MACBindingIP6  = of.Whole(of.XXReg0)
	PutMACPort     = of.Whole(symtab.InportField)
	PutMACMAC      = of.Whole(of.EthSrc)
)

// DefaultZones are the zone registers of symtab's register conventions:
// reg13[0..15], reg11[0..15], reg12[0..15]. Encode uses them when
// EncodeParams.Zones is the zero value.
func DefaultZones() Zones {
	return Zones{
		CT:   symtab.ZoneSubfield(symtab.CTZoneField),
		DNAT: symtab.ZoneSubfield(symtab.DNATZoneField),
		SNAT: symtab.ZoneSubfield(symtab.SNATZoneField),
	}
}

// EncodeParams is everything Encode needs to know about the flow being
// translated and the OpenFlow layout. Nothing is global: the controller (or a
// test) fills one per flow (most fields are shared and can be copied).
type EncodeParams struct {
	// Pipeline and Table locate the logical flow whose actions are encoded;
	// `next;` goes to Table+1 of Pipeline.
	Pipeline Pipeline
	Table    int
	// TableMap returns the OpenFlow table of a logical table, false if the
	// logical table does not exist. Required.
	TableMap func(p Pipeline, table int) (int, bool)
	// OutputTable is the OpenFlow table `output;` resubmits to (the caller
	// picks the one for Pipeline: remote/local output after ingress, the
	// physical output after egress).
	OutputTable int
	// MACBindingTable is the OpenFlow table get_arp/get_nd search.
	MACBindingTable int
	// Lookup tables of the function-call actions (0 = not available; using
	// the action is then an encode error):
	//   GetFDBTable      get_fdb: matches eth_dst, sets reg15 to the port key.
	//   LookupFDBTable   lookup_fdb: matches reg14 (port key) and eth_src,
	//                    sets LookupFDBResult.
	//   LookupMACTable   lookup_arp/lookup_nd: matches reg14, reg0 (IPv4; for
	//                    IPv6 xxreg0) and eth_src, sets LookupMACResult.
	//   LookupMACIPTable lookup_arp_ip/lookup_nd_ip: matches reg14 and
	//                    reg0/xxreg0, sets LookupMACResult.
	// All of them also match metadata (the datapath). IPv4 and IPv6 entries
	// of a shared table should match the packet's eth_type/arp too (the
	// lookup runs on the packet itself: ARP or IPv4 for *_arp*, IPv6 for
	// *_nd*).
	GetFDBTable, LookupFDBTable, LookupMACTable, LookupMACIPTable int
	// Load-balancer hairpin tables (0 = not available):
	//   LBHairpinTable       chk_lb_hairpin: sets LookupHairpinResult when
	//                        the packet goes from a backend to its own VIP.
	//   LBHairpinReplyTable  chk_lb_hairpin_reply: the same for replies.
	//   CTSNATHairpinTable   ct_snat_to_vip: commits with nat(src=VIP).
	LBHairpinTable, LBHairpinReplyTable, CTSNATHairpinTable int
	// LBAffinityTable holds the flows commit_lb_aff learns and chk_lb_aff
	// searches (0 = not available).
	LBAffinityTable int
	// Datapath identifies the logical datapath for LookupPort.
	Datapath string
	// LookupPort returns the tunnel key of logical port name in datapath,
	// for assignments such as `outport = "lsp1";`. Required if such
	// assignments occur. The name "" always encodes as key 0.
	LookupPort func(datapath, name string) (uint32, bool)
	// AllocGroup returns the group id to use for g (whose ID is 0). Giving
	// identical groups the same id is the allocator's choice. Required for
	// ct_lb/ct_lb_mark with backends.
	AllocGroup func(g of.Group) (uint32, error)
	// ControllerMeter is the meter_id of controller actions (0: none).
	ControllerMeter uint32
	// LookupMeter resolves log(meter="name") to a meter id; if nil or the
	// meter is unknown, ControllerMeter is used.
	LookupMeter func(name string) (uint32, bool)
	// Router is true for logical-router datapaths (conntrack zones come from
	// Zones.DNAT/SNAT instead of Zones.CT).
	Router bool
	// Zones are the zone registers; the zero value means DefaultZones().
	Zones Zones
}

// Encoded is the OpenFlow translation of an action list.
type Encoded struct {
	Actions of.Actions
	// Groups the actions refer to (ct_lb with backends), with their ids.
	Groups []of.Group
}

// Controller opcodes: the first 4 bytes (big-endian) of the userdata of
// every controller action Encode emits. The rest of the userdata is:
//
//   - block actions (OpARP, OpICMP4, OpICMP4Error, OpICMP6, OpICMP6Error,
//     OpReject, OpNDNA, OpNDNS, OpTCPReset): the nested actions, encoded to
//     OpenFlow, as ovs-ofctl action text (UTF-8; "drop" when empty). The
//     controller builds the packet the block describes and sends it with
//     those actions in a packet-out.
//   - OpPutARP, OpPutND: nothing; the arguments are in registers (see
//     PutMACPort).
//   - OpPutFDB: nothing; port key in reg14, MAC in eth_src.
//   - OpSvcCheck: nothing; port key in reg14.
//   - OpPutDHCPOpts, OpDNSLookup (paused: the controller answers, sets the
//     result bit and resumes): 1 byte length + the result subfield as
//     ovs-ofctl text ("reg0[3]"); for OpPutDHCPOpts then the options as
//     code (1 byte), length (1 byte), value in DHCP wire format; code 0 is
//     offerip (the address to offer). OpPutDHCPv6Opts (paused) is the same
//     with 2-byte option codes and lengths, as in DHCPv6 packets.
//     OpPutNDRAOpts (paused) is like OpPutDHCPOpts with the option codes of
//     NDRAOpts (prefix value: length byte + 16 address bytes).
//   - OpLog: 1 byte verdict (0 allow, 1 drop, 2 reject, 3 pass), 1 byte severity
//     (0 alert, 1 warning, 2 notice, 3 info, 4 debug), then the name (UTF-8).
type Opcode uint32

const (
	OpARP           Opcode = 1
	OpPutARP        Opcode = 2
	OpICMP4         Opcode = 3
	OpICMP4Error    Opcode = 4
	OpICMP6         Opcode = 5
	OpICMP6Error    Opcode = 6
	OpReject        Opcode = 7
	OpNDNA          Opcode = 8
	OpNDNS          Opcode = 9
	OpTCPReset      Opcode = 10
	OpPutND         Opcode = 11
	OpLog           Opcode = 12
	OpPutFDB        Opcode = 13
	OpSvcCheck      Opcode = 14
	OpPutDHCPOpts   Opcode = 15
	OpDNSLookup     Opcode = 16
	OpPutDHCPv6Opts Opcode = 17
	OpPutNDRAOpts   Opcode = 18
)

var blockOpcode = map[string]Opcode{
	"arp": OpARP, "icmp4": OpICMP4, "icmp4_error": OpICMP4Error, "icmp6": OpICMP6,
	"icmp6_error": OpICMP6Error, "reject": OpReject, "nd_na": OpNDNA, "nd_ns": OpNDNS, "tcp_reset": OpTCPReset,
}

// OpcodeName returns the action name of an opcode ("arp", "put_arp", "log", ...).
func (o Opcode) String() string {
	switch o {
	case OpPutARP:
		return "put_arp"
	case OpPutND:
		return "put_nd"
	case OpLog:
		return "log"
	case OpPutFDB:
		return "put_fdb"
	case OpSvcCheck:
		return "handle_svc_check"
	case OpPutDHCPOpts:
		return "put_dhcp_opts"
	case OpPutDHCPv6Opts:
		return "put_dhcpv6_opts"
	case OpPutNDRAOpts:
		return "put_nd_ra_opts"
	case OpDNSLookup:
		return "dns_lookup"
	}
	for name, op := range blockOpcode {
		if op == o {
			return name
		}
	}
	return fmt.Sprintf("opcode(%d)", uint32(o))
}

// UserData is a decoded controller userdata (see Opcode).
type UserData struct {
	Op Opcode
	// Actions is the nested OpenFlow action text of block opcodes.
	Actions string
	// Log fields (OpLog).
	Verdict, Severity string
	Name              string
	// Result is the result subfield of OpPutDHCPOpts and OpDNSLookup.
	Result string
	// DHCPOptions are OpPutDHCPOpts's options in order.
	DHCPOptions []DHCPOption
}

// DHCPOption is one encoded DHCP option (DHCPv4 code 0 = offerip).
type DHCPOption struct {
	Code  uint16
	Value []byte
}

// ParseUserData decodes the userdata of a controller action made by Encode.
func ParseUserData(b []byte) (UserData, error) {
	if len(b) < 4 {
		return UserData{}, fmt.Errorf("controller userdata too short (%d bytes, need at least 4)", len(b))
	}
	u := UserData{Op: Opcode(binary.BigEndian.Uint32(b))}
	rest := b[4:]
	switch u.Op {
	case OpPutARP, OpPutND, OpPutFDB, OpSvcCheck:
		if len(rest) != 0 {
			return u, fmt.Errorf("%s userdata has %d unexpected bytes", u.Op, len(rest))
		}
	case OpPutDHCPOpts, OpPutDHCPv6Opts, OpPutNDRAOpts, OpDNSLookup:
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return u, fmt.Errorf("%s userdata malformed", u.Op)
		}
		u.Result, rest = string(rest[1:1+int(rest[0])]), rest[1+int(rest[0]):]
		if u.Op == OpDNSLookup {
			if len(rest) != 0 {
				return u, fmt.Errorf("%s userdata has %d unexpected bytes", u.Op, len(rest))
			}
			break
		}
		hdr := 2 // DHCPv4: 1-byte code and length
		if u.Op == OpPutDHCPv6Opts {
			hdr = 4 // DHCPv6: 2-byte code and length
		}
		for len(rest) > 0 {
			if len(rest) < hdr {
				return u, fmt.Errorf("%s userdata: truncated option", u.Op)
			}
			code, n := uint16(rest[0]), int(rest[1])
			if hdr == 4 {
				code, n = binary.BigEndian.Uint16(rest), int(binary.BigEndian.Uint16(rest[2:]))
			}
			if n > len(rest)-hdr {
				return u, fmt.Errorf("%s userdata: truncated option", u.Op)
			}
			u.DHCPOptions = append(u.DHCPOptions, DHCPOption{Code: code, Value: rest[hdr : hdr+n]})
			rest = rest[hdr+n:]
		}
	case OpLog:
		if len(rest) < 2 || int(rest[0]) >= len(verdicts) || int(rest[1]) >= len(severities) {
			return u, fmt.Errorf("log userdata malformed")
		}
		u.Verdict, u.Severity, u.Name = verdicts[rest[0]], severities[rest[1]], string(rest[2:])
	default:
		if _, ok := blockOpcodeName(u.Op); !ok {
			return u, fmt.Errorf("unknown controller opcode %d", uint32(u.Op))
		}
		u.Actions = string(rest)
	}
	return u, nil
}

func blockOpcodeName(o Opcode) (string, bool) {
	for name, op := range blockOpcode {
		if op == o {
			return name, true
		}
	}
	return "", false
}

func userData(op Opcode, payload []byte) []byte {
	b := make([]byte, 4, 4+len(payload))
	binary.BigEndian.PutUint32(b, uint32(op))
	return append(b, payload...)
}

type encoder struct {
	p      *EncodeParams
	groups []of.Group
}

// Encode translates parsed actions to OpenFlow actions (plus the groups
// they use). Errors carry the position of the action that failed.
func Encode(as Actions, p *EncodeParams) (*Encoded, error) {
	if p == nil || p.TableMap == nil {
		return nil, fmt.Errorf("action.Encode: EncodeParams.TableMap is required")
	}
	e := &encoder{p: p}
	out, err := e.list(as, nil)
	if err != nil {
		return nil, err
	}
	return &Encoded{Actions: out, Groups: e.groups}, nil
}

func (e *encoder) table(at lex.Pos, pl Pipeline, t int) (int, error) {
	of, ok := e.p.TableMap(pl, t)
	if !ok {
		return 0, lex.Errorf(at, "no OpenFlow table for %s table %d", pl, t)
	}
	return of, nil
}

func (e *encoder) nextTable(at lex.Pos) (int, error) {
	return e.table(at, e.p.Pipeline, e.p.Table+1)
}

func (e *encoder) zone(kind string) of.Subfield {
	z := e.p.Zones
	if z == (Zones{}) {
		z = DefaultZones()
	}
	// SNAT always uses the SNAT zone, on switches too: a switch commits
	// hairpinned load-balancer connections there (ct_snat_to_vip) and
	// ct_snat must find them (as OVN 23.03 encodes it).
	if kind == "snat" {
		return z.SNAT
	}
	if !e.p.Router {
		return z.CT
	}
	return z.DNAT
}

func (e *encoder) list(as Actions, out of.Actions) (of.Actions, error) {
	for _, a := range as {
		var err error
		out, err = e.action(a, out)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (e *encoder) action(a Action, out of.Actions) (of.Actions, error) {
	switch a := a.(type) {
	case *Next:
		pl, t := e.p.Pipeline, a.Table
		if !a.SamePipeline {
			pl = a.Pipeline
		}
		if t < 0 {
			t = e.p.Table + 1
		}
		ot, err := e.table(a.P, pl, t)
		if err != nil {
			return nil, err
		}
		return append(out, of.Resubmit{Table: ot}), nil
	case *Output:
		return append(out, of.Resubmit{Table: e.p.OutputTable}), nil
	case *Drop:
		return out, nil
	case *Load:
		var key bits.U128
		if a.Value.IsString {
			k, err := e.port(a.Value.Pos, a.Value.Str)
			if err != nil {
				return nil, err
			}
			key = bits.From64(uint64(k))
		}
		if a.Value.IsString {
			return append(out, of.SetField{Dst: a.Dst.Sub, Value: key}), nil
		}
		for _, pc := range a.Value.targets(a.Dst.Sub) {
			out = append(out, of.SetField{Dst: pc.dst, Value: pc.v})
		}
		return out, nil
	case *Move:
		return append(out, of.Move{Src: a.Src.Sub, Dst: a.Dst.Sub}), nil
	case *Exchange:
		return append(out, of.Push{Sub: a.A.Sub}, of.Push{Sub: a.B.Sub}, of.Pop{Sub: a.A.Sub}, of.Pop{Sub: a.B.Sub}), nil
	case *DecTTL:
		return append(out, of.DecTTL{}), nil
	case *CTNext:
		t, err := e.nextTable(a.P)
		if err != nil {
			return nil, err
		}
		return append(out, of.CT{Table: t, Zone: e.zone("dnat")}), nil
	case *CTCommit:
		exec, err := e.list(a.Nested, nil)
		if err != nil {
			return nil, err
		}
		return append(out, of.CT{Commit: true, Table: -1, Zone: e.zone("dnat"), Exec: exec}), nil
	case *CTNat:
		t, err := e.nextTable(a.P)
		if err != nil {
			return nil, err
		}
		kind := "dnat"
		if a.SNAT && a.Name == "ct_snat" {
			kind = "snat"
		}
		ct := of.CT{Table: t, Zone: e.zone(kind), NAT: &of.NAT{}}
		if a.Addr.IsValid() {
			ct.Commit = true
			ct.NAT = &of.NAT{Src: a.SNAT, Addr: a.Addr, Port: a.Port}
		}
		if a.Name == "ct_commit_nat" {
			ct.Commit = true
		}
		return append(out, ct), nil
	case *CTLB:
		return e.ctLB(a, out)
	case *CTClear:
		return append(out, of.CTClear{}), nil
	case *Nested:
		inner, err := e.list(a.Actions, nil)
		if err != nil {
			return nil, err
		}
		if a.Name == "clone" {
			return append(out, of.Clone{Actions: inner}), nil
		}
		op := blockOpcode[a.Name]
		return append(out, of.Controller{UserData: userData(op, []byte(of.ActionsString(inner))), MeterID: e.p.ControllerMeter}), nil
	case *GetMAC:
		ipReg := MACBindingIP4
		if a.ND {
			ipReg = MACBindingIP6
		}
		var saved []of.Subfield
		if a.Port.Sub != MACBindingPort {
			saved = append(saved, MACBindingPort)
		}
		if a.IP.Sub != ipReg {
			saved = append(saved, ipReg)
		}
		for _, s := range saved {
			out = append(out, of.Push{Sub: s})
		}
		if a.Port.Sub != MACBindingPort {
			out = append(out, of.Move{Src: a.Port.Sub, Dst: MACBindingPort})
		}
		if a.IP.Sub != ipReg {
			out = append(out, of.Move{Src: a.IP.Sub, Dst: ipReg})
		}
		out = append(out, of.SetField{Dst: of.Whole(of.EthDst), Value: bits.Zero}, of.Resubmit{Table: e.p.MACBindingTable})
		for i := len(saved) - 1; i >= 0; i-- {
			out = append(out, of.Pop{Sub: saved[i]})
		}
		return out, nil
	case *PutMAC:
		ipReg, op := MACBindingIP4, OpPutARP
		if a.ND {
			ipReg, op = MACBindingIP6, OpPutND
		}
		type mv struct{ src, dst of.Subfield }
		var moves []mv
		for _, m := range []mv{{a.Port.Sub, PutMACPort}, {a.IP.Sub, ipReg}, {a.MAC.Sub, PutMACMAC}} {
			if m.src != m.dst {
				moves = append(moves, m)
			}
		}
		for _, m := range moves {
			out = append(out, of.Push{Sub: m.dst})
		}
		// Pushing all sources first keeps the moves independent of each
		// other (a source may be another move's destination).
		for _, m := range moves {
			out = append(out, of.Push{Sub: m.src})
		}
		for i := len(moves) - 1; i >= 0; i-- {
			out = append(out, of.Pop{Sub: moves[i].dst})
		}
		out = append(out, of.Controller{UserData: userData(op, nil), MeterID: e.p.ControllerMeter})
		for i := len(moves) - 1; i >= 0; i-- {
			out = append(out, of.Pop{Sub: moves[i].dst})
		}
		return out, nil
	case *Call:
		return e.call(a, out)
	case *PutFDB:
		return e.putFDB(a, out), nil
	case *Select:
		return e.selectGroup(a, out)
	case *PutNDRAOpts:
		return e.putNDRAOpts(a, out), nil
	case *PutDHCPOpts:
		return e.putDHCPOpts(a, out), nil
	case *DNSLookup:
		return e.dnsLookup(a, out), nil
	case *SNATToVIP:
		t, err := e.lookupTable(a.P, "CTSNATHairpinTable", e.p.CTSNATHairpinTable)
		if err != nil {
			return nil, err
		}
		return append(out, of.Resubmit{Table: t}), nil
	case *SvcCheck:
		return e.svcCheck(a, out), nil
	case *CommitLBAff:
		return e.commitLBAff(a, out)
	case *Log:
		meter := e.p.ControllerMeter
		if a.Meter != "" && e.p.LookupMeter != nil {
			if id, ok := e.p.LookupMeter(a.Meter); ok {
				meter = id
			}
		}
		payload := append([]byte{byte(indexOf(verdicts, a.Verdict)), byte(indexOf(severities, a.Severity))}, a.Name...)
		return append(out, of.Controller{UserData: userData(OpLog, payload), MeterID: meter}), nil
	}
	return nil, fmt.Errorf("%v: cannot encode %T", a.At(), a)
}

func (e *encoder) port(at lex.Pos, name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	if e.p.LookupPort == nil {
		return 0, lex.Errorf(at, "cannot resolve port %s: no port lookup given", lex.Quote(name))
	}
	key, ok := e.p.LookupPort(e.p.Datapath, name)
	if !ok {
		return 0, lex.Errorf(at, "unknown logical port %s in datapath %s", lex.Quote(name), e.p.Datapath)
	}
	return key, nil
}

func (e *encoder) ctLB(a *CTLB, out of.Actions) (of.Actions, error) {
	t, err := e.nextTable(a.P)
	if err != nil {
		return nil, err
	}
	zone := e.zone("dnat")
	if len(a.Backends) == 0 {
		return append(out, of.CT{Table: t, Zone: zone, NAT: &of.NAT{}}), nil
	}
	if e.p.AllocGroup == nil {
		return nil, lex.Errorf(a.P, "%s with backends needs a group allocator", a.Name)
	}
	g := of.Group{Type: "select", SelectionMethod: "dp_hash"}
	if len(a.HashFields) > 0 {
		g.SelectionMethod = "hash"
		g.Fields = append([]string(nil), a.HashFields...)
	}
	var exec of.Actions
	for _, m := range a.Marks {
		exec = append(exec, of.SetField{Dst: m, Value: bits.Ones(m.Bits())})
	}
	for i, b := range a.Backends {
		ct := of.CT{Commit: true, Table: t, Zone: zone, NAT: &of.NAT{Addr: b.Addr, Port: b.Port}, Exec: exec}
		g.Buckets = append(g.Buckets, of.Bucket{ID: uint32(i), Weight: 100, Actions: of.Actions{ct}})
	}
	id, err := e.p.AllocGroup(g)
	if err != nil {
		return nil, lex.Errorf(a.P, "%s: allocating a group: %v", a.Name, err)
	}
	g.ID = id
	e.groups = append(e.groups, g)
	return append(out, of.GroupAction{ID: id}), nil
}
