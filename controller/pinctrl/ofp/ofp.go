// Package ofp is a small, pure OpenFlow 1.5 codec for the messages the
// chassis controller exchanges with ovs-vswitchd. For the packet-in handler
// (controller/pinctrl): OFPT_HELLO, OFPT_ECHO_REQUEST/REPLY,
// OFPT_FEATURES_REQUEST, OFPT_BARRIER_REQUEST/REPLY, OFPT_ERROR,
// OFPT_PACKET_OUT, and the Nicira extensions NXT_SET_PACKET_IN_FORMAT,
// NXT_PACKET_IN2 and NXT_RESUME. For the flow installer (controller/ovs,
// flowmod.go): OFPT_FLOW_MOD and OFPT_GROUP_MOD built from lflow/of's typed
// matches, actions and groups (every action and field lflow/of defines),
// OFPT_BUNDLE_CONTROL / OFPT_BUNDLE_ADD_MESSAGE, and the aggregate flow
// statistics request and reply.
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

// SetAsyncNone returns an OFPT_SET_ASYNC that turns off every asynchronous
// message (packet-in, port status, flow removed, role status, table status,
// request forward) for every role, for a connection that only sends
// requests.
func SetAsyncNone(xid uint32) []byte {
	var body []byte
	for typ := uint16(0); typ <= 11; typ++ {
		body = binary.BigEndian.AppendUint16(body, typ)
		body = binary.BigEndian.AppendUint16(body, 8)
		body = binary.BigEndian.AppendUint32(body, 0)
	}
	return simple(TypeSetAsync, xid, body)
}

var errorTypes = map[uint16]struct {
	name  string
	codes []string
}{
	0: {"OFPET_HELLO_FAILED", []string{"OFPHFC_INCOMPATIBLE", "OFPHFC_EPERM"}},
	1: {"OFPET_BAD_REQUEST", []string{"OFPBRC_BAD_VERSION", "OFPBRC_BAD_TYPE", "OFPBRC_BAD_MULTIPART",
		"OFPBRC_BAD_EXPERIMENTER", "OFPBRC_BAD_EXP_TYPE", "OFPBRC_EPERM", "OFPBRC_BAD_LEN", "OFPBRC_BUFFER_EMPTY",
		"OFPBRC_BUFFER_UNKNOWN", "OFPBRC_BAD_TABLE_ID", "OFPBRC_IS_SLAVE", "OFPBRC_BAD_PORT", "OFPBRC_BAD_PACKET",
		"OFPBRC_MULTIPART_BUFFER_OVERFLOW"}},
	2: {"OFPET_BAD_ACTION", []string{"OFPBAC_BAD_TYPE", "OFPBAC_BAD_LEN", "OFPBAC_BAD_EXPERIMENTER",
		"OFPBAC_BAD_EXP_TYPE", "OFPBAC_BAD_OUT_PORT", "OFPBAC_BAD_ARGUMENT", "OFPBAC_EPERM", "OFPBAC_TOO_MANY",
		"OFPBAC_BAD_QUEUE", "OFPBAC_BAD_OUT_GROUP", "OFPBAC_MATCH_INCONSISTENT", "OFPBAC_UNSUPPORTED_ORDER",
		"OFPBAC_BAD_TAG", "OFPBAC_BAD_SET_TYPE", "OFPBAC_BAD_SET_LEN", "OFPBAC_BAD_SET_ARGUMENT"}},
	3: {"OFPET_BAD_INSTRUCTION", nil},
	4: {"OFPET_BAD_MATCH", []string{"OFPBMC_BAD_TYPE", "OFPBMC_BAD_LEN", "OFPBMC_BAD_TAG",
		"OFPBMC_BAD_DL_ADDR_MASK", "OFPBMC_BAD_NW_ADDR_MASK", "OFPBMC_BAD_WILDCARDS", "OFPBMC_BAD_FIELD",
		"OFPBMC_BAD_VALUE", "OFPBMC_BAD_MASK", "OFPBMC_BAD_PREREQ", "OFPBMC_DUP_FIELD", "OFPBMC_EPERM"}},
	5: {"OFPET_FLOW_MOD_FAILED", []string{"OFPFMFC_UNKNOWN", "OFPFMFC_TABLE_FULL", "OFPFMFC_BAD_TABLE_ID",
		"OFPFMFC_OVERLAP", "OFPFMFC_EPERM", "OFPFMFC_BAD_TIMEOUT", "OFPFMFC_BAD_COMMAND", "OFPFMFC_BAD_FLAGS"}},
	6: {"OFPET_GROUP_MOD_FAILED", []string{"OFPGMFC_GROUP_EXISTS", "OFPGMFC_INVALID_GROUP",
		"OFPGMFC_WEIGHT_UNSUPPORTED", "OFPGMFC_OUT_OF_GROUPS", "OFPGMFC_OUT_OF_BUCKETS",
		"OFPGMFC_CHAINING_UNSUPPORTED", "OFPGMFC_WATCH_UNSUPPORTED", "OFPGMFC_LOOP", "OFPGMFC_UNKNOWN_GROUP",
		"OFPGMFC_CHAINED_GROUP", "OFPGMFC_BAD_TYPE", "OFPGMFC_BAD_COMMAND", "OFPGMFC_BAD_BUCKET",
		"OFPGMFC_BAD_WATCH", "OFPGMFC_EPERM"}},
	17: {"OFPET_BUNDLE_FAILED", []string{"OFPBFC_UNKNOWN", "OFPBFC_EPERM", "OFPBFC_BAD_ID",
		"OFPBFC_BUNDLE_EXIST", "OFPBFC_BUNDLE_CLOSED", "OFPBFC_OUT_OF_BUNDLES", "OFPBFC_BAD_TYPE",
		"OFPBFC_BAD_FLAGS", "OFPBFC_MSG_BAD_LEN", "OFPBFC_MSG_BAD_XID", "OFPBFC_MSG_UNSUP",
		"OFPBFC_MSG_CONFLICT", "OFPBFC_MSG_TOO_MANY", "OFPBFC_MSG_FAILED", "OFPBFC_TIMEOUT",
		"OFPBFC_BUNDLE_IN_PROGRESS"}},
	0xffff: {"OFPET_EXPERIMENTER", nil},
}

