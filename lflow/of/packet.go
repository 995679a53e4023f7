package of

import (
	"strings"

	"github.com/govn/govn/lflow/bits"
)

// Packet is the packet model: the value of every OpenFlow field, i.e. the
// packet headers plus the pipeline metadata (registers, metadata, ct_*).
// Logical fields (symtab) read and write it through their OpenFlow field and
// bit range. xreg/xxreg are views of reg0..reg15 (see the Field constants).
// The zero Packet has every field zero. Packet is a value: copying it copies
// the packet.
type Packet struct {
	v [numFields]bits.U128
}

// getRaw returns the value of f, assembling xreg/xxreg from their registers.
func (p *Packet) getRaw(f Field) bits.U128 {
	if f >= numFields {
		return bits.Zero
	}
	var buf [4]regPart
	if parts := regParts(f, &buf); parts != nil {
		var v bits.U128
		for _, rp := range parts {
			v = v.Or(p.v[rp.reg].Lsh(rp.shift))
		}
		return v
	}
	return p.v[f]
}

// Get returns the value of field f.
func (p *Packet) Get(f Field) bits.U128 { return p.getRaw(f) }

// Set sets field f to v (bits beyond f's width are dropped).
func (p *Packet) Set(f Field, v bits.U128) { p.SetMasked(f, v, bits.Ones(f.Width())) }

// SetMasked sets the bits of f selected by mask to the bits of v.
func (p *Packet) SetMasked(f Field, v, mask bits.U128) {
	if f == FieldNone || f >= numFields {
		return
	}
	mask = mask.And(bits.Ones(f.Width()))
	var buf [4]regPart
	if parts := regParts(f, &buf); parts != nil {
		for _, rp := range parts {
			m := mask.Rsh(rp.shift).And(bits.Ones(32))
			x := v.Rsh(rp.shift).And(m)
			p.v[rp.reg] = p.v[rp.reg].AndNot(m).Or(x)
		}
		return
	}
	p.v[f] = p.v[f].AndNot(mask).Or(v.And(mask))
}

// GetSub returns the bits of s, shifted down to bit 0.
func (p *Packet) GetSub(s Subfield) bits.U128 {
	return p.Get(s.Field).Rsh(uint(s.Ofs)).And(bits.Ones(s.Bits()))
}

// SetSub stores the low bits of v into s.
func (p *Packet) SetSub(s Subfield, v bits.U128) {
	p.SetMasked(s.Field, v.Lsh(uint(s.Ofs)), s.Mask())
}

// String lists the nonzero fields in match syntax (for test failures and
// trace output), e.g. "reg14=0x1,eth_type=0x800,ip_src=10.0.0.1".
func (p *Packet) String() string {
	var sb strings.Builder
	for f := Field(1); f < numFields; f++ {
		if (f >= XReg0 && f <= XXReg3) || p.v[f].IsZero() {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(f.String())
		sb.WriteByte('=')
		switch f.Format() {
		case FormatCTState, FormatFrag:
			sb.WriteString(p.v[f].Hex())
		default:
			sb.WriteString(FormatValue(f.Format(), p.v[f]))
		}
	}
	return sb.String()
}
