package pinctrl

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/sbdb"
)

var sbDatabase = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}

func sbctl(t *testing.T, db string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(dbservertest.Run(t, "ovn-sbctl", append([]string{"--db=" + db}, args...)...))
}

// arpReplyFrom returns arpReply with sender MAC mac.
func arpReplyFrom(mac []byte) []byte {
	p := append([]byte(nil), arpReply...)
	copy(p[6:12], mac)
	copy(p[22:28], mac)
	return p
}

// TestPutARPRoundTrip: a flow runs controller(userdata=put_arp) on an ARP
// reply injected with ovs-ofctl packet-out; Run learns the binding and
// writes it to a real SB; a second reply with a new MAC updates the row.
func TestPutARPRoundTrip(t *testing.T) {
	v := startOVS(t)
	srv := dbservertest.Start(t, sbDatabase, "", nil)
	db := srv.Endpoint()
	dp := sbctl(t, db, "create", "Datapath_Binding", "tunnel_key=7", "external_ids:name=ls1")
	sbctl(t, db, "create", "Port_Binding", "logical_port=lp1", "tunnel_key=5", "datapath="+dp)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sbdb.NewClient(ctx, []string{db})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	// put_arp(inport, arp.spa, arp.sha) as lflow/action encodes it: the
	// arguments moved into reg14, reg0 and eth.src.
	flow := "table=0,priority=100,arp,arp_op=2,actions=set_field:7->metadata,set_field:5->reg14," +
		"move:NXM_OF_ARP_SPA[]->NXM_NX_REG0[],push:NXM_OF_ETH_SRC[],move:NXM_NX_ARP_SHA[]->NXM_OF_ETH_SRC[]," +
		"controller(userdata=00.00.00.02),pop:NXM_OF_ETH_SRC[]\n"
	if out, err := v.OfctlStdin(flow, "add-flows", "br-int", "-"); err != nil {
		t.Fatalf("add-flows: %v %s", err, out)
	}
	reg := prometheus.NewRegistry()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{MgmtSock: v.MgmtSock("br-int"), SB: sb, Log: zaptest.NewLogger(t), Metrics: reg,
			FlushInterval: 20 * time.Millisecond})
	}()
	inject := func(mac []byte) {
		t.Helper()
		if out, err := v.Ofctl("packet-out", "br-int", "in_port=controller packet="+hex.EncodeToString(arpReplyFrom(mac))+" actions=table"); err != nil {
			t.Fatalf("packet-out: %v %s", err, out)
		}
	}
	waitMAC := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			// Run may still be connecting: re-inject until the row appears.
			out := sbctl(t, db, "--bare", "--columns=logical_port,ip,mac,datapath", "list", "MAC_Binding")
			if strings.Join(strings.Fields(out), " ") == "lp1 10.0.0.2 "+want+" "+dp {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("MAC_Binding = %q, want lp1 10.0.0.2 %s %s", out, want, dp)
			}
			inject(mustMAC(want))
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitMAC("0a:00:00:00:00:02")
	ts1 := sbctl(t, db, "--bare", "--columns=timestamp", "list", "MAC_Binding")
	waitMAC("0a:00:00:00:00:99")
	if n := sbctl(t, db, "--bare", "--columns=_uuid", "list", "MAC_Binding"); len(strings.Fields(n)) != 1 {
		t.Errorf("MAC_Binding rows = %q, want one (updated, not duplicated)", n)
	}
	if ts2 := sbctl(t, db, "--bare", "--columns=timestamp", "list", "MAC_Binding"); ts2 == ts1 || ts2 == "0" {
		t.Errorf("timestamp %s → %s, want a new non-zero value", ts1, ts2)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	if got["govn_pinctrl_mac_bindings_written_total"] != 2 || got["govn_pinctrl_packet_ins_total"] < 2 || got["govn_pinctrl_connects_total"] != 1 {
		t.Errorf("metrics = %v", got)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v", err)
	}
}

func mustMAC(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestPutNDAndFDBRoundTrip: put_nd (IPv6 in xxreg0) and put_fdb packet-ins
// from real OVS end up as MAC_Binding and FDB rows in a real SB.
func TestPutNDAndFDBRoundTrip(t *testing.T) {
	v := startOVS(t)
	srv := dbservertest.Start(t, sbDatabase, "", nil)
	db := srv.Endpoint()
	dp := sbctl(t, db, "create", "Datapath_Binding", "tunnel_key=7", "external_ids:name=ls1")
	sbctl(t, db, "create", "Port_Binding", "logical_port=lp1", "tunnel_key=5", "datapath="+dp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sbdb.NewClient(ctx, []string{db})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	flows := "table=0,priority=100,arp,actions=set_field:7->metadata,set_field:5->reg14,set_field:0xfd000000->reg0,set_field:2->reg3," +
		"controller(userdata=00.00.00.0b),controller(userdata=00.00.00.0d)\n"
	if out, err := v.OfctlStdin(flows, "add-flows", "br-int", "-"); err != nil {
		t.Fatalf("add-flows: %v %s", err, out)
	}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{MgmtSock: v.MgmtSock("br-int"), SB: sb, Log: zaptest.NewLogger(t), FlushInterval: 20 * time.Millisecond})
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		mb := sbctl(t, db, "--bare", "--columns=logical_port,ip,mac", "list", "MAC_Binding")
		fdb := sbctl(t, db, "--bare", "--columns=mac,dp_key,port_key", "list", "FDB")
		if strings.Join(strings.Fields(mb), " ") == "lp1 fd00::2 0a:00:00:00:00:02" &&
			strings.Join(strings.Fields(fdb), " ") == "0a:00:00:00:00:02 7 5" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("MAC_Binding = %q, FDB = %q", mb, fdb)
		}
		if out, err := v.Ofctl("packet-out", "br-int", "in_port=controller packet="+hex.EncodeToString(arpReply)+" actions=table"); err != nil {
			t.Fatalf("packet-out: %v %s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
