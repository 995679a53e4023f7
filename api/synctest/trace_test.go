package synctest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/server"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	northdrun "github.com/govn/govn/northd/run"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

// traceEnv is real NB and SB ovsdb-servers, govn's northd between them and
// an API server started with --sb.
type traceEnv struct {
	t      testing.TB
	nb, sb *dbserver.Server
	api    *server.Running
	reg    *prometheus.Registry
	conn   *grpc.ClientConn
	ctx    context.Context
	tr     govnv1.TraceServiceClient
	sync   govnv1.SyncServiceClient
	acl    govnv1.ACLServiceClient
}

func newTraceEnv(t testing.TB) *traceEnv {
	t.Helper()
	e := &traceEnv{t: t, ctx: t.Context(), reg: prometheus.NewRegistry()}
	e.nb = dbservertest.Start(t, nbDatabase, "", nil)
	e.sb = dbservertest.Start(t, sbDatabase, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	nd, err := northdrun.Start(ctx, northdrun.Config{NB: []string{e.nb.Endpoint()}, SB: []string{e.sb.Endpoint()},
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = nd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; nd.Close() })
	e.api, err = server.Start(e.ctx, server.Config{NB: []string{e.nb.Endpoint()}, SB: []string{e.sb.Endpoint()},
		Listen: "127.0.0.1:0", Registry: e.reg, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.api.Stop)
	e.conn, err = grpc.NewClient(e.api.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close() })
	e.tr = govnv1.NewTraceServiceClient(e.conn)
	e.sync = govnv1.NewSyncServiceClient(e.conn)
	e.acl = govnv1.NewACLServiceClient(e.conn)
	return e
}

// twoPorts creates switch sw0 with ports p1 and p2 (MAC and IP each) and a
// drop ACL for SSH from p1, through the API, and waits for northd.
func (e *traceEnv) twoPorts() (sshACL string) {
	e.t.Helper()
	ls := govnv1.NewLogicalSwitchServiceClient(e.conn)
	lsp := govnv1.NewLogicalSwitchPortServiceClient(e.conn)
	if _, err := ls.CreateLogicalSwitch(e.ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}); err != nil {
		e.t.Fatal(err)
	}
	for _, p := range []struct{ name, addr string }{{"p1", "00:00:00:00:00:01 10.0.0.1"}, {"p2", "00:00:00:00:00:02 10.0.0.2"}} {
		if _, err := lsp.CreateLogicalSwitchPort(e.ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
			Name: p.name, Switch: "sw0", Addresses: []string{p.addr}}}); err != nil {
			e.t.Fatal(err)
		}
	}
	a, err := e.acl.CreateACL(e.ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "from-lport", Priority: 1001,
		Match: `inport == "p1" && tcp.dst == 22`, Action: "drop", Name: "deny-ssh"}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.syncSB()
	return a.Uuid
}

func (e *traceEnv) syncSB() {
	e.t.Helper()
	if _, err := e.sync.Sync(e.ctx, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_SB, Timeout: durationpb.New(30 * time.Second)}); err != nil {
		e.t.Fatal(err)
	}
}

// loads is govn_api_trace_snapshot_loads_total{result="ok"}.
func (e *traceEnv) loads() float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "govn_api_trace_snapshot_loads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

const p1to2 = `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && `

