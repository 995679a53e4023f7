package pinctrl

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/govn/govn/lflow/action"
)

// LogEntry is one ACL log hit (the log() action).
type LogEntry struct {
	Name, Verdict, Severity string
	// Packet is a one-line summary of the packet ("ip4 10.0.0.1 > 10.0.0.2 proto 6").
	Packet string
}

// HandleLog turns a log() packet-in into a log entry.
func HandleLog(ud action.UserData, packet []byte) LogEntry {
	return LogEntry{Name: ud.Name, Verdict: ud.Verdict, Severity: ud.Severity, Packet: Summary(packet)}
}

// Summary describes an Ethernet frame in one line; truncated frames are
// described as far as they go.
func Summary(p []byte) string {
	if len(p) < 14 {
		return fmt.Sprintf("truncated frame (%d bytes)", len(p))
	}
	eth := fmt.Sprintf("%s > %s", net.HardwareAddr(p[6:12]), net.HardwareAddr(p[0:6]))
	typ, l3 := binary.BigEndian.Uint16(p[12:]), p[14:]
	if typ == 0x8100 && len(l3) >= 4 {
		typ, l3 = binary.BigEndian.Uint16(l3[2:]), l3[4:]
	}
	switch {
	case typ == 0x0800 && len(l3) >= 20:
		src, dst := netip.AddrFrom4([4]byte(l3[12:16])), netip.AddrFrom4([4]byte(l3[16:20]))
		return fmt.Sprintf("%s ip4 %s > %s proto %d", eth, src, dst, l3[9])
	case typ == 0x86dd && len(l3) >= 40:
		src, dst := netip.AddrFrom16([16]byte(l3[8:24])), netip.AddrFrom16([16]byte(l3[24:40]))
		return fmt.Sprintf("%s ip6 %s > %s next %d", eth, src, dst, l3[6])
	case typ == 0x0806 && len(l3) >= 28:
		spa, tpa := netip.AddrFrom4([4]byte(l3[14:18])), netip.AddrFrom4([4]byte(l3[24:28]))
		return fmt.Sprintf("%s arp op %d %s > %s", eth, binary.BigEndian.Uint16(l3[6:]), spa, tpa)
	}
	return fmt.Sprintf("%s type %#04x", eth, typ)
}
