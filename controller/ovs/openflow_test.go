package ovs

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/internal/ovstest"
)

// Flows in the text lflow/of prints (the syntax the native encoder reads),
// which is not OVS's canonical form (ip_src, set_field, reg names…), so the
// restart reconciliation has to normalize them.
func sampleFlows() ([]ofctrl.Flow, []ofctrl.Group) {
	flows := []ofctrl.Flow{
		{Table: 0, Priority: 100, Cookie: 0x11, Match: "in_port=5", Actions: "set_field:0x1->reg13,set_field:0x3->metadata,resubmit(,8)"},
		{Table: 8, Priority: 50, Cookie: 0x12, Match: "ip,reg14=0x1,metadata=0x3,ip_src=10.0.0.0/24", Actions: "ct(table=9,zone=reg13[0..15])"},
		{Table: 9, Priority: 10, Cookie: 0x13, Match: "tcp,ct_state=+new+trk,tcp_dst=80", Actions: "conjunction(7,1/2)"},
		{Table: 9, Priority: 10, Cookie: 0x14, Match: "ipv6,ipv6_src=fd00::1", Actions: "set_field:00:11:22:33:44:55->eth_dst,output:3"},
		{Table: 10, Priority: 5, Cookie: 0x15, Match: "metadata=0x3,eth_dst=01:00:00:00:00:00/01:00:00:00:00:00", Actions: "move:reg14[]->reg15[],group:3"},
		{Table: 11, Priority: 1, Cookie: 0x16, Match: "arp,arp_op=1", Actions: "push:reg14[],pop:reg15[],output:in_port"},
		{Table: 12, Priority: 0, Cookie: 0x17, Match: "", Actions: "set_field:0x5/0xff->reg0,set_field:0x10->tun_id,output:reg15[0..15]"},
		{Table: 13, Priority: 32768, Cookie: 0x18, Match: "ip,nw_ttl=0", Actions: "controller(userdata=00.00.00.01,pause),ct_clear"},
		{Table: 14, Priority: 7, Cookie: 0x19, Match: "ip", Actions: ""},
	}
	groups := []ofctrl.Group{
		{ID: 3, Spec: "type=select,bucket=bucket_id=0,weight:100,actions=output:1,bucket=bucket_id=1,weight:50,actions=ct(commit,table=10,zone=reg11[0..15],nat(dst=10.0.0.5:80))"},
		{ID: 4, Spec: "type=all,bucket=bucket_id=0,actions=output:1,bucket=bucket_id=1,actions=output:2"},
	}
	return flows, groups
}

func startBridge(t testing.TB) *ovstest.OVS {
	return ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br-int"}})
}

