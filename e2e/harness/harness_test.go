package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/controller/ovs"
	"github.com/govn/govn/internal/ovstest"
)

// l2Flows programs a chassis' br-int as a tiny L2 network over one Geneve
// VNI: local pods by MAC, remote pods through the tunnel, broadcast to all.
func l2Flows(local []*Pod, remote []*Pod, tunPort int, vni int) []ofctrl.Flow {
	var flows []ofctrl.Flow
	bcast := ""
	for _, p := range local {
		flows = append(flows,
			ofctrl.Flow{Table: 0, Priority: 100, Cookie: 1, Match: fmt.Sprintf("in_port=%d", p.OFPort), Actions: "resubmit(,1)"},
			ofctrl.Flow{Table: 1, Priority: 100, Cookie: 2, Match: "eth_dst=" + p.MAC, Actions: fmt.Sprintf("output:%d", p.OFPort)})
		bcast += fmt.Sprintf("output:%d,", p.OFPort)
	}
	for _, p := range remote {
		flows = append(flows, ofctrl.Flow{Table: 1, Priority: 100, Cookie: 3, Match: "eth_dst=" + p.MAC,
			Actions: fmt.Sprintf("set_field:%#x->tun_id,output:%d", vni, tunPort)})
	}
	flows = append(flows,
		ofctrl.Flow{Table: 0, Priority: 100, Cookie: 4, Match: fmt.Sprintf("in_port=%d,tun_id=%#x", tunPort, vni), Actions: "resubmit(,1)"},
		ofctrl.Flow{Table: 1, Priority: 90, Cookie: 5, Match: "eth_dst=ff:ff:ff:ff:ff:ff",
			Actions: bcast + fmt.Sprintf("set_field:%#x->tun_id,output:%d", vni, tunPort)})
	return flows
}

