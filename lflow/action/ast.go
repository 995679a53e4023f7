package action

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

// Action is one parsed logical action. Every concrete type below implements
// it; String returns the canonical text including the trailing ';'.
type Action interface {
	// At is the position of the action's first token in the input.
	At() lex.Pos
	String() string
	appendTo(sb *strings.Builder)
}

// Actions is a parsed action list. The empty list is the `drop;` action.
type Actions []Action

// String returns the canonical form: each action ends with ';', actions are
// separated by one space, the empty list is "drop;".
func (as Actions) String() string {
	if len(as) == 0 {
		return "drop;"
	}
	var sb strings.Builder
	as.appendTo(&sb)
	return sb.String()
}

func (as Actions) appendTo(sb *strings.Builder) {
	for i, a := range as {
		if i > 0 {
			sb.WriteByte(' ')
		}
		a.appendTo(sb)
	}
}

func str(a Action) string {
	var sb strings.Builder
	a.appendTo(&sb)
	return sb.String()
}

// Pipeline is a logical pipeline.
type Pipeline uint8

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

// Field is a reference to a logical field or a bit range of one, as written
// in an action (e.g. eth.src, reg0[0..15], ct_label.blocked). It is resolved
// against the symbol table when parsed.
type Field struct {
	Pos  lex.Pos
	Name string // the symbol name as written, without subscript
	// Ranged is true when a subscript was written; the field is then bits
	// [Lo, Hi] of the symbol (Lo == Hi for a single bit).
	Ranged bool
	Lo, Hi int

	// Resolved from the symbol table:
	Sub      of.Subfield // the OpenFlow bits this reference denotes
	IsString bool        // a port-name field (inport, outport): values are strings
	ReadOnly bool
}

// Width is the number of bits the reference covers.
func (f Field) Width() int { return f.Sub.Bits() }

// String prints "name" or "name[lo..hi]" / "name[bit]".
func (f Field) String() string {
	if !f.Ranged {
		return f.Name
	}
	if f.Lo == f.Hi {
		return f.Name + "[" + strconv.Itoa(f.Lo) + "]"
	}
	return f.Name + "[" + strconv.Itoa(f.Lo) + ".." + strconv.Itoa(f.Hi) + "]"
}

// Value is the right-hand side constant of an assignment: an integer/address
// (Format says how it was written) or, for string fields, a port name.
type Value struct {
	Pos    lex.Pos
	Int    bits.U128
	Format lex.Format
	// Masked: only the bits under Mask (one contiguous run) are assigned.
	Masked   bool
	Mask     bits.U128
	IsString bool
	Str      string
}

func (v Value) String() string {
	if v.IsString {
		return lex.Quote(v.Str)
	}
	if v.Masked {
		return lex.FormatMasked(v.Int, v.Mask, v.Format)
	}
	return lex.FormatValue(v.Int, v.Format)
}

// targets returns the OpenFlow bits a load writes and the values for them:
// dst itself, or for a masked value one piece of dst per run of 1-bits in
// the mask (OpenFlow set_field on a subfield writes one bit range).
func (v Value) targets(dst of.Subfield) []loadPiece {
	if !v.Masked {
		return []loadPiece{{dst, v.Int}}
	}
	var out []loadPiece
	m := v.Mask
	for !m.IsZero() {
		lo := m.TrailingZeros()
		n := m.Rsh(uint(lo)).Not().TrailingZeros()
		out = append(out, loadPiece{
			of.Subfield{Field: dst.Field, Ofs: dst.Ofs + lo, NBits: n},
			v.Int.Rsh(uint(lo)).And(bits.Ones(n)),
		})
		m = m.AndNot(bits.Range(lo, lo+n-1))
	}
	return out
}

type loadPiece struct {
	dst of.Subfield
	v   bits.U128
}

type pos struct{ P lex.Pos }

func (p pos) At() lex.Pos { return p.P }

