package ovs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/controller/pinctrl/ofp"
)

// OpenFlow keeps one bridge's OpenFlow tables equal to a desired set of flows
// and groups, speaking OpenFlow 1.5 itself on the bridge's management socket
// ($OVS_RUNDIR/<bridge>.mgmt).
//
// Flows and groups arrive as the text lflow/of prints (see ofctrl); that
// text is our canonical form: desired and installed flows are compared by
// it, and only the flows of a diff are parsed back (ofctrl.ParseMatch,
// ParseActions, ParseGroup) and encoded (pinctrl/ofp). A sync is one atomic,
// ordered bundle on one long-lived connection: open, every flow/group mod, a
// barrier that collects the switch's verdict on each message, then commit —
// or discard when the switch refused one (that flow or group is reported in
// Rejected, left out, and the bundle retried). Text the parser does not
// accept is rejected with its reason, never silently dropped. No process is
// spawned on this path.
//
// Restart = reconcile, never flush. At the first sync (and after a failure)
// the switch is read with `ovs-ofctl dump-flows` / `dump-groups`. An empty
// switch is filled natively. If flows of ours are there (a restarted
// controller), the desired flows are normalized by `ovs-ofctl parse-flows` /
// `parse-group` (whose formatter is dump-flows') and compared with what is
// installed; only the differences go in one `ovs-ofctl bundle`, so flows
// already right are never touched (no traffic interruption), and only flows
// whose cookie carries our owner tag are ever deleted. From then on the
// cache holds our own text and syncs are native.
//
// Switch restarts. Before trusting its cache, each sync asks the switch how
// many of our flows it holds in the first table we have flows in, and in all
// tables at most every 10 s (aggregate-statistics requests filtered by our
// cookie); on a mismatch (ovs-vswitchd restarted and lost its flows, or
// someone deleted ours) it re-reads everything and reconciles. A new
// connection (the old one broke: ovs-vswitchd may have restarted) always
// counts everything. (A flow of ours changed in place by someone else keeps
// the count and is not detected; Invalidate forces a full re-read.)
//
// An OpenFlow is safe for use by several goroutines; syncs are serialized.
type OpenFlow struct {
	target  string // "unix:/path/br-int.mgmt"
	owner   ofctrl.Owner
	log     *zap.Logger
	metrics *Metrics

	mu sync.Mutex

	tlvMaps    []ofctrl.TLVMap
	installed  *flowCache // nil: unknown, re-read from the switch
	flowNorm   map[ofctrl.Flow]ofctrl.Flow
	groupNorm  map[ofctrl.Group]ofctrl.Group
	maxRetries int

	conn     *ofConn // native OpenFlow connection (nil: not connected)
	bundleID uint32
	// fullCount is how often all our flows are counted (see syncNative);
	// lastFull when they last were.
	fullCount time.Duration
	lastFull  time.Time
	// purgeCtl is ovs-vswitchd's unixctl socket when committed changes
	// must be followed by a datapath flow purge (see megaflow.go), else
	// "". Probed before the first change after every new connection.
	purgeCtl    string
	purgeProbed bool
}

// NewOpenFlow drives the bridge whose OpenFlow management socket is mgmtSock.
func NewOpenFlow(mgmtSock string, owner ofctrl.Owner, log *zap.Logger) (*OpenFlow, error) {
	if err := owner.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &OpenFlow{
		target:     "unix:" + mgmtSock,
		owner:      owner,
		log:        log,
		flowNorm:   map[ofctrl.Flow]ofctrl.Flow{},
		groupNorm:  map[ofctrl.Group]ofctrl.Group{},
		maxRetries: 16,
		fullCount:  10 * time.Second,
	}, nil
}

// SetMetrics makes the syncer report to m.
func (o *OpenFlow) SetMetrics(m *Metrics) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.metrics = m
}

// SetTLVMaps sets the Geneve option mappings (tun_metadataN) the flows need.
// They are ensured before flows are installed after every (re)read of the
// switch, since ovs-vswitchd forgets them when it restarts.
func (o *OpenFlow) SetTLVMaps(maps ...ofctrl.TLVMap) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tlvMaps = append([]ofctrl.TLVMap(nil), maps...)
	o.installed = nil
}