func flowCount(t testing.TB, v *ovstest.OVS) int {
	t.Helper()
	out, err := v.Ofctl("-O", "OpenFlow15", "dump-aggregate", "br-int")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`flow_count=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no flow_count in %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func mustSync(t testing.TB, of *OpenFlow, flows []ofctrl.Flow, groups []ofctrl.Group) SyncResult {
	t.Helper()
	res, err := of.Sync(context.Background(), flows, groups)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Rejected {
		t.Errorf("unexpected rejection: %v", r)
	}
	return res
}

func TestOpenFlowSyncRestartReconcile(t *testing.T) {
	v := startBridge(t)
	// A flow that is not ours (cookie without our tag) must survive.
	if _, err := v.Ofctl("add-flow", "br-int", "table=200,priority=1,cookie=0x42,actions=drop"); err != nil {
		t.Fatal(err)
	}
	flows, groups := sampleFlows()
	of, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := mustSync(t, of, flows, groups)
	if got := res.Diff.String(); got != "flows +9 ~0 ^0 -0 =0, groups +2 ~0 -0 =0" {
		t.Fatalf("first sync: %s", got)
	}
	if n := flowCount(t, v); n != len(flows)+1 {
		t.Fatalf("flow_count = %d, want %d", n, len(flows)+1)
	}
	installedAt := time.Now()

	// Same desired state again: nothing to do.
	if res := mustSync(t, of, flows, groups); !res.Diff.Empty() || res.Diff.Unchanged != len(flows) {
		t.Fatalf("second sync: %s", res.Diff)
	}

	// "Restart": a fresh OpenFlow with no cache reconciles against the
	// switch and finds nothing to change. That only works if our
	// normalization matches what dump-flows prints for every flow.
	time.Sleep(1100 * time.Millisecond)
	of2, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	res = mustSync(t, of2, flows, groups)
	if !res.Diff.Empty() || res.Diff.Unchanged != len(flows) || res.Diff.UnchangedGr != len(groups) {
		t.Fatalf("restart sync changed something: %s\n%s", res.Diff, res.Diff.Bundle(ofctrl.DefaultOwner))
	}
	// The flows were not re-added: their age spans the restart.
	out, err := v.Ofctl("-O", "OpenFlow15", "dump-flows", "br-int", ofctrl.DefaultOwner.CookieFilter())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`duration=([0-9.]+)s`).FindAllStringSubmatch(out, -1) {
		d, _ := strconv.ParseFloat(m[1], 64)
		if d < time.Since(installedAt).Seconds()-0.5 {
			t.Errorf("flow re-installed across restart (duration %gs):\n%s", d, out)
		}
	}

	// Exact changes after a restart: modify actions, change a cookie, remove
	// one flow and one group, add one flow, change one group.
	changed := append([]ofctrl.Flow{}, flows[:len(flows)-1]...) // drop table 14
	changed[1].Actions = "ct(table=9,zone=reg12[0..15])"
	changed[2].Cookie = 0x99
	changed = append(changed, ofctrl.Flow{Table: 15, Priority: 3, Cookie: 0x20, Match: "udp,udp_src=53", Actions: "output:7"})
	cgroups := []ofctrl.Group{{ID: 3, Spec: "type=select,bucket=bucket_id=0,weight:100,actions=output:9"}}
	of3, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	res = mustSync(t, of3, changed, cgroups)
	if got := res.Diff.String(); got != "flows +1 ~1 ^1 -1 =6, groups +0 ~1 -1 =0" {
		t.Fatalf("changed sync: %s", got)
	}
	if n := flowCount(t, v); n != len(changed)+1 {
		t.Fatalf("flow_count = %d, want %d", n, len(changed)+1)
	}
	out, err = v.Ofctl("-O", "OpenFlow15", "--no-stats", "dump-flows", "br-int")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cookie=0x42, table=200, reset_counts priority=1 actions=drop",
		"cookie=0x6776000000000099, table=9, priority=10,ct_state=+new+trk,tcp,tp_dst=80 actions=conjunction(7,1/2)",
		"table=8, priority=50,ip,reg14=0x1,metadata=0x3,nw_src=10.0.0.0/24 actions=ct(table=9,zone=NXM_NX_REG12[0..15])",
		"table=15, priority=3,udp,tp_src=53 actions=output:7",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump-flows lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "table=14") {
		t.Errorf("removed flow still installed:\n%s", out)
	}
	gout, err := v.Ofctl("-O", "OpenFlow15", "dump-groups", "br-int")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(gout, "group_id=4") || !strings.Contains(gout, "group_id=3,type=select,bucket=bucket_id:0,weight:100,actions=output:9") {
		t.Errorf("groups after change:\n%s", gout)
	}

	// Removing everything leaves the foreign flow alone.
	mustSync(t, of3, nil, nil)
	if n := flowCount(t, v); n != 1 {
		t.Fatalf("flow_count after removing all ours = %d, want 1 (the foreign flow)", n)
	}
}

func TestOpenFlowRejects(t *testing.T) {
	v := startBridge(t)
	of, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := ofctrl.Flow{Table: 1, Priority: 1, Cookie: 1, Match: "ip", Actions: "output:1"}
	flows := []ofctrl.Flow{
		{Table: 1, Priority: 9, Cookie: 9, Match: "ipy", Actions: "drop"}, // parse error, first line
		good,
		{Table: 1, Priority: 2, Cookie: 2, Match: "ipx", Actions: "drop"},                // parse error
		{Table: 1, Priority: 3, Cookie: 3, Match: "ip", Actions: "group:77"},             // rejected by the switch
		{Table: 1, Priority: 1, Cookie: 1, Match: "ip", Actions: "output:2"},             // conflicts with good
		{Table: 1, Priority: 4, Cookie: 1 << 62, Match: "arp", Actions: "drop"},          // owner bits
		{Table: 1, Priority: 5, Cookie: 5, Match: "ip,ip_dst=10.0.0.1", Actions: "drop"}, // fine
		{Table: 1, Priority: 6, Cookie: 6, Match: "arp", Actions: "output:bogus"},        // parse error, last line
		{Table: 1, Priority: 7, Cookie: 7, Match: "arp", Actions: "drop"},                // fine
	}
	res, err := of.Sync(context.Background(), flows, []ofctrl.Group{{ID: 9, Spec: "type=bogus"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 7 {
		t.Fatalf("rejected %d, want 7: %v", len(res.Rejected), res.Rejected)
	}
	if n := flowCount(t, v); n != 3 {
		t.Fatalf("flow_count = %d, want 3", n)
	}
	for _, r := range res.Rejected {
		if r.Error() == "" {
			t.Error("empty rejection text")
		}
	}
	if !strings.Contains(fmt.Sprint(res.Rejected), "OFPBAC_BAD_OUT_GROUP") {
		t.Errorf("switch rejection not reported: %v", res.Rejected)
	}
}

// genFlows makes n distinct flows spread over 20 tables, shaped like OVN's.
func genFlows(n int, actionVariant int) []ofctrl.Flow {
	flows := make([]ofctrl.Flow, n)
	for i := range flows {
		flows[i] = ofctrl.Flow{
			Table:    uint8(8 + i%20),
			Priority: uint16(100 + i%7),
			Cookie:   uint64(i + 1),
			Match:    fmt.Sprintf("ip,reg14=0x%x,metadata=0x%x,ip_src=10.%d.%d.0/24", i%64+1, i%13+1, (i/256)%256, i%256),
			Actions:  fmt.Sprintf("set_field:0x%x->reg13,resubmit(,%d)", i%1000+actionVariant, 30+i%20),
		}
	}
	return flows
}

func benchSync(b *testing.B, n int) {
	flows := genFlows(n, 0)
	flows2 := genFlows(n, 1) // every action changed
	for b.Loop() {
		b.StopTimer()
		v := startBridge(b)
		of, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		mustSync(b, of, flows, nil) // normalize + install
		install := time.Since(t0)
		t0 = time.Now()
		mustSync(b, of, flows, nil) // steady state, cached
		steady := time.Since(t0)
		t0 = time.Now()
		of2, _ := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
		res := mustSync(b, of2, flows, nil) // restart: dump + normalize + diff
		restart := time.Since(t0)
		t0 = time.Now()
		mustSync(b, of2, flows2, nil) // modify all
		modify := time.Since(t0)
		b.StopTimer()
		if !res.Diff.Empty() {
			b.Fatalf("restart diff: %s", res.Diff)
		}
		b.ReportMetric(install.Seconds(), "install-s")
		b.ReportMetric(steady.Seconds(), "steady-s")
		b.ReportMetric(restart.Seconds(), "restart-s")
		b.ReportMetric(modify.Seconds(), "modify-all-s")
		if err := v.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkSync10k(b *testing.B) { benchSync(b, 10000) }
func BenchmarkSync50k(b *testing.B) { benchSync(b, 50000) }

func TestOpenFlowRecoversLostFlows(t *testing.T) {
	v := startBridge(t)
	of, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	of.SetMetrics(m)
	tlv, err := ofctrl.ParseTLVMap("{class=0x102,type=0x80,len=4}->tun_metadata0")
	if err != nil {
		t.Fatal(err)
	}
	of.SetTLVMaps(tlv)
	flows, groups := sampleFlows()
	// A flow that needs the Geneve option mapping.
	flows = append(flows, ofctrl.Flow{Table: 30, Priority: 100, Cookie: 0x30, Match: "tun_id=0x5,tun_metadata0=0x10002/0x7fffffff",
		Actions: "move:tun_metadata0[16..30]->reg14[0..14],resubmit(,31)"})
	mustSync(t, of, flows, groups)
	// Someone (or an ovs-vswitchd restart) wipes the bridge.
	if _, err := v.Ofctl("-O", "OpenFlow15", "del-flows", "br-int"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Ofctl("-O", "OpenFlow15", "del-groups", "br-int"); err != nil {
		t.Fatal(err)
	}
	res := mustSync(t, of, flows, groups)
	if len(res.Diff.AddFlows) != len(flows) || len(res.Diff.AddGroups) != len(groups) {
		t.Fatalf("after wipe: %s", res.Diff)
	}
	if n := flowCount(t, v); n != len(flows) {
		t.Fatalf("flow_count = %d, want %d", n, len(flows))
	}
	// A real ovs-vswitchd restart loses every flow and group too.
	if err := v.RestartVswitchd(); err != nil {
		t.Fatal(err)
	}
	res = mustSync(t, of, flows, groups)
	if len(res.Diff.AddFlows) != len(flows) || len(res.Diff.AddGroups) != len(groups) {
		t.Fatalf("after vswitchd restart: %s", res.Diff)
	}
	if n := flowCount(t, v); n != len(flows) {
		t.Fatalf("flow_count after restart = %d, want %d", n, len(flows))
	}
	if out, err := v.Ofctl("-O", "OpenFlow15", "dump-tlv-map", "br-int"); err != nil || !strings.Contains(out, "0x102  0x80       4  tun_metadata0") {
		t.Fatalf("tlv map after restart: %q, %v", out, err)
	}
	// Restart reconcile of the tun_metadata flow is exact too.
	of2, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	of2.SetTLVMaps(tlv)
	if res := mustSync(t, of2, flows, groups); !res.Diff.Empty() {
		t.Fatalf("restart reconcile with tun_metadata: %s", res.Diff)
	}
	if got := metricValue(t, m.FullReads); got != 3 {
		t.Errorf("full reads = %v, want 3 (start-up, after wipe, after restart)", got)
	}
	if got := metricValue(t, m.FlowMods.WithLabelValues("add")); got != float64(3*len(flows)) {
		t.Errorf("flow adds = %v, want %d", got, 3*len(flows))
	}
	if got := metricValue(t, m.InstalledFlows); got != float64(len(flows)) {
		t.Errorf("installed gauge = %v", got)
	}
}

func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither counter nor gauge", c.Desc())
	return 0
}

// BenchmarkSmallChange40k: one Sync adding a few flows to a switch holding
// 40k of ours (the lsp-add case).
func BenchmarkSmallChange40k(b *testing.B) {
	v := startBridge(b)
	o, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, benchLog(b))
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	flows := genFlows(40000, 0)
	mustSync(b, o, flows, nil)
	for i := 0; b.Loop(); i++ {
		f := append(flows[:len(flows):len(flows)], ofctrl.Flow{Table: 60, Priority: 1, Cookie: 1, Match: fmt.Sprintf("reg14=0x%x", i+1), Actions: "drop"})
		mustSync(b, o, f, nil)
	}
}

// benchLog logs to $GOVN_BENCH_LOG at debug level if set.
func benchLog(b *testing.B) *zap.Logger {
	path := os.Getenv("GOVN_BENCH_LOG")
	if path == "" {
		return nil
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.OutputPaths = []string{path}
	l, err := cfg.Build()
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// TestOpenFlowCountCheck: every sync counts our flows in the first table we
// use (a wiped or restarted switch is noticed at once); a flow deleted by
// someone else in another table is noticed by the full count, which runs at
// most every fullCount.
func TestOpenFlowCountCheck(t *testing.T) {
	v := startBridge(t)
	o, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	flows, groups := sampleFlows()
	mustSync(t, o, flows, groups)
	// Someone deletes our table 14 flow.
	if _, err := v.Ofctl("-O", "OpenFlow15", "del-flows", "br-int", "table=14"); err != nil {
		t.Fatal(err)
	}
	if res := mustSync(t, o, flows, groups); !res.Diff.Empty() {
		t.Fatalf("within fullCount the partial deletion is not looked for, yet: %s", res.Diff)
	}
	o.fullCount = 0
	res := mustSync(t, o, flows, groups)
	if len(res.Diff.AddFlows) != 1 || res.Diff.AddFlows[0].Table != 14 {
		t.Fatalf("full count did not restore the deleted flow: %s", res.Diff)
	}
	if n := flowCount(t, v); n != len(flows) {
		t.Fatalf("flow_count = %d, want %d", n, len(flows))
	}
	// A wipe is noticed by the per-sync count of table 0.
	o.fullCount = time.Hour
	if _, err := v.Ofctl("-O", "OpenFlow15", "del-flows", "br-int"); err != nil {
		t.Fatal(err)
	}
	if res := mustSync(t, o, flows, groups); len(res.Diff.AddFlows) != len(flows) {
		t.Fatalf("after a wipe: %s", res.Diff)
	}
}
