package ofp

import (
	"encoding/binary"
	"fmt"
)

// PacketIn is a decoded NXT_PACKET_IN2.
type PacketIn struct {
	Packet   []byte
	FullLen  uint32
	BufferID uint32
	TableID  uint8
	Cookie   uint64
	Reason   uint8
	// Metadata are the pipeline fields (in_port, metadata, registers, ...)
	// at the time of the controller action.
	Metadata []Field
	// Userdata is the controller action's userdata.
	Userdata []byte
	// Continuation is set when the action had "pause"; send it back with
	// Resume to continue the pipeline.
	Continuation []byte

	rawMetadata []byte
}

// Reg returns register n (0..15) from the metadata, and whether it was
// present (OVS omits registers that are zero, so absent means 0).
func (p *PacketIn) Reg(n int) (uint32, bool) {
	for _, f := range p.Metadata {
		switch {
		case f.Class == ClassNXM1 && int(f.Field) == n && len(f.Value) == 4 && f.Mask == nil:
			return binary.BigEndian.Uint32(f.Value), true
		case f.Class == ClassPacketRegs && int(f.Field) == n/2 && len(f.Value) == 8:
			// OVS 3.1 sends registers as OXM_OF_PKT_REG<N/2> (64 bits,
			// reg(2N) in the high half), masked to the half that is set.
			off := 4 * (n % 2)
			v := binary.BigEndian.Uint32(f.Value[off:])
			if f.Mask != nil {
				m := binary.BigEndian.Uint32(f.Mask[off:])
				if m == 0 {
					continue
				}
				v &= m
			}
			return v, true
		}
	}
	return 0, false
}

// MetadataField returns OXM_OF_METADATA (the logical datapath key).
func (p *PacketIn) MetadataField() (uint64, bool) {
	for _, f := range p.Metadata {
		if f.Class == ClassOpenFlow && f.Field == FieldMetadata && len(f.Value) == 8 && f.Mask == nil {
			return binary.BigEndian.Uint64(f.Value), true
		}
	}
	return 0, false
}

// InPort returns OXM_OF_IN_PORT.
func (p *PacketIn) InPort() (uint32, bool) {
	for _, f := range p.Metadata {
		if f.Class == ClassOpenFlow && f.Field == FieldInPort && len(f.Value) == 4 && f.Mask == nil {
			return binary.BigEndian.Uint32(f.Value), true
		}
	}
	return 0, false
}

