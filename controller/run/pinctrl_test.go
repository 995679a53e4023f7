package run

import (
	"testing"
)

// TestPinctrlWired: the controller runs the packet-in handler on br-int's
// management socket (it connects: the pinctrl connect counter is in the
// controller's registry), answers its key questions from the local
// datapaths (a local port, a remote port of a local datapath), and stops
// it with the controller.
func TestPinctrlWired(t *testing.T) {
	e := newEnv(t, "ch1", "172.16.0.1")
	e.populate()
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	e.vsctl("add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "external_ids:iface-id=a")
	c, cancel, done := startController(t, e, Options{Conditional: true})
	eventually(t, "pinctrl connected and resolving", func() string {
		if n := counterValue(t, c, "govn_pinctrl_connects_total"); n < 1 {
			return "pinctrl has not connected to br-int.mgmt"
		}
		dp := e.port("a")
		if dp == nil {
			return "no Port_Binding a"
		}
		if u, ok := c.keys.Datapath(1); !ok || u != dp.Datapath {
			return "datapath key 1 does not resolve to " + dp.Datapath + " (got " + u + ")"
		}
		for key, want := range map[uint32]string{1: "a", 3: "c"} {
			if n, ok := c.keys.PortName(1, key); !ok || n != want {
				return "port key does not resolve to " + want + " (got " + n + ")"
			}
		}
		if _, ok := c.keys.PortName(1, 99); ok {
			return "port key 99 resolves"
		}
		return ""
	})
	cancel()
	if err := done.wait(); err != nil {
		t.Fatal(err)
	}
	if c.pin != nil {
		t.Fatal("pinctrl still registered as running after the controller exited")
	}
}

func counterValue(t *testing.T, c *Controller, name string) float64 {
	t.Helper()
	mfs, err := c.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	return 0
}
