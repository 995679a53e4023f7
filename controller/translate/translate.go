// Package translate turns southbound Logical_Flow rows into OpenFlow flows
// for br-int, using the logical-flow language packages (lflow/expr for
// matches, lflow/action for actions) and the table layout of package
// controller.
//
// It is pure (no I/O). A Translator keeps a cache of every (logical flow,
// datapath) translation together with the outside facts it depended on
// (port keys, address set and port group contents, chassis residency), so a
// run after a small change recompiles only the flows whose inputs changed.
//
// Cookies are the first 32 bits of the logical flow's UUID. Each logical
// flow that needs conjunctive matches gets a range of conjunction ids of its
// own within its OpenFlow table, starting at its cookie where that range is
// free. A flow that fails to translate is reported in Output.Errors and
// skipped; it never stops the others.
package translate

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Flow is a Logical_Flow row with its datapaths resolved to tunnel keys.
type Flow struct {
	UUID      string
	Pipeline  controller.Pipeline
	Table     int // logical table_id
	Priority  int
	Match     string
	Actions   string
	Datapaths []uint32 // logical_datapath, or the members of logical_dp_group
}

// Datapath is a logical datapath this chassis translates flows for.
type Datapath struct {
	Key    uint32
	Router bool
	// Ports maps logical port and multicast group names of the datapath to
	// their tunnel keys (for inport/outport comparisons and assignments).
	Ports map[string]uint32
}

// Env is everything outside the logical flows that translation depends on.
type Env struct {
	// Datapaths are the local datapaths; flows of other datapaths are
	// skipped (not errors).
	Datapaths map[uint32]*Datapath
	// AddressSets and PortGroups are the SB Address_Set and Port_Group
	// contents by name.
	AddressSets map[string][]string
	PortGroups  map[string][]string
	// Resident lists the logical ports resident on this chassis
	// (is_chassis_resident).
	Resident map[string]bool
	// RemoteVIFs lists the VIF logical switch ports (type "", no parent)
	// not bound on this chassis. Their packets never enter a logical
	// switch's ingress pipeline here, so an ingress flow of a switch whose
	// match requires inport == one of them (a top-level && term) is
	// skipped, as ovn-controller does with the in_out_port tag.
	RemoteVIFs map[string]bool
}

// Error is a logical flow that could not be translated.
type Error struct {
	UUID     string
	Datapath uint32
	Match    string
	Actions  string
	Err      error
}

func (e Error) Error() string {
	return fmt.Sprintf("logical flow %s (datapath %d, match %q, actions %q): %v", e.UUID, e.Datapath, e.Match, e.Actions, e.Err)
}

// Output is the result of one Translate run.
type Output struct {
	Flows  []ofctrl.Flow
	Groups []ofctrl.Group
	Errors []Error
	// Compiled counts (flow, datapath) pairs translated in this run;
	// Reused those taken from the cache; Skipped flows of non-local
	// datapaths.
	Compiled, Reused, Skipped int
}

// Translator translates logical flows, caching results between runs. It is
// not safe for concurrent use.
type Translator struct {
	st    *symtab.Table
	comp  *expr.Compiler
	cache map[entryKey]*entry
	gen   uint64

	// conj: per OpenFlow table, the conjunction id ranges in use, by owner
	// (logical flow UUID).
	conj map[uint8]map[string]conjRange
	// groups: group spec (id 0) → id, and the reverse.
	setSig    map[string]string
	groupIDs  map[string]uint32
	parsed    map[string]*parsedEntry // action text → parse result
	lastFlows int
	groupUsed map[uint32]bool
	// MinGroup is the first group id; ids up to MaxGroup are allocated.
	MinGroup, MaxGroup uint32
}

type entryKey struct {
	uuid string
	dp   uint32
}

type conjRange struct{ base, n uint32 }

type parsedEntry struct {
	p   *action.Parsed
	err error
	gen uint64
}

