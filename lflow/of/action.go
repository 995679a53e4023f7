package of

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
)

// Action is one OpenFlow action. String returns ovs-ofctl action syntax.
type Action interface {
	String() string
}

// Actions is an action list; it prints comma-joined, and "drop" when empty.
type Actions []Action

func (as Actions) String() string { return ActionsString(as) }

// Special output ports.
const (
	PortInPort     uint32 = 0xfffffff8 // "in_port"
	PortLocal      uint32 = 0xfffffffe // "LOCAL"
	PortController uint32 = 0xfffffffd // "CONTROLLER"
)

// Output sends the packet to a port number (or a special port).
type Output struct {
	Port   uint32
	MaxLen int // > 0: output(port=P,max_len=N)
}

func (a Output) String() string {
	p := strconv.FormatUint(uint64(a.Port), 10)
	switch a.Port {
	case PortInPort:
		p = "in_port"
	case PortLocal:
		p = "LOCAL"
	case PortController:
		p = "CONTROLLER"
	}
	if a.MaxLen > 0 {
		return "output(port=" + p + ",max_len=" + strconv.Itoa(a.MaxLen) + ")"
	}
	return "output:" + p
}

// OutputReg outputs to the port number held in a subfield ("output:reg15[]").
type OutputReg struct{ Src Subfield }

func (a OutputReg) String() string { return "output:" + a.Src.String() }

// Resubmit searches table Table ("resubmit(,T)"). InPort, if nonzero, is the
// in_port to use (resubmit(P,T)); OVN only needs the table form.
type Resubmit struct {
	InPort uint32
	Table  int
}

func (a Resubmit) String() string {
	if a.InPort != 0 {
		p := strconv.FormatUint(uint64(a.InPort), 10)
		if a.InPort == PortInPort {
			p = "in_port"
		}
		return "resubmit(" + p + "," + strconv.Itoa(a.Table) + ")"
	}
	return "resubmit(," + strconv.Itoa(a.Table) + ")"
}

// SetField stores Value (right-aligned: bit 0 of Value goes to bit Dst.Ofs)
// into subfield Dst: "set_field:0x5->reg0" for a whole field,
// "set_field:0x50/0xf0->reg0" for reg0[4..7]. This is also how OVN's "load"
// (immediate to subfield) is expressed. ct_mark/ct_label may only be set
// inside CT.Exec (OVS rejects them elsewhere).
type SetField struct {
	Dst   Subfield
	Value bits.U128
}

func (a SetField) String() string {
	f := a.Dst.Field
	full := bits.Ones(f.Width())
	m := a.Dst.Mask().And(full)
	v := a.Value.Lsh(uint(a.Dst.Ofs)).And(m)
	var s string
	switch {
	case m == full:
		switch f.Format() {
		case FormatCTState, FormatFrag:
			s = v.Hex()
		default:
			s = FormatValue(f.Format(), v)
		}
	case f.Format() == FormatMAC:
		s = MACString(v) + "/" + MACString(m)
	case f.Format() == FormatIPv4:
		s = IPv4String(v) + "/" + IPv4String(m)
	case f.Format() == FormatIPv6:
		s = IPv6String(v) + "/" + IPv6String(m)
	default:
		s = v.Hex() + "/" + m.Hex()
	}
	return "set_field:" + s + "->" + f.String()
}

// Move copies Src to Dst (same number of bits): "move:reg0[0..15]->reg1[0..15]".
type Move struct{ Src, Dst Subfield }

func (a Move) String() string { return "move:" + a.Src.String() + "->" + a.Dst.String() }

// Push pushes a subfield on the stack ("push:reg0[]").
type Push struct{ Sub Subfield }

func (a Push) String() string { return "push:" + a.Sub.String() }

// Pop pops the stack into a subfield ("pop:reg0[]").
type Pop struct{ Sub Subfield }

func (a Pop) String() string { return "pop:" + a.Sub.String() }

// Conjunction marks a flow as clause K of N of conjunctive match ID.
type Conjunction struct {
	ID   uint32
	K, N uint8
}

