package physical

import (
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/lflow/of"
)

// topo: datapath 1 (switch) with local VIFs a (key 1, ofport 1) and b (key 2,
// ofport 2), VIF c (key 3) on chassis ch2, VIF d (key 4) on ch3, e (key 5)
// unbound, multicast group _MC_flood (key 32768) with all of them. Datapath
// 7 is not local (only a port on ch2) and must produce nothing.
func topo() *Input {
	return &Input{
		Chassis: "ch1",
		Ports: []Port{
			{Name: "a", Datapath: 1, Key: 1, Chassis: "ch1"},
			{Name: "b", Datapath: 1, Key: 2, Chassis: "ch1"},
			{Name: "c", Datapath: 1, Key: 3, Chassis: "ch2"},
			{Name: "d", Datapath: 1, Key: 4, Chassis: "ch3"},
			{Name: "e", Datapath: 1, Key: 5},
			{Name: "x", Datapath: 7, Key: 1, Chassis: "ch2"},
		},
		Groups: []MulticastGroup{
			{Datapath: 1, Key: 32768, Name: "_MC_flood", Ports: []string{"a", "b", "c", "d", "e"}},
			{Datapath: 7, Key: 32768, Name: "_MC_flood", Ports: []string{"x"}},
		},
		VIFs:        map[string]uint32{"a": 1, "b": 2, "zz": 9},
		Tunnels:     map[string]uint32{"ch2": 10, "ch3": 11},
		Zones:       map[string]uint16{"a": 1, "b": 2},
		MACBindings: []MACBinding{{Datapath: 1, Port: 3, IP: netip.MustParseAddr("10.0.0.3"), MAC: 0x0a0000000003}},
		FDBs:        []FDB{{Datapath: 1, Port: 3, MAC: 0x0a0000000033}, {Datapath: 7, Port: 1, MAC: 0x0a0000000077}},
	}
}

func TestLocalDatapaths(t *testing.T) {
	in := topo()
	got := LocalDatapaths(in)
	if len(got) != 1 || !got[1] {
		t.Fatalf("LocalDatapaths = %v, want {1}", got)
	}
	// A patch pair from datapath 1 to datapath 2, and 2 to 3: both become local.
	in.Ports = append(in.Ports,
		Port{Name: "p12", Datapath: 1, Key: 9, Type: TypePatch, Peer: "p21"},
		Port{Name: "p21", Datapath: 2, Key: 1, Type: TypePatch, Peer: "p12"},
		Port{Name: "p23", Datapath: 2, Key: 2, Type: TypePatch, Peer: "p32"},
		Port{Name: "p32", Datapath: 3, Key: 1, Type: TypePatch, Peer: "p23"})
	got = LocalDatapaths(in)
	if len(got) != 3 || !got[1] || !got[2] || !got[3] {
		t.Fatalf("LocalDatapaths with patches = %v, want {1,2,3}", got)
	}
	// Without a local VIF nothing is local.
	in.VIFs = nil
	if got := LocalDatapaths(in); len(got) != 0 {
		t.Fatalf("no VIFs: LocalDatapaths = %v", got)
	}
}

