package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govn/govn/e2e/harness"
)

// Deleting a port stops its traffic; re-adding restores it. Both the logical
// port (ovn-nbctl lsp-del) and the VIF (ovs-vsctl del-port) are exercised.
func TestPortDeleteReadd(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1")
	a := o.addPod(ch1, "ls1", "a", 1)
	b := o.addPod(ch2, "ls1", "b", 2)
	o.reach(a, b, 2)

	t.Log("lsp-del b")
	o.nbctl("lsp-del", b.LSP)
	if o.waitHV {
		if o.hasInPortFlow(ch2, b.OFPort) {
			t.Fatalf("--wait=hv lsp-del returned but ch2 still classifies in_port=%d", b.OFPort)
		}
	}
	o.unreachable(a, b, 2)
	o.unreachable(b, a, 2)

	t.Log("lsp-add b again")
	o.nbctl("lsp-add", "ls1", b.LSP, "--", "lsp-set-addresses", b.LSP, b.MAC+" "+b.IP.Addr().String())
	o.reach(a, b, 3)
	o.reach(b, a, 3)

	t.Log("ovs-vsctl del-port b's VIF")
	if _, err := ch2.OVS.Vsctl("del-port", "br-int", b.Port); err != nil {
		t.Fatal(err)
	}
	// The controller releases the claim.
	o.eventually(20*time.Second, "Port_Binding of b released", func() error {
		if ch := o.bindingChassis(b.LSP); ch != "" {
			return fmt.Errorf("still bound to %s", ch)
		}
		return nil
	})
	o.unreachable(a, b, 2)

	t.Log("ovs-vsctl add-port b's VIF again")
	if _, err := ch2.OVS.Vsctl("add-port", "br-int", b.Port, "--", "set", "Interface", b.Port,
		"external_ids:iface-id="+b.LSP, "external_ids:attached-mac="+b.MAC); err != nil {
		t.Fatal(err)
	}
	o.eventually(20*time.Second, "Port_Binding of b claimed by ch2", func() error {
		if ch := o.bindingChassis(b.LSP); ch != ch2.Name {
			return fmt.Errorf("bound to %q", ch)
		}
		return nil
	})
	o.reach(a, b, 3)
	o.reach(b, a, 3)
}

