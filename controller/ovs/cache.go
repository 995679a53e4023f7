package ovs

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unsafe"

	"github.com/govn/govn/controller/ofctrl"
)

// flowCache is what we know to be installed, indexed for a diff that costs
// one map lookup per desired flow: each cached flow carries the number of
// the last diff that wanted it, so duplicates are detected and the flows
// to delete are found without building a map of the desired flows.
type flowCache struct {
	flows    map[ofctrl.FlowKey]*cachedFlow
	perTable [256]int // number of flows per table
	groups   map[uint32]ofctrl.Group
	gen      uint32
}

type cachedFlow struct {
	f   ofctrl.Flow // as installed
	gen uint32      // the last diff that wanted this key
	// want is the index, in diff number gen's desired flows, of the flow
	// that wanted this key first (a later one with other cookie or
	// actions conflicts with it).
	want int32
}

func newFlowCache(st *ofctrl.State) *flowCache {
	c := &flowCache{flows: map[ofctrl.FlowKey]*cachedFlow{}, groups: map[uint32]ofctrl.Group{}}
	if st != nil {
		c.flows = make(map[ofctrl.FlowKey]*cachedFlow, len(st.Flows))
		for k, f := range st.Flows {
			c.add(k, f)
		}
		for id, g := range st.Groups {
			c.groups[id] = g
		}
	}
	return c
}

func (c *flowCache) add(k ofctrl.FlowKey, f ofctrl.Flow) {
	if _, ok := c.flows[k]; !ok {
		c.perTable[k.Table]++
	}
	c.flows[k] = &cachedFlow{f: f, gen: c.gen}
}

// state returns the cache as an ofctrl.State (a copy).
func (c *flowCache) state() *ofctrl.State {
	st := &ofctrl.State{Flows: make(map[ofctrl.FlowKey]ofctrl.Flow, len(c.flows)), Groups: make(map[uint32]ofctrl.Group, len(c.groups))}
	for k, cf := range c.flows {
		st.Flows[k] = cf.f
	}
	for id, g := range c.groups {
		st.Groups[id] = g
	}
	return st
}

