package pinctrl

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestRunReconnects: ACL log() packet-ins are counted; after ovs-vswitchd
// restarts, Run reconnects by itself and handles packet-ins again.
func TestRunReconnects(t *testing.T) {
	v := startOVS(t)
	// log(name="acl1", severity=info, verdict=drop)
	flow := "table=0,priority=100,arp,actions=controller(userdata=00.00.00.0c.01.03.61.63.6c.31)\n"
	addFlow := func() {
		t.Helper()
		if out, err := v.OfctlStdin(flow, "add-flows", "br-int", "-"); err != nil {
			t.Fatalf("add-flows: %v %s", err, out)
		}
	}
	addFlow()
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{MgmtSock: v.MgmtSock("br-int"), Resolver: mapResolver{}, Log: zaptest.NewLogger(t),
			Metrics: reg, MaxBackoff: 200 * time.Millisecond})
	}()
	defer func() { cancel(); <-done }()
	waitLogged := func(above float64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for counter(t, reg, "govn_pinctrl_acl_log_total") <= above {
			if time.Now().After(deadline) {
				t.Fatalf("acl log counter stayed at %v", above)
			}
			if out, err := v.Ofctl("packet-out", "br-int", "in_port=controller packet="+hex.EncodeToString(arpReply)+" actions=table"); err != nil {
				t.Logf("packet-out: %v %s", err, out) // vswitchd may be starting
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitLogged(0)
	if err := v.RestartVswitchd(); err != nil {
		t.Fatal(err)
	}
	addFlow()
	n := counter(t, reg, "govn_pinctrl_acl_log_total")
	waitLogged(n)
	if c := counter(t, reg, "govn_pinctrl_connects_total"); c < 2 {
		t.Errorf("connects = %v, want at least 2", c)
	}
	if e := counter(t, reg, "govn_pinctrl_errors_total"); e != 0 {
		t.Errorf("errors = %v", e)
	}
}
