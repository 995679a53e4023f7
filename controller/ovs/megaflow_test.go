package ovs

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/internal/ovstest"
)

// A flow change must reach packets of connections that already have a
// datapath flow. The sequence below makes OVS 3.1.0's userspace datapath
// (without "dpif-netdev: Fix dpif_netdev_flow_put") keep a stale megaflow:
//
//  1. rules 10.1.2.0/24 → out and 10.3.0.0/16 → out; packets to 10.3.0.2
//     make a /16 megaflow (its datapath classifier subtable comes first),
//     then packets to 10.1.2.2 a /24 one.
//  2. 10.1.2.0/24 becomes 10.1.0.0/16 → ct(commit),out: the /24 megaflow is
//     good enough, its actions are modified in place; a packet to 10.1.0.2
//     misses it and makes an overlapping /16 megaflow (first subtable).
//  3. 10.1.0.0/16 → out (a modify_strict): the revalidator's in-place modify
//     of the /24 megaflow looks its key up and modifies the /16 one instead;
//     the /24 megaflow keeps ct(commit) and packets to 10.1.2.2 keep being
//     committed to conntrack although no rule says so any more.
//
// With the workaround (revalidator/purge after each committed change on
// affected versions) no megaflow is modified in place, so neither the
// conntrack check nor the dpctl-versus-ofproto/trace check can fail. On a
// fixed OVS the test passes without purging.
func TestFlowChangeReachesCachedDatapathFlows(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br-int"}})
	// Every packet that hits a megaflow refreshes its exact-match cache
	// entry, so later packets of the same flow take that megaflow
	// without a classifier lookup (the default inserts 1 in 100).
	if _, err := v.Vsctl("set", "Open_vSwitch", ".", "other_config:emc-insert-inv-prob=1"); err != nil {
		t.Fatal(err)
	}
	host := hostNetns(t, v)
	send := func(dst string, n int) {
		t.Helper()
		// No one answers; the echo requests only have to cross br-int.
		_ = exec.Command("ip", "netns", "exec", host, "ping", "-q", "-n", "-c", fmt.Sprint(n),
			"-i", "0.01", "-W", "0.2", dst).Run()
	}
	appctl := func(args ...string) string {
		t.Helper()
		out, err := v.Appctl(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	settle := func() {
		t.Helper()
		// Two full revalidation rounds after the change.
		appctl("revalidator/wait")
		appctl("revalidator/wait")
	}

	metrics := NewMetrics(nil)
	of, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	of.SetMetrics(metrics)
	other := ofctrl.Flow{Table: 0, Priority: 100, Cookie: 2, Match: "ip,in_port=1,ip_dst=10.3.0.0/16", Actions: "output:2"}
	sync := func(match, actions string) {
		t.Helper()
		mustSync(t, of, []ofctrl.Flow{other,
			{Table: 0, Priority: 100, Cookie: 1, Match: match, Actions: actions}}, nil)
		settle()
	}

	sync("ip,in_port=1,ip_dst=10.1.2.0/24", "output:2")
	send("10.3.0.2", 2)
	send("10.1.2.2", 3)
	sync("ip,in_port=1,ip_dst=10.1.0.0/16", "ct(commit),output:2")
	send("10.1.2.2", 2)
	send("10.1.0.2", 3)
	sync("ip,in_port=1,ip_dst=10.1.0.0/16", "output:2")
	t.Logf("datapath flows after the last change:\n%s", appctl("dpctl/dump-flows"))

	// Real packets: no rule commits to conntrack any more.
	appctl("dpctl/flush-conntrack")
	send("10.1.2.2", 3)
	send("10.1.0.2", 3)
	if ct := appctl("dpctl/dump-conntrack"); strings.TrimSpace(ct) != "" {
		t.Errorf("packets were committed to conntrack after the rule that did so was changed (stale datapath flow):\n%s\ndatapath flows:\n%s",
			ct, appctl("dpctl/dump-flows"))
	}
	// Every cached datapath flow does what the tables say for its key.
	checkDatapathMatchesTables(t, v)

	// A restarted controller reconciles a changed flow through ovs-ofctl:
	// that change is followed by a purge too.
	metrics2 := NewMetrics(nil)
	of2, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	of2.SetMetrics(metrics2)
	res := mustSync(t, of2, []ofctrl.Flow{other,
		{Table: 0, Priority: 100, Cookie: 1, Match: "ip,in_port=1,ip_dst=10.1.0.0/16", Actions: "drop"}}, nil)
	if len(res.Diff.ModFlows) != 1 {
		t.Fatalf("reconcile diff %v, want one modified flow", res.Diff)
	}

	if fixed, _ := megaflowBugFixed(vswitchdVersion(appctl("version"))); !fixed {
		if n := metricValue(t, metrics.DatapathPurges.WithLabelValues("ok")); n != 3 {
			t.Errorf("%v datapath purges on an affected ovs-vswitchd, want one per change (3)", n)
		}
		if n := metricValue(t, metrics2.DatapathPurges.WithLabelValues("ok")); n != 1 {
			t.Errorf("%v datapath purges after the restart reconcile, want 1", n)
		}
	}
}

// checkDatapathMatchesTables compares the actions of every IPv4 datapath
// flow from port 1 with what ofproto/trace computes for its destination.
func checkDatapathMatchesTables(t *testing.T, v *ovstest.OVS) {
	t.Helper()
	out, err := v.Appctl("dpctl/dump-flows")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`ipv4\(dst=([0-9.]+)/[0-9.]+,frag=no\).*actions:(.*)$`)
	n := 0
	for _, line := range strings.Split(out, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		tr, err := v.Appctl("ofproto/trace", "br-int", "in_port=1,ip,nw_dst="+m[1])
		if err != nil {
			t.Fatal(err)
		}
		const key = "Datapath actions: "
		i := strings.LastIndex(tr, key)
		if i < 0 {
			t.Fatalf("ofproto/trace to %s: no datapath actions:\n%s", m[1], tr)
		}
		want, _, _ := strings.Cut(tr[i+len(key):], "\n")
		if strings.TrimSpace(want) != strings.TrimSpace(m[2]) {
			t.Errorf("datapath flow to %s has actions %q, the tables say %q:\n%s", m[1], m[2], want, line)
		}
	}
	if n == 0 {
		t.Fatalf("no IPv4 datapath flow to check:\n%s", out)
	}
}

// hostNetns creates a namespace with two veths whose peers are br-int ports
// 1 (eth0, 10.0.0.1/8, static neighbours for the test's destinations) and 2.
func hostNetns(t *testing.T, v *ovstest.OVS) string {
	t.Helper()
	name := "gvh" + strings.TrimPrefix(filepath.Base(v.Dir()), "ovs")
	if len(name) > 15 {
		name = name[:15]
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	for i, dev := range []string{"eth0", "eth1"} {
		port := fmt.Sprintf("p%d", i+1)
		run("ip", "-n", name, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", v.Netns())
		run("ip", "-n", v.Netns(), "link", "set", port, "up")
		run("ip", "-n", name, "link", "set", dev, "up")
		if _, err := v.Vsctl("add-port", "br-int", port, "--", "set", "Interface", port,
			fmt.Sprintf("ofport_request=%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	run("ip", "-n", name, "addr", "add", "10.0.0.1/8", "dev", "eth0")
	for _, ip := range []string{"10.1.2.2", "10.1.0.2", "10.3.0.2"} {
		run("ip", "-n", name, "neigh", "add", ip, "lladdr", "00:00:00:00:00:02", "dev", "eth0")
	}
	// Both ports must be in the datapath before the first packet.
	if _, err := v.Vsctl("--timeout=10", "wait-until", "Interface", "p2", "ofport=2"); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestMegaflowBugVersions pins which ovs-vswitchd versions get the purge.
func TestMegaflowBugVersions(t *testing.T) {
	for v, want := range map[string]bool{
		"2.13.0": false, "2.17.7": false, "2.17.8": true, "3.0.0": false, "3.0.4": false,
		"3.0.5": true, "3.1.0": false, "3.1.2": false, "3.1.3": true, "3.2.0": true, "3.3.1": true,
		"4.0.0": true, "3.1.0.90": false,
	} {
		got, err := megaflowBugFixed(v)
		if err != nil || got != want {
			t.Errorf("megaflowBugFixed(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	if _, err := megaflowBugFixed("unknown"); err == nil {
		t.Error("megaflowBugFixed(unknown): no error")
	}
	if got := vswitchdVersion("ovs-vswitchd (Open vSwitch) 3.1.0\n"); got != "3.1.0" {
		t.Errorf("vswitchdVersion = %q", got)
	}
	show := "netdev@ovs-netdev: hit:221 missed:72\n  br-int:\n    br-int 65534/1: (tap)\n    vb 2/5: (system)\n" +
		"  br-phy:\n    br-phy 65534/3: (tap)\nsystem@ovs-system: hit:0 missed:0\n  br-ex:\n    br-ex 65534/1: (internal)\n"
	for br, want := range map[string]string{"br-int": "netdev", "br-phy": "netdev", "br-ex": "system", "vb": "", "nope": ""} {
		if got := bridgeDatapathType(show, br); got != want {
			t.Errorf("bridgeDatapathType(%s) = %q, want %q", br, got, want)
		}
	}
}

// TestUnixctlCallError: an unknown command is an error naming it, and the
// probe finds this instance's socket and datapath type.
func TestUnixctlCall(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br-int"}})
	ctl, err := vswitchdCtlPath(v.MgmtSock("br-int"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unixctlCall(context.Background(), ctl, "no/such-command"); err == nil || !strings.Contains(err.Error(), "no/such-command") {
		t.Errorf("unknown command: err = %v", err)
	}
	_, version, dpType, err := probeMegaflowBug(context.Background(), v.MgmtSock("br-int"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := v.Appctl("version")
	if err != nil {
		t.Fatal(err)
	}
	if version == "" || !strings.Contains(out, version) || dpType != "netdev" {
		t.Errorf("probe: version %q (ovs-appctl version: %q), datapath type %q (want netdev)", version, out, dpType)
	}
}