// ensureTLVMaps adds the missing TLV mappings; a field already mapped to
// another option is an error.
func (o *OpenFlow) ensureTLVMaps(ctx context.Context) error {
	if len(o.tlvMaps) == 0 {
		return nil
	}
	out, err := o.output(ctx, "-O", "OpenFlow15", "dump-tlv-map", o.target)
	if err != nil {
		return err
	}
	have, err := ofctrl.ParseDumpTLVMap(out)
	if err != nil {
		return err
	}
	var add []string
	for _, m := range o.tlvMaps {
		found := false
		for _, h := range have {
			if h == m {
				found = true
			} else if h.Field == m.Field || (h.Class == m.Class && h.Type == m.Type) {
				return fmt.Errorf("tlv map %s conflicts with installed %s", m, h)
			}
		}
		if !found {
			add = append(add, m.String())
		}
	}
	if len(add) == 0 {
		return nil
	}
	_, err = o.output(ctx, "-O", "OpenFlow15", "add-tlv-map", o.target, strings.Join(add, ","))
	return err
}

// Invalidate drops the installed-state cache: the next Sync re-reads the
// switch (call it when the bridge or ovs-vswitchd was recreated).
func (o *OpenFlow) Invalidate() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.installed = nil
}

// Rejected is a desired flow or group that OVS refused; it was left out of
// the sync and the rest was installed.
type Rejected struct {
	Flow  *ofctrl.Flow
	Group *ofctrl.Group
	Err   error
}

func (r Rejected) Error() string {
	if r.Group != nil {
		return fmt.Sprintf("group %q rejected: %v", r.Group.String(), r.Err)
	}
	return fmt.Sprintf("flow %q rejected: %v", r.Flow.String(), r.Err)
}

// SyncResult reports one Sync.
type SyncResult struct {
	Diff     ofctrl.Diff // the changes applied
	Rejected []Rejected  // desired flows/groups OVS refused (not installed)
}

// Sync makes the bridge's owned flows and groups equal to the desired ones
// in one atomic bundle. Flows and groups that cannot be encoded or that OVS
// rejects are reported in Rejected and left out; the rest is installed. An
// error means nothing changed in this call or the switch's state is unknown
// (it is then re-read at the next Sync).
func (o *OpenFlow) Sync(ctx context.Context, flows []ofctrl.Flow, groups []ofctrl.Group) (res SyncResult, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	start := time.Now()
	defer func() {
		if o.metrics != nil {
			o.metrics.SyncSeconds.Observe(time.Since(start).Seconds())
			o.metrics.Rejected.Add(float64(len(res.Rejected)))
			if err == nil && o.installed != nil {
				o.metrics.observe(res.Diff, len(o.installed.flows))
			}
		}
	}()
	for attempt := 0; ; attempt++ {
		if o.installed == nil {
			done, err := o.reread(ctx, flows, groups, &res)
			if err != nil || done {
				return res, err
			}
		}
		lost, err := o.syncNative(ctx, flows, groups, &res)
		if err != nil {
			o.installed = nil
			o.dropConn()
			return res, err
		}
		if !lost {
			return res, nil
		}
		if attempt > 0 {
			return res, fmt.Errorf("switch lost our flows again right after a re-read")
		}
		o.installed = nil
	}
}

