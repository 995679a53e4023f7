package of

import (
	"sort"
	"strings"

	"github.com/govn/govn/lflow/bits"
)

// MatchField is one field constraint: the packet's field ANDed with Mask must
// equal Value (Value has no bits outside Mask; Mask is never zero).
type MatchField struct {
	Field       Field
	Value, Mask bits.U128
}

// Match is a conjunction of field constraints, at most one per field, kept in
// Field order. xreg/xxreg constraints are stored as their 32-bit registers, so
// overlapping register views can never contradict silently. The zero Match
// matches every packet.
type Match struct {
	fields []MatchField
}

// Fields returns the constraints in Field order (do not modify).
func (m *Match) Fields() []MatchField { return m.fields }

// Len returns the number of constrained fields.
func (m *Match) Len() int { return len(m.fields) }

// Clone returns an independent copy of m.
func (m Match) Clone() Match {
	if m.fields == nil {
		return Match{}
	}
	c := make([]MatchField, len(m.fields), len(m.fields)+2)
	copy(c, m.fields)
	return Match{fields: c}
}

// Get returns the constraint on f, if any.
func (m *Match) Get(f Field) (v, mask bits.U128, ok bool) {
	for i := range m.fields {
		if m.fields[i].Field == f {
			return m.fields[i].Value, m.fields[i].Mask, true
		}
	}
	return bits.Zero, bits.Zero, false
}

// Set adds the constraint "f & mask == v & mask", intersecting it with any
// existing constraint on f. It returns false (leaving m in an unspecified
// state that must not be used) if the result can match no packet.
// Non-maskable fields accept only a full mask; Set returns false otherwise is
// never the case: callers must check Maskable themselves (the expression
// compiler only produces full masks on non-maskable fields).
func (m *Match) Set(f Field, v, mask bits.U128) bool {
	if f == FieldNone || f >= numFields {
		return false
	}
	mask = mask.And(bits.Ones(f.Width()))
	if mask.IsZero() {
		return true
	}
	var buf [4]regPart
	if parts := regParts(f, &buf); parts != nil {
		for _, rp := range parts {
			pm := mask.Rsh(rp.shift).And(bits.Ones(32))
			if pm.IsZero() {
				continue
			}
			if !m.set1(rp.reg, v.Rsh(rp.shift), pm) {
				return false
			}
		}
		return true
	}
	if !m.set1(f, v, mask) {
		return false
	}
	if f == IPFrag {
		x, mk, _ := m.Get(IPFrag)
		if _, ok := fragString(x, mk); !ok {
			return false
		}
	}
	return true
}

func (m *Match) set1(f Field, v, mask bits.U128) bool {
	v = v.And(mask)
	i := 0
	for i < len(m.fields) && m.fields[i].Field < f {
		i++
	}
	if i < len(m.fields) && m.fields[i].Field == f {
		e := &m.fields[i]
		common := e.Mask.And(mask)
		if e.Value.And(common) != v.And(common) {
			return false
		}
		e.Mask = e.Mask.Or(mask)
		e.Value = e.Value.Or(v)
		return true
	}
	if m.fields == nil {
		m.fields = make([]MatchField, 0, 6)
	}
	m.fields = append(m.fields, MatchField{})
	copy(m.fields[i+1:], m.fields[i:])
	m.fields[i] = MatchField{Field: f, Value: v, Mask: mask}
	return true
}

// Equal reports whether m and o are the same constraints.
func (m *Match) Equal(o *Match) bool {
	if len(m.fields) != len(o.fields) {
		return false
	}
	for i := range m.fields {
		if m.fields[i] != o.fields[i] {
			return false
		}
	}
	return true
}

// Matches reports whether packet p satisfies m.
func (m *Match) Matches(p *Packet) bool {
	for i := range m.fields {
		e := &m.fields[i]
		if p.Get(e.Field).And(e.Mask) != e.Value {
			return false
		}
	}
	return true
}

// Less orders matches by their fields (for deterministic output).
func (m *Match) Less(o *Match) bool {
	n := len(m.fields)
	if len(o.fields) < n {
		n = len(o.fields)
	}
	for i := 0; i < n; i++ {
		a, b := &m.fields[i], &o.fields[i]
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		if c := a.Mask.Cmp(b.Mask); c != 0 {
			return c > 0
		}
		if c := a.Value.Cmp(b.Value); c != 0 {
			return c < 0
		}
	}
	return len(m.fields) < len(o.fields)
}

// SortMatches sorts ms with Less.
func SortMatches(ms []Match) { sort.Slice(ms, func(i, j int) bool { return ms[i].Less(&ms[j]) }) }

// shorthand returns the ovs-ofctl protocol keyword implied by the exact
// eth_type (and ip_proto) constraints, and whether ip_proto is consumed.
func (m *Match) shorthand() (kw string, usesProto bool) {
	et, etm, ok := m.Get(EthType)
	if !ok || etm != bits.Ones(16) {
		return "", false
	}
	proto, pm, pok := m.Get(IPProto)
	exactProto := pok && pm == bits.Ones(8)
	switch et.Lo {
	case 0x0800:
		if exactProto {
			switch proto.Lo {
			case 6:
				return "tcp", true
			case 17:
				return "udp", true
			case 132:
				return "sctp", true
			case 1:
				return "icmp", true
			}
		}
		return "ip", false
	case 0x86dd:
		if exactProto {
			switch proto.Lo {
			case 6:
				return "tcp6", true
			case 17:
				return "udp6", true
			case 132:
				return "sctp6", true
			case 58:
				return "icmp6", true
			}
		}
		return "ipv6", false
	case 0x0806:
		return "arp", false
	case 0x8035:
		return "rarp", false
	}
	return "", false
}

// String prints m in ovs-ofctl match syntax, e.g.
// "tcp,reg15=0x3,metadata=0x1,ip_src=10.0.0.0/8,tcp_dst=80". The empty match
// prints as "".
func (m *Match) String() string {
	var sb strings.Builder
	m.AppendTo(&sb)
	return sb.String()
}

// AppendTo writes String() to sb.
func (m *Match) AppendTo(sb *strings.Builder) {
	kw, usesProto := m.shorthand()
	first := true
	if kw != "" {
		sb.WriteString(kw)
		first = false
	}
	for i := range m.fields {
		e := &m.fields[i]
		if kw != "" && (e.Field == EthType || (usesProto && e.Field == IPProto)) {
			continue
		}
		if !first {
			sb.WriteByte(',')
		}
		first = false
		sb.WriteString(e.Field.String())
		sb.WriteByte('=')
		sb.WriteString(FormatMasked(e.Field, e.Value, e.Mask))
	}
}
