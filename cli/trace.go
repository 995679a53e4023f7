package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

func init() { register(newTraceCommand) }

// DefaultSBRemote is where govnctl trace reads the southbound database
// unless --sb or GOVN_SB says otherwise.
const DefaultSBRemote = "unix:/var/run/govn/ovnsb_db.sock"

type traceFlags struct {
	sb, nb                     string
	snapshot                   string
	ct                         []string
	lbDst                      string
	detailed, summary, minimal bool
	ovs, ovsBridge             string
}

func newTraceCommand(o *options) *cobra.Command {
	f := &traceFlags{}
	cmd := &cobra.Command{
		Use:   "trace [DATAPATH] MICROFLOW",
		Short: "Simulate a packet through the southbound logical flows (like ovn-trace)",
		Long: "govnctl trace follows a packet, described as a microflow in the logical-flow match language,\n" +
			"through the logical flows of the southbound database: ingress and egress pipelines, multicast\n" +
			"groups (one branch per member), patch ports into other datapaths, conntrack (--ct), load\n" +
			"balancing (--lb-dst) and generated packets (arp, icmp4, ...). Drops name the northbound object\n" +
			"(ACL, port security of a logical switch port) that caused them.\n\n" +
			"DATAPATH is a logical switch or router name, a Datapath_Binding UUID or tunnel key; without\n" +
			"it, the datapath of the microflow's inport.\n" +
			"MICROFLOW is a conjunction of equalities; prerequisites are implied and other fields default\n" +
			"(IPv4 when unspecified, ip.ttl 64), e.g.\n" +
			"  'inport == \"p1\" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 &&\n" +
			"   ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && tcp.dst == 80'\n\n" +
			"Output: --detailed (default), --summary, --minimal (several may be given), or -o json|yaml\n" +
			"for the whole trace tree with its outcomes.\n\n" +
			"Where the southbound database comes from: --snapshot FILE; --sb REMOTE (or GOVN_SB) reads it\n" +
			"directly; otherwise, when --server (or GOVN_SERVER) is given, the govn API server traces (its\n" +
			"Trace RPC; the server must run with --sb); otherwise " + DefaultSBRemote + ".",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validateOutput(); err != nil {
				return err
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			dp, mf := "", args[0]
			if len(args) == 2 {
				dp, mf = args[0], args[1]
			}
			if f.viaAPI(cmd) {
				return f.runAPI(cmd, o, dp, mf)
			}
			snap, err := f.load(cmd.Context(), o)
			if err != nil {
				return err
			}
			tracer, err := trace.New(snap)
			if err != nil {
				return err
			}
			tr, err := tracer.Run(dp, mf, opts)
			if err != nil {
				var me *trace.MicroflowError
				if errors.As(err, &me) {
					return microflowError(me)
				}
				return err
			}
			for _, w := range tr.Warnings {
				fmt.Fprintln(o.errOut, "warning:", w)
			}
			if f.ovs == "" {
				return o.print(tr, func(w io.Writer) error { return renderTrace(w, tr, f.forms()) })
			}
			ot, err := f.ovsTrace(cmd.Context(), o, tracer, tr, opts)
			if err != nil {
				return err
			}
			res := struct {
				Trace *trace.Trace `json:"trace"`
				OVS   *ovsTrace    `json:"ovs"`
			}{tr, ot}
			return o.print(res, func(w io.Writer) error {
				if err := renderTrace(w, tr, f.forms()); err != nil {
					return err
				}
				head := fmt.Sprintf("OVS: ofproto/trace %s %s", ot.Bridge, ot.Flow)
				fmt.Fprintf(w, "\n%s\n%s\n%s", head, strings.Repeat("=", len(head)), ot.Output)
				return nil
			})
		},
	}
	def := os.Getenv("GOVN_SB")
	if def == "" {
		def = DefaultSBRemote
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sb, "sb", def, "southbound database (unix:PATH, tcp:IP:PORT; comma-separated cluster members); default $GOVN_SB")
	fl.StringVar(&f.nb, "nb", os.Getenv("GOVN_NB"), "northbound database to read ACL names and matches from, for drop reasons (optional); default $GOVN_NB")
	fl.StringVar(&f.snapshot, "snapshot", "", "trace over a JSON snapshot file (trace/testdata format) instead of a database")
	fl.StringArrayVar(&f.ct, "ct", nil, "ct_state the next conntrack pass reports, e.g. new or est,rpl (repeatable; default est)")
	fl.StringVar(&f.lbDst, "lb-dst", "", "load-balancer backend to choose, IP[:PORT]")
	fl.StringVar(&f.ovs, "ovs", "", "also run ofproto/trace on the Open vSwitch with this run directory (db.sock, ovs-vswitchd control\n"+
		"socket; \"local\" = $OVS_RUNDIR or /var/run/openvswitch) for the packet entering on inport's interface,\n"+
		"and map each OpenFlow cookie back to its logical flow")
	fl.StringVar(&f.ovsBridge, "ovs-bridge", "br-int", "integration bridge for --ovs")
	fl.BoolVar(&f.detailed, "detailed", false, "per logical flow: table, stage, match, priority, actions, uuid (default)")
	fl.BoolVar(&f.summary, "summary", false, "nested actions, without the flows")
	fl.BoolVar(&f.minimal, "minimal", false, "only packet changes and deliveries")
	return cmd
}