func TestFlowsText(t *testing.T) {
	text := of.FlowsString(Flows(topo()))
	for _, want := range []string{
		"table=0, priority=100, cookie=0x0, in_port=1 actions=set_field:0x1->metadata,set_field:0x1->reg14,set_field:0x1/0xffff->reg13,resubmit(,8)",
		"table=0, priority=100, cookie=0x0, in_port=10 actions=move:tun_id[0..23]->metadata[0..23],move:tun_metadata0[16..30]->reg14[0..14],move:tun_metadata0[0..15]->reg15[0..15],set_field:0x2/0x2->reg10,resubmit(,42)",
		"table=41, priority=100, cookie=0x0, reg15=0x3,metadata=0x1 actions=set_field:0x1->tun_id,set_field:0x3->tun_metadata0,move:reg14[0..14]->tun_metadata0[16..30],output:10",
		"table=78, priority=100, cookie=0x0, reg0=0xa000003,reg15=0x3,metadata=0x1 actions=set_field:0a:00:00:00:00:03->eth_dst",
		"table=79, priority=100, cookie=0x0, metadata=0x1,eth_dst=0a:00:00:00:00:33 actions=set_field:0x3->reg15",
		"table=80, priority=100, cookie=0x0, reg14=0x3,metadata=0x1,eth_src=0a:00:00:00:00:33 actions=set_field:0x100/0x100->reg10",
		"table=81, priority=100, cookie=0x0, reg0=0xa000003,reg14=0x3,metadata=0x1,eth_src=0a:00:00:00:00:03 actions=set_field:0x40/0x40->reg10",
		"table=82, priority=100, cookie=0x0, reg0=0xa000003,reg14=0x3,metadata=0x1 actions=set_field:0x40/0x40->reg10",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("missing flow\n  %s\nin\n%s", want, text)
		}
	}
	// Nothing for datapath 7, the unbound port e, or the interface zz
	// without a Port_Binding.
	for _, bad := range []string{"metadata=0x7", "reg15=0x5,", "in_port=9 ", "0a:00:00:00:00:77"} {
		if strings.Contains(text, bad) {
			t.Errorf("unexpected %q in\n%s", bad, text)
		}
	}
	// Flows are deterministic.
	if again := of.FlowsString(Flows(topo())); again != text {
		t.Errorf("Flows not deterministic")
	}
}

func TestAssignZones(t *testing.T) {
	z, err := AssignZones([]string{"b", "a", "c", "a"}, map[string]uint16{"c": 1, "gone": 2})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint16{"c": 1, "a": 2, "b": 3}
	if fmt.Sprint(z) != fmt.Sprint(want) {
		t.Fatalf("AssignZones = %v, want %v", z, want)
	}
	many := make([]string, 65536)
	for i := range many {
		many[i] = fmt.Sprintf("p%d", i)
	}
	if _, err := AssignZones(many, nil); err == nil || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("65536 ports: err = %v, want exhausted", err)
	}
}

