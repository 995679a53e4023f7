package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/nbdb"
	"github.com/govn/govn/sbdb"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

// NoSBMessage is Trace's FailedPrecondition message when the server has no
// southbound database.
const NoSBMessage = "Trace needs the southbound database, but the API server was started without --sb"

// SBTables are the southbound tables the API server monitors for Trace:
// sbload's tables and SB_Global (whose nb_cfg tells how far the cache is).
var SBTables = append(append([]string(nil), sbload.Tables...), sbdb.SBGlobalTable)

// ConnectSB opens the southbound client Trace needs (Options.SB).
func ConnectSB(ctx context.Context, remotes []string, opts ...ovsdbclient.Option) (*ovsdbclient.Client, error) {
	return sbdb.NewClient(ctx, remotes, append(opts, ovsdbclient.WithTables(SBTables...))...)
}

// sbCatchUp bounds how long Trace waits for the southbound cache to reach
// the northbound's sb_cfg before tracing on what it has (with a warning).
const sbCatchUp = 2 * time.Second

// tracing is the server's view of the southbound database for Trace: one
// SB client, and a trace.Tracer built from it on demand and kept until the
// southbound database (or a northbound ACL, named in drop reasons) changes.
type tracing struct {
	sb     *ovsdbclient.Client // nil: Trace is not available
	nb     *ovsdbclient.Client
	log    *zap.Logger
	onLoad func(time.Duration, error)

	mu      sync.Mutex // guards everything below
	gen     uint64     // bumped by every southbound or ACL change
	changed chan struct{}
	cur     *builtTracer

	build sync.Mutex // one build at a time; others wait and share it
}

type builtTracer struct {
	t     *trace.Tracer
	gen   uint64 // tracing.gen when the build started
	sbCfg int    // SB_Global.nb_cfg when the build started
}

func newTracing(sb, nb *ovsdbclient.Client, log *zap.Logger, onLoad func(time.Duration, error)) *tracing {
	tr := &tracing{sb: sb, nb: nb, log: log, onLoad: onLoad, changed: make(chan struct{})}
	if sb != nil {
		bump := func(string) { tr.invalidate() }
		sb.Cache().AddEventHandler(&cache.EventHandlerFuncs{
			AddFunc:    func(t string, _ model.Model) { bump(t) },
			UpdateFunc: func(t string, _, _ model.Model) { bump(t) },
			DeleteFunc: func(t string, _ model.Model) { bump(t) },
		})
	}
	return tr
}

// invalidate drops the cached tracer (a southbound row or an ACL changed)
// and wakes requests waiting for the cache to catch up.
func (tr *tracing) invalidate() {
	tr.mu.Lock()
	tr.gen++
	close(tr.changed)
	tr.changed = make(chan struct{})
	tr.mu.Unlock()
}

// sbNbCfg is SB_Global.nb_cfg in the southbound cache (-1 without a row).
func (tr *tracing) sbNbCfg(ctx context.Context) int {
	var gs []sbdb.SBGlobal
	if err := tr.sb.List(ctx, &gs); err != nil || len(gs) != 1 {
		return -1
	}
	return gs[0].NbCfg
}

// nbSbCfg is NB_Global.sb_cfg in the northbound cache: northd had written
// everything up to that nb_cfg into the southbound database.
func (tr *tracing) nbSbCfg(ctx context.Context) int {
	var gs []nbdb.NBGlobal
	if err := tr.nb.List(ctx, &gs); err != nil || len(gs) != 1 {
		return -1
	}
	return gs[0].SbCfg
}

// catchUp waits (up to sbCatchUp) until the southbound cache holds what
// northd reported as written (NB sb_cfg ≤ SB nb_cfg: northd writes the SB
// nb_cfg in the same transaction as the flows), so a trace after a
// Sync(wait=SB) sees that change. It returns a warning if it gave up.
func (tr *tracing) catchUp(ctx context.Context) string {
	want := tr.nbSbCfg(ctx)
	if want <= 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, sbCatchUp)
	defer cancel()
	for {
		tr.mu.Lock()
		ch := tr.changed
		tr.mu.Unlock()
		have := tr.sbNbCfg(ctx)
		if have >= want {
			return ""
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Sprintf("the southbound database the API server reads has nb_cfg %d, behind the %d northd reported: "+
				"this trace may not show the latest changes", have, want)
		}
	}
}

