package run

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
	"github.com/govn/govn/sbdb"
)

var (
	nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: "ovnnb_db", GlobalTable: "NB_Global"}
	sbDatabase = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}
)

// env is a real NB and SB ovsdb-server plus an in-process northd.
type env struct {
	t         *testing.T
	nb, sb    *dbserver.Server
	reg       *prometheus.Registry
	northd    *Northd
	cancel    context.CancelFunc
	done      chan struct{}
	mu        sync.Mutex
	lastStat  RoundStats
	reconcile time.Duration
}

func requireOVN(t *testing.T) {
	t.Helper()
	dbservertest.RequireOVS(t)
	for _, b := range []string{"ovn-nbctl", "ovn-sbctl"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt install ovn-central): %v", b, err)
		}
	}
}

func newEnv(t *testing.T) *env {
	requireOVN(t)
	e := &env{t: t}
	e.nb = dbservertest.Start(t, nbDatabase, "", nil)
	e.sb = dbservertest.Start(t, sbDatabase, "", nil)
	// ovn-nbctl --wait needs an NB_Global row; ovn-nbctl init makes it.
	e.nbctl("init")
	return e
}

func (e *env) nbctl(args ...string) string {
	e.t.Helper()
	return dbservertest.Run(e.t, "ovn-nbctl", append([]string{"--db=" + e.nb.Endpoint(), "--timeout=20"}, args...)...)
}

func (e *env) sbctl(args ...string) string {
	e.t.Helper()
	return dbservertest.Run(e.t, "ovn-sbctl", append([]string{"--db=" + e.sb.Endpoint()}, args...)...)
}

func (e *env) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.reg = prometheus.NewRegistry()
	n, err := Start(ctx, Config{NB: []string{e.nb.Endpoint()}, SB: []string{e.sb.Endpoint()},
		Logger: zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel)), Registry: e.reg, ReconcileInterval: e.reconcile,
		OnRound: func(s RoundStats) { e.mu.Lock(); e.lastStat = s; e.mu.Unlock() }})
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.northd, e.cancel, e.done = n, cancel, make(chan struct{})
	go func() { defer close(e.done); _ = n.Run(ctx) }()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

// keys returns Datapath_Binding and Port_Binding tunnel keys by name.
func (e *env) keys() map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(e.sbctl("--bare", "--columns=external_ids,tunnel_key", "list", "Datapath_Binding"), "\n\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := ""
		for _, kv := range f {
			if strings.HasPrefix(kv, "name=") {
				name = strings.TrimPrefix(kv, "name=")
			}
		}
		out["dp:"+name] = f[len(f)-1]
	}
	for _, l := range strings.Split(e.sbctl("--bare", "--columns=logical_port,tunnel_key", "list", "Port_Binding"), "\n\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			out["port:"+f[0]] = f[1]
		}
	}
	return out
}

var spaces = regexp.MustCompile(`\s+`)

// lflows returns ovn-sbctl lflow-list output with runs of spaces squeezed.
func (e *env) lflows(args ...string) string {
	return spaces.ReplaceAllString(e.sbctl(append([]string{"lflow-list"}, args...)...), " ")
}