func (f *traceFlags) options() (trace.Options, error) {
	var opts trace.Options
	for _, c := range f.ct {
		st, err := trace.ParseCTState(c)
		if err != nil {
			return opts, err
		}
		opts.CT = append(opts.CT, st)
	}
	if f.lbDst != "" {
		ap, err := netip.ParseAddrPort(f.lbDst)
		if err != nil {
			a, err2 := netip.ParseAddr(strings.Trim(f.lbDst, "[]"))
			if err2 != nil {
				return opts, fmt.Errorf("--lb-dst %q: want IP or IP:PORT ([IPv6]:PORT)", f.lbDst)
			}
			ap = netip.AddrPortFrom(a, 0)
		}
		opts.LBDst = ap
	}
	return opts, nil
}

// viaAPI reports whether to trace through the govn API (its Trace RPC)
// rather than by reading the southbound database: a server is given
// (--server or GOVN_SERVER) and neither --sb (or GOVN_SB) nor --snapshot.
func (f *traceFlags) viaAPI(cmd *cobra.Command) bool {
	if f.snapshot != "" || cmd.Flags().Changed("sb") || os.Getenv("GOVN_SB") != "" {
		return false
	}
	return cmd.Flags().Changed("server") || os.Getenv("GOVN_SERVER") != ""
}

// runAPI traces through the API server's Trace RPC, which answers with the
// whole trace as JSON; it is rendered here exactly as a direct trace is.
func (f *traceFlags) runAPI(cmd *cobra.Command, o *options, dp, mf string) error {
	if f.ovs != "" {
		return errors.New("--ovs needs the southbound database read directly: give --sb (the API's Trace has no view of Open vSwitch)")
	}
	if cmd.Flags().Changed("nb") {
		return errors.New("--nb goes with --sb: through the API server (--server), drop reasons name ACLs from the server's own northbound database")
	}
	a, err := o.connect(cmd)
	if err != nil {
		return err
	}
	defer a.close()
	resp, err := govnv1.NewTraceServiceClient(a.conn).Trace(a.ctx, &govnv1.TraceRequest{
		Datapath: dp, Microflow: mf, Format: "json", Ct: f.ct, LbDst: f.lbDst})
	if err != nil {
		if me := microflowErrorOf(err, mf); me != nil {
			return microflowError(me)
		}
		if status.Code(err) == codes.FailedPrecondition {
			return fmt.Errorf("%w (or give govnctl trace --sb REMOTE to read the southbound database directly)", a.err(err))
		}
		return a.err(err)
	}
	var tr trace.Trace
	if err := json.Unmarshal([]byte(resp.Output), &tr); err != nil {
		return serverError{fmt.Errorf("the govn API at %s answered Trace with an unreadable trace: %v", o.client.server, err)}
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(o.errOut, "warning:", w)
	}
	return o.print(&tr, func(w io.Writer) error { return renderTrace(w, &tr, f.forms()) })
}

// microflowErrorOf rebuilds the MicroflowError that the API's Trace
// reported (InvalidArgument with ErrorInfo INVALID_MICROFLOW: line, column,
// message), or returns nil.
func microflowErrorOf(err error, mf string) *trace.MicroflowError {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return nil
	}
	for _, d := range st.Details() {
		ei, ok := d.(*errdetails.ErrorInfo)
		if !ok || ei.Reason != "INVALID_MICROFLOW" {
			continue
		}
		line, err1 := strconv.Atoi(ei.Metadata["line"])
		col, err2 := strconv.Atoi(ei.Metadata["column"])
		if err1 != nil || err2 != nil {
			return nil
		}
		return &trace.MicroflowError{Input: mf, Pos: lex.Pos{Line: line, Col: col}, Msg: ei.Metadata["message"]}
	}
	return nil
}

// microflowError is a bad microflow for the terminal: the error, then the
// line it is on with a caret under the position.
func microflowError(me *trace.MicroflowError) error {
	return fmt.Errorf("%w\n%s", me, indent(me.Caret(), "  "))
}

func (f *traceFlags) forms() []trace.Format {
	var fs []trace.Format
	if f.detailed {
		fs = append(fs, trace.Detailed)
	}
	if f.summary {
		fs = append(fs, trace.Summary)
	}
	if f.minimal {
		fs = append(fs, trace.Minimal)
	}
	if len(fs) == 0 {
		fs = []trace.Format{trace.Detailed}
	}
	return fs
}