// Next is `next;`, `next(N);` or `next(pipeline=P, table=N);`.
type Next struct {
	pos
	// Pipeline is the target pipeline; SamePipeline is true when none was
	// written (the flow's own pipeline).
	SamePipeline bool
	Pipeline     Pipeline
	// Table is the target logical table, or -1 for "the next table".
	Table int
}

// Output is `output;`.
type Output struct{ pos }

// Drop is `drop;` (only valid as the sole action; it parses to an empty list
// and exists for completeness of the AST in nested contexts).
type Drop struct{ pos }

// Load is `field = constant;`.
type Load struct {
	pos
	Dst   Field
	Value Value
}

// Move is `dst = src;`.
type Move struct {
	pos
	Dst, Src Field
}

// Exchange is `a <-> b;`.
type Exchange struct {
	pos
	A, B Field
}

// DecTTL is `ip.ttl--;`.
type DecTTL struct {
	pos
	Field Field
}

// CTNext is `ct_next;`.
type CTNext struct{ pos }

// CTCommit is `ct_commit;` or `ct_commit { ct_mark = ...; ct_label = ...; };`.
// Nested holds only *Load and *Move whose destinations are ct_mark/ct_label
// bits. Braces records whether the block was written (for printing).
type CTCommit struct {
	pos
	Braces bool
	Nested Actions
}

// CTNat is ct_dnat, ct_snat, ct_dnat_in_czone, ct_snat_in_czone (with or
// without an address), and ct_commit_nat.
type CTNat struct {
	pos
	Name string // "ct_dnat", "ct_snat", "ct_dnat_in_czone", "ct_snat_in_czone", "ct_commit_nat"
	SNAT bool
	// Addr is the translation target; invalid for the bare form.
	Addr netip.Addr
	Port uint16 // 0 = keep the port
}

// Backend is one load-balancer backend.
type Backend struct {
	Addr netip.Addr
	Port uint16 // 0 = keep the destination port
}

func (b Backend) String() string {
	if b.Port == 0 {
		return b.Addr.String()
	}
	if b.Addr.Is6() {
		return "[" + b.Addr.String() + "]:" + strconv.Itoa(int(b.Port))
	}
	return b.Addr.String() + ":" + strconv.Itoa(int(b.Port))
}

// CTLB is `ct_lb_mark;`, `ct_lb_mark(backends=B,...; hash_fields="f,...");`
// (and the older ct_lb spelling).
type CTLB struct {
	pos
	Name       string // "ct_lb_mark" or "ct_lb"
	Backends   []Backend
	HashFields []string
	// Flag is the optional ct_flag: "skip_snat" or "force_snat".
	Flag string
	// Marks are the conntrack bits the action sets on the connections it
	// creates: ct_mark.natted (ct_lb_mark) or ct_label.natted (ct_lb), plus
	// the flag's bit. Resolved from the symbol table when parsed.
	Marks []of.Subfield
}

// CTClear is `ct_clear;`.
type CTClear struct{ pos }

// Nested is a block action: clone, arp, icmp4, icmp4_error, icmp6,
// icmp6_error, reject, nd_na, nd_ns, tcp_reset.
type Nested struct {
	pos
	Name    string
	Actions Actions
}

// GetMAC is `get_arp(port, ip);` or `get_nd(port, ip6);`.
type GetMAC struct {
	pos
	ND   bool
	Port Field
	IP   Field
}

// PutMAC is `put_arp(port, ip, mac);` or `put_nd(port, ip6, mac);`.
type PutMAC struct {
	pos
	ND   bool
	Port Field
	IP   Field
	MAC  Field
}

// Log is `log(name="...", severity=..., verdict=..., meter="...");`. All
// options are optional.
type Log struct {
	pos
	Name     string
	Severity string // alert, warning, notice, info, debug (default info)
	Verdict  string // allow, drop, reject, pass (default allow)
	Meter    string
}