func TestTwoChassisGeneve(t *testing.T) {
	topo := Start(t, Options{Chassis: 2})
	ch1, ch2 := topo.Chassis[0], topo.Chassis[1]
	mk := func(c *Chassis, name string, n int) *Pod {
		p, err := c.AddPod(PodSpec{Name: name, IfaceID: "lsp-" + name, MAC: fmt.Sprintf("00:00:00:00:00:%02x", n),
			IP: netip.MustParsePrefix(fmt.Sprintf("10.0.0.%d/24", n))})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, c := mk(ch1, "a", 1), mk(ch1, "b", 2), mk(ch2, "c", 3)
	t.Logf("setup: %v for 2 chassis, then pods", topo.SetupTime)

	// Negative control: br-int is fail_mode=secure with no flows, so nothing
	// passes yet.
	if r, err := a.Ping(b.IP.Addr(), 1); err != nil || r.Received != 0 {
		t.Fatalf("ping without flows: %+v, %v (want total loss)", r, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type chassisState struct {
		vs  *ovs.VSwitch
		of  *ovs.OpenFlow
		tun int
	}
	st := map[*Chassis]*chassisState{}
	for _, pair := range [][2]*Chassis{{ch1, ch2}, {ch2, ch1}} {
		local, peer := pair[0], pair[1]
		vs, err := ovs.Connect(ctx, local.OVS.DBRemote(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer vs.Close()
		if _, err := vs.ReconcileTunnels(ctx, "br-int", []ovs.Tunnel{{Chassis: peer.Name, RemoteIP: peer.IP}}); err != nil {
			t.Fatal(err)
		}
		var tun int
		for tun == 0 {
			m, err := vs.TunnelPorts(ctx, "br-int")
			if err != nil {
				t.Fatal(err)
			}
			if tun = m[peer.Name]; tun == 0 {
				select {
				case <-vs.Changes():
				case <-ctx.Done():
					t.Fatal("no tunnel ofport")
				}
			}
		}
		of, err := ovs.NewOpenFlow(local.OVS.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
		if err != nil {
			t.Fatal(err)
		}
		st[local] = &chassisState{vs: vs, of: of, tun: tun}
	}
	flows1 := l2Flows([]*Pod{a, b}, []*Pod{c}, st[ch1].tun, 5)
	flows2 := l2Flows([]*Pod{c}, []*Pod{a, b}, st[ch2].tun, 5)
	for ch, fl := range map[*Chassis][]ofctrl.Flow{ch1: flows1, ch2: flows2} {
		res, err := st[ch].of.Sync(ctx, fl, nil)
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("%s: sync: %v %v", ch.Name, err, res.Rejected)
		}
	}

	// Same chassis.
	if r, err := a.Ping(b.IP.Addr(), 3); err != nil || r.Loss() != 0 {
		t.Fatalf("a -> b (same chassis): %+v, %v", r, err)
	}
	// Across Geneve; the first packet may be lost while OVS resolves the
	// tunnel neighbour.
	_, _ = a.Ping(c.IP.Addr(), 1)
	if r, err := a.Ping(c.IP.Addr(), 5); err != nil || r.Loss() != 0 {
		t.Fatalf("a -> c (Geneve): %+v, %v\n%s", r, err, tnlInfo(ch1))
	}
	if r, err := c.Ping(b.IP.Addr(), 3); err != nil || r.Loss() != 0 {
		t.Fatalf("c -> b (Geneve): %+v, %v", r, err)
	}
	// The traffic really went through the tunnel: its port counted packets.
	if out, err := ch2.OVS.Ofctl("dump-ports", "br-int", fmt.Sprint(st[ch2].tun)); err != nil || strings.Contains(out, "rx pkts=0,") {
		t.Fatalf("tunnel port on ch2 saw no packets: %s %v", out, err)
	}

	// TCP with payload across Geneve (fails silently if checksum offload
	// were left on in the pods).
	srv, err := c.ListenTCP(5000)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := a.TCPConnect(c.IP.Addr(), 5000, "hello-over-geneve\n", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(srv.LogTail(5), "hello-over-geneve") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not receive the payload; log: %q", srv.LogTail(5))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Restarting the OpenFlow side reconciles without touching traffic: a
	// fast ping runs while a fresh syncer (empty cache) syncs the same flows.
	pinger, err := topo.StartProcess(ProcessSpec{Name: "ping-a-c", Netns: a.Netns,
		Args: []string{"ping", "-n", "-q", "-i", "0.01", "-c", "150", "-W", "1", c.IP.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for ch, fl := range map[*Chassis][]ofctrl.Flow{ch1: flows1, ch2: flows2} {
		of, err := ovs.NewOpenFlow(ch.OVS.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := of.Sync(ctx, fl, nil)
		if err != nil || !res.Diff.Empty() {
			t.Fatalf("%s: restart sync: %v, diff %s", ch.Name, err, res.Diff)
		}
	}
	if done, _ := pinger.Wait(10 * time.Second); !done {
		t.Fatal("background ping did not finish")
	}
	m := pingSummary.FindStringSubmatch(pinger.LogTail(5))
	if m == nil || m[1] != m[2] {
		t.Fatalf("traffic interrupted during restart reconcile: %q", pinger.LogTail(5))
	}

	// Modifying flows in place (new actions, same effect) under traffic:
	// modify_strict in one bundle, no loss.
	pinger2, err := topo.StartProcess(ProcessSpec{Name: "ping-a-c-2", Netns: a.Netns,
		Args: []string{"ping", "-n", "-q", "-i", "0.01", "-c", "150", "-W", "1", c.IP.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	modified := append([]ofctrl.Flow(nil), flows1...)
	nmod := 0
	for i := range modified {
		if modified[i].Table == 1 {
			modified[i].Actions = "set_field:0x1->reg0," + modified[i].Actions
			nmod++
		}
	}
	res, err := st[ch1].of.Sync(ctx, modified, nil)
	if err != nil || len(res.Diff.ModFlows) != nmod || len(res.Diff.AddFlows)+len(res.Diff.DelFlows)+len(res.Diff.ReplFlows) != 0 {
		t.Fatalf("modify sync: %v %s", err, res.Diff)
	}
	if done, _ := pinger2.Wait(10 * time.Second); !done {
		t.Fatal("background ping did not finish")
	}
	if m := pingSummary.FindStringSubmatch(pinger2.LogTail(5)); m == nil || m[1] != m[2] {
		t.Fatalf("traffic interrupted while modifying flows: %q", pinger2.LogTail(5))
	}

	// Removing the remote MAC's flow (exact change) cuts a -> c only.
	var cut []ofctrl.Flow
	for _, f := range modified {
		if f.Table != 1 || f.Match != "eth_dst="+c.MAC {
			cut = append(cut, f)
		}
	}
	res, err = st[ch1].of.Sync(ctx, cut, nil)
	if err != nil || len(res.Diff.DelFlows) != 1 || len(res.Diff.AddFlows)+len(res.Diff.ModFlows) != 0 {
		t.Fatalf("cut sync: %v %s", err, res.Diff)
	}
	if r, _ := a.Ping(c.IP.Addr(), 2); r.Received != 0 {
		t.Fatalf("a -> c after removing its flow: %+v", r)
	}
	if r, err := a.Ping(b.IP.Addr(), 2); err != nil || r.Loss() != 0 {
		t.Fatalf("a -> b after removing a -> c: %+v, %v", r, err)
	}
}

func tnlInfo(c *Chassis) string {
	a, _ := c.OVS.Appctl("tnl/neigh/show")
	b, _ := c.OVS.Appctl("ovs/route/show")
	return a + b
}

func TestProcessAndTeardown(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	topo, err := New(Options{Chassis: 1})
	if err != nil {
		t.Fatal(err)
	}
	ch := topo.Chassis[0]
	p, err := ch.AddPod(PodSpec{Name: "x", IP: netip.MustParsePrefix("10.1.0.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	if p.MAC == "" || p.OFPort <= 0 {
		t.Fatalf("pod = %+v", p)
	}
	if _, err := ch.AddPod(PodSpec{Name: "Bad_Name", IP: p.IP}); err == nil {
		t.Fatal("bad pod name accepted")
	}
	// A process inside the chassis namespace sees that namespace and the
	// chassis' OVS.
	proc, err := ch.StartProcess("sleeper", "sh", "-c", "ip -o link show br-phy; ovs-vsctl br-exists br-int && echo has-br-int; exec sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(proc.LogTail(3), "br-phy") || !strings.Contains(proc.LogTail(3), "has-br-int") {
		if time.Now().After(deadline) {
			t.Fatalf("process output: %q", proc.LogTail(3))
		}
		time.Sleep(10 * time.Millisecond)
	}
	q, err := ch.AddPod(PodSpec{Name: "y", IfaceID: "lsp-y", IP: netip.MustParsePrefix("10.1.0.2/24")})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(); err != nil {
		t.Fatal(err)
	}
	if out, _ := ch.OVS.Vsctl("list-ports", "br-int"); strings.Contains(out, "vy") || !strings.Contains(out, "vx") {
		t.Fatalf("ports after deleting pod y: %q", out)
	}
	if root, err := RepoRoot(); err != nil || root == "" {
		t.Fatalf("RepoRoot: %q, %v", root, err)
	}
	pids := ch.OVS.Pids()
	prefix := topo.Prefix
	dir := topo.Dir
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := proc.Exited(); !ok {
		t.Fatal("process alive after Close")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), prefix) {
		t.Fatalf("namespaces left: %s", out)
	}
	for _, pid := range pids {
		// A zombie, or a process reaped between two looks, is dead.
		if ovstest.Alive(pid) {
			t.Fatalf("OVS pid %d alive after Close", pid)
		}
	}
	if _, err := exec.Command("ls", dir).Output(); err == nil {
		t.Fatalf("dir %s left", dir)
	}
}

// BenchmarkSetup measures building and tearing down N chassis with one pod
// each.
func BenchmarkSetup(b *testing.B) {
	if err := Available(); err != nil {
		b.Skip(err)
	}
	for _, n := range []int{2, 3} {
		b.Run(fmt.Sprintf("chassis=%d", n), func(b *testing.B) {
			for b.Loop() {
				topo, err := New(Options{Chassis: n})
				if err != nil {
					b.Fatal(err)
				}
				for i, c := range topo.Chassis {
					if _, err := c.AddPod(PodSpec{Name: fmt.Sprintf("p%d", i), IP: netip.MustParsePrefix(fmt.Sprintf("10.0.0.%d/24", i+1))}); err != nil {
						b.Fatal(err)
					}
				}
				if err := topo.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