type entry struct {
	gen             uint64
	dp              uint32
	pipeline        controller.Pipeline
	table, prio     int
	match, actions  string
	deps            []dep
	flows           []ofctrl.Flow
	groups          []ofctrl.Group
	err             error
	conjTable       uint8
	conjBase, conjN uint32
	hasConj         bool
	router          bool
}

// dep is one outside fact a translation depended on.
type dep struct {
	kind  depKind
	name  string
	value string
}

type depKind uint8

const (
	depPort depKind = iota
	depAddrSet
	depPortGroup
	depResident
	depRemote
)

// New returns a Translator for the default logical symbol table. Group ids
// are allocated from 1 up.
func New() *Translator {
	st := symtab.Default()
	return &Translator{
		st: st, comp: expr.NewCompiler(st),
		cache:    map[entryKey]*entry{},
		conj:     map[uint8]map[string]conjRange{},
		groupIDs: map[string]uint32{}, groupUsed: map[uint32]bool{}, parsed: map[string]*parsedEntry{},
		MinGroup: 1, MaxGroup: 0xffffff00,
	}
}

// run holds per-Translate memoized facts.
type run struct {
	env      *Env
	setHash  map[string]string
	pgHash   map[string]string
	groupRef map[uint32]bool
}

func hashList(l []string) string {
	s := slices.Clone(l)
	slices.Sort(s)
	h := fnv.New64a()
	for _, x := range s {
		h.Write([]byte(x))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 16) + "/" + strconv.Itoa(len(s))
}

// NonePort is the logical port name that means key 0 ("no port"), as
// northd writes `outport = "none"` when the L2 lookup misses.
const NonePort = "none"

// portKey resolves a port or multicast group name in dp.
func portKey(dp *Datapath, name string) (uint32, bool) {
	if k, ok := dp.Ports[name]; ok {
		return k, true
	}
	if name == NonePort {
		return 0, true
	}
	return 0, false
}

func (r *run) value(kind depKind, dp *Datapath, name string) string {
	switch kind {
	case depPort:
		if k, ok := portKey(dp, name); ok {
			return strconv.FormatUint(uint64(k), 10)
		}
		return "-"
	case depAddrSet:
		if v, ok := r.setHash[name]; ok {
			return v
		}
		v := "-"
		if l, ok := r.env.AddressSets[name]; ok {
			v = hashList(l)
		}
		r.setHash[name] = v
		return v
	case depPortGroup:
		if v, ok := r.pgHash[name]; ok {
			return v
		}
		v := "-"
		if l, ok := r.env.PortGroups[name]; ok {
			v = hashList(l)
		}
		r.pgHash[name] = v
		return v
	case depResident:
		if r.env.Resident[name] {
			return "1"
		}
		return "0"
	case depRemote:
		if r.env.RemoteVIFs[name] {
			return "1"
		}
		return "0"
	}
	return ""
}

