package trace

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/symtab"
)

// Tracer traces packets through one snapshot. It parses every logical
// flow once (New) and caches each flow's match resolved per datapath, so
// many traces over the same snapshot are cheap. It is safe for concurrent
// use.
type Tracer struct {
	snap *Snapshot
	st   *symtab.Table
	comp *expr.Compiler

	dps    []*dpInfo
	byID   map[string]*dpInfo
	byKey  map[uint32]*dpInfo
	byName map[string][]*dpInfo
	ports  map[string]*portInfo // by logical port name

	// Warnings lists logical flows that could not be parsed (they are
	// skipped, as ovn-controller and ovn-trace skip them).
	Warnings []string

	mu       sync.Mutex
	resolved map[resolveKey]*expr.Expr
}

type resolveKey struct {
	f  *cflow
	dp *dpInfo
}

type dpInfo struct {
	Datapath
	ports   map[string]*portInfo // logical ports and multicast groups by name
	byKey   map[uint32]*portInfo
	macs    map[macKey]bits.U128
	flows   map[tableKey][]*cflow // descending priority
	hasGwPt bool
	// hairpins are the (VIP, backend) pairs of the load balancers on the
	// datapath (chk_lb_hairpin, chk_lb_hairpin_reply).
	hairpins []hairpin
}

type tableKey struct {
	egress bool
	table  int
}

type macKey struct {
	port uint32
	ip   bits.U128
}

type portInfo struct {
	Port
	dp    *dpInfo
	group *MulticastGroup // non-nil: a multicast group
}

// cflow is a logical flow parsed once.
type cflow struct {
	f       *Flow
	egress  bool
	match   *expr.Expr
	actions action.Actions
	trivial bool // match "1", actions "next;": omitted from detailed and summary output
}

// New indexes snapshot s (which it does not modify afterwards and must not
// change while the Tracer is used). Flows whose match or actions do not
// parse are skipped and listed in Warnings.
func New(s *Snapshot) (*Tracer, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	st := symtab.Default()
	t := &Tracer{snap: s, st: st, comp: expr.NewCompiler(st), byID: map[string]*dpInfo{}, byKey: map[uint32]*dpInfo{},
		byName: map[string][]*dpInfo{}, ports: map[string]*portInfo{}, resolved: map[resolveKey]*expr.Expr{}}
	for _, d := range s.Datapaths {
		di := &dpInfo{Datapath: d, ports: map[string]*portInfo{}, byKey: map[uint32]*portInfo{},
			macs: map[macKey]bits.U128{}, flows: map[tableKey][]*cflow{}}
		t.dps = append(t.dps, di)
		t.byID[d.ID] = di
		t.byKey[d.Key] = di
		if d.Name != "" {
			t.byName[d.Name] = append(t.byName[d.Name], di)
		}
	}
	for _, p := range s.Ports {
		di := t.byID[p.Datapath]
		pi := &portInfo{Port: p, dp: di}
		di.ports[p.Name] = pi
		di.byKey[p.Key] = pi
		t.ports[p.Name] = pi
		if p.Type == "l3gateway" {
			di.hasGwPt = true
		}
	}
	for i := range s.MulticastGroups {
		g := &s.MulticastGroups[i]
		di := t.byID[g.Datapath]
		pi := &portInfo{Port: Port{Name: g.Name, Datapath: g.Datapath, Key: g.Key}, dp: di, group: g}
		di.ports[g.Name] = pi
		di.byKey[g.Key] = pi
	}
	for i := range s.LoadBalancers {
		hs, warns := lbHairpins(&s.LoadBalancers[i])
		t.Warnings = append(t.Warnings, warns...)
		for _, d := range s.LoadBalancers[i].Datapaths {
			t.byID[d].hairpins = append(t.byID[d].hairpins, hs...)
		}
	}
	for _, b := range s.MACBindings {
		di := t.byID[b.Datapath]
		pi, ok := di.ports[b.Port]
		if !ok {
			t.Warnings = append(t.Warnings, fmt.Sprintf("MAC binding %s on unknown port %q: ignored", b.IP, b.Port))
			continue
		}
		ip, err := netip.ParseAddr(b.IP)
		if err != nil {
			t.Warnings = append(t.Warnings, fmt.Sprintf("MAC binding on %q: bad IP %q: ignored", b.Port, b.IP))
			continue
		}
		mac, err := parseMAC(b.MAC)
		if err != nil {
			t.Warnings = append(t.Warnings, fmt.Sprintf("MAC binding %s on %q: %v: ignored", b.IP, b.Port, err))
			continue
		}
		di.macs[macKey{pi.Key, addrBits(ip)}] = mac
	}
	for i := range s.Flows {
		f := &s.Flows[i]
		cf, err := t.parseFlow(f)
		if err != nil {
			t.Warnings = append(t.Warnings, fmt.Sprintf("logical flow %s (%s table %d priority %d): %v: skipped",
				f.UUID, f.Pipeline, f.Table, f.Priority, err))
			continue
		}
		for _, id := range f.Datapaths {
			di := t.byID[id]
			k := tableKey{cf.egress, f.Table}
			di.flows[k] = append(di.flows[k], cf)
		}
	}
	for _, di := range t.dps {
		for _, fs := range di.flows {
			sort.SliceStable(fs, func(i, j int) bool {
				a, b := fs[i].f, fs[j].f
				if a.Priority != b.Priority {
					return a.Priority > b.Priority
				}
				if a.Match != b.Match {
					return a.Match < b.Match
				}
				return a.UUID < b.UUID
			})
		}
	}
	return t, nil
}

