// Package ofp is a small, pure OpenFlow 1.5 codec for the messages the
// chassis controller's packet-in handler (controller/pinctrl) exchanges with
// ovs-vswitchd: OFPT_HELLO, OFPT_ECHO_REQUEST/REPLY, OFPT_FEATURES_REQUEST,
// OFPT_BARRIER_REQUEST/REPLY, OFPT_ERROR, OFPT_PACKET_OUT, and the Nicira
// extensions NXT_SET_PACKET_IN_FORMAT, NXT_PACKET_IN2 and NXT_RESUME.
//
// Why our own codec rather than a library: go-openvswitch (already a
// dependency, used for flow installation) drives ovs-ofctl and cannot receive
// asynchronous messages; the Go OpenFlow libraries that can (antrea's ofnet /
// libOpenflow, faucet's, ...) are large, pull in many dependencies and still
// need local extensions for NXT_PACKET_IN2 properties and NXT_RESUME, which
// are exactly what controller() actions with userdata and pause need. The set
// we need is a dozen fixed-layout messages plus OXM TLVs, so a ~600-line codec
// with a fuzzed decoder is smaller and easier to trust than a dependency.
//
// The package does no I/O: Encode* functions return complete messages, and
// Decode parses one message from a byte slice (ReadMessage splits a stream).
// Errors name the message and byte offset; malformed input never panics.
package ofp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the OpenFlow wire version we speak (OpenFlow 1.5).
const Version = 0x06

// Message types (OpenFlow 1.5).
const (
	TypeHello           = 0
	TypeError           = 1
	TypeEchoRequest     = 2
	TypeEchoReply       = 3
	TypeExperimenter    = 4
	TypeFeaturesRequest = 5
	TypeFeaturesReply   = 6
	TypeGetConfigReq    = 7
	TypeGetConfigReply  = 8
	TypeSetConfig       = 9
	TypePacketIn        = 10
	TypePacketOut       = 13
	TypeBarrierRequest  = 20
	TypeBarrierReply    = 21
)

// NiciraID is the Nicira experimenter (vendor) id.
const NiciraID = 0x00002320

// Nicira experimenter message subtypes.
const (
	NXTSetPacketInFormat = 16
	NXTPacketIn2         = 30
	NXTResume            = 28
)

// Packet-in formats for NXT_SET_PACKET_IN_FORMAT.
const (
	NXPIFStandard = 0
	NXPIFNXT      = 1
	NXPIFNXT2     = 2 // NXT_PACKET_IN2: carries userdata and continuations
)

// NXT_PACKET_IN2 property types.
const (
	PropPacket       = 0
	PropFullLen      = 1
	PropBufferID     = 2
	PropTableID      = 3
	PropCookie       = 4
	PropReason       = 5
	PropMetadata     = 6
	PropUserdata     = 7
	PropContinuation = 8
)

// Reserved ports.
const (
	PortInPort     = 0xfffffff8
	PortTable      = 0xfffffff9
	PortController = 0xfffffffd
	PortAny        = 0xffffffff
	// NoBuffer is the buffer_id of a packet-out that carries its packet.
	NoBuffer = 0xffffffff
)

// HeaderLen is the length of the OpenFlow header.
const HeaderLen = 8

// MaxLen is the largest OpenFlow message (the header's length is 16 bits).
const MaxLen = 0xffff

// Header is the common OpenFlow header.
type Header struct {
	Version uint8
	Type    uint8
	Length  uint16
	Xid     uint32
}

func putHeader(b []byte, typ uint8, xid uint32) {
	b[0] = Version
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
}

func simple(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, HeaderLen+len(body))
	copy(b[HeaderLen:], body)
	putHeader(b, typ, xid)
	return b
}

// Hello returns an OFPT_HELLO with a version bitmap element offering only
// OpenFlow 1.5.
func Hello(xid uint32) []byte {
	// ofp_hello_elem_versionbitmap: type 1, length 8, bitmap with bit 6 set.
	return simple(TypeHello, xid, []byte{0, 1, 0, 8, 0, 0, 0, 1 << Version})
}

// EchoRequest returns an OFPT_ECHO_REQUEST carrying data.
func EchoRequest(xid uint32, data []byte) []byte { return simple(TypeEchoRequest, xid, data) }

// EchoReply returns the OFPT_ECHO_REPLY to an echo request.
func EchoReply(xid uint32, data []byte) []byte { return simple(TypeEchoReply, xid, data) }