// Cookie returns the cookie of a logical flow: the first 32 bits of its
// UUID (0 if the UUID does not start with 8 hex digits).
func Cookie(uuid string) uint64 {
	if len(uuid) < 8 {
		return 0
	}
	b, err := hex.DecodeString(uuid[:8])
	if err != nil {
		return 0
	}
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// Translate translates flows for env. Flows are processed in UUID order, so
// results (conjunction ids, group ids) do not depend on the input order.
func (t *Translator) Translate(flows []Flow, env *Env) *Output {
	t.gen++
	r := &run{env: env, setHash: map[string]string{}, pgHash: map[string]string{}, groupRef: map[uint32]bool{}}
	// The expression compiler caches address set contents: start afresh
	// when any set or port group changed.
	sig := make(map[string]string, len(env.AddressSets)+len(env.PortGroups))
	for n := range env.AddressSets {
		sig["$"+n] = r.value(depAddrSet, nil, n)
	}
	for n := range env.PortGroups {
		sig["@"+n] = r.value(depPortGroup, nil, n)
	}
	if !maps.Equal(sig, t.setSig) {
		t.comp.Reset()
		t.setSig = sig
	}
	out := &Output{}
	order := make([]int, len(flows))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(flows[a].UUID, flows[b].UUID) })
	// Phase 1: reuse valid cache entries (so their conjunction ranges stay
	// reserved), collect the rest.
	type todo struct {
		f   *Flow
		idx int
		dps []*Datapath
	}
	var work []todo
	// The local datapaths of flows[i] are localDPs[span[i].lo:span[i].hi],
	// and entries[k] is the cache entry for localDPs[k] (filled for
	// reused entries now, for compiled ones below). One flat pair of
	// slices rather than two small slices per flow: this runs over every
	// logical flow on each translation.
	type span struct{ lo, hi int32 }
	spans := make([]span, len(flows))
	localDPs := make([]uint32, 0, len(flows)+len(flows)/4)
	entries := make([]*entry, 0, cap(localDPs))
	for _, i := range order {
		f := &flows[i]
		spans[i].lo = int32(len(localDPs))
		dks := f.Datapaths
		if len(dks) > 1 && !slices.IsSorted(dks) {
			dks = slices.Clone(dks)
			slices.Sort(dks)
		}
		var w todo
		var last uint32
		for j, dk := range dks {
			if j > 0 && dk == last {
				continue
			}
			last = dk
			dp, ok := env.Datapaths[dk]
			if !ok {
				out.Skipped++
				continue
			}
			localDPs = append(localDPs, dk)
			if e, ok := t.cache[entryKey{f.UUID, dk}]; ok && e.valid(f, dp, r) {
				e.gen = t.gen
				out.Reused++
				entries = append(entries, e)
				continue
			}
			entries = append(entries, nil)
			w.dps = append(w.dps, dp)
		}
		spans[i].hi = int32(len(localDPs))
		if len(w.dps) > 0 {
			w.f, w.idx = f, i
			work = append(work, w)
		}
	}
	// Forget what is no longer wanted: stale entries release their
	// conjunction ids before new flows allocate.
	for k, e := range t.cache {
		if e.gen != t.gen {
			delete(t.cache, k)
		}
	}
	for a, pe := range t.parsed {
		if pe.gen+1 < t.gen {
			delete(t.parsed, a)
		}
	}
	if len(work) > 0 {
		t.rebuildConj()
	}
	for _, w := range work {
		// A translation that depends on no port name is the same for every
		// datapath but for the metadata match: compile it once.
		var shared *entry
		for _, dp := range w.dps {
			var e *entry
			if shared != nil && shared.router == dp.Router {
				e = shared.forDatapath(dp.Key)
			} else {
				e = t.compile(w.f, dp, r)
				if !e.portDependent() {
					shared = e
				}
			}
			e.gen = t.gen
			t.cache[entryKey{w.f.UUID, dp.Key}] = e
			out.Compiled++
			fi := w.idx
			sp := spans[fi]
			entries[int(sp.lo)+slices.Index(localDPs[sp.lo:sp.hi], dp.Key)] = e
		}
	}
	// Phase 2: collect in (UUID, datapath) order, merging conjunction-only
	// flows with one key (OVS would merge them too).
	conjSeen := map[ofctrl.FlowKey]int{}
	seenGroup := map[uint32]bool{}
	out.Flows = make([]ofctrl.Flow, 0, t.lastFlows)
	for _, i := range order {
		uuid := flows[i].UUID
		sp := spans[i]
		for j, dk := range localDPs[sp.lo:sp.hi] {
			e := entries[int(sp.lo)+j]
			if e.err != nil {
				out.Errors = append(out.Errors, Error{UUID: uuid, Datapath: dk, Match: e.match, Actions: e.actions, Err: e.err})
				continue
			}
			for _, fl := range e.flows {
				if e.hasConj && isConjOnly(fl.Actions) {
					if j, ok := conjSeen[fl.Key()]; ok {
						old := &out.Flows[j]
						if !strings.Contains(old.Actions, fl.Actions) {
							old.Actions += "," + fl.Actions
						}
						continue
					}
					conjSeen[fl.Key()] = len(out.Flows)
				}
				out.Flows = append(out.Flows, fl)
			}
			for _, g := range e.groups {
				r.groupRef[g.ID] = true
				if !seenGroup[g.ID] {
					seenGroup[g.ID] = true
					out.Groups = append(out.Groups, g)
				}
			}
		}
	}
	t.lastFlows = len(out.Flows)
	// Free group ids nobody refers to any more.
	for spec, id := range t.groupIDs {
		if !r.groupRef[id] {
			delete(t.groupIDs, spec)
			delete(t.groupUsed, id)
		}
	}
	slices.SortFunc(out.Groups, func(a, b ofctrl.Group) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// portDependent reports whether the translation looked up a port name (so
// it differs between datapaths beyond the metadata match).
func (e *entry) portDependent() bool {
	for _, d := range e.deps {
		if d.kind == depPort || d.kind == depResident || d.kind == depRemote {
			return true
		}
	}
	return len(e.groups) > 0
}

// forDatapath returns a copy of a datapath-independent entry for datapath
// dk: the same flows with dk in the metadata match.
func (e *entry) forDatapath(dk uint32) *entry {
	c := *e
	if e.err != nil {
		return &c
	}
	from := "metadata=0x" + strconv.FormatUint(uint64(e.dp), 16)
	to := "metadata=0x" + strconv.FormatUint(uint64(dk), 16)
	c.dp = dk
	c.flows = make([]ofctrl.Flow, len(e.flows))
	for i, f := range e.flows {
		f.Match = replaceField(f.Match, from, to)
		c.flows[i] = f
	}
	return &c
}

// replaceField replaces the match field from (e.g. "metadata=0x1") by to,
// where from is a whole comma-separated item.
func replaceField(match, from, to string) string {
	for i := 0; ; {
		j := strings.Index(match[i:], from)
		if j < 0 {
			return match
		}
		j += i
		end := j + len(from)
		if (j == 0 || match[j-1] == ',') && (end == len(match) || match[end] == ',') {
			return match[:j] + to + match[end:]
		}
		i = end
	}
}

func isConjOnly(actions string) bool {
	for _, a := range strings.Split(actions, "),") {
		if !strings.HasPrefix(a, "conjunction(") {
			return false
		}
	}
	return actions != ""
}

func (e *entry) valid(f *Flow, dp *Datapath, r *run) bool {
	if e.pipeline != f.Pipeline || e.table != f.Table || e.prio != f.Priority || e.match != f.Match ||
		e.actions != f.Actions || e.router != dp.Router {
		return false
	}
	for _, d := range e.deps {
		if r.value(d.kind, dp, d.name) != d.value {
			return false
		}
	}
	for _, g := range e.groups {
		r.groupRef[g.ID] = true
	}
	return true
}

// rebuildConj recomputes the reserved conjunction ranges from the cache.
func (t *Translator) rebuildConj() {
	t.conj = map[uint8]map[string]conjRange{}
	for k, e := range t.cache {
		if e.hasConj && e.err == nil {
			m := t.conj[e.conjTable]
			if m == nil {
				m = map[string]conjRange{}
				t.conj[e.conjTable] = m
			}
			m[k.uuid] = conjRange{e.conjBase, e.conjN}
		}
	}
}

// conjFree reports whether [base, base+n) is free in table for owner.
func (t *Translator) conjFree(table uint8, owner string, base, n uint32) bool {
	if base == 0 || base+n < base {
		return false
	}
	for o, r := range t.conj[table] {
		if o != owner && base < r.base+r.n && r.base < base+n {
			return false
		}
	}
	return true
}

func (t *Translator) compile(f *Flow, dp *Datapath, r *run) *entry {
	e := &entry{pipeline: f.Pipeline, table: f.Table, prio: f.Priority, match: f.Match, actions: f.Actions, router: dp.Router, dp: dp.Key}
	record := func(kind depKind, name string) string {
		v := r.value(kind, dp, name)
		d := dep{kind, name, v}
		if !slices.Contains(e.deps, d) {
			e.deps = append(e.deps, d)
		}
		return v
	}
	table, err := controller.LogicalTable(f.Pipeline, f.Table)
	if err != nil {
		e.err = err
		return e
	}
	if f.Priority < 0 || f.Priority > 65535 {
		e.err = fmt.Errorf("priority %d out of range 0..65535", f.Priority)
		return e
	}
	if f.Pipeline == controller.Ingress && !dp.Router {
		if p, ok := requiredInport(f.Match); ok && record(depRemote, p) == "1" {
			return e // no flows: that port's packets never arrive here
		}
	}
	pe, ok := t.parsed[f.Actions]
	if !ok {
		p, err := action.Parse(f.Actions, t.st)
		pe = &parsedEntry{p: p, err: err}
		t.parsed[f.Actions] = pe
	}
	pe.gen = t.gen
	if pe.err != nil {
		e.err = fmt.Errorf("actions: %w", pe.err)
		return e
	}
	parsed := pe.p
	cookie := Cookie(f.UUID)
	dpName := strconv.FormatUint(uint64(dp.Key), 10)
	ep := controller.EncodeParams(f.Pipeline, f.Table)
	params := &ep
	params.Datapath = dpName
	params.LookupPort = func(d, name string) (uint32, bool) {
		if d != dpName {
			return 0, false
		}
		if record(depPort, name) == "-" {
			return 0, false
		}
		return portKey(dp, name)
	}
	params.AllocGroup = func(g of.Group) (uint32, error) {
		return t.allocGroup(g.String())
	}
	params.Router = dp.Router
	enc, err := action.Encode(parsed.Actions, params)
	if err != nil {
		e.err = fmt.Errorf("actions: %w", err)
		return e
	}
	for _, g := range enc.Groups {
		og := ofctrl.Group{ID: g.ID, Spec: groupSpec(g)}
		e.groups = append(e.groups, og)
		r.groupRef[g.ID] = true
	}
	match := f.Match
	if len(parsed.Prereqs) > 0 {
		var sb strings.Builder
		sb.WriteString("(")
		sb.WriteString(match)
		sb.WriteString(")")
		for _, p := range parsed.Prereqs {
			sb.WriteString(" && (")
			sb.WriteString(p)
			sb.WriteString(")")
		}
		match = sb.String()
	}
	opts := &expr.Options{
		Ports: func(name string) (uint32, bool) {
			if record(depPort, name) == "-" {
				return 0, false
			}
			return portKey(dp, name)
		},
		AddressSets: func(name string) ([]string, bool) {
			record(depAddrSet, name)
			l, ok := r.env.AddressSets[name]
			return l, ok
		},
		PortGroups: func(name string) ([]string, bool) {
			record(depPortGroup, name)
			l, ok := r.env.PortGroups[name]
			return l, ok
		},
		ChassisResident: func(port string) bool { return record(depResident, port) == "1" },
		ConjIDBase:      uint32(cookie),
	}
	if opts.ConjIDBase == 0 {
		opts.ConjIDBase = 1
	}
	// Address sets and port groups are dependencies even when the
	// compiler answers them from its cache.
	if strings.ContainsAny(match, "$@") {
		if toks, err := lex.Tokenize(match); err == nil {
			for _, tok := range toks {
				switch tok.Kind {
				case lex.Macro:
					record(depAddrSet, tok.Str)
				case lex.PortGroup:
					record(depPortGroup, tok.Str)
				}
			}
		}
	}
	ex, err := expr.Parse(match, t.st)
	if err != nil {
		e.err = fmt.Errorf("match: %w", err)
		return e
	}
	res, err := t.comp.Compile(ex, opts)
	if err != nil {
		e.err = fmt.Errorf("match: %w", err)
		return e
	}
	if n := uint32(res.NConj()); n > 0 {
		base := opts.ConjIDBase
		if !t.conjFree(table, f.UUID, base, n) {
			// Probe for a free range (deterministically from the cookie).
			for b := base + n; ; b += n {
				if b == 0 || b+n < b {
					b = 1
				}
				if t.conjFree(table, f.UUID, b, n) {
					base = b
					break
				}
			}
			opts.ConjIDBase = base
			if res, err = t.comp.Compile(ex, opts); err != nil {
				e.err = fmt.Errorf("match: %w", err)
				return e
			}
		}
		e.hasConj, e.conjTable, e.conjBase, e.conjN = true, table, base, n
		m := t.conj[table]
		if m == nil {
			m = map[string]conjRange{}
			t.conj[table] = m
		}
		m[f.UUID] = conjRange{base, n}
	}
	var base of.Match
	base.Set(symtab.DatapathField, bits.From64(uint64(dp.Key)), bits.Ones(64))
	ofs := res.Flows(table, uint16(f.Priority), cookie, base, enc.Actions)
	e.flows = make([]ofctrl.Flow, len(ofs))
	for i := range ofs {
		e.flows[i] = OFText(&ofs[i])
	}
	return e
}

func (t *Translator) allocGroup(spec string) (uint32, error) {
	if id, ok := t.groupIDs[spec]; ok {
		return id, nil
	}
	for id := t.MinGroup; id <= t.MaxGroup && id != 0; id++ {
		if !t.groupUsed[id] {
			t.groupUsed[id] = true
			t.groupIDs[spec] = id
			return id, nil
		}
	}
	return 0, fmt.Errorf("group ids %d..%d exhausted", t.MinGroup, t.MaxGroup)
}

// groupSpec is an of.Group's add-group text without "group_id=N,".
func groupSpec(g of.Group) string {
	s := g.String()
	if strings.HasPrefix(s, "group_id=") {
		if i := strings.IndexByte(s, ','); i >= 0 {
			return s[i+1:]
		}
	}
	return s
}

// OFText converts a typed flow to the text form controller/ofctrl installs.
func OFText(f *of.Flow) ofctrl.Flow {
	return ofctrl.Flow{
		Table:    f.Table,
		Priority: f.Priority,
		Cookie:   f.Cookie,
		Match:    f.Match.String(),
		Actions:  of.ActionsString(f.Actions),
	}
}

// requiredInport returns P when match can only be true for packets with
// inport == "P": the comparison is a term of the top-level conjunction
// (no || outside parentheses; OVN does not allow && and || to mix there,
// and a ! before inport would directly precede it). A match that does not
// lex is left to the compiler to report.
func requiredInport(match string) (string, bool) {
	if !strings.Contains(match, "inport") {
		return "", false
	}
	c, err := lex.AcquireCursor(match)
	if err != nil {
		return "", false
	}
	defer c.Release()
	toks := c.Tokens()
	depth := 0
	port, found := "", false
	for i, t := range toks {
		switch t.Kind {
		case lex.LParen, lex.LBrace, lex.LBracket:
			depth++
		case lex.RParen, lex.RBrace, lex.RBracket:
			depth--
		case lex.Or:
			if depth == 0 {
				return "", false
			}
		case lex.Ident:
			if depth != 0 || found || t.Str != "inport" || i+2 >= len(toks) {
				continue
			}
			if i > 0 && toks[i-1].Kind != lex.And {
				continue
			}
			if toks[i+1].Kind != lex.Eq || toks[i+2].Kind != lex.String {
				continue
			}
			// toks ends with EOF, so toks[i+3] exists after the String.
			if next := toks[i+3].Kind; next != lex.And && next != lex.EOF {
				continue
			}
			port, found = toks[i+2].Str, true
		}
	}
	return port, found
}