// tracer returns a tracer for the current southbound state, building one
// if the cached one is out of date.
func (tr *tracing) tracer(ctx context.Context) (*trace.Tracer, error) {
	tr.build.Lock()
	defer tr.build.Unlock()
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, unavailableSB(ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
		tr.mu.Lock()
		gen, cur := tr.gen, tr.cur
		tr.mu.Unlock()
		sbCfg := tr.sbNbCfg(ctx)
		if cur != nil && cur.gen == gen && cur.sbCfg >= sbCfg {
			return cur.t, nil
		}
		start := time.Now()
		t, err := tr.load(ctx)
		if tr.onLoad != nil {
			tr.onLoad(time.Since(start), err)
		}
		if err != nil {
			// A snapshot read while an update was being applied can be
			// inconsistent; the next read sees the whole update.
			lastErr = err
			tr.log.Debug("trace snapshot load failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
			continue
		}
		tr.log.Debug("trace snapshot loaded", zap.Duration("took", time.Since(start)),
			zap.Int("flows", len(t.Snapshot().Flows)), zap.Int("datapaths", len(t.Snapshot().Datapaths)))
		tr.mu.Lock()
		tr.cur = &builtTracer{t: t, gen: gen, sbCfg: sbCfg}
		tr.mu.Unlock()
		return t, nil
	}
	return nil, status.Errorf(codes.Unavailable, "southbound database: cannot build a trace snapshot: %v", lastErr)
}

func (tr *tracing) load(ctx context.Context) (*trace.Tracer, error) {
	snap, err := sbload.Load(ctx, tr.sb)
	if err != nil {
		return nil, err
	}
	if err := sbload.LoadACLs(ctx, tr.nb, snap); err != nil {
		return nil, err
	}
	return trace.New(snap)
}

func unavailableSB(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unavailable, "southbound database: "+err.Error())
}

// traceService answers Trace with the trace simulator (package trace) over
// the southbound database the server monitors.
type traceService struct {
	govnv1.UnimplementedTraceServiceServer
	s *Server
}

// traceRequest is a checked TraceRequest.
type traceRequest struct {
	format trace.Format // "" = json
	opts   trace.Options
}

func checkTraceRequest(req *govnv1.TraceRequest) (*traceRequest, error) {
	r := &traceRequest{}
	switch f := strings.ToLower(strings.TrimSpace(req.Format)); f {
	case "", "detailed":
		r.format = trace.Detailed
	case "summary":
		r.format = trace.Summary
	case "minimal":
		r.format = trace.Minimal
	case "json":
	default:
		return nil, badField("trace", "format", req.Format, "want detailed, summary, minimal or json")
	}
	for i, c := range req.Ct {
		st, err := trace.ParseCTState(c)
		if err != nil {
			return nil, badField("trace", fmt.Sprintf("ct[%d]", i), c, "%v", err)
		}
		r.opts.CT = append(r.opts.CT, st)
	}
	if req.LbDst != "" {
		ap, err := ParseLBDst(req.LbDst)
		if err != nil {
			return nil, badField("trace", "lb_dst", req.LbDst, "%v", err)
		}
		r.opts.LBDst = ap
	}
	return r, nil
}

// ParseLBDst parses a load-balancer backend as Trace's lb_dst and govnctl
// trace's --lb-dst take it: IP, IP:PORT or [IPv6]:PORT (port 0 = any).
func ParseLBDst(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, errors.New("want IP, IP:PORT or [IPv6]:PORT")
	}
	return netip.AddrPortFrom(a, 0), nil
}