func (a Conjunction) String() string {
	return "conjunction(" + strconv.FormatUint(uint64(a.ID), 10) + "," + strconv.Itoa(int(a.K)) + "/" + strconv.Itoa(int(a.N)) + ")"
}

// DecTTL decrements the IP TTL (sends to the controller when it expires).
type DecTTL struct{}

func (DecTTL) String() string { return "dec_ttl" }

// CTClear clears the conntrack state ("ct_clear").
type CTClear struct{}

func (CTClear) String() string { return "ct_clear" }

// Exit stops action processing ("exit").
type Exit struct{}

func (Exit) String() string { return "exit" }

// Drop is an explicit empty action list; a Flow with no actions prints
// "drop" anyway.
type Drop struct{}

func (Drop) String() string { return "drop" }

// NAT is the nat(...) argument of ct. Without Addr it prints the bare
// "nat" (apply the connection's existing NAT); with Addr it prints
// "nat(src=A[-AddrMax][:Port[-PortMax]][,random|,persistent|,hash])" (dst=
// unless Src).
type NAT struct {
	Src                      bool
	Addr, AddrMax            netip.Addr // AddrMax invalid: single address
	Port, PortMax            uint16     // Port 0: no port; PortMax 0: single port
	Random, Persistent, Hash bool
}