func TestNbctlWaitSB(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1",
		"--", "lsp-add", "sw0", "p2", "--", "lsp-set-addresses", "p2", "00:00:00:00:00:02 10.0.0.2 fd00::2")
	fl := e.lflows("sw0")
	for _, want := range []string{
		`table=0 (ls_in_check_port_sec), priority=100 , match=(vlan.present), action=(drop;)`,
		`table=19(ls_in_arp_rsp ), priority=50 , match=(arp.tpa == 10.0.0.1 && arp.op == 1), action=(eth.dst = eth.src; eth.src = 00:00:00:00:00:01; arp.op = 2; arp.tha = arp.sha; arp.sha = 00:00:00:00:00:01; arp.tpa = arp.spa; arp.spa = 10.0.0.1; outport = inport; flags.loopback = 1; output;)`,
		`table=19(ls_in_arp_rsp ), priority=50 , match=(nd_ns && ip6.dst == {fd00::2, ff02::1:ff00:2} && nd.target == fd00::2)`,
		`table=25(ls_in_l2_lkup ), priority=50 , match=(eth.dst == 00:00:00:00:00:02), action=(outport = "p2"; output;)`,
		`table=25(ls_in_l2_lkup ), priority=70 , match=(eth.mcast), action=(outport = "_MC_flood"; output;)`,
		`table=9 (ls_out_apply_port_sec), priority=0 , match=(1), action=(output;)`,
	} {
		if !strings.Contains(fl, want) {
			t.Errorf("lflow-list lacks %q:\n%s", want, fl)
		}
	}
	if got := e.nbctl("get", "NB_Global", ".", "sb_cfg"); strings.TrimSpace(got) != strings.TrimSpace(e.nbctl("get", "NB_Global", ".", "nb_cfg")) {
		t.Errorf("sb_cfg %s != nb_cfg", got)
	}
	dp := e.sbctl("--bare", "--columns=external_ids", "find", "Datapath_Binding", "external_ids:name=sw0")
	if !strings.Contains(dp, "logical-switch=") {
		t.Errorf("Datapath_Binding external_ids: %q", dp)
	}
	mc := e.sbctl("--bare", "--columns=name,tunnel_key", "list", "Multicast_Group")
	if !strings.Contains(mc, "_MC_flood\n32768") {
		t.Errorf("Multicast_Group: %q", mc)
	}
	keys := e.keys()
	if keys["port:p1"] == keys["port:p2"] || keys["port:p1"] == "" || keys["dp:sw0"] == "" {
		t.Errorf("tunnel keys: %v", keys)
	}

	// ACLs, port groups, address sets.
	e.nbctl("create", "Address_Set", "name=as1", `addresses="10.9.0.1","10.9.0.2"`)
	e.nbctl("pg-add", "pg1", "p1", "p2")
	e.nbctl("--wait=sb", "acl-add", "sw0", "from-lport", "1001", "ip4.src == $as1", "allow-related")
	e.nbctl("--wait=sb", "--log", "--name=web", "acl-add", "pg1", "to-lport", "1002", "outport == @pg1 && ip4.src == $pg1_ip4 && tcp.dst == 80", "allow")
	fl = e.lflows("sw0")
	for _, want := range []string{
		`table=8 (ls_in_acl ), priority=2001 , match=(reg0[7] == 1 && (ip4.src == $as1)), action=(reg0[1] = 1; next;)`,
		`table=4 (ls_out_acl ), priority=2002 , match=(reg0[8] == 1 && (outport == @pg1 && ip4.src == $pg1_ip4 && tcp.dst == 80)), action=(log(name="web", verdict=allow); next;)`,
		`table=4 (ls_in_pre_acl ), priority=100 , match=(ip), action=(reg0[0] = 1; next;)`,
	} {
		if !strings.Contains(fl, want) {
			t.Errorf("lflow-list lacks %q:\n%s", want, fl)
		}
	}
	as := e.sbctl("--bare", "--columns=name,addresses", "list", "Address_Set")
	for _, want := range []string{"as1\n10.9.0.1 10.9.0.2", "pg1_ip4\n10.0.0.1 10.0.0.2", "pg1_ip6\nfd00::2"} {
		if !strings.Contains(as, want) {
			t.Errorf("Address_Set lacks %q:\n%s", want, as)
		}
	}
	pg := e.sbctl("--bare", "--columns=name,ports", "list", "Port_Group")
	if !strings.Contains(pg, keys["dp:sw0"]+"_pg1\np1 p2") || !strings.Contains(pg, "pg1\np1 p2") {
		t.Errorf("Port_Group:\n%s", pg)
	}

	// Modify: address set contents, port group membership, port addresses.
	e.nbctl("--wait=sb", "set", "Address_Set", "as1", `addresses="10.9.0.3"`, "--", "pg-set-ports", "pg1", "p1",
		"--", "lsp-set-addresses", "p1", "00:00:00:00:00:11 10.0.0.11")
	as = e.sbctl("--bare", "--columns=name,addresses", "list", "Address_Set")
	for _, want := range []string{"as1\n10.9.0.3", "pg1_ip4\n10.0.0.11\n"} {
		if !strings.Contains(as, want) {
			t.Errorf("after modify, Address_Set lacks %q:\n%s", want, as)
		}
	}
	fl = e.lflows("sw0")
	if !strings.Contains(fl, `match=(eth.dst == 00:00:00:00:00:11), action=(outport = "p1"; output;)`) || strings.Contains(fl, "00:00:00:00:00:01") {
		t.Errorf("after lsp-set-addresses:\n%s", fl)
	}
	if k := e.keys(); k["port:p1"] != keys["port:p1"] || k["dp:sw0"] != keys["dp:sw0"] {
		t.Errorf("tunnel keys changed on modify: %v → %v", keys, k)
	}

	// Delete.
	e.nbctl("--wait=sb", "acl-del", "sw0", "--", "acl-del", "pg1", "--", "lsp-del", "p2")
	fl = e.lflows("sw0")
	if strings.Contains(fl, "p2") || strings.Contains(fl, "$as1") || strings.Contains(fl, "reg0[0] = 1") {
		t.Errorf("after deletes, flows still mention p2 / ACLs:\n%s", fl)
	}
	if pbs := e.sbctl("--bare", "--columns=logical_port", "list", "Port_Binding"); strings.Contains(pbs, "p2") {
		t.Errorf("Port_Binding p2 not deleted: %q", pbs)
	}
	e.nbctl("--wait=sb", "ls-add", "sw1", "--", "lsp-add", "sw1", "q1", "--", "lsp-set-addresses", "q1", "00:00:00:00:01:01 10.1.0.1")
	e.nbctl("--wait=sb", "ls-del", "sw0")
	if dps := e.sbctl("--bare", "--columns=external_ids", "list", "Datapath_Binding"); strings.Contains(dps, "name=sw0") || !strings.Contains(dps, "name=sw1") {
		t.Errorf("Datapath_Binding after ls-del sw0: %q", dps)
	}
	if fl := e.lflows(); strings.Contains(fl, `"sw0"`) || !strings.Contains(fl, `Datapath: "sw1"`) {
		t.Errorf("flows after ls-del sw0:\n%s", fl)
	}
	if n := value(e.northd.m.txnErrors); n != 0 {
		t.Errorf("%v failed SB transactions", n)
	}
}