func (x traceService) Trace(ctx context.Context, req *govnv1.TraceRequest) (*govnv1.TraceResponse, error) {
	tr := x.s.tracing
	if tr.sb == nil {
		return nil, status.Error(codes.FailedPrecondition, NoSBMessage)
	}
	r, err := checkTraceRequest(req)
	if err != nil {
		return nil, err
	}
	if !tr.sb.Connected() {
		return nil, status.Error(codes.Unavailable, "southbound database: not connected (the API server keeps reconnecting)")
	}
	var warnings []string
	if w := tr.catchUp(ctx); w != "" {
		warnings = append(warnings, w)
	}
	t, err := tr.tracer(ctx)
	if err != nil {
		return nil, err
	}
	res, err := t.Run(req.Datapath, req.Microflow, r.opts)
	if err != nil {
		return nil, traceError(t, req, err)
	}
	resp := &govnv1.TraceResponse{Datapath: res.Datapath, Packet: res.Packet, Truncated: res.Truncated,
		Warnings: append(warnings, res.Warnings...)}
	if r.format == "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return nil, internal(err)
		}
		resp.Output = string(b) + "\n"
	} else {
		var sb strings.Builder
		if err := trace.Render(&sb, res, r.format); err != nil {
			return nil, internal(err)
		}
		resp.Output = sb.String()
	}
	for i := range res.Outcomes {
		resp.Outcomes = append(resp.Outcomes, outcomeProto(&res.Outcomes[i]))
	}
	return resp, nil
}

// traceError maps an error of Tracer.Run: a bad microflow is
// InvalidArgument with its position; an unknown datapath (or an inport
// that is no logical port, when the datapath is left to the inport) is
// NotFound.
func traceError(t *trace.Tracer, req *govnv1.TraceRequest, err error) error {
	var me *trace.MicroflowError
	if errors.As(err, &me) {
		return microflowError(me)
	}
	if req.Datapath != "" {
		n := 0
		for _, d := range t.Snapshot().Datapaths {
			if d.Name == req.Datapath {
				n++
			}
		}
		if n > 1 {
			return badField("trace", "datapath", req.Datapath, "%v", err)
		}
		return status.Error(codes.NotFound, err.Error())
	}
	if name, ok := inport(req.Microflow); ok {
		for _, p := range t.Snapshot().Ports {
			if p.Name == name {
				return status.Error(codes.Internal, err.Error())
			}
		}
		return status.Error(codes.NotFound, err.Error())
	}
	return badField("trace", "datapath", "", "%v", err)
}

// microflowError is InvalidArgument on field microflow with an ErrorInfo
// (reason INVALID_MICROFLOW) carrying line and column, as ACL match errors
// carry theirs.
func microflowError(me *trace.MicroflowError) error {
	st := status.New(codes.InvalidArgument, me.Error())
	d, err := st.WithDetails(
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "trace.microflow", Description: me.Pos.String() + ": " + me.Msg},
		}},
		&errdetails.ErrorInfo{Reason: "INVALID_MICROFLOW", Domain: "govn.v1", Metadata: map[string]string{
			"field": "trace.microflow", "line": strconv.Itoa(me.Pos.Line), "column": strconv.Itoa(me.Pos.Col), "message": me.Msg,
		}})
	if err == nil {
		st = d
	}
	return st.Err()
}

// inport finds `inport == "name"` in a microflow, as the tracer does when
// no datapath is given.
func inport(microflow string) (string, bool) {
	toks, err := lex.Tokenize(microflow)
	if err != nil {
		return "", false
	}
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].Kind == lex.Ident && toks[i].Str == "inport" && toks[i+1].Kind == lex.Eq && toks[i+2].Kind == lex.String {
			return toks[i+2].Str, true
		}
	}
	return "", false
}

func outcomeProto(o *trace.Outcome) *govnv1.TraceOutcome {
	p := &govnv1.TraceOutcome{Datapath: o.Datapath, Port: o.Port, PortType: o.PortType, Reason: o.Reason,
		Flow: flowProto(o.Flow), Cause: flowProto(o.Cause)}
	switch o.Verdict {
	case "output":
		p.Verdict = govnv1.TraceOutcome_OUTPUT
	case "drop":
		p.Verdict = govnv1.TraceOutcome_DROP
	}
	return p
}

func flowProto(f *trace.FlowHit) *govnv1.TraceFlow {
	if f == nil {
		return nil
	}
	p := &govnv1.TraceFlow{Uuid: f.UUID, Datapath: f.Datapath, Pipeline: f.Pipeline, Table: int32(f.Table), Stage: f.Stage,
		Priority: int32(f.Priority), Match: f.Match, Actions: f.Actions, Source: f.Source}
	if f.Ref != nil {
		p.RefKind, p.RefId = f.Ref.Kind, f.Ref.ID
	}
	return p
}
