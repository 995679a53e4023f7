// Package translate turns southbound Logical_Flow rows into OpenFlow flows
// for br-int, using the logical-flow language packages (lflow/expr for
// matches, lflow/action for actions) and the table layout of package
// controller.
//
// It is pure (no I/O). A Translator keeps a cache of every (logical flow,
// datapath) translation together with the outside facts it depended on
// (port keys, address set and port group contents, chassis residency), so a
// run after a small change recompiles only the flows whose inputs changed.
// Translate takes the complete flow list and validates every cached
// translation; Update takes only the changed and deleted flows and finds
// the translations to redo through a reverse index from facts to
// translations, so its cost follows the size of the change.
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
//
// It keeps every logical flow it was given (flowState) with the
// translations for its local datapaths (entries), and a reverse index from
// each outside fact (port key, address set, port group, residency) to the
// entries that depended on it. Translate validates everything; Update
// re-examines only the flows that changed and the entries whose facts
// changed between the previous Env and this one.
type Translator struct {
	st   *symtab.Table
	comp *expr.Compiler
	gen  uint64

	order []*flowState        // every logical flow, sorted by UUID
	byDep map[depRef][]*entry // entries by the facts they depended on
	env   *Env                // the Env of the last run
	// Totals over all flows: entries held, (flow, datapath) pairs skipped.
	nEntries, skipped int

	// conj: per OpenFlow table, the conjunction id ranges in use, by owner
	// (logical flow UUID).
	conj map[uint8]map[string]conjRange
	// groups: group spec (id 0) → id, the number of entries using each id,
	// and the groups by id.
	setSig    map[string]string
	groupIDs  map[string]uint32
	groupRefs map[uint32]int
	groupByID map[uint32]ofctrl.Group
	parsed    map[string]*parsedEntry // action text → parse result
	lastFlows int
	groupUsed map[uint32]bool
	// MinGroup is the first group id; ids up to MaxGroup are allocated.
	MinGroup, MaxGroup uint32
}

// flowState is one logical flow and its translations, entries[i] for its
// i-th local datapath (in key order).
type flowState struct {
	f       Flow
	entries []*entry
	skipped int32  // datapaths of f that are not local
	gone    bool   // deleted (until removed from Translator.order)
	mark    uint64 // gen of the run that re-examines it
}

func byUUID(fs *flowState, uuid string) int { return cmp.Compare(fs.f.UUID, uuid) }

// depRef names one outside fact: a port name in datapath dp (depPort), or
// a name without datapath (the other kinds).
type depRef struct {
	kind depKind
	dp   uint32
	name string
}

type conjRange struct{ base, n uint32 }

type parsedEntry struct {
	p   *action.Parsed
	err error
}

// parseCacheMax bounds the action parse cache. The cache saves re-parsing
// one flow's actions for each of its datapaths and the common texts
// ("next;", "drop;") shared by many flows; it is emptied when full, so a
// full translation never holds the ASTs of every logical flow at once
// (~30 MB at 10k ports: entries keep their compiled flows, not the ASTs).
const parseCacheMax = 2048

// entry is the translation of one flow (its flowState's current content:
// a change of the flow's row drops its entries) for one datapath.
type entry struct {
	fs              *flowState
	dp              uint32
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

func (d dep) ref(dp uint32) depRef {
	if d.kind != depPort {
		dp = 0
	}
	return depRef{d.kind, dp, d.name}
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
		byDep:    map[depRef][]*entry{},
		conj:     map[uint8]map[string]conjRange{},
		groupIDs: map[string]uint32{}, groupUsed: map[uint32]bool{}, parsed: map[string]*parsedEntry{},
		groupRefs: map[uint32]int{}, groupByID: map[uint32]ofctrl.Group{},
		MinGroup: 1, MaxGroup: 0xffffff00,
	}
}

