package pinctrl

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/lflow/action"
)

func pin(packet []byte, md uint64, regs map[int]uint32) *ofp.PacketIn {
	p := &ofp.PacketIn{Packet: packet, Metadata: []ofp.Field{ofp.Metadata(md)}}
	for n, v := range regs {
		p.Metadata = append(p.Metadata, ofp.Reg(n, v))
	}
	return p
}

func TestHandlePutARP(t *testing.T) {
	l, err := HandlePutARP(pin(arpReply, 7, map[int]uint32{14: 5, 0: 0x0a000002}))
	if err != nil {
		t.Fatal(err)
	}
	want := Learned{Datapath: 7, PortKey: 5, IP: netip.MustParseAddr("10.0.0.2"), MAC: net.HardwareAddr{0x0a, 0, 0, 0, 0, 2}}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("got %v, want %v", l, want)
	}
	for _, c := range []struct {
		p    *ofp.PacketIn
		want string
	}{
		{pin(arpReply[:10], 7, map[int]uint32{14: 5}), "no Ethernet header"},
		{pin(arpReply, 0, map[int]uint32{14: 5}), "metadata (datapath key) 0"},
		{pin(arpReply, 7, nil), "reg14 (logical port key) is 0"},
		{pin(append([]byte{0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}, arpReply[12:]...), 7, map[int]uint32{14: 5}), "multicast MAC"},
	} {
		if _, err := HandlePutARP(c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

type mapResolver struct {
	dps   map[uint32]string
	ports map[[2]uint32]string
}

func (r mapResolver) Datapath(dp uint32) (string, bool) { s, ok := r.dps[dp]; return s, ok }
func (r mapResolver) PortName(dp, p uint32) (string, bool) {
	s, ok := r.ports[[2]uint32{dp, p}]
	return s, ok
}

func TestPlan(t *testing.T) {
	r := mapResolver{dps: map[uint32]string{7: "dp7"}, ports: map[[2]uint32]string{{7, 5}: "lp1", {7, 6}: "lp2"}}
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	ip := netip.MustParseAddr
	learned := []Learned{
		{7, 5, ip("10.0.0.2"), mac("0a:00:00:00:00:01")},
		{7, 5, ip("10.0.0.2"), mac("0a:00:00:00:00:02")}, // later wins
		{7, 6, ip("10.0.0.3"), mac("0a:00:00:00:00:03")}, // exists, unchanged
		{7, 6, ip("10.0.0.4"), mac("0a:00:00:00:00:04")}, // exists, new MAC
		{8, 5, ip("10.0.0.5"), mac("0a:00:00:00:00:05")}, // unknown datapath
		{7, 9, ip("10.0.0.6"), mac("0a:00:00:00:00:06")}, // unknown port
	}
	existing := map[BindingKey]Existing{
		{"lp2", "10.0.0.3"}: {UUID: "u3", Datapath: "dp7", MAC: "0a:00:00:00:00:03"},
		{"lp2", "10.0.0.4"}: {UUID: "u4", Datapath: "dp7", MAC: "0a:00:00:00:00:ff"},
	}
	ins, upd, errs := Plan(learned, r, func(k BindingKey) (Existing, bool) { e, ok := existing[k]; return e, ok })
	if want := []Binding{{"dp7", "lp1", "10.0.0.2", "0a:00:00:00:00:02"}}; !reflect.DeepEqual(ins, want) {
		t.Errorf("insert = %v, want %v", ins, want)
	}
	if want := map[string]Binding{"u4": {"dp7", "lp2", "10.0.0.4", "0a:00:00:00:00:04"}}; !reflect.DeepEqual(upd, want) {
		t.Errorf("update = %v, want %v", upd, want)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "no Datapath_Binding with tunnel key 8") ||
		!strings.Contains(errs[1].Error(), "no Port_Binding with tunnel key 9 on datapath 7") {
		t.Errorf("errs = %v", errs)
	}
}

func TestHandleLog(t *testing.T) {
	ud, err := action.ParseUserData([]byte{0, 0, 0, 12, 1, 3, 'a', 'c', 'l', '1'})
	if err != nil {
		t.Fatal(err)
	}
	e := HandleLog(ud, arpReply)
	want := LogEntry{Name: "acl1", Verdict: "drop", Severity: "info",
		Packet: "0a:00:00:00:00:02 > 0a:00:00:00:00:01 arp op 2 10.0.0.2 > 10.0.0.1"}
	if e != want {
		t.Errorf("got %+v, want %+v", e, want)
	}
	if s := Summary(arpReply[:13]); s != "truncated frame (13 bytes)" {
		t.Errorf("summary = %q", s)
	}
}

func TestHandlePutNDAndFDB(t *testing.T) {
	l, err := HandlePutND(pin(arpReply, 7, map[int]uint32{14: 5, 0: 0xfd000000, 3: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if l.IP != netip.MustParseAddr("fd00::2") || l.PortKey != 5 || l.Datapath != 7 {
		t.Errorf("put_nd = %v", l)
	}
	e, err := HandlePutFDB(pin(arpReply, 7, map[int]uint32{14: 6}))
	if err != nil || e.PortKey != 6 || e.Datapath != 7 || e.MAC.String() != "0a:00:00:00:00:02" {
		t.Errorf("put_fdb = %v, %v", e, err)
	}
	if _, err := HandlePutFDB(pin(arpReply, 7, nil)); err == nil || !strings.Contains(err.Error(), "put_fdb: reg14") {
		t.Errorf("err = %v", err)
	}
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	ins, upd := PlanFDB([]FDBEntry{{7, 5, mac("0a:00:00:00:00:01")}, {7, 6, mac("0a:00:00:00:00:01")},
		{7, 5, mac("0a:00:00:00:00:02")}, {7, 5, mac("0a:00:00:00:00:03")}},
		func(m string, dp uint32) (string, uint32, bool) {
			switch m {
			case "0a:00:00:00:00:02":
				return "u2", 9, true
			case "0a:00:00:00:00:03":
				return "u3", 5, true
			}
			return "", 0, false
		})
	if want := []FDBEntry{{7, 6, mac("0a:00:00:00:00:01")}}; !reflect.DeepEqual(ins, want) {
		t.Errorf("insert = %v", ins)
	}
	if want := map[string]uint32{"u2": 5}; !reflect.DeepEqual(upd, want) {
		t.Errorf("update = %v", upd)
	}
}
