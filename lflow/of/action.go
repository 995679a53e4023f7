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
	isAction()
}

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

func (a Output) isAction() {}
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

func (a OutputReg) isAction()      {}
func (a OutputReg) String() string { return "output:" + a.Src.String() }

// Resubmit searches table Table ("resubmit(,T)"). InPort, if nonzero, is the
// in_port to use (resubmit(P,T)); OVN only needs the table form.
type Resubmit struct {
	InPort uint32
	Table  uint8
}

func (a Resubmit) isAction() {}
func (a Resubmit) String() string {
	if a.InPort != 0 {
		p := strconv.FormatUint(uint64(a.InPort), 10)
		if a.InPort == PortInPort {
			p = "in_port"
		}
		return "resubmit(" + p + "," + strconv.Itoa(int(a.Table)) + ")"
	}
	return "resubmit(," + strconv.Itoa(int(a.Table)) + ")"
}

// SetField writes Value into the bits of Field selected by Mask
// ("set_field:0x5/0xffff->reg0"); a zero Mask means the whole field. This is
// also how OVN's "load" (immediate to subfield) is expressed.
type SetField struct {
	Field       Field
	Value, Mask bits.U128
}

func (a SetField) isAction() {}
func (a SetField) String() string {
	full := bits.Ones(a.Field.Width())
	m := a.Mask
	if m.IsZero() {
		m = full
	}
	v := a.Value.And(m)
	var s string
	switch {
	case m == full:
		switch a.Field.Format() {
		case FormatCTState, FormatFrag:
			s = v.Hex()
		default:
			s = FormatValue(a.Field.Format(), v)
		}
	case a.Field.Format() == FormatMAC:
		s = MACString(v) + "/" + MACString(m)
	case a.Field.Format() == FormatIPv4:
		s = IPv4String(v) + "/" + IPv4String(m)
	case a.Field.Format() == FormatIPv6:
		s = IPv6String(v) + "/" + IPv6String(m)
	default:
		s = v.Hex() + "/" + m.Hex()
	}
	return "set_field:" + s + "->" + a.Field.String()
}

// LoadSub returns the SetField that stores the low bits of v into subfield s.
func LoadSub(s Subfield, v bits.U128) SetField {
	return SetField{Field: s.Field, Value: v.Lsh(uint(s.Ofs)).And(s.Mask()), Mask: s.Mask()}
}

// Move copies Src to Dst (same number of bits): "move:reg0[0..15]->reg1[0..15]".
type Move struct{ Src, Dst Subfield }

func (a Move) isAction()      {}
func (a Move) String() string { return "move:" + a.Src.String() + "->" + a.Dst.String() }

// Push pushes a subfield on the stack ("push:reg0[]").
type Push struct{ Src Subfield }

func (a Push) isAction()      {}
func (a Push) String() string { return "push:" + a.Src.String() }

// Pop pops the stack into a subfield ("pop:reg0[]").
type Pop struct{ Dst Subfield }

func (a Pop) isAction()      {}
func (a Pop) String() string { return "pop:" + a.Dst.String() }

// Conjunction marks a flow as clause K of N of conjunctive match ID.
type Conjunction struct {
	ID   uint32
	K, N uint8
}

func (a Conjunction) isAction() {}
func (a Conjunction) String() string {
	return "conjunction(" + strconv.FormatUint(uint64(a.ID), 10) + "," + strconv.Itoa(int(a.K)) + "/" + strconv.Itoa(int(a.N)) + ")"
}

// DecTTL decrements the IP TTL (sends to the controller when it expires).
type DecTTL struct{}

func (DecTTL) isAction()      {}
func (DecTTL) String() string { return "dec_ttl" }

// CTClear clears the conntrack state ("ct_clear").
type CTClear struct{}

func (CTClear) isAction()      {}
func (CTClear) String() string { return "ct_clear" }

// Exit stops action processing ("exit").
type Exit struct{}

func (Exit) isAction()      {}
func (Exit) String() string { return "exit" }

// Drop is an explicit empty action list; a Flow with no actions prints
// "drop" anyway.
type Drop struct{}

func (Drop) isAction()      {}
func (Drop) String() string { return "drop" }

// NAT is the nat(...) argument of ct. Exactly as OVS: without Src/Dst it
// only applies the connection's existing NAT ("nat").
type NAT struct {
	Src, Dst                 bool       // nat(src=...) / nat(dst=...)
	MinAddr, MaxAddr         netip.Addr // MaxAddr may be invalid (single address)
	MinPort, MaxPort         uint16     // 0: no port range
	Random, Persistent, Hash bool
}

func natAddr(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

func (n NAT) String() string {
	if !n.Src && !n.Dst {
		return "nat"
	}
	var sb strings.Builder
	sb.WriteString("nat(")
	if n.Src {
		sb.WriteString("src")
	} else {
		sb.WriteString("dst")
	}
	if n.MinAddr.IsValid() {
		sb.WriteByte('=')
		sb.WriteString(natAddr(n.MinAddr))
		if n.MaxAddr.IsValid() && n.MaxAddr != n.MinAddr {
			sb.WriteByte('-')
			sb.WriteString(natAddr(n.MaxAddr))
		}
		if n.MinPort != 0 {
			sb.WriteByte(':')
			sb.WriteString(strconv.Itoa(int(n.MinPort)))
			if n.MaxPort != 0 && n.MaxPort != n.MinPort {
				sb.WriteByte('-')
				sb.WriteString(strconv.Itoa(int(n.MaxPort)))
			}
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
// either ZoneSrc (a register subfield, e.g. reg13[0..15]) or ZoneImm. Table
// < 0 means no recirculation. Note OVS requires Commit when Exec is non-empty
// or when NAT has an address range.
type CT struct {
	Commit  bool
	Force   bool
	Table   int // recirculation table, -1 for none
	ZoneSrc *Subfield
	ZoneImm uint16
	NAT     *NAT
	Alg     string // "ftp", "tftp" or ""
	Exec    []Action
}

func (a CT) isAction() {}
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
	if a.ZoneSrc != nil {
		parts = append(parts, "zone="+a.ZoneSrc.String())
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

func (a Controller) isAction() {}
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

func (a CheckPktLarger) isAction() {}
func (a CheckPktLarger) String() string {
	return "check_pkt_larger(" + strconv.Itoa(a.Len) + ")->" + a.Dst.String()
}

// Clone runs Actions on a copy of the packet ("clone(...)").
type Clone struct{ Actions []Action }

func (a Clone) isAction()      {}
func (a Clone) String() string { return "clone(" + ActionsString(a.Actions) + ")" }

// Group sends the packet to group ID ("group:N").
type Group struct{ ID uint32 }

func (a Group) isAction()      {}
func (a Group) String() string { return "group:" + strconv.FormatUint(uint64(a.ID), 10) }

// PushVLAN pushes a VLAN header ("push_vlan:0x8100"); set vlan_tci after.
type PushVLAN struct{ EthType uint16 }

func (a PushVLAN) isAction() {}
func (a PushVLAN) String() string {
	return "push_vlan:" + bits.From64(uint64(a.EthType)).Hex()
}

// PopVLAN removes the outer VLAN header ("pop_vlan").
type PopVLAN struct{}

func (PopVLAN) isAction()      {}
func (PopVLAN) String() string { return "pop_vlan" }

// Note attaches opaque bytes to the flow ("note:01.02").
type Note struct{ Data []byte }

func (a Note) isAction() {}
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