// reread reads the switch's state after a start, a failure or a switch
// restart. An empty switch needs no reconciliation: the native path installs
// everything. Otherwise (a restarted controller finding its flows) the
// desired state is reconciled against what is installed through ovs-ofctl,
// whose dump-flows and parse-flows print both sides in one canonical form,
// and done is true.
func (o *OpenFlow) reread(ctx context.Context, flows []ofctrl.Flow, groups []ofctrl.Group, res *SyncResult) (done bool, err error) {
	if err := o.ensureTLVMaps(ctx); err != nil {
		return false, err
	}
	st, err := o.ReadInstalled(ctx)
	if err != nil {
		return false, err
	}
	if o.metrics != nil {
		o.metrics.FullReads.Inc()
	}
	if len(st.Flows) == 0 && len(st.Groups) == 0 {
		o.installed = newFlowCache(nil)
		return false, nil
	}
	fs, gs, rej := o.dropConflicts(flows, groups)
	res.Rejected = append(res.Rejected, rej...)
	desired, err := ofctrl.NewState(o.owner, fs, gs)
	if err != nil {
		return false, err
	}
	return true, o.reconcileText(ctx, desired, st, res)
}

// syncNative applies the diff between the desired flows and the
// installed-state cache as one bundle over the native OpenFlow connection.
// lost reports that the switch does not hold the flows the cache says it
// does (ovs-vswitchd restarted, or someone deleted ours): nothing was
// changed, re-read.
func (o *OpenFlow) syncNative(ctx context.Context, flows []ofctrl.Flow, groups []ofctrl.Group, res *SyncResult) (lost bool, err error) {
	if err := o.ensureConn(ctx); err != nil {
		return false, err
	}
	t0 := time.Now()
	// Counting all our flows makes ovs-vswitchd walk all of them, which
	// is most of a small sync's cost on a big switch. Every sync counts
	// one table (the first we have flows in: a restarted or wiped switch
	// has none there); all of them are counted at most every fullCount.
	table, want := uint8(ofp.TableAll), len(o.installed.flows)
	if time.Since(o.lastFull) < o.fullCount {
		for t, n := range o.installed.perTable {
			if n > 0 {
				table, want = uint8(t), n
				break
			}
		}
	}
	n, err := o.countOwned(ctx, table)
	if err != nil {
		return false, err
	}
	if table == ofp.TableAll {
		o.lastFull = time.Now()
	}
	tCount := time.Since(t0)
	if n != want {
		o.log.Warn("switch does not hold the flows we installed; re-reading",
			zap.Int("on_switch", n), zap.Int("cached", want), zap.Int("table", int(table)))
		return true, nil
	}
	var skip map[ofctrl.FlowKey]bool
	var skipG map[uint32]bool
	refuse := func(r Rejected) {
		if r.Flow != nil {
			if skip == nil {
				skip = map[ofctrl.FlowKey]bool{}
			}
			skip[r.Flow.Key()] = true
		} else {
			if skipG == nil {
				skipG = map[uint32]bool{}
			}
			skipG[r.Group.ID] = true
		}
		res.Rejected = append(res.Rejected, r)
	}
	for attempt := 0; ; attempt++ {
		t1 := time.Now()
		d, rej := o.installed.diff(o.owner, flows, groups, skip, skipG)
		if attempt == 0 {
			// (Later passes see the same conflicts again.)
			res.Rejected = append(res.Rejected, rej...)
		}
		tDiff := time.Since(t1)
		if d.Empty() {
			res.Diff = d
			return false, nil
		}
		b, bad := encodeDiff(d, o.owner)
		if len(bad) > 0 {
			// Leave what cannot be encoded out and start over.
			for _, r := range bad {
				refuse(r)
			}
			continue
		}
		t2 := time.Now()
		failed, bad, err := o.sendBundle(ctx, b)
		if len(bad) > 0 {
			// Leave what cannot be encoded out and start over.
			for _, r := range bad {
				refuse(r)
			}
			continue
		}
		if err == nil {
			o.installed.apply(d)
			res.Diff = d
			o.purgeDatapath(ctx)
			o.log.Debug("openflow sync", zap.Stringer("diff", d), zap.Duration("count", tCount),
				zap.Duration("diff_time", tDiff), zap.Duration("encode", t2.Sub(t1)-tDiff), zap.Duration("bundle", time.Since(t2)))
			return false, nil
		}
		if failed == nil || attempt >= o.maxRetries {
			return false, err
		}
		// The bundle was atomic: nothing of it was applied. Leave the
		// rejected item out and try again.
		switch {
		case failed.flow != nil && failed.add:
			f := *failed.flow // (points into d)
			refuse(Rejected{Flow: &f, Err: failed.err})
		case failed.group != nil && failed.add:
			refuse(Rejected{Group: failed.group, Err: failed.err})
		default:
			// A deletion failed: our cache is wrong.
			return false, err
		}
	}
}