// Name returns the error's OpenFlow name, e.g. "OFPBAC_BAD_OUT_GROUP", or
// "OFPET_EXPERIMENTER(exp_type=T)" / "type T code C" for the others.
func (e *Error) Name() string {
	t, ok := errorTypes[e.Type]
	switch {
	case !ok:
		return fmt.Sprintf("openflow error type %d code %d", e.Type, e.Code)
	case e.Type == 0xffff:
		if len(e.Data) >= 4 {
			return fmt.Sprintf("OFPET_EXPERIMENTER(exp_type=%d, experimenter=%#x)", e.Code, binary.BigEndian.Uint32(e.Data))
		}
		return fmt.Sprintf("OFPET_EXPERIMENTER(exp_type=%d)", e.Code)
	case int(e.Code) < len(t.codes):
		return t.codes[e.Code]
	}
	return fmt.Sprintf("%s code %d", t.name, e.Code)
}

// AwaitBarrier reads messages from rw until the barrier reply with xid
// arrives, answering echo requests on the way; an OpenFlow error message
// before it is returned as the error. Connection set-up uses it (before any
// other reader or writer uses rw).
func AwaitBarrier(rw io.ReadWriter, xid uint32) error {
	for {
		m, err := ReadMessage(rw)
		if err != nil {
			return err
		}
		h, err := ParseHeader(m)
		if err != nil {
			return err
		}
		switch h.Type {
		case TypeError:
			e, err := DecodeError(m)
			if err != nil {
				return err
			}
			return e
		case TypeBarrierReply:
			if h.Xid == xid {
				return nil
			}
		case TypeEchoRequest:
			if _, err := rw.Write(EchoReply(h.Xid, m[HeaderLen:])); err != nil {
				return err
			}
		}
	}
}
