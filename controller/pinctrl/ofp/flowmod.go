package ofp

import (
	"encoding/binary"
	"fmt"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
)

// This file encodes the typed flows, groups and actions of package lflow/of
// as OpenFlow 1.5 messages (OFPT_FLOW_MOD, OFPT_GROUP_MOD) plus the bundle
// and aggregate-statistics messages the flow installer (controller/ovs)
// needs. Every action type lflow/of defines is encoded; a value OpenFlow
// cannot carry (an unknown field, a subfield out of range) is an error
// naming it, never a silent drop.

// More message types (OpenFlow 1.5).
const (
	TypeFlowMod          = 14
	TypeGroupMod         = 15
	TypeMultipartRequest = 18
	TypeMultipartReply   = 19
	TypeBundleControl    = 33
	TypeBundleAdd        = 34
)

// Flow mod commands.
const (
	FlowAdd          = 0
	FlowModify       = 1
	FlowModifyStrict = 2
	FlowDelete       = 3
	FlowDeleteStrict = 4
)

// Group mod commands.
const (
	GroupAdd    = 0
	GroupModify = 1
	GroupDelete = 2
)

// Bundle control types and flags.
const (
	BundleOpenRequest    = 0
	BundleOpenReply      = 1
	BundleCloseRequest   = 2
	BundleCloseReply     = 3
	BundleCommitRequest  = 4
	BundleCommitReply    = 5
	BundleDiscardRequest = 6
	BundleDiscardReply   = 7
	BundleAtomic         = 1
	BundleOrdered        = 2
)

// Nicira action subtypes used here.
const (
	nxastResubmitTable  = 14
	nxastOutputReg      = 15
	nxastNote           = 8
	nxastExit           = 17
	nxastStackPush      = 27
	nxastStackPop       = 28
	nxastConjunction    = 34
	nxastCT             = 35
	nxastNAT            = 36
	nxastController2    = 37
	nxastOutputTrunc    = 39
	nxastClone          = 42
	nxastCTClear        = 43
	nxastCheckPktLarger = 49
	nxastLearn          = 16
)

// oxmInfo is the wire identity of an of.Field.
type oxmInfo struct {
	class uint16
	field uint8
	n     uint8 // value bytes
}

var oxmByField = func() [of.NumFields]oxmInfo {
	var t [of.NumFields]oxmInfo
	set := func(f of.Field, class uint16, field, n uint8) { t[f] = oxmInfo{class, field, n} }
	set(of.ConjID, ClassNXM1, 37, 4)
	set(of.InPort, ClassOpenFlow, 0, 4)
	for i := 0; i < 16; i++ {
		set(of.Reg(i), ClassNXM1, uint8(i), 4)
	}
	for i := 0; i < 8; i++ {
		set(of.XReg(i), ClassPacketRegs, uint8(i), 8)
	}
	for i := 0; i < 4; i++ {
		set(of.XXReg(i), ClassNXM1, uint8(111+i), 16)
	}
	set(of.Metadata, ClassOpenFlow, 2, 8)
	set(of.TunID, ClassOpenFlow, 38, 8)
	set(of.TunMetadata0, ClassNXM1, 40, 4)
	set(of.TunMetadata1, ClassNXM1, 41, 4)
	set(of.TunMetadata2, ClassNXM1, 42, 4)
	set(of.TunMetadata3, ClassNXM1, 43, 4)
	set(of.PktMark, ClassNXM1, 33, 4)
	set(of.CTState, ClassNXM1, 105, 4)
	set(of.CTZone, ClassNXM1, 106, 2)
	set(of.CTMark, ClassNXM1, 107, 4)
	set(of.CTLabel, ClassNXM1, 108, 16)
	set(of.EthSrc, ClassOpenFlow, 4, 6)
	set(of.EthDst, ClassOpenFlow, 3, 6)
	set(of.EthType, ClassOpenFlow, 5, 2)
	set(of.VLANTCI, ClassNXM0, 4, 2)
	set(of.IPSrc, ClassOpenFlow, 11, 4)
	set(of.IPDst, ClassOpenFlow, 12, 4)
	set(of.IPv6Src, ClassOpenFlow, 26, 16)
	set(of.IPv6Dst, ClassOpenFlow, 27, 16)
	set(of.IPv6Label, ClassOpenFlow, 28, 4)
	set(of.IPProto, ClassOpenFlow, 10, 1)
	set(of.IPDSCP, ClassOpenFlow, 8, 1)
	set(of.IPECN, ClassOpenFlow, 9, 1)
	set(of.IPTTL, ClassNXM1, 29, 1)
	set(of.IPFrag, ClassNXM1, 26, 1)
	set(of.ARPOp, ClassOpenFlow, 21, 2)
	set(of.ARPSPA, ClassOpenFlow, 22, 4)
	set(of.ARPTPA, ClassOpenFlow, 23, 4)
	set(of.ARPSHA, ClassOpenFlow, 24, 6)
	set(of.ARPTHA, ClassOpenFlow, 25, 6)
	set(of.TCPSrc, ClassOpenFlow, 13, 2)
	set(of.TCPDst, ClassOpenFlow, 14, 2)
	set(of.TCPFlags, ClassNXM1, 34, 2)
	set(of.UDPSrc, ClassOpenFlow, 15, 2)
	set(of.UDPDst, ClassOpenFlow, 16, 2)
	set(of.SCTPSrc, ClassOpenFlow, 17, 2)
	set(of.SCTPDst, ClassOpenFlow, 18, 2)
	set(of.ICMPv4Type, ClassOpenFlow, 19, 1)
	set(of.ICMPv4Code, ClassOpenFlow, 20, 1)
	set(of.ICMPv6Type, ClassOpenFlow, 29, 1)
	set(of.ICMPv6Code, ClassOpenFlow, 30, 1)
	set(of.NDTarget, ClassOpenFlow, 31, 16)
	set(of.NDSLL, ClassOpenFlow, 32, 6)
	set(of.NDTLL, ClassOpenFlow, 33, 6)
	set(of.TunSrc, ClassNXM1, 31, 4)
	set(of.TunDst, ClassNXM1, 32, 4)
	set(of.CTNwProto, ClassNXM1, 119, 1)
	set(of.CTNwSrc, ClassNXM1, 120, 4)
	set(of.CTNwDst, ClassNXM1, 121, 4)
	set(of.CTIPv6Src, ClassNXM1, 122, 16)
	set(of.CTIPv6Dst, ClassNXM1, 123, 16)
	set(of.CTTpSrc, ClassNXM1, 124, 2)
	set(of.CTTpDst, ClassNXM1, 125, 2)
	return t
}()