// dropConflicts leaves out (and reports) flows whose cookie uses the owner's
// bits, a second flow with the key of an earlier one but other cookie or
// actions, groups outside the owned range and a second group with an earlier
// one's id but another spec: the first one wins.
func (o *OpenFlow) dropConflicts(flows []ofctrl.Flow, groups []ofctrl.Group) ([]ofctrl.Flow, []ofctrl.Group, []Rejected) {
	var rej []Rejected
	fs := make([]ofctrl.Flow, 0, len(flows))
	seen := make(map[ofctrl.FlowKey]ofctrl.Flow, len(flows))
	for _, f := range flows {
		f := f
		if f.Cookie&o.owner.Mask != 0 {
			rej = append(rej, Rejected{Flow: &f, Err: fmt.Errorf("cookie %#x uses the owner bits %#x", f.Cookie, o.owner.Mask)})
			continue
		}
		if old, ok := seen[f.Key()]; ok {
			if old != f {
				rej = append(rej, Rejected{Flow: &f, Err: fmt.Errorf("conflicts with %q", old.String())})
			}
			continue
		}
		seen[f.Key()] = f
		fs = append(fs, f)
	}
	gs := make([]ofctrl.Group, 0, len(groups))
	seenG := make(map[uint32]ofctrl.Group, len(groups))
	for _, g := range groups {
		g := g
		if !o.owner.OwnsGroup(g.ID) {
			rej = append(rej, Rejected{Group: &g, Err: fmt.Errorf("id outside the owned range [%d, %d]", o.owner.MinGroup, o.owner.MaxGroup)})
			continue
		}
		if old, ok := seenG[g.ID]; ok {
			if old != g {
				rej = append(rej, Rejected{Group: &g, Err: fmt.Errorf("conflicts with %q", old.String())})
			}
			continue
		}
		seenG[g.ID] = g
		gs = append(gs, g)
	}
	return fs, gs, rej
}

// ReadInstalled dumps the bridge's flows and groups that are ours.
func (o *OpenFlow) ReadInstalled(ctx context.Context) (*ofctrl.State, error) {
	out, err := o.output(ctx, "-O", "OpenFlow15", "--no-stats", "--no-names", "dump-flows", o.target, o.owner.CookieFilter())
	if err != nil {
		return nil, err
	}
	flows, err := ofctrl.ParseDumpFlows(o.owner, out)
	if err != nil {
		return nil, err
	}
	out, err = o.output(ctx, "-O", "OpenFlow15", "--no-names", "dump-groups", o.target)
	if err != nil {
		return nil, err
	}
	groups, err := ofctrl.ParseDumpGroups(o.owner, out)
	if err != nil {
		return nil, err
	}
	return ofctrl.NewState(o.owner, flows, groups)
}

// Installed returns a copy of the installed-state cache (nil if unknown).
func (o *OpenFlow) Installed() *ofctrl.State {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.installed == nil {
		return nil
	}
	return o.installed.state()
}

var parseErrLine = regexp.MustCompile(`-:(\d+): (.*)`)