// Snapshot returns the snapshot the tracer was built from.
func (t *Tracer) Snapshot() *Snapshot { return t.snap }

func (t *Tracer) parseFlow(f *Flow) (*cflow, error) {
	pa, err := action.Parse(f.Actions, t.st)
	if err != nil {
		return nil, fmt.Errorf("actions %q: %w", f.Actions, err)
	}
	m := f.Match
	if len(pa.Prereqs) > 0 {
		m = "(" + m + ") && (" + strings.Join(pa.Prereqs, ") && (") + ")"
	}
	e, err := expr.Parse(m, t.st)
	if err != nil {
		return nil, fmt.Errorf("match %q: %w", f.Match, err)
	}
	return &cflow{f: f, egress: f.Pipeline == "egress", match: e, actions: pa.Actions,
		trivial: strings.TrimSpace(f.Match) == "1" && strings.TrimSpace(f.Actions) == "next;"}, nil
}

// Datapath finds a datapath by name (external_ids:name), SB UUID (ID),
// tunnel key, or a value of its external_ids (the NB logical switch or
// router UUID). A name shared by several datapaths is an error.
func (t *Tracer) Datapath(name string) (*Datapath, error) {
	di, err := t.lookupDP(name)
	if err != nil {
		return nil, err
	}
	return &di.Datapath, nil
}

func (t *Tracer) lookupDP(name string) (*dpInfo, error) {
	if name == "" {
		return nil, fmt.Errorf("no datapath given")
	}
	if d, ok := t.byID[name]; ok {
		return d, nil
	}
	if ds := t.byName[name]; len(ds) == 1 {
		return ds[0], nil
	} else if len(ds) > 1 {
		return nil, fmt.Errorf("datapath name %q is ambiguous (%d datapaths): give its UUID", name, len(ds))
	}
	for _, d := range t.dps {
		for k, v := range d.ExternalIDs {
			if v == name && (k == "logical-switch" || k == "logical-router") {
				return d, nil
			}
		}
	}
	var key uint32
	if _, err := fmt.Sscanf(name, "%d", &key); err == nil && fmt.Sprint(key) == name {
		if d, ok := t.byKey[key]; ok {
			return d, nil
		}
	}
	var known []string
	for _, d := range t.dps {
		known = append(known, d.label())
	}
	sort.Strings(known)
	return nil, fmt.Errorf("unknown datapath %q (known: %s)", name, strings.Join(known, ", "))
}

// label is the datapath's name, or its id if it has none.
func (d *dpInfo) label() string {
	if d.Name != "" {
		return d.Name
	}
	return d.ID
}

// portName returns the name of the port or group with key k, or "".
func (d *dpInfo) portName(k uint32) string {
	if p, ok := d.byKey[k]; ok {
		return p.Name
	}
	return ""
}

// NoPort is the port name that stands for "no logical port" (tunnel key 0)
// in matches and actions, as in OVN (northd's `outport = "none"`).
const NoPort = "none"

// portKey resolves a logical port or multicast group name of d.
func (d *dpInfo) portKey(name string) (uint32, bool) {
	if p, ok := d.ports[name]; ok {
		return p.Key, true
	}
	if name == NoPort {
		return 0, true
	}
	return 0, false
}

// exprOptions answers port, address set, port group and chassis residence
// questions for matches evaluated in datapath d.
func (t *Tracer) exprOptions(d *dpInfo) *expr.Options {
	return &expr.Options{
		Ports: d.portKey,
		AddressSets: func(name string) ([]string, bool) {
			a, ok := t.snap.AddressSets[name]
			return a, ok
		},
		PortGroups: func(name string) ([]string, bool) {
			if pg, ok := t.snap.PortGroups[fmt.Sprintf("%d_%s", d.Key, name)]; ok {
				return pg, true
			}
			pg, ok := t.snap.PortGroups[name]
			return pg, ok
		},
		// As ovn-trace: the logical network is simulated independent of
		// where ports are bound, so every port counts as resident.
		ChassisResident: func(string) bool { return true },
	}
}

// resolvedMatch returns f's match resolved for datapath d (cached).
func (t *Tracer) resolvedMatch(f *cflow, d *dpInfo) (*expr.Expr, error) {
	k := resolveKey{f, d}
	t.mu.Lock()
	e, ok := t.resolved[k]
	t.mu.Unlock()
	if ok {
		return e, nil
	}
	a, err := t.comp.Annotate(f.match)
	if err != nil {
		return nil, err
	}
	r, err := t.comp.Resolve(a, t.exprOptions(d))
	if err != nil {
		return nil, err
	}
	if s, err := expr.Simplify(r); err == nil {
		r = s
	}
	t.mu.Lock()
	t.resolved[k] = r
	t.mu.Unlock()
	return r, nil
}

func parseMAC(s string) (bits.U128, error) {
	var b [6]uint64
	if n, err := fmt.Sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]); err != nil || n != 6 {
		return bits.U128{}, fmt.Errorf("bad MAC %q", s)
	}
	var v uint64
	for _, x := range b {
		if x > 0xff {
			return bits.U128{}, fmt.Errorf("bad MAC %q", s)
		}
		v = v<<8 | x
	}
	return bits.From64(v), nil
}

func addrBits(a netip.Addr) bits.U128 {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		return bits.FromBytes(b[:])
	}
	b := a.As16()
	return bits.FromBytes(b[:])
}