func oxm(f of.Field) (oxmInfo, error) {
	if !f.Valid() || oxmByField[f].n == 0 {
		return oxmInfo{}, fmt.Errorf("field %s has no OpenFlow encoding", f)
	}
	return oxmByField[f], nil
}

// header returns the field's exact-match OXM header.
func (o oxmInfo) header() uint32 {
	return uint32(o.class)<<16 | uint32(o.field)<<9 | uint32(o.n)
}

// appendValue appends the low n bytes of v, big-endian.
func appendValue(b []byte, v bits.U128, n int) []byte {
	full := v.Bytes()
	return append(b, full[16-n:]...)
}

func appendOXM(b []byte, f of.Field, v, mask bits.U128) ([]byte, error) {
	o, err := oxm(f)
	if err != nil {
		return b, err
	}
	full := bits.Ones(int(o.n) * 8)
	if mask.And(full) == full {
		b = binary.BigEndian.AppendUint32(b, o.header())
		return appendValue(b, v, int(o.n)), nil
	}
	b = binary.BigEndian.AppendUint32(b, uint32(o.class)<<16|uint32(o.field)<<9|1<<8|uint32(2*o.n))
	b = appendValue(b, v.And(mask), int(o.n))
	return appendValue(b, mask, int(o.n)), nil
}

// appendMatch appends an ofp_match (OFPMT_OXM) with m's fields, padded to 8.
func appendMatch(b []byte, m *of.Match) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 1, 0, 0)
	var err error
	for _, e := range m.Fields() {
		// A field whose "full" mask is narrower than its wire width
		// (ipv6_label, ip_dscp...) is still exact when the mask covers
		// the field's width.
		mask := e.Mask
		if mask == bits.Ones(e.Field.Width()) {
			mask = bits.Ones(128)
		}
		if b, err = appendOXM(b, e.Field, e.Value, mask); err != nil {
			return b, err
		}
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return pad8(b), nil
}

