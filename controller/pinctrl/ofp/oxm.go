package ofp

import (
	"encoding/binary"
	"fmt"
)

// OXM classes.
const (
	ClassNXM0         = 0x0000
	ClassNXM1         = 0x0001
	ClassOpenFlow     = 0x8000
	ClassPacketRegs   = 0x8001
	ClassExperimenter = 0xffff
)

// OXM_OF_* fields of ClassOpenFlow used here.
const (
	FieldInPort   = 0
	FieldMetadata = 2
)

// Field is one OXM/NXM TLV: a match field (or a set-field value).
type Field struct {
	Class uint16
	Field uint8
	// Experimenter is the experimenter id of ClassExperimenter fields.
	Experimenter uint32
	Value        []byte
	// Mask is nil for an exact match.
	Mask []byte
}

func (f Field) String() string {
	if f.Mask != nil {
		return fmt.Sprintf("oxm(%#04x:%d)=%x/%x", f.Class, f.Field, f.Value, f.Mask)
	}
	return fmt.Sprintf("oxm(%#04x:%d)=%x", f.Class, f.Field, f.Value)
}

// Reg returns NXM_NX_REGn = v.
func Reg(n int, v uint32) Field {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return Field{Class: ClassNXM1, Field: uint8(n), Value: b}
}

// Metadata returns OXM_OF_METADATA = v.
func Metadata(v uint64) Field {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return Field{Class: ClassOpenFlow, Field: FieldMetadata, Value: b}
}

// InPort returns OXM_OF_IN_PORT = port.
func InPort(port uint32) Field {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, port)
	return Field{Class: ClassOpenFlow, Field: FieldInPort, Value: b}
}

// appendField appends the TLV encoding of f.
func appendField(b []byte, f Field) []byte {
	n := len(f.Value) + len(f.Mask)
	if f.Class == ClassExperimenter {
		n += 4
	}
	hdr := uint32(f.Class)<<16 | uint32(f.Field)<<9 | uint32(n)
	if f.Mask != nil {
		hdr |= 1 << 8
	}
	b = binary.BigEndian.AppendUint32(b, hdr)
	if f.Class == ClassExperimenter {
		b = binary.BigEndian.AppendUint32(b, f.Experimenter)
	}
	b = append(b, f.Value...)
	return append(b, f.Mask...)
}

// DecodeFields decodes a sequence of OXM/NXM TLVs (no padding between
// them). Errors give the byte offset of the bad TLV.
func DecodeFields(b []byte) ([]Field, error) {
	var fs []Field
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return fs, fmt.Errorf("oxm at offset %d: %d bytes left, need a 4-byte header", off, len(b)-off)
		}
		hdr := binary.BigEndian.Uint32(b[off:])
		n := int(hdr & 0xff)
		f := Field{Class: uint16(hdr >> 16), Field: uint8(hdr >> 9 & 0x7f)}
		p := b[off+4:]
		if n > len(p) {
			return fs, fmt.Errorf("oxm at offset %d: payload length %d exceeds the %d bytes left", off, n, len(p))
		}
		p = p[:n]
		if f.Class == ClassExperimenter {
			if len(p) < 4 {
				return fs, fmt.Errorf("oxm at offset %d: experimenter field shorter than its 4-byte id", off)
			}
			f.Experimenter, p = binary.BigEndian.Uint32(p), p[4:]
		}
		if hdr&(1<<8) != 0 {
			if len(p)%2 != 0 || len(p) == 0 {
				return fs, fmt.Errorf("oxm at offset %d: masked field has odd length %d", off, len(p))
			}
			f.Value, f.Mask = p[:len(p)/2], p[len(p)/2:]
		} else {
			f.Value = p
		}
		fs = append(fs, f)
		off += 4 + n
	}
	return fs, nil
}