// TestRestartKeepsKeys: a restarted northd reconciles the SB it finds
// (no wipe): tunnel keys and unchanged flow rows survive, changes made
// while it was down are applied.
func TestRestartKeepsKeys(t *testing.T) {
	e := newEnv(t)
	e.start()
	for i := 0; i < 3; i++ {
		e.nbctl("ls-add", fmt.Sprintf("sw%d", i))
		for j := 0; j < 4; j++ {
			p := fmt.Sprintf("p%d_%d", i, j)
			e.nbctl("lsp-add", fmt.Sprintf("sw%d", i), p, "--", "lsp-set-addresses", p, fmt.Sprintf("00:00:00:00:%02x:%02x 10.%d.0.%d", i, j+1, i, j+1))
		}
	}
	// Free a key in the middle so a reshuffle would show.
	e.nbctl("--wait=sb", "lsp-del", "p1_1", "--", "ls-del", "sw0")
	before := e.keys()
	flowUUIDs := e.sbctl("--bare", "--columns=_uuid", "list", "Logical_Flow")
	e.stop()

	e.nbctl("lsp-add", "sw2", "new", "--", "lsp-set-addresses", "new", "00:00:00:00:09:09 10.2.0.99")
	e.start()
	e.nbctl("--wait=sb", "sync")
	after := e.keys()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: tunnel key %s before restart, %s after", k, v, after[k])
		}
	}
	if after["port:new"] == "" {
		t.Errorf("port added while northd was down has no binding: %v", after)
	}
	kept := 0
	afterUUIDs := e.sbctl("--bare", "--columns=_uuid", "list", "Logical_Flow")
	for _, u := range strings.Fields(flowUUIDs) {
		if strings.Contains(afterUUIDs, u) {
			kept++
		}
	}
	if n := len(strings.Fields(flowUUIDs)); kept < n*9/10 {
		t.Errorf("only %d of %d logical flow rows survived the restart (the SB was rewritten, not reconciled)", kept, n)
	}
	fl := e.lflows("sw2")
	if !strings.Contains(fl, `outport = "new"`) {
		t.Errorf("flows for the new port missing")
	}
	// Flows shared by both switches live in a Logical_DP_Group; ovn-sbctl
	// lists them under each datapath.
	if groups := e.sbctl("--bare", "--columns=_uuid", "list", "Logical_DP_Group"); strings.TrimSpace(groups) == "" {
		t.Errorf("no Logical_DP_Group with two identical switches")
	}
	for _, sw := range []string{"sw1", "sw2"} {
		if fl := e.lflows(sw); !strings.Contains(fl, `table=25(ls_in_l2_lkup ), priority=70 , match=(eth.mcast), action=(outport = "_MC_flood"; output;)`) {
			t.Errorf("lflow-list %s lacks the shared broadcast flow:\n%s", sw, fl)
		}
	}
}