// normalizeFlows maps each flow to OVS's canonical text, using the cache for
// flows seen before and one parse-flows run for the rest. Flows parse-flows
// rejects are returned as Rejected. The cache keeps only this call's flows.
func (o *OpenFlow) normalizeFlows(ctx context.Context, flows []ofctrl.Flow) ([]ofctrl.Flow, []Rejected, error) {
	out := make([]ofctrl.Flow, 0, len(flows))
	next := make(map[ofctrl.Flow]ofctrl.Flow, len(flows))
	var todo []ofctrl.Flow
	for _, f := range flows {
		if n, ok := o.flowNorm[f]; ok {
			next[f] = n
			out = append(out, n)
		} else if _, ok := next[f]; !ok {
			next[f] = ofctrl.Flow{} // placeholder: dedupe todo
			todo = append(todo, f)
		}
	}
	// parse-flows stops at the first bad line. On an error at line k of the
	// remaining flows, lines 1..k-1 are good: parse them alone, reject line
	// k, and continue after it, so each bad flow costs two runs over a
	// prefix rather than a re-run of everything.
	var rejected []Rejected
	record := func(seg []ofctrl.Flow, stdout string) error {
		matches, actions, err := ofctrl.ParseFlowMods(stdout, len(seg))
		if err != nil {
			return err
		}
		for i, f := range seg {
			n := f
			n.Match, n.Actions = matches[i], actions[i]
			next[f] = n
			out = append(out, n)
		}
		return nil
	}
	for len(todo) > 0 {
		stdout, stderr, err := o.run(ctx, ofctrl.NormalizeInput(todo), "-O", "OpenFlow15", "parse-flows", "-")
		if err == nil {
			if err := record(todo, stdout); err != nil {
				return nil, nil, err
			}
			break
		}
		m := parseErrLine.FindStringSubmatch(stderr)
		if m == nil {
			return nil, nil, err
		}
		line, _ := strconv.Atoi(m[1])
		if line < 1 || line > len(todo) {
			return nil, nil, err
		}
		if line > 1 {
			good := todo[:line-1]
			stdout, _, err := o.run(ctx, ofctrl.NormalizeInput(good), "-O", "OpenFlow15", "parse-flows", "-")
			if err != nil {
				return nil, nil, fmt.Errorf("re-parsing the flows before a bad one: %w", err)
			}
			if err := record(good, stdout); err != nil {
				return nil, nil, err
			}
		}
		bad := todo[line-1]
		rejected = append(rejected, Rejected{Flow: &bad, Err: errors.New(m[2])})
		delete(next, bad)
		todo = todo[line:]
	}
	o.flowNorm = next
	return out, rejected, nil
}

// normalizeGroups is normalizeFlows for groups (parse-group handles one group
// per run; groups are few).
func (o *OpenFlow) normalizeGroups(ctx context.Context, groups []ofctrl.Group) ([]ofctrl.Group, []Rejected, error) {
	out := make([]ofctrl.Group, 0, len(groups))
	next := make(map[ofctrl.Group]ofctrl.Group, len(groups))
	var rejected []Rejected
	for _, g := range groups {
		n, ok := o.groupNorm[g]
		if !ok {
			n, ok = next[g]
		}
		if !ok {
			stdout, stderr, err := o.run(ctx, "", "-O", "OpenFlow15", "parse-group", g.String())
			if err != nil {
				if strings.Contains(stderr, "ovs-ofctl: ") {
					g := g
					rejected = append(rejected, Rejected{Group: &g, Err: errors.New(strings.TrimSpace(stderr))})
					continue
				}
				return nil, nil, err
			}
			if n, err = ofctrl.ParseGroupMod(stdout); err != nil {
				return nil, nil, err
			}
		}
		next[g] = n
		out = append(out, n)
	}
	o.groupNorm = next
	return out, rejected, nil
}

// output runs ovs-ofctl and returns its stdout.
func (o *OpenFlow) output(ctx context.Context, args ...string) (string, error) {
	stdout, _, err := o.run(ctx, "", args...)
	return stdout, err
}

// ofctl runs ovs-ofctl with stdin and returns its stderr.
func (o *OpenFlow) ofctl(ctx context.Context, stdin string, args ...string) (string, error) {
	_, stderr, err := o.run(ctx, stdin, args...)
	return stderr, err
}

func (o *OpenFlow) run(ctx context.Context, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ovs-ofctl", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("ovs-ofctl %s: %w: %s", strings.Join(args, " "), err, firstLines(stderr.String(), 5))
	}
	return stdout.String(), stderr.String(), nil
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "; ")
}

// Close closes the native OpenFlow connection (a later Sync reopens it).
func (o *OpenFlow) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropConn()
}
