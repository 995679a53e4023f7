package ofp

import (
	"encoding/binary"
	"fmt"
)

// Action is one binary OpenFlow action (see Output, SetField,
// ResubmitTable).
type Action []byte

// Output returns OFPAT_OUTPUT to port.
func Output(port uint32) Action {
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b, 0) // OFPAT_OUTPUT
	binary.BigEndian.PutUint16(b[2:], 16)
	binary.BigEndian.PutUint32(b[4:], port)
	binary.BigEndian.PutUint16(b[8:], 0xffff) // max_len: OFPCML_NO_BUFFER
	return b
}

// SetField returns OFPAT_SET_FIELD of f (exact value; a mask makes it a
// masked set, which OpenFlow 1.5 allows).
func SetField(f Field) Action {
	b := []byte{0, 25, 0, 0} // OFPAT_SET_FIELD, length filled below
	b = appendField(b, f)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// ResubmitTable returns NXAST_RESUBMIT_TABLE: resubmit(,table) keeping the
// packet's in_port.
func ResubmitTable(table uint8) Action {
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b, 0xffff) // OFPAT_EXPERIMENTER
	binary.BigEndian.PutUint16(b[2:], 16)
	binary.BigEndian.PutUint32(b[4:], NiciraID)
	binary.BigEndian.PutUint16(b[8:], 14)      // NXAST_RESUBMIT_TABLE
	binary.BigEndian.PutUint16(b[10:], 0xfff8) // OFPP_IN_PORT (16-bit)
	b[12] = table
	return b
}

// PacketOut returns an OFPT_PACKET_OUT of packet with the pipeline fields
// match (in_port is required by OpenFlow 1.5; metadata and registers may be
// given too) and actions.
func PacketOut(xid uint32, match []Field, actions []Action, packet []byte) ([]byte, error) {
	b := make([]byte, 16, 64+len(packet))
	binary.BigEndian.PutUint32(b[8:], NoBuffer)
	// ofp_match: type OFPMT_OXM (1), length (without padding), fields, pad.
	m := len(b)
	b = append(b, 0, 1, 0, 0)
	for _, f := range match {
		b = appendField(b, f)
	}
	binary.BigEndian.PutUint16(b[m+2:], uint16(len(b)-m))
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	a := len(b)
	for _, act := range actions {
		b = append(b, act...)
	}
	binary.BigEndian.PutUint16(b[12:], uint16(len(b)-a))
	b = append(b, packet...)
	if len(b) > MaxLen {
		return nil, fmt.Errorf("packet-out: message of %d bytes exceeds %d", len(b), MaxLen)
	}
	putHeader(b, TypePacketOut, xid)
	return b, nil
}

// CopyField returns OFPAT_COPY_FIELD (OpenFlow 1.5's form of "move"; OVS
// rejects NXAST_REG_MOVE on OpenFlow 1.5 connections with
// OFPBAC_BAD_EXP_TYPE): copy n bits from src[srcOfs] to dst[dstOfs]. Both
// fields must have 32-bit (non-experimenter) headers.
func CopyField(src, dst Field, n, srcOfs, dstOfs int) Action {
	b := make([]byte, 24)
	binary.BigEndian.PutUint16(b, 28) // OFPAT_COPY_FIELD
	binary.BigEndian.PutUint16(b[2:], 24)
	binary.BigEndian.PutUint16(b[4:], uint16(n))
	binary.BigEndian.PutUint16(b[6:], uint16(srcOfs))
	binary.BigEndian.PutUint16(b[8:], uint16(dstOfs))
	binary.BigEndian.PutUint32(b[12:], FieldHeader(src))
	binary.BigEndian.PutUint32(b[16:], FieldHeader(dst))
	return b
}

// StackPush returns NXAST_STACK_PUSH (pop false) or NXAST_STACK_POP of n
// bits of f from offset ofs.
func StackPush(f Field, n, ofs int, pop bool) Action {
	b := make([]byte, 24)
	binary.BigEndian.PutUint16(b, 0xffff)
	binary.BigEndian.PutUint16(b[2:], 24)
	binary.BigEndian.PutUint32(b[4:], NiciraID)
	sub := uint16(27) // NXAST_STACK_PUSH
	if pop {
		sub = 28
	}
	binary.BigEndian.PutUint16(b[8:], sub)
	binary.BigEndian.PutUint16(b[10:], uint16(ofs))
	binary.BigEndian.PutUint32(b[12:], FieldHeader(f))
	binary.BigEndian.PutUint16(b[16:], uint16(n))
	return b
}

// FieldHeader is the 32-bit OXM/NXM header of f (exact match, length of Value).
func FieldHeader(f Field) uint32 {
	return uint32(f.Class)<<16 | uint32(f.Field)<<9 | uint32(len(f.Value))
}