// TestBadNBData: invalid rows are logged, counted and skipped; northd keeps
// serving --wait=sb.
func TestBadNBData(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1",
		"--", "lsp-add", "sw0", "bad", "--", "lsp-set-addresses", "bad", "00:00:00:00:00:02 10.0.0.300")
	e.nbctl("--wait=sb", "acl-add", "sw0", "from-lport", "1001", "ip4.src == ", "drop")
	e.nbctl("--wait=sb", "acl-add", "sw0", "from-lport", "1002", "inport == @missing", "drop")
	e.nbctl("--wait=sb", "acl-add", "sw0", "to-lport", "1003", "tcp.dst == 22", "drop")
	if n := value(e.northd.m.badRows); n != 3 {
		t.Errorf("govn_northd_nb_bad_rows = %v, want 3 (bad address, bad match, missing port group)", n)
	}
	fl := e.lflows("sw0")
	if !strings.Contains(fl, "priority=2003 , match=(tcp.dst == 22)") {
		t.Errorf("the valid ACL has no flow:\n%s", fl)
	}
	if strings.Contains(fl, "@missing") || strings.Contains(fl, "ip4.src ==)") || strings.Contains(fl, `"bad"; output`) {
		t.Errorf("flows from bad rows were written:\n%s", fl)
	}
	// Fixing the data heals it.
	e.nbctl("--wait=sb", "pg-add", "missing", "p1")
	if n := value(e.northd.m.badRows); n != 2 {
		t.Errorf("after creating the port group, bad rows = %v, want 2", n)
	}
	if !strings.Contains(e.lflows("sw0"), "inport == @missing") {
		t.Errorf("ACL on the now existing port group has no flow")
	}
}

// value reads a gauge or counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// TestOVNTrace: the real ovn-sbctl and ovn-trace (OVN 23.03) read govn's SB
// for a two-port switch and follow a packet from p1 to p2.
func TestOVNTrace(t *testing.T) {
	if _, err := exec.LookPath("ovn-trace"); err != nil {
		t.Skipf("ovn-trace not installed (apt install ovn-central): %v", err)
	}
	e := newEnv(t)
	e.start()
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1",
		"--", "lsp-add", "sw0", "p2", "--", "lsp-set-addresses", "p2", "00:00:00:00:00:02 10.0.0.2")
	e.nbctl("--wait=sb", "acl-add", "sw0", "to-lport", "1000", "tcp.dst == 22", "drop")
	trace := func(flow string) string {
		out, stderr, err := dbservertest.RunOutput("ovn-trace", "--db="+e.sb.Endpoint(), "--minimal", "sw0", flow)
		if err != nil {
			t.Fatalf("ovn-trace %s: %v", flow, err)
		}
		t.Logf("ovn-trace %s:\n%s%s", flow, out, stderr)
		return out
	}
	l2 := `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02`
	if out := trace(l2 + ` && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && ip.ttl == 64 && tcp && tcp.dst == 80`); !strings.Contains(out, `output("p2")`) {
		t.Errorf("TCP/80 p1 → p2 not delivered:\n%s", out)
	}
	if out := trace(l2 + ` && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && ip.ttl == 64 && tcp && tcp.dst == 22`); strings.Contains(out, `output("p2")`) {
		t.Errorf("TCP/22 p1 → p2 delivered despite the drop ACL:\n%s", out)
	}
	bcast := `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == ff:ff:ff:ff:ff:ff && arp.op == 1 && arp.sha == 00:00:00:00:00:01 && arp.spa == 10.0.0.1 && arp.tpa == 10.0.0.2`
	if out := trace(bcast); !strings.Contains(out, "arp.op = 2") {
		t.Errorf("ARP request for p2's address not answered by the responder:\n%s", out)
	}
	// Port security and a stateful ACL.
	e.nbctl("--wait=sb", "lsp-set-port-security", "p1", "00:00:00:00:00:01 10.0.0.1", "--",
		"acl-add", "sw0", "from-lport", "1001", "ip4", "allow-related")
	if out := trace(l2 + ` && ip4.src == 10.0.0.99 && ip4.dst == 10.0.0.2 && ip.ttl == 64 && udp`); strings.Contains(out, `output("p2")`) {
		t.Errorf("spoofed source delivered despite port security:\n%s", out)
	}
	if out := trace(l2 + ` && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && ip.ttl == 64 && udp`); !strings.Contains(out, `output("p2")`) || !strings.Contains(out, "ct_next") {
		t.Errorf("allowed UDP not delivered through conntrack:\n%s", out)
	}
}