// diff returns the changes that turn the cache into the desired flows and
// groups, leaving out those in skip (refused earlier in this sync).
// Conflicts — a flow whose cookie uses the owner's bits, a second flow with
// an earlier one's key but other cookie or actions, a group outside the
// owned range or a second group with an earlier one's id but another spec —
// are returned as rejections; the first one wins.
func (c *flowCache) diff(o ofctrl.Owner, flows []ofctrl.Flow, groups []ofctrl.Group, skip map[ofctrl.FlowKey]bool, skipG map[uint32]bool) (ofctrl.Diff, []Rejected) {
	var d ofctrl.Diff
	var rej []Rejected
	c.gen++
	gen := c.gen
	matched := 0
	for i, f := range flows {
		if f.Cookie&o.Mask != 0 {
			f := f
			rej = append(rej, Rejected{Flow: &f, Err: fmt.Errorf("cookie %#x uses the owner bits %#x", f.Cookie, o.Mask)})
			continue
		}
		k := f.Key()
		if len(skip) > 0 && skip[k] {
			continue
		}
		if cf := c.flows[k]; cf != nil {
			if cf.gen == gen {
				if w := flows[cf.want]; w != f {
					f := f
					rej = append(rej, Rejected{Flow: &f, Err: fmt.Errorf("conflicts with %q", w.String())})
				}
				continue
			}
			cf.gen, cf.want = gen, int32(i)
			matched++
			switch {
			case cf.f == f:
				d.Unchanged++
				c.share(k, cf, f)
			case cf.f.Cookie != f.Cookie:
				d.ReplFlows = append(d.ReplFlows, f)
			default:
				d.ModFlows = append(d.ModFlows, f)
			}
			continue
		}
		d.AddFlows = append(d.AddFlows, f)
	}
	// New keys wanted twice are found once the adds are sorted by key
	// (stable: the first wanted stays first and wins), without a map of
	// every added key (a full install adds ~30k).
	slices.SortStableFunc(d.AddFlows, cmpFlowKey)
	if n := len(d.AddFlows); n > 1 {
		out := d.AddFlows[:1]
		for _, f := range d.AddFlows[1:] {
			first := out[len(out)-1]
			if cmpFlowKey(first, f) != 0 {
				out = append(out, f)
				continue
			}
			if first != f {
				f := f
				rej = append(rej, Rejected{Flow: &f, Err: fmt.Errorf("conflicts with %q", first.String())})
			}
		}
		clear(d.AddFlows[len(out):n])
		d.AddFlows = out
	}
	if matched < len(c.flows) {
		for _, cf := range c.flows {
			if cf.gen != gen {
				d.DelFlows = append(d.DelFlows, cf.f)
			}
		}
	}
	seenG := make(map[uint32]ofctrl.Group, len(groups))
	for _, g := range groups {
		if !o.OwnsGroup(g.ID) {
			g := g
			rej = append(rej, Rejected{Group: &g, Err: fmt.Errorf("id outside the owned range [%d, %d]", o.MinGroup, o.MaxGroup)})
			continue
		}
		if skipG[g.ID] {
			continue
		}
		if old, ok := seenG[g.ID]; ok {
			if old != g {
				g := g
				rej = append(rej, Rejected{Group: &g, Err: fmt.Errorf("conflicts with %q", old.String())})
			}
			continue
		}
		seenG[g.ID] = g
		cur, ok := c.groups[g.ID]
		switch {
		case !ok:
			d.AddGroups = append(d.AddGroups, g)
		case cur == g:
			d.UnchangedGr++
		default:
			d.ModGroups = append(d.ModGroups, g)
		}
	}
	for id, g := range c.groups {
		if _, ok := seenG[id]; !ok {
			d.DelGroups = append(d.DelGroups, g)
		}
	}
	for _, l := range [][]ofctrl.Flow{d.ModFlows, d.ReplFlows, d.DelFlows} {
		slices.SortFunc(l, cmpFlowKey)
	}
	for _, l := range [][]ofctrl.Group{d.AddGroups, d.ModGroups, d.DelGroups} {
		slices.SortFunc(l, func(a, b ofctrl.Group) int { return cmp.Compare(a.ID, b.ID) })
	}
	return d, rej
}

// cmpFlowKey orders flows by table, priority (highest first) and match:
// flows with one key are adjacent.
func cmpFlowKey(a, b ofctrl.Flow) int {
	return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(b.Priority, a.Priority), strings.Compare(a.Match, b.Match))
}

// share makes the cache hold the text of f, an installed flow's equal
// desired copy, instead of its own: the caller keeps its flows (the
// translation cache, the last physical flows) and each run recomputes the
// physical ones, so without this the cache would keep a second copy of
// the text of every flow that was recomputed since it was installed. The
// map key holds the match too: it is re-keyed when the match is another
// copy.
func (c *flowCache) share(k ofctrl.FlowKey, cf *cachedFlow, f ofctrl.Flow) {
	if unsafe.StringData(cf.f.Match) != unsafe.StringData(f.Match) {
		delete(c.flows, k)
		c.flows[f.Key()] = cf
	}
	cf.f = f
}

// apply records a diff the switch accepted.
func (c *flowCache) apply(d ofctrl.Diff) {
	if n := len(c.flows) + len(d.AddFlows); len(d.AddFlows) > len(c.flows) {
		// A big install (the first one): size the map once instead of
		// growing it step by step (each step leaves the old table as
		// garbage).
		m := make(map[ofctrl.FlowKey]*cachedFlow, n)
		maps.Copy(m, c.flows)
		c.flows = m
	}
	for _, f := range d.AddFlows {
		c.add(f.Key(), f)
	}
	for _, l := range [][]ofctrl.Flow{d.ModFlows, d.ReplFlows} {
		for _, f := range l {
			c.flows[f.Key()].f = f
		}
	}
	for _, f := range d.DelFlows {
		if _, ok := c.flows[f.Key()]; ok {
			c.perTable[f.Table]--
			delete(c.flows, f.Key())
		}
	}
	for _, l := range [][]ofctrl.Group{d.AddGroups, d.ModGroups} {
		for _, g := range l {
			c.groups[g.ID] = g
		}
	}
	for _, g := range d.DelGroups {
		delete(c.groups, g.ID)
	}
}