// TestTraceRealOVS installs the physical flows plus a minimal logical
// pipeline (ingress table 0: eth.dst → outport, output; egress table 0:
// output) into a real br-int with two Geneve tunnel ports and checks with
// ofproto/trace where packets go.
func TestTraceRealOVS(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{Bridges: []string{"br-int"}, PrivateNetns: true})
	mustVsctl := func(args ...string) {
		t.Helper()
		if out, err := v.Vsctl(args...); err != nil {
			t.Fatalf("ovs-vsctl %v: %v %s", args, err, out)
		}
	}
	// Local VIFs a, b (ofport 1, 2) and tunnels to ch2, ch3 (ofport 10, 11).
	mustVsctl("add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "ofport_request=1")
	mustVsctl("add-port", "br-int", "vb", "--", "set", "Interface", "vb", "type=internal", "ofport_request=2")
	for i, ch := range []string{"ch2", "ch3"} {
		mustVsctl("add-port", "br-int", "tun-"+ch, "--", "set", "Interface", "tun-"+ch, "type=geneve",
			fmt.Sprintf("options:remote_ip=172.16.0.%d", i+2), "options:key=flow", "options:csum=true",
			fmt.Sprintf("ofport_request=%d", 10+i))
	}
	// Underlay for native tunneling: br-phy with 172.16.0.1/24 in the
	// instance's namespace, and static neighbours for the remote chassis.
	mustVsctl("add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
		"--", "add-port", "br-phy", "ul", "--", "set", "Interface", "ul", "type=internal")
	for _, args := range [][]string{{"addr", "add", "172.16.0.1/24", "dev", "br-phy"}, {"link", "set", "br-phy", "up"}} {
		if out, err := exec.Command("ip", append([]string{"-n", v.Netns()}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	for _, ip := range []string{"172.16.0.2", "172.16.0.3"} {
		if out, err := v.Appctl("tnl/neigh/set", "br-phy", ip, "aa:55:aa:55:00:0"+ip[len(ip)-1:]); err != nil {
			t.Fatalf("tnl/neigh/set: %v %s", err, out)
		}
	}
	waitRoute(t, v)
	if out, err := v.Ofctl("add-tlv-map", "br-int", controller.TLVMap); err != nil {
		t.Fatalf("add-tlv-map: %v %s", err, out)
	}
	flows := Flows(topo())
	text := of.FlowsString(flows)
	// Minimal logical pipeline in ovs-ofctl text.
	text += "table=8,priority=50,metadata=0x1,dl_dst=00:00:00:00:00:01 actions=set_field:0x1->reg15,resubmit(,41)\n" +
		"table=8,priority=50,metadata=0x1,dl_dst=00:00:00:00:00:02 actions=set_field:0x2->reg15,resubmit(,41)\n" +
		"table=8,priority=50,metadata=0x1,dl_dst=00:00:00:00:00:03 actions=set_field:0x3->reg15,resubmit(,41)\n" +
		"table=8,priority=40,metadata=0x1,dl_dst=ff:ff:ff:ff:ff:ff actions=set_field:0x8000->reg15,resubmit(,41)\n" +
		"table=44,priority=0 actions=resubmit(,77)\n"
	if out, err := v.OfctlStdin(text, "-O", "OpenFlow15", "add-flows", "br-int", "-"); err != nil {
		t.Fatalf("add-flows: %v %s\n%s", err, out, text)
	}
	trace := func(flow string) string {
		t.Helper()
		out, err := v.Appctl("ofproto/trace", "br-int", flow)
		if err != nil {
			t.Fatalf("trace %s: %v %s", flow, err, out)
		}
		i := strings.Index(out, "Datapath actions:")
		if i < 0 {
			t.Fatalf("trace %s: no datapath actions:\n%s", flow, out)
		}
		return strings.TrimSpace(out[i+len("Datapath actions:"):])
	}
	portNo := func(name string) string {
		out, err := v.Appctl("dpif/show")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`\b` + name + ` \d+/(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no datapath port for %s in\n%s", name, out)
		}
		return m[1]
	}
	vb := portNo("vb")
	va := portNo("va")

	// a → b: local delivery.
	if got := trace("in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02"); got != vb {
		t.Errorf("a→b: datapath actions %q, want %q", got, vb)
	}
	// a → c: Geneve to ch2 with VNI 1 and option (1<<16 | 3).
	got := trace("in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:03")
	if !strings.Contains(got, "vni=0x1,") || !strings.Contains(got, "dst=172.16.0.2") ||
		!strings.Contains(got, "len=4,0x10003") {
		t.Errorf("a→c: datapath actions %q, want tunnel to 172.16.0.2 with tun_id 1 and option 0x10003", got)
	}
	// a → broadcast: to ch2 and ch3 once each, and to b, not back to a.
	got = trace("in_port=1,dl_src=00:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff")
	if strings.Count(got, "tnl_push") != 2 || !strings.Contains(got, "0x18000") || !strings.Contains(got, "dst=172.16.0.2") ||
		!strings.Contains(got, "dst=172.16.0.3") || !strings.HasSuffix(got, ","+vb) && !strings.Contains(got, ","+vb+",") {
		t.Errorf("a→flood: datapath actions %q, want 2 tunnels and %s", got, vb)
	}
	if regexp.MustCompile(`(^|,)` + va + `(,|$)`).MatchString(got) {
		t.Errorf("a→flood: delivered back to a: %q", got)
	}
	// From the tunnel of ch2: VNI 1, option inport 3 → outport 1 (a).
	got = trace("in_port=10,tun_id=0x1,tun_src=172.16.0.2,tun_dst=172.16.0.1,tun_metadata0=0x30001,dl_dst=00:00:00:00:00:01")
	if got != va {
		t.Errorf("tunnel→a: datapath actions %q, want %q", got, va)
	}
	// From the tunnel, multicast: local members a and b, nothing back out.
	got = trace("in_port=10,tun_id=0x1,tun_src=172.16.0.2,tun_dst=172.16.0.1,tun_metadata0=0x38000,dl_dst=ff:ff:ff:ff:ff:ff")
	if got != va+","+vb {
		t.Errorf("tunnel→flood: datapath actions %q, want %q", got, va+","+vb)
	}
	// Unknown in_port (no binding): dropped.
	if got := trace("in_port=3,dl_dst=00:00:00:00:00:02"); got != "drop" {
		t.Errorf("unknown port: %q, want drop", got)
	}
}

// waitRoute waits until ovs-vswitchd has learned the underlay route.
func waitRoute(t *testing.T, v *ovstest.OVS) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := v.Appctl("ovs/route/show")
		if err == nil && strings.Contains(out, "172.16.0.0/24") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no underlay route in ovs/route/show: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