var flowDuration = regexp.MustCompile(`duration=([0-9.]+)s`)

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// Restarting `govn controller` while a ping runs loses no packet: the new
// controller reconciles the installed flows instead of flushing them. Both
// controllers are restarted the planned way (SIGUSR1), then ch1's crashes
// (SIGKILL) and is started again.
func TestControllerRestartNoLoss(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1")
	a := o.addPod(ch1, "ls1", "a", 1)
	b := o.addPod(ch2, "ls1", "b", 2)
	c := o.addPod(ch1, "ls1", "c", 3)
	o.reach(a, b, 2)
	o.reach(a, c, 2)
	flowsBefore := map[*harness.Chassis]string{ch1: o.flowDump(ch1), ch2: o.flowDump(ch2)}
	restartsBegan := time.Now()

	// 100 echo requests per second for 12 s, across Geneve and locally.
	const count = 1200
	var pingers []*harness.Process
	for _, dst := range []*pod{b, c} {
		p, err := o.topo.StartProcess(harness.ProcessSpec{Name: "ping-a-" + dst.Name, Netns: a.Netns,
			Args: []string{"ping", "-n", "-q", "-i", "0.01", "-c", strconv.Itoa(count), "-W", "1", dst.IP.Addr().String()}})
		if err != nil {
			t.Fatal(err)
		}
		pingers = append(pingers, p)
	}
	time.Sleep(500 * time.Millisecond)
	for _, r := range []struct {
		ch  *harness.Chassis
		sig syscall.Signal
	}{{ch1, syscall.SIGUSR1}, {ch2, syscall.SIGUSR1}, {ch1, syscall.SIGKILL}} {
		ch := r.ch
		start := time.Now()
		o.restartController(ch, r.sig)
		// The new controller is connected and has caught up once it
		// acknowledges a new nb_cfg.
		if o.waitHV {
			if _, err := o.nbctlErr("--timeout=20", "--wait=hv", "sync"); err != nil {
				t.Fatalf("after restarting %s's controller: %v", ch.Name, err)
			}
		}
		t.Logf("%s: controller restarted (%v) and caught up in %v", ch.Name, r.sig, time.Since(start).Round(time.Millisecond))
	}
	for _, p := range pingers {
		if done, _ := p.Exited(); done {
			t.Fatalf("%s ended before the restarts did: the test proves nothing (machine too slow?)", p.Name)
		}
	}
	for _, p := range pingers {
		if ok, _ := p.Wait(30 * time.Second); !ok {
			t.Fatalf("%s did not finish", p.Name)
		}
		m := pingSummary.FindStringSubmatch(p.LogTail(5))
		if m == nil {
			t.Fatalf("%s: no summary: %s", p.Name, p.LogTail(5))
		}
		sent, _ := strconv.Atoi(m[1])
		recv, _ := strconv.Atoi(m[2])
		if sent != count || recv != sent {
			t.Errorf("%s across the controller restarts: %d sent, %d received (want %d, no loss)", p.Name, sent, recv, count)
		} else {
			t.Logf("%s: %d/%d answered across the restarts", p.Name, recv, sent)
		}
	}
	// Same flows as before the restarts, and none of them re-added: every
	// flow is older than the first restart (a flush and re-install would
	// reset their durations).
	age := time.Since(restartsBegan)
	for _, ch := range []*harness.Chassis{ch1, ch2} {
		if after := o.flowDump(ch); after != flowsBefore[ch] {
			t.Errorf("%s: flow table changed across the restart:\nbefore:\n%s\nafter:\n%s", ch.Name, flowsBefore[ch], after)
		}
		out, err := ch.OVS.Ofctl("-O", "OpenFlow15", "dump-flows", "br-int")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range flowDuration.FindAllStringSubmatch(out, -1) {
			d, err := time.ParseDuration(m[1] + "s")
			if err != nil {
				t.Fatal(err)
			}
			if d < age {
				t.Errorf("%s: a flow was (re)installed %v ago, after the restarts began %v ago: %s", ch.Name, d, age.Round(time.Millisecond), m[0])
			}
			n++
		}
		if n == 0 {
			t.Fatalf("%s: no flow durations in dump-flows:\n%s", ch.Name, out)
		}
	}
	o.reach(a, b, 2)
}

// flowDump is br-int's flow table without statistics, sorted.
func (o *ovn) flowDump(c *harness.Chassis) string {
	o.t.Helper()
	out, err := c.OVS.Ofctl("-O", "OpenFlow15", "--no-stats", "--sort", "dump-flows", "br-int")
	if err != nil {
		o.t.Fatal(err)
	}
	return out
}

// hasInPortFlow reports whether br-int of c has a table 0 flow for ofport.
func (o *ovn) hasInPortFlow(c *harness.Chassis, ofport int) bool {
	o.t.Helper()
	out, err := c.OVS.Ofctl("--no-stats", "dump-flows", "br-int", "table=0,in_port="+strconv.Itoa(ofport))
	if err != nil {
		o.t.Fatal(err)
	}
	return strings.Contains(out, "in_port=")
}

// bindingChassis is the name of the chassis a Port_Binding is bound to ("" if
// none or no such binding).
func (o *ovn) bindingChassis(lsp string) string {
	o.t.Helper()
	out, err := o.sbctlErr("--bare", "--columns=chassis", "find", "Port_Binding", "logical_port="+lsp)
	if err != nil {
		o.t.Fatal(err)
	}
	uuid := strings.TrimSpace(out)
	if uuid == "" {
		return ""
	}
	name, err := o.sbctlErr("--bare", "--columns=name", "list", "Chassis", uuid)
	if err != nil {
		o.t.Fatal(err)
	}
	return strings.TrimSpace(name)
}