// DecodePacketIn2 decodes an NXT_PACKET_IN2 message (header included).
func DecodePacketIn2(b []byte) (*PacketIn, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Type != TypeExperimenter {
		return nil, fmt.Errorf("packet-in2: message type %d is not experimenter", h.Type)
	}
	id, sub, err := Experimenter(b)
	if err != nil {
		return nil, err
	}
	if id != NiciraID || sub != NXTPacketIn2 {
		return nil, fmt.Errorf("packet-in2: experimenter %#x subtype %d is not NXT_PACKET_IN2", id, sub)
	}
	p := &PacketIn{BufferID: NoBuffer}
	err = eachProp(b, 16, func(off int, typ uint16, v []byte) error {
		switch typ {
		case PropPacket:
			p.Packet = v
		case PropFullLen:
			return u32Prop(off, v, &p.FullLen)
		case PropBufferID:
			return u32Prop(off, v, &p.BufferID)
		case PropTableID:
			return u8Prop(off, v, &p.TableID)
		case PropReason:
			return u8Prop(off, v, &p.Reason)
		case PropCookie:
			// A 64-bit property is padded so its value is 8-byte aligned.
			if len(v) == 12 {
				v = v[4:]
			}
			if len(v) != 8 {
				return fmt.Errorf("packet-in2 cookie property at offset %d: length %d, want 8", off, len(v))
			}
			p.Cookie = binary.BigEndian.Uint64(v)
		case PropMetadata:
			fs, err := DecodeFields(v)
			if err != nil {
				return fmt.Errorf("packet-in2 metadata property at offset %d: %w", off, err)
			}
			p.Metadata, p.rawMetadata = fs, v
		case PropUserdata:
			p.Userdata = v
		case PropContinuation:
			p.Continuation = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.Packet == nil {
		return nil, fmt.Errorf("packet-in2: no packet property")
	}
	if p.FullLen == 0 {
		p.FullLen = uint32(len(p.Packet))
	}
	return p, nil
}

func u32Prop(off int, v []byte, out *uint32) error {
	if len(v) != 4 {
		return fmt.Errorf("packet-in2 property at offset %d: length %d, want 4", off, len(v))
	}
	*out = binary.BigEndian.Uint32(v)
	return nil
}

func u8Prop(off int, v []byte, out *uint8) error {
	if len(v) != 1 {
		return fmt.Errorf("packet-in2 property at offset %d: length %d, want 1", off, len(v))
	}
	*out = v[0]
	return nil
}

// eachProp walks ofp_prop TLVs (type, length including the 4-byte header,
// padded to a multiple of 8) from offset start to the end of b.
func eachProp(b []byte, start int, fn func(off int, typ uint16, v []byte) error) error {
	for off := start; off < len(b); {
		if len(b)-off < 4 {
			return fmt.Errorf("property at offset %d: %d bytes left, need a 4-byte header", off, len(b)-off)
		}
		typ, n := binary.BigEndian.Uint16(b[off:]), int(binary.BigEndian.Uint16(b[off+2:]))
		if n < 4 || n > len(b)-off {
			return fmt.Errorf("property type %d at offset %d: bad length %d (%d bytes left)", typ, off, n, len(b)-off)
		}
		if err := fn(off, typ, b[off+4:off+n]); err != nil {
			return err
		}
		off += (n + 7) / 8 * 8
	}
	return nil
}

func appendProp(b []byte, typ uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(v)))
	b = append(b, v...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// Resume returns the NXT_RESUME that continues a paused packet-in, with
// packet (the original or a modified one) as the packet and the packet-in's
// metadata.
func Resume(xid uint32, p *PacketIn, packet []byte) ([]byte, error) {
	return ResumeWith(xid, p, packet, nil)
}

// ResumeWith is Resume with the pipeline fields replaced by metadata (for
// example with a result register bit set, see SetRegBit); nil keeps the
// packet-in's metadata.
func ResumeWith(xid uint32, p *PacketIn, packet []byte, metadata []Field) ([]byte, error) {
	if p.Continuation == nil {
		return nil, fmt.Errorf("resume: packet-in has no continuation (action was not paused)")
	}
	var body []byte
	body = appendProp(body, PropPacket, packet)
	if metadata != nil {
		var md []byte
		for _, f := range metadata {
			md = appendField(md, f)
		}
		body = appendProp(body, PropMetadata, md)
	} else if p.rawMetadata != nil {
		body = appendProp(body, PropMetadata, p.rawMetadata)
	}
	body = appendProp(body, PropContinuation, p.Continuation)
	m := nicira(xid, NXTResume, body)
	if len(m) > MaxLen {
		return nil, fmt.Errorf("resume: message of %d bytes exceeds %d", len(m), MaxLen)
	}
	return m, nil
}

// SetRegBit returns a copy of the packet-in's metadata with bit `bit` of
// register n (0..15) set to v, keeping the form OVS used (OXM_OF_PKT_REG
// halves or NXM_NX_REG); a register OVS did not report (zero) is added.
func (p *PacketIn) SetRegBit(n, bit int, v bool) ([]Field, error) {
	if n < 0 || n > 15 || bit < 0 || bit > 31 {
		return nil, fmt.Errorf("set reg%d[%d]: register or bit out of range", n, bit)
	}
	out := make([]Field, 0, len(p.Metadata)+1)
	done := false
	for _, f := range p.Metadata {
		f.Value = append([]byte(nil), f.Value...)
		if f.Mask != nil {
			f.Mask = append([]byte(nil), f.Mask...)
		}
		switch {
		case f.Class == ClassNXM1 && int(f.Field) == n && len(f.Value) == 4 && f.Mask == nil:
			setBit(f.Value, bit, v)
			done = true
		case f.Class == ClassPacketRegs && int(f.Field) == n/2 && len(f.Value) == 8:
			half := f.Value[4*(n%2) : 4*(n%2)+4]
			if f.Mask != nil {
				m := f.Mask[4*(n%2) : 4*(n%2)+4]
				for i := range half {
					half[i] &= m[i]
					m[i] = 0xff
				}
			}
			setBit(half, bit, v)
			done = true
		}
		out = append(out, f)
	}
	if !done {
		r := Reg(n, 0)
		setBit(r.Value, bit, v)
		out = append(out, r)
	}
	return out, nil
}

func setBit(b []byte, bit int, v bool) {
	i, m := len(b)-1-bit/8, byte(1)<<(bit%8)
	if v {
		b[i] |= m
	} else {
		b[i] &^= m
	}
}
