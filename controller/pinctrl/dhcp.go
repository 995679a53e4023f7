package pinctrl

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/govn/govn/lflow/action"
)

// DHCP message types (option 53).
const (
	dhcpDiscover = 1
	dhcpOffer    = 2
	dhcpRequest  = 3
	dhcpAck      = 5
	dhcpNak      = 6
)

const (
	bootpLen    = 236        // fixed BOOTP header
	dhcpCookie  = 0x63825363 // magic cookie
	minBOOTPLen = 300        // RFC 1542: pad replies to the legacy BOOTP size
)

// BuildDHCPReply answers a DHCPv4 DISCOVER (with an OFFER) or REQUEST
// (with an ACK, or a NAK if the client asks for another address than
// offerip) as put_dhcp_opts does: the reply keeps the request's Ethernet,
// IP and UDP addressing (the logical flows that follow swap addresses and
// ports and output it), BOOTP op 2, yiaddr = offerip, and options 53
// (message type) followed by opts in order (offerip, code 0, is not sent;
// the pseudo-options next_server (253) and bootfile_name_alt (254) become
// siaddr and option 67). ok is false, with no error, for packets that are
// not a DISCOVER or REQUEST (the result bit is then 0).
func BuildDHCPReply(p []byte, opts []action.DHCPOption) (out []byte, ok bool, err error) {
	hdr, ip, payload, err := splitIPv4(p, "put_dhcp_opts")
	if err != nil {
		return nil, false, err
	}
	if ip[9] != 17 || len(payload) < 8 || binary.BigEndian.Uint16(payload[2:]) != 67 {
		return nil, false, nil
	}
	udpLen := int(binary.BigEndian.Uint16(payload[4:]))
	if udpLen < 8 || udpLen > len(payload) {
		return nil, false, fmt.Errorf("put_dhcp_opts: UDP length %d does not fit %d bytes", udpLen, len(payload))
	}
	b := payload[8:udpLen]
	if len(b) < bootpLen+4 || b[0] != 1 || binary.BigEndian.Uint32(b[bootpLen:]) != dhcpCookie {
		return nil, false, nil
	}
	var msgType byte
	var requested netip.Addr
	for o := b[bootpLen+4:]; len(o) > 0; {
		code := o[0]
		if code == 0 {
			o = o[1:]
			continue
		}
		if code == 255 || len(o) < 2 || int(o[1]) > len(o)-2 {
			break
		}
		v := o[2 : 2+int(o[1])]
		switch {
		case code == 53 && len(v) == 1:
			msgType = v[0]
		case code == 50 && len(v) == 4:
			requested = netip.AddrFrom4([4]byte(v))
		}
		o = o[2+len(v):]
	}
	var offer netip.Addr
	for _, o := range opts {
		if o.Code == 0 && len(o.Value) == 4 {
			offer = netip.AddrFrom4([4]byte(o.Value))
		}
	}
	if !offer.IsValid() {
		return nil, false, fmt.Errorf("put_dhcp_opts: no offerip option")
	}
	var reply byte
	switch msgType {
	case dhcpDiscover:
		reply = dhcpOffer
	case dhcpRequest:
		if !requested.IsValid() {
			requested = netip.AddrFrom4([4]byte(b[12:16])) // ciaddr (renewing)
		}
		reply = dhcpAck
		if requested != offer {
			reply = dhcpNak
		}
	default:
		return nil, false, nil
	}

	d := make([]byte, bootpLen+4, minBOOTPLen)
	d[0], d[1], d[2] = 2, b[1], b[2] // op, htype, hlen
	copy(d[4:8], b[4:8])             // xid
	copy(d[10:12], b[10:12])         // flags
	copy(d[24:28], b[24:28])         // giaddr
	copy(d[28:44], b[28:44])         // chaddr
	binary.BigEndian.PutUint32(d[bootpLen:], dhcpCookie)
	d = append(d, 53, 1, reply)
	if reply == dhcpNak {
		for _, o := range opts {
			if o.Code == 54 { // server_id
				d = append(d, 54, byte(len(o.Value)))
				d = append(d, o.Value...)
			}
		}
	} else {
		copy(d[16:20], offer.AsSlice()) // yiaddr
		for _, o := range opts {
			code := o.Code
			switch code {
			case 0:
				continue
			case 253:
				if len(o.Value) == 4 {
					copy(d[20:24], o.Value) // siaddr
				}
				continue
			case 254:
				code = 67
			}
			if code > 254 || len(o.Value) > 255 {
				return nil, false, fmt.Errorf("put_dhcp_opts: option %d of %d bytes cannot be encoded", code, len(o.Value))
			}
			d = append(d, byte(code), byte(len(o.Value)))
			d = append(d, o.Value...)
		}
	}
	d = append(d, 255)
	for len(d) < minBOOTPLen {
		d = append(d, 0)
	}

	out = appendL2(make([]byte, 0, len(hdr)+28+len(d)), hdr, false)
	ipOff := len(out)
	out = append(out, ip[:20]...)
	out[ipOff] = 0x45 // options dropped
	binary.BigEndian.PutUint16(out[ipOff+2:], uint16(20+8+len(d)))
	out[ipOff+10], out[ipOff+11] = 0, 0
	binary.BigEndian.PutUint16(out[ipOff+10:], checksum(out[ipOff:ipOff+20]))
	out = append(out, payload[0:4]...) // ports unchanged
	out = binary.BigEndian.AppendUint16(out, uint16(8+len(d)))
	out = append(out, 0, 0) // no UDP checksum (allowed for IPv4)
	out = append(out, d...)
	return out, true, nil
}

var regBitRE = regexp.MustCompile(`^reg([0-9]|1[0-5])\[([0-9]|[12][0-9]|3[01])\]$`)

// ParseResultBit parses the result subfield of a paused action ("reg0[3]").
func ParseResultBit(s string) (reg, bit int, err error) {
	m := regBitRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("result subfield %q is not a single register bit like reg0[3]", s)
	}
	reg, _ = strconv.Atoi(m[1])
	bit, _ = strconv.Atoi(m[2])
	return reg, bit, nil
}
