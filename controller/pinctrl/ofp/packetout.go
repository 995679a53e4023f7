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