// syncNB bumps nb_cfg and waits until northd reports it in sb_cfg.
func syncNB(t *testing.T, ctx context.Context, c *ovsdbclient.Client) int {
	t.Helper()
	g := nbGlobal(c)
	res, err := c.Transact(ctx,
		ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.NBGlobalTable,
			Where:     []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: g.UUID}}},
			Mutations: []ovsdb.Mutation{{Column: "nb_cfg", Mutator: ovsdb.MutateOperationAdd, Value: 1}}},
		ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.NBGlobalTable, Columns: []string{"nb_cfg"},
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: g.UUID}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := int(res[1].Rows[0]["nb_cfg"].(float64))
	waitFor(t, fmt.Sprintf("sb_cfg >= %d", want), func() bool { return nbGlobal(c).SbCfg >= want })
	return want
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLibovsdb drives the NB with libovsdb and checks the SB with libovsdb:
// datapath groups, port-group ACLs across switches, LSP up, hv_cfg.
func TestLibovsdb(t *testing.T) {
	e := newEnv(t)
	e.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nbc, err := nbdb.NewClient(ctx, []string{e.nb.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	defer nbc.Close()
	sbc, err := sbdb.NewClient(ctx, []string{e.sb.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	defer sbc.Close()

	var ops []ovsdb.Operation
	for _, sw := range []string{"swa", "swb"} {
		ls := &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: sw}
		for i := 1; i <= 2; i++ {
			lsp := &nbdb.LogicalSwitchPort{UUID: ovsdbclient.NamedUUID(), Name: fmt.Sprintf("%s-p%d", sw, i),
				Addresses: []string{fmt.Sprintf("0a:00:00:00:%02x:%02x 10.%d.0.%d", len(sw), i, len(ls.Ports)+len(sw), i)}}
			ls.Ports = append(ls.Ports, lsp.UUID)
			if ops, err = ovsdbclient.CreateOps(nbc, ops, lsp); err != nil {
				t.Fatal(err)
			}
		}
		if ops, err = ovsdbclient.CreateOps(nbc, ops, ls); err != nil {
			t.Fatal(err)
		}
	}
	acl := &nbdb.ACL{UUID: ovsdbclient.NamedUUID(), Direction: nbdb.ACLDirectionToLport, Priority: 100,
		Match: "outport == @web && tcp.dst == 80", Action: nbdb.ACLActionAllowRelated}
	pg := &nbdb.PortGroup{UUID: ovsdbclient.NamedUUID(), Name: "web", ACLs: []string{acl.UUID}}
	as := &nbdb.AddressSet{UUID: ovsdbclient.NamedUUID(), Name: "admins", Addresses: []string{"192.0.2.1"}}
	acl2 := &nbdb.ACL{UUID: ovsdbclient.NamedUUID(), Direction: nbdb.ACLDirectionFromLport, Priority: 200,
		Match: "ip4.src == $admins", Action: nbdb.ACLActionDrop}
	if ops, err = ovsdbclient.CreateOps(nbc, ops, acl, pg, as); err != nil {
		t.Fatal(err)
	}
	if _, err := nbc.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	// Port group members: one port of each switch; acl2 on swa.
	pgRow, err := ovsdbclient.Lookup(nbc, &nbdb.PortGroup{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	lspUUID := func(name string) string {
		p, err := ovsdbclient.Lookup(nbc, &nbdb.LogicalSwitchPort{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return p.UUID
	}
	pgRow.Ports = []string{lspUUID("swa-p1"), lspUUID("swb-p1")}
	ops, err = ovsdbclient.UpdateOps(nbc, nil, pgRow, &pgRow.Ports)
	if err != nil {
		t.Fatal(err)
	}
	if ops, err = nbdb.CreateACLOps(nbc, ops, &nbdb.LogicalSwitch{Name: "swa"}, acl2); err != nil {
		t.Fatal(err)
	}
	if _, err := nbc.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	syncNB(t, ctx, nbc)
	// Our SB client's cache catches up asynchronously: wait for it.
	sbSettled := func(what string, ok func(flows []sbdb.LogicalFlow) bool) []sbdb.LogicalFlow {
		var flows []sbdb.LogicalFlow
		waitFor(t, what, func() bool {
			flows = nil
			return sbc.List(ctx, &flows) == nil && ok(flows)
		})
		return flows
	}
	hasWeb := func(flows []sbdb.LogicalFlow) bool {
		for _, f := range flows {
			if strings.Contains(f.Match, "@web") {
				return true
			}
		}
		return false
	}
	flows := sbSettled("ACL flows in the SB", hasWeb)
	var dps []sbdb.DatapathBinding
	if err := sbc.List(ctx, &dps); err != nil || len(dps) != 2 {
		t.Fatalf("Datapath_Binding: %v %v", dps, err)
	}
	var groups []sbdb.LogicalDPGroup
	if err := sbc.List(ctx, &groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) == 0 {
		t.Errorf("no Logical_DP_Group: flows common to both switches should share one")
	}
	var aclFlow *sbdb.LogicalFlow
	for i, f := range flows {
		if strings.Contains(f.Match, "@web") {
			aclFlow = &flows[i]
			if f.ExternalIDs["nb-acl"] == "" || f.ExternalIDs["stage-name"] != "ls_out_acl" || f.ExternalIDs["source"] != "northd/acl.go" {
				t.Errorf("ACL flow external_ids: %v", f.ExternalIDs)
			}
		}
		if (f.LogicalDatapath == nil) == (f.LogicalDpGroup == nil) {
			t.Errorf("flow %s %q: logical_datapath %v, logical_dp_group %v (exactly one expected)", f.UUID, f.Match, f.LogicalDatapath, f.LogicalDpGroup)
		}
	}
	if aclFlow == nil || aclFlow.LogicalDpGroup == nil {
		t.Fatalf("port-group ACL flow should apply to both switches through a datapath group: %+v\n%s\n%s\n%s", aclFlow, e.lflows(), e.nbctl("list", "Port_Group"), e.nbctl("list", "ACL"))
	}

	// Shrink the port group to swa only: the ACL flow moves to swa's datapath.
	pgRow.Ports = []string{lspUUID("swa-p1")}
	if ops, err = ovsdbclient.UpdateOps(nbc, nil, pgRow, &pgRow.Ports); err != nil {
		t.Fatal(err)
	}
	if _, err := nbc.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	syncNB(t, ctx, nbc)
	swa := ""
	for _, d := range dps {
		if d.ExternalIDs["name"] == "swa" {
			swa = d.UUID
		}
	}
	flows = sbSettled("ACL flows to move to swa", func(flows []sbdb.LogicalFlow) bool {
		for _, f := range flows {
			if strings.Contains(f.Match, "@web") && f.LogicalDatapath == nil {
				return false
			}
		}
		return hasWeb(flows)
	})
	n := 0
	for _, f := range flows {
		if strings.Contains(f.Match, "@web") {
			n++
			if f.LogicalDatapath == nil || *f.LogicalDatapath != swa {
				t.Errorf("after shrinking the port group, ACL flow on %v / group %v, want datapath %s", f.LogicalDatapath, f.LogicalDpGroup, swa)
			}
		}
	}
	if n == 0 {
		t.Errorf("ACL flows disappeared")
	}

	// Delete the address set acl2 uses: acl2 becomes invalid and its flows go.
	asRow, err := ovsdbclient.Lookup(nbc, &nbdb.AddressSet{Name: "admins"})
	if err != nil {
		t.Fatal(err)
	}
	if ops, err = ovsdbclient.DeleteOps(nbc, nil, asRow); err != nil {
		t.Fatal(err)
	}
	if _, err := nbc.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	syncNB(t, ctx, nbc)
	if fl := e.lflows(); strings.Contains(fl, "$admins") {
		t.Errorf("flows still use the deleted address set:\n%s", fl)
	}
	if v := value(e.northd.m.badRows); v != 1 {
		t.Errorf("bad rows = %v, want 1 (ACL naming the deleted address set)", v)
	}

	// A controller binds a port: Port_Binding.up → Logical_Switch_Port.up.
	e.sbctl("set", "Port_Binding", "swb-p2", "up=true")
	waitFor(t, "LSP swb-p2 up", func() bool {
		p, err := ovsdbclient.Lookup(nbc, &nbdb.LogicalSwitchPort{Name: "swb-p2"})
		return err == nil && p.Up != nil && *p.Up
	})
	waitFor(t, "unbound port swb-p1 up=false", func() bool {
		p, err := ovsdbclient.Lookup(nbc, &nbdb.LogicalSwitchPort{Name: "swb-p1"})
		return err == nil && p.Up != nil && !*p.Up
	})

	// hv_cfg follows the slowest chassis.
	cfg := syncNB(t, ctx, nbc)
	e.sbctl("create", "Chassis_Private", "name=ch1", "nb_cfg=0")
	cfg = syncNB(t, ctx, nbc)
	waitFor(t, "hv_cfg = 0 with a lagging chassis", func() bool { return nbGlobal(nbc).HvCfg == 0 })
	e.sbctl("set", "Chassis_Private", "ch1", fmt.Sprintf("nb_cfg=%d", cfg))
	waitFor(t, fmt.Sprintf("hv_cfg = %d", cfg), func() bool { return nbGlobal(nbc).HvCfg == cfg })
}

// TestReconcileRepairs: rows deleted or changed behind northd's back are
// restored by the periodic reconcile (northd does not monitor Logical_Flow).
func TestReconcileRepairs(t *testing.T) {
	e := newEnv(t)
	e.reconcile = 300 * time.Millisecond
	e.start()
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1")
	want := e.lflows("sw0")
	uuid := strings.TrimSpace(e.sbctl("--bare", "--columns=_uuid", "find", "Logical_Flow", `actions="outport = \"p1\"; output;"`))
	if uuid == "" {
		t.Fatal("no L2 flow for p1")
	}
	// One SB transaction, so that a reconcile cannot run between the two
	// damages and the wait below cannot be satisfied by a half repair.
	e.sbctl("destroy", "Logical_Flow", uuid, "--", "set", "Port_Binding", "p1", "tunnel_key=77",
		"--", "set", "Port_Binding", "p1", `mac="00:00:00:00:00:99"`)
	waitFor(t, "the deleted flow to come back", func() bool { return e.lflows("sw0") == want })
	if mac := strings.TrimSpace(e.sbctl("--bare", "--columns=mac", "find", "Port_Binding", "logical_port=p1")); mac != "00:00:00:00:00:01 10.0.0.1" {
		t.Errorf("Port_Binding mac not repaired together with the flow: %q", mac)
	}
}

// TestIgnoreLSPDown: with NB_Global options:ignore_lsp_down=false a port's
// ARP responder appears only once a controller reports it up.
func TestIgnoreLSPDown(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.nbctl("set", "NB_Global", ".", "options:ignore_lsp_down=false")
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1")
	if fl := e.lflows("sw0"); strings.Contains(fl, "arp.tpa == 10.0.0.1") {
		t.Errorf("ARP responder for a port that is down:\n%s", fl)
	}
	e.sbctl("set", "Port_Binding", "p1", "up=true")
	waitFor(t, "ARP responder once p1 is up", func() bool { return strings.Contains(e.lflows("sw0"), "arp.tpa == 10.0.0.1 && arp.op == 1") })
	if up := strings.TrimSpace(e.nbctl("get", "Logical_Switch_Port", "p1", "up")); up != "true" {
		t.Errorf("LSP p1 up = %s", up)
	}
}

// TestRequestedTunnelKeys: other_config:requested-tnl-key (switch) and
// options:requested-tnl-key (port) choose keys, as in OVN.
func TestRequestedTunnelKeys(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "set", "Logical_Switch", "sw0", "other_config:requested-tnl-key=42",
		"--", "lsp-add", "sw0", "p1", "--", "lsp-set-options", "p1", "requested-tnl-key=7",
		"--", "lsp-add", "sw0", "p2")
	k := e.keys()
	if k["dp:sw0"] != "42" || k["port:p1"] != "7" || k["port:p2"] == "" || k["port:p2"] == "7" {
		t.Fatalf("keys %v, want sw0=42 p1=7", k)
	}
	e.nbctl("--wait=sb", "set", "Logical_Switch", "sw0", "other_config:requested-tnl-key=43", "--", "lsp-set-options", "p1", "requested-tnl-key=9")
	if k := e.keys(); k["dp:sw0"] != "43" || k["port:p1"] != "9" {
		t.Errorf("after changing the requested keys: %v", k)
	}
}

// TestSBRecreated: the southbound database is replaced by an empty one
// (same socket): northd notices and rebuilds it.
func TestSBRecreated(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1")
	want := e.lflows("sw0")
	// Wipe the SB the way a restore from an empty backup would: delete
	// everything and create a new SB_Global row.
	e.sbctl("--all", "destroy", "Logical_Flow", "--", "--all", "destroy", "Multicast_Group", "--", "--all", "destroy", "Port_Binding",
		"--", "--all", "destroy", "Datapath_Binding", "--", "--all", "destroy", "SB_Global", "--", "create", "SB_Global", "nb_cfg=0")
	e.nbctl("--wait=sb", "sync")
	waitFor(t, "the SB to be rebuilt", func() bool { return sameFlows(e.lflows("sw0"), want) })
}

// sameFlows compares lflow-list outputs ignoring datapath UUIDs.
func sameFlows(a, b string) bool {
	uuid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	return uuid.ReplaceAllString(a, "U") == uuid.ReplaceAllString(b, "U")
}

// TestStartOnForeignSB: northd starts on an SB that holds rows it would
// not write (a datapath of no switch with its port and flow, a duplicate
// flow, a flow in a table no stage uses): those go, its own rows stay.
func TestStartOnForeignSB(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.nbctl("--wait=sb", "ls-add", "sw0", "--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1")
	want := e.lflows("sw0")
	keys := e.keys()
	e.stop()

	dp := strings.TrimSpace(e.sbctl("--bare", "--columns=_uuid", "find", "Datapath_Binding", "external_ids:name=sw0"))
	e.sbctl("--id=@dp", "create", "Datapath_Binding", "tunnel_key=999", "external_ids:name=stray",
		"--", "create", "Port_Binding", "datapath=@dp", "logical_port=stray-port", "tunnel_key=1",
		"--", "create", "Logical_Flow", "logical_datapath=@dp", "pipeline=ingress", "table_id=0", "priority=1", "match=1", `actions="next;"`)
	e.sbctl("create", "Logical_Flow", "logical_datapath="+dp, "pipeline=ingress", "table_id=25", "priority=70",
		`match="eth.mcast"`, `actions="outport = \"_MC_flood\"; output;"`)
	e.sbctl("create", "Logical_Flow", "logical_datapath="+dp, "pipeline=ingress", "table_id=31", "priority=1", "match=1", `actions="next;"`)

	e.start()
	e.nbctl("--wait=sb", "sync")
	if fl := e.lflows("sw0"); !sameFlows(fl, want) {
		t.Errorf("flows after start on a foreign SB:\n%s\nwant:\n%s", fl, want)
	}
	if got := e.sbctl("--bare", "--columns=logical_port", "list", "Port_Binding"); strings.Contains(got, "stray") {
		t.Errorf("stray Port_Binding kept: %q", got)
	}
	if got := e.sbctl("--bare", "--columns=external_ids", "list", "Datapath_Binding"); strings.Contains(got, "stray") {
		t.Errorf("stray Datapath_Binding kept: %q", got)
	}
	if k := e.keys(); k["dp:sw0"] != keys["dp:sw0"] || k["port:p1"] != keys["port:p1"] {
		t.Errorf("keys changed: %v → %v", keys, k)
	}
}
