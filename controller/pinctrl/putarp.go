package pinctrl

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/lflow/action"
)

// Learned is one MAC binding learned by put_arp (or put_nd): on logical
// datapath Datapath (tunnel key), logical port PortKey saw IP at MAC.
type Learned struct {
	Datapath uint32
	PortKey  uint32
	IP       netip.Addr
	MAC      net.HardwareAddr
}

func (l Learned) String() string {
	return fmt.Sprintf("dp %d port %d %s is-at %s", l.Datapath, l.PortKey, l.IP, l.MAC)
}

// HandlePutARP decodes the arguments of a put_arp packet-in: datapath key in
// metadata, logical port key in reg14, IPv4 address in reg0, MAC in the
// packet's Ethernet source (see action.OpPutARP).
func HandlePutARP(p *ofp.PacketIn) (Learned, error) {
	return putMAC(p, "put_arp", false)
}

// HandlePutND is HandlePutARP for put_nd: the IPv6 address is in xxreg0
// (reg0 holds its most significant 32 bits, reg3 the least).
func HandlePutND(p *ofp.PacketIn) (Learned, error) {
	return putMAC(p, "put_nd", true)
}

// keysAndMAC returns the datapath key (metadata), logical port key (reg14)
// and Ethernet source of a packet-in.
func keysAndMAC(p *ofp.PacketIn, what string) (dp, port uint32, mac net.HardwareAddr, err error) {
	if len(p.Packet) < 14 {
		return 0, 0, nil, fmt.Errorf("%s: packet of %d bytes has no Ethernet header", what, len(p.Packet))
	}
	md, ok := p.MetadataField()
	if !ok || md == 0 || md > 0xffffff {
		return 0, 0, nil, fmt.Errorf("%s: metadata (datapath key) %d missing or out of range", what, md)
	}
	port, _ = p.Reg(14)
	if port == 0 {
		return 0, 0, nil, fmt.Errorf("%s: reg14 (logical port key) is 0", what)
	}
	mac = net.HardwareAddr(append([]byte(nil), p.Packet[6:12]...))
	if mac[0]&1 != 0 {
		return 0, 0, nil, fmt.Errorf("%s: %s is a multicast MAC", what, mac)
	}
	return uint32(md), port, mac, nil
}

func putMAC(p *ofp.PacketIn, what string, v6 bool) (Learned, error) {
	dp, port, mac, err := keysAndMAC(p, what)
	if err != nil {
		return Learned{}, err
	}
	l := Learned{Datapath: dp, PortKey: port, MAC: mac}
	if v6 {
		var a [16]byte
		for i := 0; i < 4; i++ {
			r, _ := p.Reg(i)
			binary.BigEndian.PutUint32(a[4*i:], r)
		}
		l.IP = netip.AddrFrom16(a)
	} else {
		var a [4]byte
		r, _ := p.Reg(0)
		binary.BigEndian.PutUint32(a[:], r)
		l.IP = netip.AddrFrom4(a)
	}
	return l, nil
}

// FDBEntry is one entry learned by put_fdb: on datapath Datapath, MAC is
// behind logical port PortKey.
type FDBEntry struct {
	Datapath, PortKey uint32
	MAC               net.HardwareAddr
}

// HandlePutFDB decodes a put_fdb packet-in: datapath key in metadata, port
// key in reg14, MAC in eth.src.
func HandlePutFDB(p *ofp.PacketIn) (FDBEntry, error) {
	dp, port, mac, err := keysAndMAC(p, "put_fdb")
	return FDBEntry{Datapath: dp, PortKey: port, MAC: mac}, err
}

// PlanFDB turns learned FDB entries into rows to insert and updates of the
// port key of existing rows (UUID → port key); existing is keyed by MAC
// (lower-case, colon-separated) and datapath key. The last entry for a
// (MAC, datapath) wins.
func PlanFDB(learned []FDBEntry, existing func(mac string, dp uint32) (uuid string, port uint32, ok bool)) (insert []FDBEntry, update map[string]uint32) {
	type key struct {
		mac string
		dp  uint32
	}
	want := map[key]FDBEntry{}
	var order []key
	for _, e := range learned {
		k := key{e.MAC.String(), e.Datapath}
		if _, seen := want[k]; !seen {
			order = append(order, k)
		}
		want[k] = e
	}
	update = map[string]uint32{}
	for _, k := range order {
		e := want[k]
		if uuid, port, ok := existing(k.mac, k.dp); ok {
			if port != e.PortKey {
				update[uuid] = e.PortKey
			}
			continue
		}
		insert = append(insert, e)
	}
	return insert, update
}

// Decode parses a packet-in's userdata with action.ParseUserData.
func Decode(p *ofp.PacketIn) (action.UserData, error) {
	return action.ParseUserData(p.Userdata)
}

// Binding is a desired MAC_Binding row (resolved names, as stored in SB).
type Binding struct {
	// DatapathUUID is the Datapath_Binding row.
	DatapathUUID string
	LogicalPort  string
	IP           string
	MAC          string
}

// Resolver maps keys to southbound names.
type Resolver interface {
	// Datapath returns the Datapath_Binding UUID of tunnel key dp.
	Datapath(dp uint32) (string, bool)
	// PortName returns the logical port with tunnel key port on dp.
	PortName(dp, port uint32) (string, bool)
}

// Existing is a MAC_Binding row already in SB (UUID and the columns that
// matter), keyed by logical port and IP.
type Existing struct {
	UUID, Datapath, MAC string
}

// BindingKey identifies a MAC_Binding: OVN keys them by (logical_port, ip).
type BindingKey struct{ LogicalPort, IP string }

// Plan turns learned bindings into the MAC_Binding rows to insert and to
// update (existing rows whose MAC or datapath changed), deduplicating the
// batch (the last learned MAC for a key wins). Bindings that do not resolve
// are returned as errors and skipped.
func Plan(learned []Learned, r Resolver, existing func(BindingKey) (Existing, bool)) (insert []Binding, update map[string]Binding, errs []error) {
	want := map[BindingKey]Binding{}
	var order []BindingKey
	for _, l := range learned {
		dp, ok := r.Datapath(l.Datapath)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no Datapath_Binding with tunnel key %d", l, l.Datapath))
			continue
		}
		name, ok := r.PortName(l.Datapath, l.PortKey)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no Port_Binding with tunnel key %d on datapath %d", l, l.PortKey, l.Datapath))
			continue
		}
		k := BindingKey{LogicalPort: name, IP: l.IP.String()}
		if _, seen := want[k]; !seen {
			order = append(order, k)
		}
		want[k] = Binding{DatapathUUID: dp, LogicalPort: name, IP: k.IP, MAC: l.MAC.String()}
	}
	update = map[string]Binding{}
	for _, k := range order {
		b := want[k]
		if e, ok := existing(k); ok {
			if e.MAC != b.MAC || e.Datapath != b.DatapathUUID {
				update[e.UUID] = b
			}
			continue
		}
		insert = append(insert, b)
	}
	return insert, update, errs
}