// FeaturesRequest returns an OFPT_FEATURES_REQUEST.
func FeaturesRequest(xid uint32) []byte { return simple(TypeFeaturesRequest, xid, nil) }

// BarrierRequest returns an OFPT_BARRIER_REQUEST.
func BarrierRequest(xid uint32) []byte { return simple(TypeBarrierRequest, xid, nil) }

// SetConfig returns an OFPT_SET_CONFIG with the given flags and miss_send_len.
func SetConfig(xid uint32, flags, missSendLen uint16) []byte {
	body := make([]byte, 4)
	binary.BigEndian.PutUint16(body, flags)
	binary.BigEndian.PutUint16(body[2:], missSendLen)
	return simple(TypeSetConfig, xid, body)
}

func nicira(xid uint32, subtype uint32, body []byte) []byte {
	b := make([]byte, 16+len(body))
	binary.BigEndian.PutUint32(b[8:], NiciraID)
	binary.BigEndian.PutUint32(b[12:], subtype)
	copy(b[16:], body)
	putHeader(b, TypeExperimenter, xid)
	return b
}

// SetPacketInFormat returns an NXT_SET_PACKET_IN_FORMAT selecting format
// (NXPIFNXT2 for NXT_PACKET_IN2).
func SetPacketInFormat(xid uint32, format uint32) []byte {
	body := make([]byte, 4)
	binary.BigEndian.PutUint32(body, format)
	return nicira(xid, NXTSetPacketInFormat, body)
}

// ReadMessage reads one OpenFlow message (header included) from r.
func ReadMessage(r io.Reader) ([]byte, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < HeaderLen {
		return nil, fmt.Errorf("openflow header: length %d is shorter than the header", n)
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(r, b[HeaderLen:]); err != nil {
		return nil, fmt.Errorf("openflow message type %d: %w", h[1], err)
	}
	return b, nil
}

// ParseHeader parses the header of b and checks that b holds exactly one
// message.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("openflow message: %d bytes, shorter than the 8-byte header", len(b))
	}
	h := Header{Version: b[0], Type: b[1], Length: binary.BigEndian.Uint16(b[2:]), Xid: binary.BigEndian.Uint32(b[4:])}
	if int(h.Length) != len(b) {
		return h, fmt.Errorf("openflow message type %d: header length %d but %d bytes", h.Type, h.Length, len(b))
	}
	return h, nil
}

// Experimenter returns the experimenter id and subtype of an
// OFPT_EXPERIMENTER message.
func Experimenter(b []byte) (id, subtype uint32, err error) {
	if len(b) < 16 {
		return 0, 0, fmt.Errorf("experimenter message: %d bytes, need at least 16", len(b))
	}
	return binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:]), nil
}

// Error is a decoded OFPT_ERROR.
type Error struct {
	Type, Code uint16
	Data       []byte
}

func (e *Error) Error() string {
	return fmt.Sprintf("openflow error type %d code %d (%d bytes of data)", e.Type, e.Code, len(e.Data))
}

// DecodeError decodes an OFPT_ERROR message.
func DecodeError(b []byte) (*Error, error) {
	if len(b) < HeaderLen+4 {
		return nil, errors.New("error message: shorter than 12 bytes")
	}
	return &Error{Type: binary.BigEndian.Uint16(b[8:]), Code: binary.BigEndian.Uint16(b[10:]), Data: b[12:]}, nil
}

// TypeSetAsync is OFPT_SET_ASYNC (OpenFlow 1.4+).
const TypeSetAsync = 28

// Async config property types (OFPACPT_*).
const (
	AsyncPacketInSlave  = 0
	AsyncPacketInMaster = 1
)

// SetAsyncPacketIn returns an OFPT_SET_ASYNC enabling packet-ins with the
// reasons in mask (bit n = reason n, e.g. 1<<1 = OFPR_ACTION) for every
// role. Connections to a bridge's management socket ("service"
// connections) receive no asynchronous messages until they ask.
func SetAsyncPacketIn(xid uint32, mask uint32) []byte {
	var body []byte
	for _, typ := range []uint16{AsyncPacketInSlave, AsyncPacketInMaster} {
		body = binary.BigEndian.AppendUint16(body, typ)
		body = binary.BigEndian.AppendUint16(body, 8)
		body = binary.BigEndian.AppendUint32(body, mask)
	}
	return simple(TypeSetAsync, xid, body)
}