func natAddr(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

func (n NAT) String() string {
	if !n.Addr.IsValid() {
		return "nat"
	}
	var sb strings.Builder
	if n.Src {
		sb.WriteString("nat(src=")
	} else {
		sb.WriteString("nat(dst=")
	}
	sb.WriteString(natAddr(n.Addr))
	if n.AddrMax.IsValid() && n.AddrMax != n.Addr {
		sb.WriteByte('-')
		sb.WriteString(natAddr(n.AddrMax))
	}
	if n.Port != 0 {
		sb.WriteByte(':')
		sb.WriteString(strconv.Itoa(int(n.Port)))
		if n.PortMax != 0 && n.PortMax != n.Port {
			sb.WriteByte('-')
			sb.WriteString(strconv.Itoa(int(n.PortMax)))
		}
	}
	if n.Random {
		sb.WriteString(",random")
	}
	if n.Persistent {
		sb.WriteString(",persistent")
	}
	if n.Hash {
		sb.WriteString(",hash")
	}
	sb.WriteByte(')')
	return sb.String()
}

// CT sends the packet through connection tracking ("ct(...)"). The zone is
// Zone (a register subfield, e.g. reg13[0..15]) or, when Zone.Field is
// FieldNone, ZoneImm (0: default zone). Table < 0 means no recirculation. Note OVS requires Commit when Exec is non-empty
// or when NAT has an address range.
type CT struct {
	Commit  bool
	Force   bool
	Table   int // recirculation table, -1 for none
	Zone    Subfield
	ZoneImm uint16
	NAT     *NAT
	Alg     string // "ftp", "tftp" or ""
	Exec    Actions
}

func (a CT) String() string {
	var parts []string
	if a.Commit {
		parts = append(parts, "commit")
	}
	if a.Force {
		parts = append(parts, "force")
	}
	if a.Table >= 0 {
		parts = append(parts, "table="+strconv.Itoa(a.Table))
	}
	if a.Zone.Field != FieldNone {
		parts = append(parts, "zone="+a.Zone.String())
	} else if a.ZoneImm != 0 {
		parts = append(parts, "zone="+strconv.Itoa(int(a.ZoneImm)))
	}
	if a.Alg != "" {
		parts = append(parts, "alg="+a.Alg)
	}
	if a.NAT != nil {
		parts = append(parts, a.NAT.String())
	}
	if len(a.Exec) > 0 {
		parts = append(parts, "exec("+ActionsString(a.Exec)+")")
	}
	return "ct(" + strings.Join(parts, ",") + ")"
}

// Controller sends the packet to the controller
// ("controller(userdata=00.01,pause,meter_id=3)").
type Controller struct {
	MaxLen   int // 0: default
	Reason   string
	UserData []byte
	Pause    bool
	MeterID  uint32 // 0: none
}

func (a Controller) String() string {
	var parts []string
	if a.MaxLen > 0 {
		parts = append(parts, "max_len="+strconv.Itoa(a.MaxLen))
	}
	if a.Reason != "" {
		parts = append(parts, "reason="+a.Reason)
	}
	if len(a.UserData) > 0 {
		const hex = "0123456789abcdef"
		b := make([]byte, 0, len(a.UserData)*3)
		for i, c := range a.UserData {
			if i > 0 {
				b = append(b, '.')
			}
			b = append(b, hex[c>>4], hex[c&15])
		}
		parts = append(parts, "userdata="+string(b))
	}
	if a.Pause {
		parts = append(parts, "pause")
	}
	if a.MeterID != 0 {
		parts = append(parts, "meter_id="+strconv.FormatUint(uint64(a.MeterID), 10))
	}
	if len(parts) == 0 {
		return "controller"
	}
	return "controller(" + strings.Join(parts, ",") + ")"
}

// CheckPktLarger stores (packet length > Len) into a 1-bit subfield.
type CheckPktLarger struct {
	Len int
	Dst Subfield
}

func (a CheckPktLarger) String() string {
	return "check_pkt_larger(" + strconv.Itoa(a.Len) + ")->" + a.Dst.String()
}

// Clone runs Actions on a copy of the packet ("clone(...)").
type Clone struct{ Actions Actions }

func (a Clone) String() string { return "clone(" + ActionsString(a.Actions) + ")" }

// GroupAction sends the packet to group ID ("group:N").
type GroupAction struct{ ID uint32 }

func (a GroupAction) String() string { return "group:" + strconv.FormatUint(uint64(a.ID), 10) }

// Group describes an OpenFlow group as `ovs-ofctl -O OpenFlow15 add-group`
// reads it: "group_id=1,type=select,selection_method=hash,fields(ip_src,ip_dst),bucket=bucket_id=0,weight:100,actions=...".
type Group struct {
	ID              uint32
	Type            string // "select", "all", ...
	SelectionMethod string // "", "dp_hash", "hash"
	Fields          []string
	Buckets         []Bucket
}

// Bucket is one bucket of a Group.
type Bucket struct {
	ID      uint32
	Weight  int // 0: not printed
	Actions Actions
}

func (g Group) String() string {
	var sb strings.Builder
	sb.WriteString("group_id=")
	sb.WriteString(strconv.FormatUint(uint64(g.ID), 10))
	sb.WriteString(",type=")
	sb.WriteString(g.Type)
	if g.SelectionMethod != "" {
		sb.WriteString(",selection_method=")
		sb.WriteString(g.SelectionMethod)
	}
	if len(g.Fields) > 0 {
		sb.WriteString(",fields(")
		sb.WriteString(strings.Join(g.Fields, ","))
		sb.WriteString(")")
	}
	for _, b := range g.Buckets {
		sb.WriteString(",bucket=bucket_id=")
		sb.WriteString(strconv.FormatUint(uint64(b.ID), 10))
		if b.Weight > 0 {
			sb.WriteString(",weight:")
			sb.WriteString(strconv.Itoa(b.Weight))
		}
		sb.WriteString(",actions=")
		sb.WriteString(b.Actions.String())
	}
	return sb.String()
}

// PushVLAN pushes a VLAN header ("push_vlan:0x8100"); set vlan_tci after.
type PushVLAN struct{ EthType uint16 }

func (a PushVLAN) String() string {
	return "push_vlan:" + bits.From64(uint64(a.EthType)).Hex()
}

// PopVLAN removes the outer VLAN header ("pop_vlan").
type PopVLAN struct{}

func (PopVLAN) String() string { return "pop_vlan" }

// Note attaches opaque bytes to the flow ("note:01.02").
type Note struct{ Data []byte }

func (a Note) String() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(a.Data)*3)
	for i, c := range a.Data {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, hex[c>>4], hex[c&15])
	}
	return "note:" + string(b)
}

// ActionsString joins actions with commas; no actions prints "drop".
func ActionsString(as []Action) string {
	if len(as) == 0 {
		return "drop"
	}
	var sb strings.Builder
	for i, a := range as {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(a.String())
	}
	return sb.String()
}