func (a *Next) appendTo(sb *strings.Builder) {
	switch {
	case !a.SamePipeline:
		sb.WriteString("next(pipeline=" + a.Pipeline.String() + ", table=" + strconv.Itoa(a.Table) + ");")
	case a.Table >= 0:
		sb.WriteString("next(" + strconv.Itoa(a.Table) + ");")
	default:
		sb.WriteString("next;")
	}
}
func (a *Output) appendTo(sb *strings.Builder)  { sb.WriteString("output;") }
func (a *Drop) appendTo(sb *strings.Builder)    { sb.WriteString("drop;") }
func (a *CTNext) appendTo(sb *strings.Builder)  { sb.WriteString("ct_next;") }
func (a *CTClear) appendTo(sb *strings.Builder) { sb.WriteString("ct_clear;") }
func (a *Load) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Dst.String() + " = " + a.Value.String() + ";")
}
func (a *Move) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Dst.String() + " = " + a.Src.String() + ";")
}
func (a *Exchange) appendTo(sb *strings.Builder) {
	sb.WriteString(a.A.String() + " <-> " + a.B.String() + ";")
}
func (a *DecTTL) appendTo(sb *strings.Builder) { sb.WriteString(a.Field.String() + "--;") }
func (a *CTCommit) appendTo(sb *strings.Builder) {
	if !a.Braces {
		sb.WriteString("ct_commit;")
		return
	}
	appendBlock(sb, "ct_commit", a.Nested)
}

func appendBlock(sb *strings.Builder, name string, as Actions) {
	sb.WriteString(name)
	if len(as) == 0 {
		sb.WriteString(" { };")
		return
	}
	sb.WriteString(" { ")
	as.appendTo(sb)
	sb.WriteString(" };")
}

func (a *CTNat) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Name)
	if a.Addr.IsValid() {
		sb.WriteString("(" + Backend{a.Addr, a.Port}.String() + ")")
	}
	sb.WriteByte(';')
}
func (a *CTLB) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Name)
	if len(a.Backends) > 0 {
		sb.WriteString("(backends=")
		for i, b := range a.Backends {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(b.String())
		}
		if len(a.HashFields) > 0 {
			sb.WriteString("; hash_fields=" + lex.Quote(strings.Join(a.HashFields, ",")))
		}
		if a.Flag != "" {
			sb.WriteString("; " + a.Flag)
		}
		sb.WriteByte(')')
	}
	sb.WriteByte(';')
}
func (a *Nested) appendTo(sb *strings.Builder) { appendBlock(sb, a.Name, a.Actions) }
func (a *GetMAC) appendTo(sb *strings.Builder) {
	name := "get_arp"
	if a.ND {
		name = "get_nd"
	}
	sb.WriteString(name + "(" + a.Port.String() + ", " + a.IP.String() + ");")
}
func (a *PutMAC) appendTo(sb *strings.Builder) {
	name := "put_arp"
	if a.ND {
		name = "put_nd"
	}
	sb.WriteString(name + "(" + a.Port.String() + ", " + a.IP.String() + ", " + a.MAC.String() + ");")
}
func (a *Log) appendTo(sb *strings.Builder) {
	var parts []string
	if a.Name != "" {
		parts = append(parts, "name="+lex.Quote(a.Name))
	}
	parts = append(parts, "severity="+a.Severity, "verdict="+a.Verdict)
	if a.Meter != "" {
		parts = append(parts, "meter="+lex.Quote(a.Meter))
	}
	sb.WriteString("log(" + strings.Join(parts, ", ") + ");")
}

func (a *Next) String() string     { return str(a) }
func (a *Output) String() string   { return str(a) }
func (a *Drop) String() string     { return str(a) }
func (a *Load) String() string     { return str(a) }
func (a *Move) String() string     { return str(a) }
func (a *Exchange) String() string { return str(a) }
func (a *DecTTL) String() string   { return str(a) }
func (a *CTNext) String() string   { return str(a) }
func (a *CTCommit) String() string { return str(a) }
func (a *CTNat) String() string    { return str(a) }
func (a *CTLB) String() string     { return str(a) }
func (a *CTClear) String() string  { return str(a) }
func (a *Nested) String() string   { return str(a) }
func (a *GetMAC) String() string   { return str(a) }
func (a *PutMAC) String() string   { return str(a) }
func (a *Log) String() string      { return str(a) }