// load reads the snapshot from --snapshot or the southbound database.
func (f *traceFlags) load(ctx context.Context, o *options) (*trace.Snapshot, error) {
	if f.snapshot != "" {
		b, err := os.ReadFile(f.snapshot)
		if err != nil {
			return nil, err
		}
		return trace.ParseSnapshot(b)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.client.timeout)
	defer cancel()
	remotes := splitRemotes(f.sb)
	if len(remotes) == 0 {
		return nil, errors.New("--sb: no southbound database given")
	}
	c, err := sbload.Connect(ctx, remotes)
	if err != nil {
		return nil, serverError{fmt.Errorf("southbound database %s: %w", f.sb, err)}
	}
	defer c.Close()
	s, err := sbload.Load(ctx, c)
	if err != nil {
		return nil, serverError{err}
	}
	if nb := splitRemotes(f.nb); len(nb) > 0 {
		nc, err := sbload.ConnectNB(ctx, nb)
		if err != nil {
			return nil, serverError{fmt.Errorf("northbound database %s: %w", f.nb, err)}
		}
		defer nc.Close()
		if err := sbload.LoadACLs(ctx, nc, s); err != nil {
			return nil, serverError{err}
		}
	}
	return s, nil
}

func splitRemotes(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func renderTrace(w io.Writer, tr *trace.Trace, forms []trace.Format) error {
	for i, f := range forms {
		if len(forms) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s\n%s\n", strings.ToUpper(string(f)), strings.Repeat("=", len(f)))
		}
		if err := trace.Render(w, tr, f); err != nil {
			return err
		}
	}
	return nil
}

func indent(s, pad string) string {
	if s == "" {
		return ""
	}
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// ovsTrace is what --ovs adds: the real switch's trace of the packet, with
// each OpenFlow cookie mapped back to its logical flow.
type ovsTrace struct {
	RunDir string `json:"rundir"`
	Bridge string `json:"bridge"`
	InPort uint32 `json:"in_port"`
	Flow   string `json:"flow"`
	// Output is ofproto/trace's output annotated with the logical flows.
	Output          string              `json:"output"`
	LogicalFlows    []trace.DetraceLine `json:"logical_flows"`
	DatapathActions string              `json:"datapath_actions"`
}

// ovsTrace runs ofproto/trace for tr's packet on the Open vSwitch in
// --ovs's run directory, entering on the interface bound to the trace's
// inport (external_ids:iface-id).
func (f *traceFlags) ovsTrace(ctx context.Context, o *options, t *trace.Tracer, tr *trace.Trace, opts trace.Options) (*ovsTrace, error) {
	dir := f.ovs
	if dir == "local" {
		dir = os.Getenv("OVS_RUNDIR")
		if dir == "" {
			dir = "/var/run/openvswitch"
		}
	}
	inport := tr.Root.Inport
	if inport == "" {
		return nil, errors.New("--ovs: the microflow gives no inport, so the packet has no interface to enter on")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.client.timeout)
	defer cancel()
	env := append(os.Environ(), "OVS_RUNDIR="+dir)
	run := func(name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", serverError{fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))}
		}
		return stdout.String(), nil
	}
	out, err := run("ovs-vsctl", "--db=unix:"+filepath.Join(dir, "db.sock"), "--timeout=10", "--bare", "--columns=ofport",
		"find", "Interface", "external_ids:iface-id="+inport)
	if err != nil {
		return nil, err
	}
	var ofport uint32
	for _, l := range strings.Fields(out) {
		if n, err := strconv.ParseUint(l, 10, 32); err == nil && n > 0 && n < 0xff00 {
			ofport = uint32(n)
			break
		}
	}
	if ofport == 0 {
		return nil, fmt.Errorf("--ovs: logical port %q is not bound here (no interface with external_ids:iface-id=%s and an OpenFlow port in %s)", inport, inport, dir)
	}
	target := "ovs-vswitchd"
	if ctl := filepath.Join(dir, "ovs-vswitchd.ctl"); fileExists(ctl) {
		target = ctl
	}
	ot := &ovsTrace{RunDir: dir, Bridge: f.ovsBridge, InPort: ofport, Flow: tr.OpenFlowFlow(ofport)}
	args := []string{"-t", target, "ofproto/trace"}
	for _, st := range opts.CT {
		args = append(args, "--ct-next", trace.CTNextFlags(st))
	}
	args = append(args, f.ovsBridge, ot.Flow)
	raw, err := run("ovs-appctl", args...)
	if err != nil {
		return nil, err
	}
	ot.Output, ot.LogicalFlows = t.Detrace(raw)
	for _, l := range strings.Split(raw, "\n") {
		if a, ok := strings.CutPrefix(l, "Datapath actions: "); ok {
			ot.DatapathActions = strings.TrimSpace(a)
		}
	}
	return ot, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