// run holds per-Translate memoized facts.
type run struct {
	env     *Env
	setHash map[string]string
	pgHash  map[string]string
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

// Translate translates flows, the complete set of logical flows, for env:
// every cached translation is validated against env (which may be the
// previous call's Env, modified). Flows are processed in UUID order, so
// results (conjunction ids, group ids) do not depend on the input order.
func (t *Translator) Translate(flows []Flow, env *Env) *Output {
	return t.update(flows, nil, env, true)
}

// Update is Translate for a caller that tracks changes: changed holds the
// logical flows added or modified since the previous call, deleted the
// UUIDs of the removed ones, and env the complete environment. env must be
// a new value on each call, and the previous call's Env (its maps and
// slices) must not have been modified since: Update compares the two to
// find the facts that changed. Only flows that changed, flows of
// datapaths that became (non-)local and translations that depended on a
// changed fact are re-examined; the Output is complete. With the same Env
// as the previous call (or on the first call) everything is validated, as
// Translate does.
func (t *Translator) Update(changed []Flow, deleted []string, env *Env) *Output {
	return t.update(changed, deleted, env, false)
}

func (t *Translator) update(changed []Flow, deleted []string, env *Env, all bool) *Output {
	t.gen++
	r := &run{env: env, setHash: map[string]string{}, pgHash: map[string]string{}}
	out := &Output{}
	full := all || t.env == nil || t.env == env
	var dirty []*flowState
	mark := func(fs *flowState) {
		if fs.mark != t.gen {
			fs.mark = t.gen
			dirty = append(dirty, fs)
		}
	}
	var refs []depRef
	var dpChanged map[uint32]bool
	if full {
		// The expression compiler caches address set contents: start
		// afresh when any set or port group changed.
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
	} else {
		var setsChanged bool
		refs, dpChanged, setsChanged = diffEnv(t.env, env)
		if setsChanged {
			t.comp.Reset()
			t.setSig = nil // the next Translate resets again
		}
	}
	t.env = env

	// Flow changes.
	find := func(uuid string) *flowState {
		if i, ok := slices.BinarySearchFunc(t.order, uuid, byUUID); ok && !t.order[i].gone {
			return t.order[i]
		}
		return nil
	}
	var added map[string]*flowState // new flows (not in t.order yet)
	removed := false
	drop := func(fs *flowState) {
		for _, e := range fs.entries {
			t.release(e)
		}
		t.nEntries -= len(fs.entries)
		t.skipped -= int(fs.skipped)
		fs.entries, fs.skipped = nil, 0
		fs.gone = true
		removed = true
	}
	for _, uuid := range deleted {
		if fs := find(uuid); fs != nil {
			drop(fs)
		}
	}
	for i := range changed {
		f := &changed[i]
		fs := find(f.UUID)
		if fs == nil {
			fs = added[f.UUID]
		}
		if fs == nil {
			fs = &flowState{f: *f}
			if added == nil {
				added = map[string]*flowState{}
			}
			added[f.UUID] = fs
		} else if !sameFlow(&fs.f, f) {
			// Its translations are of the old content.
			for _, e := range fs.entries {
				t.release(e)
			}
			t.nEntries -= len(fs.entries)
			fs.entries = nil
			fs.f = *f
		} else if !full {
			continue
		}
		mark(fs)
	}
	if all {
		// Translate: flows not listed (not marked above) are gone.
		for _, fs := range t.order {
			if fs.mark != t.gen && !fs.gone {
				drop(fs)
			}
		}
	}
	if removed {
		t.order = slices.DeleteFunc(t.order, func(fs *flowState) bool { return fs.gone })
		dirty = slices.DeleteFunc(dirty, func(fs *flowState) bool { return fs.gone })
	}
	if len(added) > 0 {
		if len(added) > 64 {
			for _, fs := range added {
				t.order = append(t.order, fs)
			}
			slices.SortFunc(t.order, func(a, b *flowState) int { return cmp.Compare(a.f.UUID, b.f.UUID) })
		} else {
			for _, fs := range added {
				i, _ := slices.BinarySearchFunc(t.order, fs.f.UUID, byUUID)
				t.order = slices.Insert(t.order, i, fs)
			}
		}
	}
	// Environment changes.
	if full {
		for _, fs := range t.order {
			mark(fs)
		}
	} else {
		for _, ref := range refs {
			for _, e := range t.byDep[ref] {
				mark(e.fs)
			}
		}
		if len(dpChanged) > 0 {
			for _, fs := range t.order {
				for _, dk := range fs.f.Datapaths {
					if dpChanged[dk] {
						mark(fs)
						break
					}
				}
			}
		}
	}
	if len(dirty) > 1 && !full {
		slices.SortFunc(dirty, func(a, b *flowState) int { return cmp.Compare(a.f.UUID, b.f.UUID) })
	} else if full {
		dirty = t.order // (every flow, already in UUID order)
	}

	// Phase 1: keep the still valid translations of the flows to
	// re-examine (so their conjunction ranges stay reserved), release the
	// others, collect what to compile.
	type todo struct {
		fs    *flowState
		dps   []*Datapath
		slots []int // index in fs.entries of each of dps
	}
	var work []todo
	var dks []uint32
	for _, fs := range dirty {
		f := &fs.f
		dks = dks[:0]
		skipped := int32(0)
		for _, dk := range f.Datapaths {
			if _, ok := env.Datapaths[dk]; !ok {
				skipped++
				continue
			}
			dks = append(dks, dk)
		}
		if !slices.IsSorted(dks) {
			slices.Sort(dks)
		}
		dks = slices.Compact(dks)
		t.skipped += int(skipped - fs.skipped)
		fs.skipped = skipped
		old := fs.entries
		var entries []*entry
		if len(dks) > 0 {
			entries = make([]*entry, len(dks))
		}
		var w todo
		for _, e := range old {
			j, ok := slices.BinarySearch(dks, e.dp)
			if ok && e.valid(f, env.Datapaths[e.dp], r) {
				entries[j] = e
				continue
			}
			t.release(e)
		}
		for j, e := range entries {
			if e == nil {
				w.dps = append(w.dps, env.Datapaths[dks[j]])
				w.slots = append(w.slots, j)
			} else if e.hasConj && e.err == nil {
				t.reserveConj(e)
			}
		}
		t.nEntries += len(entries) - len(old)
		fs.entries = entries
		if len(w.dps) > 0 {
			w.fs = fs
			work = append(work, w)
		}
	}
	for _, w := range work {
		// A translation that depends on no port name is the same for every
		// datapath but for the metadata match: compile it once.
		var shared *entry
		for i, dp := range w.dps {
			var e *entry
			if shared != nil && shared.router == dp.Router {
				e = shared.forDatapath(dp.Key)
			} else {
				e = t.compile(&w.fs.f, dp, r)
				if !e.portDependent() {
					shared = e
				}
			}
			e.fs = w.fs
			t.register(e)
			out.Compiled++
			w.fs.entries[w.slots[i]] = e
		}
	}
	// Free group ids nobody refers to any more.
	for id, n := range t.groupRefs {
		if n > 0 {
			continue
		}
		delete(t.groupRefs, id)
		delete(t.groupByID, id)
		delete(t.groupUsed, id)
		for spec, gid := range t.groupIDs {
			if gid == id {
				delete(t.groupIDs, spec)
			}
		}
	}
	out.Reused = t.nEntries - out.Compiled
	out.Skipped = t.skipped

	// Phase 2: collect in (UUID, datapath) order, merging conjunction-only
	// flows with one key (OVS would merge them too).
	conjSeen := map[ofctrl.FlowKey]int{}
	out.Flows = make([]ofctrl.Flow, 0, t.lastFlows)
	for _, fs := range t.order {
		for _, e := range fs.entries {
			if e.err != nil {
				out.Errors = append(out.Errors, Error{UUID: fs.f.UUID, Datapath: e.dp, Match: fs.f.Match, Actions: fs.f.Actions, Err: e.err})
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
		}
	}
	t.lastFlows = len(out.Flows)
	out.Groups = make([]ofctrl.Group, 0, len(t.groupByID))
	for _, g := range t.groupByID {
		out.Groups = append(out.Groups, g)
	}
	slices.SortFunc(out.Groups, func(a, b ofctrl.Group) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func sameFlow(a, b *Flow) bool {
	return a.Pipeline == b.Pipeline && a.Table == b.Table && a.Priority == b.Priority && a.Match == b.Match &&
		a.Actions == b.Actions && slices.Equal(a.Datapaths, b.Datapaths)
}

// register adds a new entry's dependencies and groups to the indexes.
func (t *Translator) register(e *entry) {
	for _, d := range e.deps {
		ref := d.ref(e.dp)
		t.byDep[ref] = append(t.byDep[ref], e)
	}
	for _, g := range e.groups {
		t.groupRefs[g.ID]++
		t.groupByID[g.ID] = g
	}
}

// release removes an entry that is no longer wanted from the indexes and
// frees its conjunction range (the flow's entries that stay reserve it
// again). Group ids whose count drops to 0 are freed at the end of the run
// (a recompiled entry may take the same group again).
func (t *Translator) release(e *entry) {
	for _, d := range e.deps {
		ref := d.ref(e.dp)
		l := t.byDep[ref]
		if i := slices.Index(l, e); i >= 0 {
			l[i] = l[len(l)-1]
			l[len(l)-1] = nil
			l = l[:len(l)-1]
		}
		if len(l) == 0 {
			delete(t.byDep, ref)
		} else {
			t.byDep[ref] = l
		}
	}
	for _, g := range e.groups {
		t.groupRefs[g.ID]--
	}
	if e.hasConj {
		delete(t.conj[e.conjTable], e.fs.f.UUID)
	}
}

func (t *Translator) reserveConj(e *entry) {
	m := t.conj[e.conjTable]
	if m == nil {
		m = map[string]conjRange{}
		t.conj[e.conjTable] = m
	}
	m[e.fs.f.UUID] = conjRange{e.conjBase, e.conjN}
}

// diffEnv returns the facts that differ between two Envs, the datapaths
// that became local or non-local (or changed type), and whether an address
// set or port group changed.
func diffEnv(old, cur *Env) (refs []depRef, dps map[uint32]bool, sets bool) {
	for dk, nd := range cur.Datapaths {
		od, ok := old.Datapaths[dk]
		if !ok || od.Router != nd.Router {
			if dps == nil {
				dps = map[uint32]bool{}
			}
			dps[dk] = true
			continue
		}
		present := 0
		for name, k := range nd.Ports {
			ok, found := od.Ports[name]
			if found {
				present++
			}
			if !found || ok != k {
				refs = append(refs, depRef{depPort, dk, name})
			}
		}
		if present < len(od.Ports) {
			for name := range od.Ports {
				if _, ok := nd.Ports[name]; !ok {
					refs = append(refs, depRef{depPort, dk, name})
				}
			}
		}
	}
	for dk := range old.Datapaths {
		if _, ok := cur.Datapaths[dk]; !ok {
			if dps == nil {
				dps = map[uint32]bool{}
			}
			dps[dk] = true
		}
	}
	diffLists := func(kind depKind, o, n map[string][]string) {
		for name, l := range n {
			if ol, ok := o[name]; !ok || !sameList(ol, l) {
				refs = append(refs, depRef{kind: kind, name: name})
				sets = true
			}
		}
		for name := range o {
			if _, ok := n[name]; !ok {
				refs = append(refs, depRef{kind: kind, name: name})
				sets = true
			}
		}
	}
	diffLists(depAddrSet, old.AddressSets, cur.AddressSets)
	diffLists(depPortGroup, old.PortGroups, cur.PortGroups)
	diffBools := func(kind depKind, o, n map[string]bool) {
		for name, v := range n {
			if o[name] != v {
				refs = append(refs, depRef{kind: kind, name: name})
			}
		}
		for name, v := range o {
			if v && !n[name] {
				refs = append(refs, depRef{kind: kind, name: name})
			}
		}
	}
	diffBools(depResident, old.Resident, cur.Resident)
	diffBools(depRemote, old.RemoteVIFs, cur.RemoteVIFs)
	return refs, dps, sets
}

// sameList reports whether two address lists hold the same addresses (in
// any order). The same backing array is the same list (Env contents are
// not modified in place).
func sameList(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] || slices.Equal(a, b) {
		return true
	}
	return hashList(a) == hashList(b)
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
	if e.router != dp.Router {
		return false
	}
	for _, d := range e.deps {
		if r.value(d.kind, dp, d.name) != d.value {
			return false
		}
	}
	return true
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
	e := &entry{router: dp.Router, dp: dp.Key}
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
		if len(t.parsed) >= parseCacheMax {
			clear(t.parsed)
		}
		t.parsed[f.Actions] = pe
	}
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