func pad8(b []byte) []byte {
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func nxHeader(b []byte, subtype uint16) []byte {
	b = append(b, 0xff, 0xff, 0, 0)
	b = binary.BigEndian.AppendUint32(b, NiciraID)
	return binary.BigEndian.AppendUint16(b, subtype)
}

// finish pads the action that starts at start to 8 bytes and writes its
// length.
func finish(b []byte, start int) []byte {
	b = pad8(b)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

func ofsNbits(s of.Subfield) uint16 { return uint16(s.Ofs)<<6 | uint16(s.Bits()-1) }

func checkSub(s of.Subfield) (oxmInfo, error) {
	o, err := oxm(s.Field)
	if err != nil {
		return o, err
	}
	if s.Ofs < 0 || s.Bits() < 1 || s.Ofs+s.Bits() > s.Field.Width() {
		return o, fmt.Errorf("subfield %s out of the field's %d bits", s, s.Field.Width())
	}
	return o, nil
}

// AppendActions appends the binary encoding of as.
func AppendActions(b []byte, as of.Actions) ([]byte, error) {
	var err error
	for _, a := range as {
		if b, err = appendAction(b, a); err != nil {
			return b, fmt.Errorf("%s: %w", a, err)
		}
	}
	return b, nil
}

func appendAction(b []byte, a of.Action) ([]byte, error) {
	start := len(b)
	switch a := a.(type) {
	case of.Output:
		if a.MaxLen > 0 {
			if a.Port > 0xff00 && a.Port < 0xfffffff8 || a.MaxLen > 0xffffffff {
				return b, fmt.Errorf("port %d / max_len %d out of range for output truncation", a.Port, a.MaxLen)
			}
			b = nxHeader(b, nxastOutputTrunc)
			b = binary.BigEndian.AppendUint16(b, port16(a.Port))
			b = binary.BigEndian.AppendUint32(b, uint32(a.MaxLen))
			return finish(b, start), nil
		}
		b = append(b, 0, 0, 0, 16)
		b = binary.BigEndian.AppendUint32(b, a.Port)
		b = binary.BigEndian.AppendUint16(b, 0xffff)
		return append(b, 0, 0, 0, 0, 0, 0), nil
	case of.OutputReg:
		o, err := checkSub(a.Src)
		if err != nil {
			return b, err
		}
		b = nxHeader(b, nxastOutputReg)
		b = binary.BigEndian.AppendUint16(b, ofsNbits(a.Src))
		b = binary.BigEndian.AppendUint32(b, o.header())
		b = binary.BigEndian.AppendUint16(b, 0)
		return finish(append(b, 0, 0, 0, 0, 0, 0), start), nil
	case of.Resubmit:
		if a.Table < 0 || a.Table > 254 {
			return b, fmt.Errorf("table %d out of range", a.Table)
		}
		b = nxHeader(b, nxastResubmitTable)
		p := uint16(0xfff8)
		if a.InPort != 0 {
			if a.InPort > 0xff00 && a.InPort != of.PortInPort {
				return b, fmt.Errorf("resubmit port %d out of range", a.InPort)
			}
			p = port16(a.InPort)
		}
		b = binary.BigEndian.AppendUint16(b, p)
		b = append(b, uint8(a.Table))
		return finish(b, start), nil
	case of.SetField:
		o, err := checkSub(a.Dst)
		if err != nil {
			return b, err
		}
		full := bits.Ones(a.Dst.Field.Width())
		m := a.Dst.Mask().And(full)
		v := a.Value.Lsh(uint(a.Dst.Ofs)).And(m)
		if !a.Value.FitsIn(a.Dst.Bits()) {
			return b, fmt.Errorf("value %s does not fit in %d bits", a.Value.Hex(), a.Dst.Bits())
		}
		if a.Dst.Field == of.InPort {
			// OVS refuses OXM_OF_IN_PORT (32-bit OpenFlow 1.1 port) in
			// set-field (OFPBAC_BAD_SET_ARGUMENT); the 16-bit
			// NXM_OF_IN_PORT is writable, as ovs-ofctl encodes it.
			o = oxmInfo{ClassNXM0, 0, 2}
			if m.And(bits.Ones(16)) != bits.Ones(16) || !a.Value.FitsIn(16) {
				return b, fmt.Errorf("in_port is set as a whole 16-bit port number")
			}
			b = append(b, 0, 25, 0, 0)
			b = binary.BigEndian.AppendUint32(b, o.header())
			b = appendValue(b, v, 2)
			return finish(b, start), nil
		}
		if m == full {
			m = bits.Ones(int(o.n) * 8)
		}
		b = append(b, 0, 25, 0, 0)
		if b, err = appendOXM(b, a.Dst.Field, v, m); err != nil {
			return b, err
		}
		return finish(b, start), nil
	case of.Move:
		so, err := checkSub(a.Src)
		if err != nil {
			return b, err
		}
		do, err := checkSub(a.Dst)
		if err != nil {
			return b, err
		}
		if a.Src.Bits() != a.Dst.Bits() {
			return b, fmt.Errorf("source has %d bits, destination %d", a.Src.Bits(), a.Dst.Bits())
		}
		b = append(b, 0, 28, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(a.Src.Bits()))
		b = binary.BigEndian.AppendUint16(b, uint16(a.Src.Ofs))
		b = binary.BigEndian.AppendUint16(b, uint16(a.Dst.Ofs))
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint32(b, so.header())
		b = binary.BigEndian.AppendUint32(b, do.header())
		return finish(b, start), nil
	case of.Push:
		return appendStack(b, a.Sub, nxastStackPush)
	case of.Pop:
		return appendStack(b, a.Sub, nxastStackPop)
	case of.Conjunction:
		if a.N < 2 || a.N > 64 || a.K < 1 || a.K > a.N {
			return b, fmt.Errorf("clause %d/%d out of range", a.K, a.N)
		}
		b = nxHeader(b, nxastConjunction)
		b = append(b, a.K-1, a.N)
		b = binary.BigEndian.AppendUint32(b, a.ID)
		return finish(b, start), nil
	case of.DecTTL:
		return append(b, 0, 24, 0, 8, 0, 0, 0, 0), nil
	case of.CTClear:
		return finish(nxHeader(b, nxastCTClear), start), nil
	case of.Exit:
		return finish(nxHeader(b, nxastExit), start), nil
	case of.Drop:
		return b, nil
	case of.CT:
		return appendCT(b, a)
	case of.Controller:
		return appendController(b, a)
	case of.CheckPktLarger:
		o, err := checkSub(a.Dst)
		if err != nil {
			return b, err
		}
		if a.Dst.Bits() != 1 || a.Len < 0 || a.Len > 0xffff {
			return b, fmt.Errorf("want a 1-bit destination and a 16-bit length")
		}
		b = nxHeader(b, nxastCheckPktLarger)
		b = binary.BigEndian.AppendUint16(b, uint16(a.Len))
		b = binary.BigEndian.AppendUint16(b, uint16(a.Dst.Ofs))
		b = binary.BigEndian.AppendUint32(b, o.header())
		for len(b)-start < 24 {
			b = append(b, 0)
		}
		return finish(b, start), nil
	case of.Learn:
		return appendLearn(b, a)
	case of.Clone:
		b = nxHeader(b, nxastClone)
		b = append(b, 0, 0, 0, 0, 0, 0)
		var err error
		if b, err = AppendActions(b, a.Actions); err != nil {
			return b, err
		}
		return finish(b, start), nil
	case of.GroupAction:
		b = append(b, 0, 22, 0, 8)
		return binary.BigEndian.AppendUint32(b, a.ID), nil
	case of.PushVLAN:
		b = append(b, 0, 17, 0, 8)
		b = binary.BigEndian.AppendUint16(b, a.EthType)
		return append(b, 0, 0), nil
	case of.PopVLAN:
		return append(b, 0, 18, 0, 8, 0, 0, 0, 0), nil
	case of.Note:
		b = nxHeader(b, nxastNote)
		b = append(b, a.Data...)
		for len(b)-start < 16 {
			b = append(b, 0)
		}
		return finish(b, start), nil
	}
	return b, fmt.Errorf("action type %T has no OpenFlow encoding", a)
}

// port16 maps a 32-bit OpenFlow port to the 16-bit form Nicira actions use.
func port16(p uint32) uint16 {
	if p >= 0xfffffff0 {
		return uint16(p - 0xffff0000)
	}
	return uint16(p)
}

func appendStack(b []byte, s of.Subfield, subtype uint16) ([]byte, error) {
	o, err := checkSub(s)
	if err != nil {
		return b, err
	}
	start := len(b)
	b = nxHeader(b, subtype)
	b = binary.BigEndian.AppendUint16(b, uint16(s.Ofs))
	b = binary.BigEndian.AppendUint32(b, o.header())
	b = binary.BigEndian.AppendUint16(b, uint16(s.Bits()))
	return finish(append(b, 0, 0, 0, 0, 0, 0), start), nil
}

// appendLearn encodes NXAST_LEARN: the learned flow's parameters, then
// one flow_mod_spec per spec (a 16-bit header — source immediate or field,
// destination match/load/output, bit count — the source, the destination),
// zero-padded to 8 bytes (a zero header ends the list).
func appendLearn(b []byte, a of.Learn) ([]byte, error) {
	start := len(b)
	for _, v := range []int{a.IdleTimeout, a.HardTimeout, a.FinIdleTimeout, a.FinHardTimeout, a.Priority} {
		if v < 0 || v > 0xffff {
			return b, fmt.Errorf("timeout or priority %d out of range", v)
		}
	}
	if a.Table < 0 || a.Table > 254 {
		return b, fmt.Errorf("table %d out of range", a.Table)
	}
	b = nxHeader(b, nxastLearn)
	b = binary.BigEndian.AppendUint16(b, uint16(a.IdleTimeout))
	b = binary.BigEndian.AppendUint16(b, uint16(a.HardTimeout))
	b = binary.BigEndian.AppendUint16(b, uint16(a.Priority))
	b = binary.BigEndian.AppendUint64(b, a.Cookie)
	var flags uint16
	if a.SendFlowRem {
		flags |= 1
	}
	if a.DeleteLearned {
		flags |= 2
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = append(b, uint8(a.Table), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(a.FinIdleTimeout))
	b = binary.BigEndian.AppendUint16(b, uint16(a.FinHardTimeout))
	for i, s := range a.Specs {
		var err error
		if b, err = appendLearnSpec(b, s); err != nil {
			return b, fmt.Errorf("spec %d (%s): %w", i+1, s, err)
		}
	}
	return finish(b, start), nil
}

func appendLearnSpec(b []byte, s of.LearnSpec) ([]byte, error) {
	n := s.Bits()
	if n < 1 || n > 0x7ff {
		return b, fmt.Errorf("%d bits out of range", n)
	}
	hdr := uint16(n)
	switch s.Kind {
	case of.LearnMatch:
	case of.LearnLoad:
		hdr |= 1 << 11
	case of.LearnOutput:
		hdr |= 2 << 11
		if s.Src.Field == of.FieldNone {
			return b, fmt.Errorf("output needs a source field")
		}
	default:
		return b, fmt.Errorf("unknown spec kind %d", s.Kind)
	}
	if s.Src.Field == of.FieldNone {
		hdr |= 1 << 13
	}
	b = binary.BigEndian.AppendUint16(b, hdr)
	if s.Src.Field != of.FieldNone {
		o, err := checkSub(s.Src)
		if err != nil {
			return b, err
		}
		if s.Src.Bits() != n {
			return b, fmt.Errorf("source has %d bits, destination %d", s.Src.Bits(), n)
		}
		b = binary.BigEndian.AppendUint32(b, o.header())
		b = binary.BigEndian.AppendUint16(b, uint16(s.Src.Ofs))
	} else {
		if !s.Value.FitsIn(n) {
			return b, fmt.Errorf("value %s does not fit in %d bits", s.Value.Hex(), n)
		}
		b = appendValue(b, s.Value, 2*((n+15)/16))
	}
	if s.Kind != of.LearnOutput {
		o, err := checkSub(s.Dst)
		if err != nil {
			return b, err
		}
		b = binary.BigEndian.AppendUint32(b, o.header())
		b = binary.BigEndian.AppendUint16(b, uint16(s.Dst.Ofs))
	}
	return b, nil
}

var algPorts = map[string]uint16{"": 0, "ftp": 21, "tftp": 69}

func appendCT(b []byte, a of.CT) ([]byte, error) {
	start := len(b)
	b = nxHeader(b, nxastCT)
	var flags uint16
	if a.Commit {
		flags |= 1
	}
	if a.Force {
		flags |= 2
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	if a.Zone.Field != of.FieldNone {
		o, err := checkSub(a.Zone)
		if err != nil {
			return b, fmt.Errorf("zone: %w", err)
		}
		if a.Zone.Bits() != 16 {
			return b, fmt.Errorf("zone %s is not 16 bits", a.Zone)
		}
		b = binary.BigEndian.AppendUint32(b, o.header())
		b = binary.BigEndian.AppendUint16(b, ofsNbits(a.Zone))
	} else {
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint16(b, a.ZoneImm)
	}
	switch {
	case a.Table < 0:
		b = append(b, 0xff)
	case a.Table > 254:
		return b, fmt.Errorf("table %d out of range", a.Table)
	default:
		b = append(b, uint8(a.Table))
	}
	b = append(b, 0, 0, 0)
	alg, ok := algPorts[a.Alg]
	if !ok {
		return b, fmt.Errorf("unknown alg %q", a.Alg)
	}
	b = binary.BigEndian.AppendUint16(b, alg)
	if a.NAT != nil {
		var err error
		if b, err = appendNAT(b, a.NAT); err != nil {
			return b, err
		}
	}
	var err error
	if b, err = AppendActions(b, a.Exec); err != nil {
		return b, fmt.Errorf("exec: %w", err)
	}
	return finish(b, start), nil
}

func appendNAT(b []byte, n *of.NAT) ([]byte, error) {
	start := len(b)
	b = nxHeader(b, nxastNAT)
	b = append(b, 0, 0)
	var flags, rng uint16
	var opt []byte
	if n.Addr.IsValid() {
		if n.Src {
			flags |= 1
		} else {
			flags |= 2
		}
		if n.Persistent {
			flags |= 4
		}
		if n.Hash {
			flags |= 8
		}
		if n.Random {
			flags |= 16
		}
		hasMax := n.AddrMax.IsValid() && n.AddrMax != n.Addr
		if hasMax && n.AddrMax.Is4() != n.Addr.Is4() {
			return b, fmt.Errorf("nat range mixes IPv4 and IPv6")
		}
		if n.Addr.Is4() {
			a := n.Addr.As4()
			opt, rng = append(opt, a[:]...), rng|1
			if hasMax {
				m := n.AddrMax.As4()
				opt, rng = append(opt, m[:]...), rng|2
			}
		} else {
			a := n.Addr.As16()
			opt, rng = append(opt, a[:]...), rng|4
			if hasMax {
				m := n.AddrMax.As16()
				opt, rng = append(opt, m[:]...), rng|8
			}
		}
		if n.Port != 0 {
			opt, rng = binary.BigEndian.AppendUint16(opt, n.Port), rng|16
			if n.PortMax != 0 && n.PortMax != n.Port {
				opt, rng = binary.BigEndian.AppendUint16(opt, n.PortMax), rng|32
			}
		}
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, rng)
	b = append(b, opt...)
	return finish(b, start), nil
}

func appendProp16(b []byte, typ uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(v)))
	return pad8(append(b, v...))
}

func appendController(b []byte, a of.Controller) ([]byte, error) {
	start := len(b)
	b = nxHeader(b, nxastController2)
	b = append(b, 0, 0, 0, 0, 0, 0)
	if a.MaxLen > 0 {
		if a.MaxLen > 0xffff {
			return b, fmt.Errorf("max_len %d out of range", a.MaxLen)
		}
		b = appendProp16(b, 0, binary.BigEndian.AppendUint16(nil, uint16(a.MaxLen)))
	}
	if a.Reason != "" {
		r, ok := controllerReasons[a.Reason]
		if !ok {
			return b, fmt.Errorf("unknown reason %q", a.Reason)
		}
		b = appendProp16(b, 2, []byte{r})
	}
	if len(a.UserData) > 0 {
		b = appendProp16(b, 3, a.UserData)
	}
	if a.Pause {
		b = appendProp16(b, 4, nil)
	}
	if a.MeterID != 0 {
		b = appendProp16(b, 5, binary.BigEndian.AppendUint32(nil, a.MeterID))
	}
	return finish(b, start), nil
}

var controllerReasons = map[string]uint8{"no_match": 0, "action": 1, "invalid_ttl": 2,
	"action_set": 3, "group": 4, "packet_out": 5}

// FlowMod describes one OFPT_FLOW_MOD.
type FlowMod struct {
	Command              uint8
	Table                uint8
	Priority             uint16
	Cookie, CookieMask   uint64
	Match                *of.Match
	Actions              of.Actions
	OutPort, OutGroup    uint32 // delete filters; 0 means any
	IdleTimeout, HardTmo uint16
}

// EncodeFlowMod returns the OFPT_FLOW_MOD for fm.
func EncodeFlowMod(xid uint32, fm *FlowMod) ([]byte, error) {
	b := make([]byte, HeaderLen, 128)
	b = binary.BigEndian.AppendUint64(b, fm.Cookie)
	b = binary.BigEndian.AppendUint64(b, fm.CookieMask)
	b = append(b, fm.Table, fm.Command)
	b = binary.BigEndian.AppendUint16(b, fm.IdleTimeout)
	b = binary.BigEndian.AppendUint16(b, fm.HardTmo)
	b = binary.BigEndian.AppendUint16(b, fm.Priority)
	b = binary.BigEndian.AppendUint32(b, NoBuffer)
	op, og := fm.OutPort, fm.OutGroup
	if op == 0 {
		op = PortAny
	}
	if og == 0 {
		og = 0xffffffff
	}
	b = binary.BigEndian.AppendUint32(b, op)
	b = binary.BigEndian.AppendUint32(b, og)
	b = append(b, 0, 0, 0, 0) // flags, importance
	m := fm.Match
	if m == nil {
		m = &of.Match{}
	}
	var err error
	if b, err = appendMatch(b, m); err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	if len(fm.Actions) > 0 && fm.Command != FlowDelete && fm.Command != FlowDeleteStrict {
		ins := len(b)
		b = append(b, 0, 4, 0, 0, 0, 0, 0, 0) // OFPIT_APPLY_ACTIONS
		if b, err = AppendActions(b, fm.Actions); err != nil {
			return nil, fmt.Errorf("actions: %w", err)
		}
		binary.BigEndian.PutUint16(b[ins+2:], uint16(len(b)-ins))
	}
	if len(b) > MaxLen {
		return nil, fmt.Errorf("flow mod of %d bytes exceeds %d", len(b), MaxLen)
	}
	putHeader(b, TypeFlowMod, xid)
	return b, nil
}

var groupTypes = map[string]uint8{"all": 0, "select": 1, "indirect": 2, "ff": 3, "fast_failover": 3}

// EncodeGroupMod returns the OFPT_GROUP_MOD with command for g (for
// GroupDelete only g.ID matters).
func EncodeGroupMod(xid uint32, command uint16, g *of.Group) ([]byte, error) {
	b := make([]byte, HeaderLen, 256)
	b = binary.BigEndian.AppendUint16(b, command)
	t, ok := groupTypes[g.Type]
	if command == GroupDelete {
		t, ok = 0, true
	}
	if !ok {
		return nil, fmt.Errorf("group %d: unknown type %q", g.ID, g.Type)
	}
	b = append(b, t, 0)
	b = binary.BigEndian.AppendUint32(b, g.ID)
	lenAt := len(b)
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // OFPG15_BUCKET_ALL
	if command == GroupDelete {
		putHeader(b, TypeGroupMod, xid)
		return b, nil
	}
	bs := len(b)
	for _, bk := range g.Buckets {
		s := len(b)
		b = append(b, 0, 0, 0, 0)
		b = binary.BigEndian.AppendUint32(b, bk.ID)
		var err error
		if b, err = AppendActions(b, bk.Actions); err != nil {
			return nil, fmt.Errorf("group %d bucket %d: %w", g.ID, bk.ID, err)
		}
		binary.BigEndian.PutUint16(b[s+2:], uint16(len(b)-s-8))
		if bk.Weight > 0 {
			if bk.Weight > 0xffff {
				return nil, fmt.Errorf("group %d bucket %d: weight %d out of range", g.ID, bk.ID, bk.Weight)
			}
			b = append(b, 0, 0, 0, 8) // OFPGBPT15_WEIGHT
			b = binary.BigEndian.AppendUint16(b, uint16(bk.Weight))
			b = append(b, 0, 0)
		}
		binary.BigEndian.PutUint16(b[s:], uint16(len(b)-s))
	}
	binary.BigEndian.PutUint16(b[lenAt:], uint16(len(b)-bs))
	if g.SelectionMethod != "" {
		if len(g.SelectionMethod) > 15 {
			return nil, fmt.Errorf("group %d: selection method %q too long", g.ID, g.SelectionMethod)
		}
		s := len(b)
		b = append(b, 0xff, 0xff, 0, 0)
		b = binary.BigEndian.AppendUint32(b, 0x0000154d) // NTR vendor id
		b = binary.BigEndian.AppendUint32(b, 1)          // NTRT_SELECTION_METHOD
		b = append(b, 0, 0, 0, 0)
		var name [16]byte
		copy(name[:], g.SelectionMethod)
		b = append(b, name[:]...)
		b = binary.BigEndian.AppendUint64(b, 0)
		for _, fn := range g.Fields {
			f, ok := of.FieldByName(fn)
			if !ok {
				return nil, fmt.Errorf("group %d: unknown hash field %q", g.ID, fn)
			}
			o, err := oxm(f)
			if err != nil {
				return nil, fmt.Errorf("group %d: %w", g.ID, err)
			}
			// Each field is an OXM TLV whose value is the bits to hash
			// (all of them).
			b = binary.BigEndian.AppendUint32(b, o.header())
			b = appendValue(b, bits.Ones(128), int(o.n))
		}
		binary.BigEndian.PutUint16(b[s+2:], uint16(len(b)-s))
		b = pad8(b)
	}
	if len(b) > MaxLen {
		return nil, fmt.Errorf("group %d: group mod of %d bytes exceeds %d", g.ID, len(b), MaxLen)
	}
	putHeader(b, TypeGroupMod, xid)
	return b, nil
}

// BundleControl returns an OFPT_BUNDLE_CONTROL of type typ.
func BundleControl(xid, bundleID uint32, typ, flags uint16) []byte {
	b := make([]byte, HeaderLen+8)
	binary.BigEndian.PutUint32(b[8:], bundleID)
	binary.BigEndian.PutUint16(b[12:], typ)
	binary.BigEndian.PutUint16(b[14:], flags)
	putHeader(b, TypeBundleControl, xid)
	return b
}

// AppendBundleAdd appends msg (whose xid must equal xid) wrapped in an
// OFPT_BUNDLE_ADD_MESSAGE to dst (no allocation when dst has room), so that
// a whole bundle can be built in one reused buffer.
func AppendBundleAdd(dst []byte, xid, bundleID uint32, flags uint16, msg []byte) ([]byte, error) {
	if HeaderLen+8+len(msg) > MaxLen {
		return dst, fmt.Errorf("bundled message of %d bytes exceeds the %d-byte limit", len(msg), MaxLen-16)
	}
	start := len(dst)
	dst = append(dst, make([]byte, HeaderLen+8)...)
	b := dst[start:]
	binary.BigEndian.PutUint32(b[8:], bundleID)
	binary.BigEndian.PutUint16(b[14:], flags)
	dst = append(dst, msg...)
	putHeader(dst[start:], TypeBundleAdd, xid)
	return dst, nil
}

// DecodeBundleControl returns the bundle id and type of an
// OFPT_BUNDLE_CONTROL reply.
func DecodeBundleControl(b []byte) (bundleID uint32, typ uint16, err error) {
	if len(b) < HeaderLen+8 {
		return 0, 0, fmt.Errorf("bundle control: %d bytes, need 16", len(b))
	}
	return binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint16(b[12:]), nil
}

// TableAll selects every table in AggregateRequest.
const TableAll = 0xff

// AggregateRequest returns an OFPMP_AGGREGATE_STATS request over table
// (TableAll: every table) for the flows whose cookie matches cookie under
// mask.
func AggregateRequest(xid uint32, table uint8, cookie, mask uint64) []byte {
	b := make([]byte, HeaderLen, 64)
	b = append(b, 0, 2, 0, 0, 0, 0, 0, 0) // OFPMP_AGGREGATE_STATS, flags, pad
	b = append(b, table, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, PortAny)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // OFPG_ANY
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = binary.BigEndian.AppendUint64(b, mask)
	b, _ = appendMatch(b, &of.Match{})
	putHeader(b, TypeMultipartRequest, xid)
	return b
}

// DecodeAggregateReply returns the flow count of an OpenFlow 1.5
// OFPMP_AGGREGATE_STATS reply (an ofp_stats with OXS fields).
func DecodeAggregateReply(b []byte) (uint32, error) {
	if len(b) < HeaderLen+8+4 {
		return 0, fmt.Errorf("aggregate reply: %d bytes, too short", len(b))
	}
	if t := binary.BigEndian.Uint16(b[8:]); t != 2 {
		return 0, fmt.Errorf("multipart reply type %d, want aggregate (2)", t)
	}
	st := b[16:]
	n := int(binary.BigEndian.Uint16(st[2:]))
	if n < 4 || n > len(st) {
		return 0, fmt.Errorf("aggregate reply: stats length %d out of range", n)
	}
	for off := 4; off+4 <= n; {
		hdr := binary.BigEndian.Uint32(st[off:])
		l := int(hdr & 0xff)
		if off+4+l > n {
			return 0, fmt.Errorf("aggregate reply: OXS field at %d overruns", off)
		}
		if hdr>>16 == 0x8002 && (hdr>>9)&0x7f == 3 && l == 4 { // OFPXST_OFB_FLOW_COUNT
			return binary.BigEndian.Uint32(st[off+4:]), nil
		}
		off += 4 + l
	}
	return 0, fmt.Errorf("aggregate reply: no flow_count")
}