// TestTrace: Trace over the southbound database govn's northd wrote for a
// two-port switch with an ACL, configured through the API: delivery, a
// drop naming the ACL, output identical to tracing the database directly
// (what govnctl trace --sb prints), errors with codes and positions, and a
// later change (a new drop ACL, Sync) shows in the next trace.
func TestTrace(t *testing.T) {
	e := newTraceEnv(t)
	sshACL := e.twoPorts()

	// Delivered.
	web := &govnv1.TraceRequest{Microflow: p1to2 + `tcp.dst == 80`}
	r, err := e.tr.Trace(e.ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Outcomes) != 1 || r.Outcomes[0].Verdict != govnv1.TraceOutcome_OUTPUT || r.Outcomes[0].Port != "p2" || r.Outcomes[0].Datapath != "sw0" {
		t.Fatalf("tcp/80 p1→p2: outcomes %v, want one output to p2 on sw0\n%s", r.Outcomes, r.Output)
	}
	if r.Datapath != "sw0" || !strings.Contains(r.Output, `output to "p2"`) {
		t.Errorf("tcp/80 p1→p2: datapath %q, detailed output:\n%s", r.Datapath, r.Output)
	}

	// Dropped by the ACL, named as written.
	ssh := &govnv1.TraceRequest{Datapath: "sw0", Microflow: p1to2 + `tcp.dst == 22`, Format: "minimal"}
	r, err = e.tr.Trace(e.ctx, ssh)
	if err != nil {
		t.Fatal(err)
	}
	wantReason := `dropped by ACL "deny-ssh" (` + sshACL + `) (from-lport, priority 1001, match: inport == "p1" && tcp.dst == 22, action drop)`
	if len(r.Outcomes) != 1 || r.Outcomes[0].Verdict != govnv1.TraceOutcome_DROP || r.Outcomes[0].Reason != wantReason {
		t.Fatalf("tcp/22 p1→p2: outcomes %v, want one drop: %s", r.Outcomes, wantReason)
	}
	if f := r.Outcomes[0].Flow; f == nil || f.RefKind != "ACL" || f.RefId != sshACL || f.Pipeline != "ingress" || f.Uuid == "" {
		t.Errorf("drop flow %v: want the ingress flow of ACL %s", f, sshACL)
	}
	if strings.Contains(r.Output, "output(") {
		t.Errorf("minimal output of a drop delivers:\n%s", r.Output)
	}

	// The output is what tracing the same databases directly gives
	// (govnctl trace --sb --nb), in every form.
	direct := directTracer(t, e)
	for _, f := range []string{"detailed", "summary", "minimal", "json"} {
		for _, req := range []*govnv1.TraceRequest{web, ssh} {
			req.Format = f
			r, err := e.tr.Trace(e.ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			res, err := direct.Run(req.Datapath, req.Microflow, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var want string
			if f == "json" {
				b, _ := json.MarshalIndent(res, "", "  ")
				want = string(b) + "\n"
			} else {
				want = res.String(trace.Format(f))
			}
			if r.Output != want {
				t.Errorf("%s %s: API output differs from the direct trace:\n--- API\n%s\n--- direct\n%s", f, req.Microflow, r.Output, want)
			}
		}
	}
	// Traces without a change in between share one snapshot.
	before := e.loads()
	for range 3 {
		if _, err := e.tr.Trace(e.ctx, web); err != nil {
			t.Fatal(err)
		}
	}
	if after := e.loads(); after != before || before < 1 {
		t.Errorf("snapshot loads: %v before three traces, %v after; want ≥1 and no reload without a change", before, after)
	}

	// --ct and --lb-dst are passed through: with ct new the packet still
	// reaches p2; bad values are InvalidArgument naming the field.
	r, err = e.tr.Trace(e.ctx, &govnv1.TraceRequest{Microflow: web.Microflow, Ct: []string{"new", "new"}, Format: "minimal"})
	if err != nil || len(r.Outcomes) != 1 || r.Outcomes[0].Port != "p2" {
		t.Errorf("ct new,new: %v %v", r, err)
	}
	for _, c := range []struct {
		req   *govnv1.TraceRequest
		field string
	}{
		{&govnv1.TraceRequest{Microflow: web.Microflow, Ct: []string{"new", "bogus"}}, "trace.ct[1]"},
		{&govnv1.TraceRequest{Microflow: web.Microflow, LbDst: "10.0.0.300"}, "trace.lb_dst"},
		{&govnv1.TraceRequest{Microflow: web.Microflow, Format: "xml"}, "trace.format"},
	} {
		_, err := e.tr.Trace(e.ctx, c.req)
		if status.Code(err) != codes.InvalidArgument || badRequestField(err) != c.field {
			t.Errorf("%v: %v (field %q), want InvalidArgument on %s", c.req, err, badRequestField(err), c.field)
		}
	}

	// A bad microflow: InvalidArgument, with line and column.
	_, err = e.tr.Trace(e.ctx, &govnv1.TraceRequest{Datapath: "sw0", Microflow: `inport == "p1" && eth.dst == 00:00:00:00:00:02 &&` + "\n" + `  ip4.dst == 10.0.0.2 && tcp.dts == 80`})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad microflow: %v", err)
	}
	info := errorInfo(err)
	if info == nil || info.Reason != "INVALID_MICROFLOW" || info.Metadata["line"] != "2" || info.Metadata["column"] != "26" ||
		!strings.Contains(info.Metadata["message"], "tcp.dts") || badRequestField(err) != "trace.microflow" {
		t.Errorf("bad microflow: %v, ErrorInfo %v", err, info)
	}
	// Unknown datapath, unknown inport: NotFound.
	_, err = e.tr.Trace(e.ctx, &govnv1.TraceRequest{Datapath: "nope", Microflow: web.Microflow})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `unknown datapath "nope"`) {
		t.Errorf("unknown datapath: %v", err)
	}
	_, err = e.tr.Trace(e.ctx, &govnv1.TraceRequest{Microflow: `inport == "p9" && eth.dst == 00:00:00:00:00:02`})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `"p9"`) {
		t.Errorf("unknown inport: %v", err)
	}

	// A later change: drop web traffic too; after Sync the trace shows it.
	webACL, err := e.acl.CreateACL(e.ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1002,
		Match: `outport == "p2" && tcp.dst == 80`, Action: "drop", Name: "no-web"}})
	if err != nil {
		t.Fatal(err)
	}
	e.syncSB()
	web.Format = ""
	r, err = e.tr.Trace(e.ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Outcomes) != 1 || r.Outcomes[0].Verdict != govnv1.TraceOutcome_DROP || !strings.Contains(r.Outcomes[0].Reason, `ACL "no-web" (`+webACL.Uuid+`) (to-lport`) ||
		r.Outcomes[0].Flow.GetPipeline() != "egress" {
		t.Fatalf("tcp/80 after the no-web ACL and Sync: %v\n%s", r.Outcomes, r.Output)
	}
	// And removing it without Sync reaches the trace too (the snapshot
	// follows southbound change events), within a few seconds.
	if _, err := e.acl.DeleteACL(e.ctx, &govnv1.DeleteACLRequest{Uuid: webACL.Uuid}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err = e.tr.Trace(e.ctx, web)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Outcomes) == 1 && r.Outcomes[0].Verdict == govnv1.TraceOutcome_OUTPUT {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace still shows %v 20 s after the ACL was deleted", r.Outcomes)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// directTracer reads the southbound (and northbound ACLs) as govnctl trace
// --sb --nb does.
func directTracer(t *testing.T, e *traceEnv) *trace.Tracer {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	c, err := sbload.Connect(ctx, []string{e.sb.Endpoint()}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap, err := sbload.Load(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := sbload.ConnectNB(ctx, []string{e.nb.Endpoint()}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := sbload.LoadACLs(ctx, nc, snap); err != nil {
		t.Fatal(err)
	}
	tr, err := trace.New(snap)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func badRequestField(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
			return br.FieldViolations[0].Field
		}
	}
	return ""
}

func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}

// TestTraceConcurrent: eight clients trace while ACLs come and go; every
// trace succeeds with one outcome, and after the last change is synced a
// trace shows it. Run with -race.
func TestTraceConcurrent(t *testing.T) {
	e := newTraceEnv(t)
	e.twoPorts()
	web := &govnv1.TraceRequest{Microflow: p1to2 + `tcp.dst == 80`, Format: "summary"}
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				r, err := e.tr.Trace(e.ctx, web)
				if err == nil && len(r.Outcomes) != 1 {
					err = status.Errorf(codes.Internal, "%d outcomes: %v", len(r.Outcomes), r.Outcomes)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var last *govnv1.ACL
	for i := range 5 {
		a, err := e.acl.CreateACL(e.ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: int32(1100 + i),
			Match: `outport == "p2" && tcp.dst == 80`, Action: "drop"}})
		if err != nil {
			t.Fatal(err)
		}
		if last != nil {
			if _, err := e.acl.DeleteACL(e.ctx, &govnv1.DeleteACLRequest{Uuid: last.Uuid}); err != nil {
				t.Fatal(err)
			}
		}
		last = a
		time.Sleep(50 * time.Millisecond)
	}
	e.syncSB()
	close(stop)
	for range 8 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.tr.Trace(e.ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Outcomes) != 1 || !strings.Contains(r.Outcomes[0].Reason, last.Uuid) || !strings.Contains(r.Outcomes[0].Reason, "priority 1104") {
		t.Errorf("after the last change: %v, want a drop by ACL %s", r.Outcomes, last.Uuid)
	}
}

// BenchmarkTrace measures one Trace RPC (detailed output) on the two-port
// switch: "cached" reuses the server's snapshot, "reload" forces a rebuild
// each time (an ACL added or removed, then Sync; not timed) and reports how
// many snapshot loads that took in all ("loads").
func BenchmarkTrace(b *testing.B) {
	e := newTraceEnv(b)
	e.twoPorts()
	web := &govnv1.TraceRequest{Microflow: p1to2 + `tcp.dst == 80`}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.tr.Trace(e.ctx, web); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("after-change", func(b *testing.B) {
		loads := e.loads()
		uuid := ""
		for b.Loop() {
			b.StopTimer()
			if uuid == "" {
				a, err := e.acl.CreateACL(e.ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "to-lport",
					Priority: 1500, Match: `tcp.dst == 9`, Action: "drop"}})
				if err != nil {
					b.Fatal(err)
				}
				uuid = a.Uuid
			} else {
				if _, err := e.acl.DeleteACL(e.ctx, &govnv1.DeleteACLRequest{Uuid: uuid}); err != nil {
					b.Fatal(err)
				}
				uuid = ""
			}
			e.syncSB()
			b.StartTimer()
			if _, err := e.tr.Trace(e.ctx, web); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(e.loads()-loads, "loads")
	})
}
