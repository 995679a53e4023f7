// Package ofctrl computes how to bring a switch's OpenFlow tables from what is
// installed to what is desired. It is pure: it takes and returns values; the
// I/O (running ovs-ofctl, parsing its output) lives in controller/ovs.
//
// Flows and groups are carried as text: the syntax package lflow/of prints
// (of.Match.String, of.ActionsString, of.Group.String), which is a subset of
// ovs-ofctl's. A flow is identified by (table, priority, match), as OpenFlow
// itself identifies it; its cookie and actions are its value. Texts are
// compared verbatim: lflow/of prints one canonical text per typed value, so
// equal texts are equal flows. ParseMatch, ParseActions and ParseGroup read
// that text back into typed values for binary encoding (controller/ovs
// installs flows natively over OpenFlow 1.5); anything outside that syntax
// is an error naming it.
//
// Ownership (convention 6): every cookie we install carries Owner.Tag in the
// bits selected by Owner.Mask; flows whose cookie lacks the tag belong to
// someone else and are never modified or deleted. Groups have no cookie: the
// groups whose ids fall in [Owner.MinGroup, Owner.MaxGroup] are ours.
package ofctrl

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Flow is one OpenFlow flow in ovs-ofctl text form.
type Flow struct {
	Table    uint8
	Priority uint16
	// Cookie is the caller's cookie (for example the logical flow's UUID
	// prefix). Its Owner.Mask bits must be zero; the owner tag is added on
	// installation and removed when installed flows are read back.
	Cookie uint64
	// Match is the match without table and priority, e.g.
	// "ip,reg14=0x1,metadata=0x3,nw_src=10.0.0.0/24"; "" matches everything.
	Match string
	// Actions is the action list, e.g. "resubmit(,8)"; "" means drop.
	Actions string
}

// FlowKey identifies a flow in a switch.
type FlowKey struct {
	Table    uint8
	Priority uint16
	Match    string
}

// Key returns the flow's identity.
func (f Flow) Key() FlowKey { return FlowKey{f.Table, f.Priority, f.Match} }

// String renders the flow as ovs-ofctl add-flow text with the caller's cookie.
func (f Flow) String() string { return f.text(f.Cookie, true) }

func (f Flow) text(cookie uint64, withActions bool) string {
	var b strings.Builder
	b.WriteString("table=")
	b.WriteString(strconv.Itoa(int(f.Table)))
	b.WriteString(",priority=")
	b.WriteString(strconv.Itoa(int(f.Priority)))
	if cookie != 0 {
		b.WriteString(",cookie=0x")
		b.WriteString(strconv.FormatUint(cookie, 16))
	}
	if f.Match != "" {
		b.WriteByte(',')
		b.WriteString(f.Match)
	}
	if withActions {
		b.WriteString(",actions=")
		if f.Actions == "" {
			b.WriteString("drop")
		} else {
			b.WriteString(f.Actions)
		}
	}
	return b.String()
}

// Group is one OpenFlow group in ovs-ofctl text form.
type Group struct {
	ID uint32
	// Spec is the group without its id, e.g.
	// "type=select,bucket=bucket_id:0,weight:100,actions=output:1".
	Spec string
}

// String renders the group as ovs-ofctl add-group text.
func (g Group) String() string {
	return "group_id=" + strconv.FormatUint(uint64(g.ID), 10) + "," + g.Spec
}

// Owner says which flows and groups on a switch are ours.
type Owner struct {
	Tag, Mask          uint64 // cookie&Mask == Tag marks our flows
	MinGroup, MaxGroup uint32 // our group ids
}

// DefaultOwner tags cookies with 0x6776 ("gv") in the top 16 bits, leaving
// the low 48 bits to the caller, and owns every group id.
var DefaultOwner = Owner{Tag: 0x6776 << 48, Mask: 0xffff << 48, MinGroup: 1, MaxGroup: 0xffffff00}

// Validate reports an inconsistent owner.
func (o Owner) Validate() error {
	if o.Mask == 0 {
		return fmt.Errorf("owner cookie mask is 0: every flow would be ours")
	}
	if o.Tag&^o.Mask != 0 {
		return fmt.Errorf("owner tag %#x has bits outside mask %#x", o.Tag, o.Mask)
	}
	if o.MinGroup == 0 || o.MinGroup > o.MaxGroup || o.MaxGroup > 0xffffff00 {
		return fmt.Errorf("owner group range [%d, %d] invalid (want 1 <= min <= max <= 0xffffff00)", o.MinGroup, o.MaxGroup)
	}
	return nil
}

// OwnsCookie reports whether an installed cookie is ours.
func (o Owner) OwnsCookie(c uint64) bool { return c&o.Mask == o.Tag }

// OwnsGroup reports whether an installed group id is ours.
func (o Owner) OwnsGroup(id uint32) bool { return id >= o.MinGroup && id <= o.MaxGroup }

// CookieFilter is the ovs-ofctl "cookie=value/mask" selecting our flows.
func (o Owner) CookieFilter() string { return fmt.Sprintf("cookie=%#x/%#x", o.Tag, o.Mask) }

// State is a set of flows (unique by key) and groups (unique by id).
type State struct {
	Flows  map[FlowKey]Flow
	Groups map[uint32]Group
}

// NewState builds a state. Identical duplicates are merged; two flows with
// one key but different cookie or actions, or two groups with one id but
// different specs, are an error naming both. A flow whose cookie uses the
// owner's bits or a group outside the owner's range is an error too.
func NewState(o Owner, flows []Flow, groups []Group) (*State, error) {
	s := &State{Flows: make(map[FlowKey]Flow, len(flows)), Groups: make(map[uint32]Group, len(groups))}
	for _, f := range flows {
		if f.Cookie&o.Mask != 0 {
			return nil, fmt.Errorf("flow %q: cookie %#x uses the owner bits %#x", f, f.Cookie, o.Mask)
		}
		if old, ok := s.Flows[f.Key()]; ok && old != f {
			return nil, fmt.Errorf("conflicting flows with one key: %q and %q", old, f)
		}
		s.Flows[f.Key()] = f
	}
	for _, g := range groups {
		if !o.OwnsGroup(g.ID) {
			return nil, fmt.Errorf("group %d outside the owned range [%d, %d]", g.ID, o.MinGroup, o.MaxGroup)
		}
		if old, ok := s.Groups[g.ID]; ok && old != g {
			return nil, fmt.Errorf("conflicting groups with id %d: %q and %q", g.ID, old.Spec, g.Spec)
		}
		s.Groups[g.ID] = g
	}
	return s, nil
}

// Clone returns a copy that shares nothing mutable with s.
func (s *State) Clone() *State {
	c := &State{Flows: make(map[FlowKey]Flow, len(s.Flows)), Groups: make(map[uint32]Group, len(s.Groups))}
	for k, f := range s.Flows {
		c.Flows[k] = f
	}
	for k, g := range s.Groups {
		c.Groups[k] = g
	}
	return c
}

// Diff is what turns one state into another. Flow and group lists are sorted
// (table, priority, match / id) so that bundles are deterministic.
type Diff struct {
	AddFlows    []Flow // keys not installed
	ModFlows    []Flow // installed key, other actions, same cookie
	ReplFlows   []Flow // installed key, other cookie (re-added: OpenFlow 1.1+ cannot modify a cookie)
	DelFlows    []Flow // installed keys no longer desired
	AddGroups   []Group
	ModGroups   []Group
	DelGroups   []Group
	Unchanged   int // flows already as desired
	UnchangedGr int // groups already as desired
}

// Empty reports whether the diff changes nothing.
func (d Diff) Empty() bool {
	return len(d.AddFlows)+len(d.ModFlows)+len(d.ReplFlows)+len(d.DelFlows)+
		len(d.AddGroups)+len(d.ModGroups)+len(d.DelGroups) == 0
}

// String summarizes the diff's sizes.
func (d Diff) String() string {
	return fmt.Sprintf("flows +%d ~%d ^%d -%d =%d, groups +%d ~%d -%d =%d",
		len(d.AddFlows), len(d.ModFlows), len(d.ReplFlows), len(d.DelFlows), d.Unchanged,
		len(d.AddGroups), len(d.ModGroups), len(d.DelGroups), d.UnchangedGr)
}

// Compute returns the changes that turn installed into desired.
func Compute(desired, installed *State) Diff {
	var d Diff
	for k, f := range desired.Flows {
		cur, ok := installed.Flows[k]
		switch {
		case !ok:
			d.AddFlows = append(d.AddFlows, f)
		case cur == f:
			d.Unchanged++
		case cur.Cookie != f.Cookie:
			d.ReplFlows = append(d.ReplFlows, f)
		default:
			d.ModFlows = append(d.ModFlows, f)
		}
	}
	for k, f := range installed.Flows {
		if _, ok := desired.Flows[k]; !ok {
			d.DelFlows = append(d.DelFlows, f)
		}
	}
	for id, g := range desired.Groups {
		cur, ok := installed.Groups[id]
		switch {
		case !ok:
			d.AddGroups = append(d.AddGroups, g)
		case cur == g:
			d.UnchangedGr++
		default:
			d.ModGroups = append(d.ModGroups, g)
		}
	}
	for id, g := range installed.Groups {
		if _, ok := desired.Groups[id]; !ok {
			d.DelGroups = append(d.DelGroups, g)
		}
	}
	for _, l := range [][]Flow{d.AddFlows, d.ModFlows, d.ReplFlows, d.DelFlows} {
		slices.SortFunc(l, compareFlows)
	}
	for _, l := range [][]Group{d.AddGroups, d.ModGroups, d.DelGroups} {
		slices.SortFunc(l, func(a, b Group) int { return cmp.Compare(a.ID, b.ID) })
	}
	return d
}

func compareFlows(a, b Flow) int {
	return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(b.Priority, a.Priority), strings.Compare(a.Match, b.Match))
}

// Apply updates s (an installed-state cache) with a diff that was applied
// successfully.
func (s *State) Apply(d Diff) {
	for _, l := range [][]Flow{d.AddFlows, d.ModFlows, d.ReplFlows} {
		for _, f := range l {
			s.Flows[f.Key()] = f
		}
	}
	for _, f := range d.DelFlows {
		delete(s.Flows, f.Key())
	}
	for _, l := range [][]Group{d.AddGroups, d.ModGroups} {
		for _, g := range l {
			s.Groups[g.ID] = g
		}
	}
	for _, g := range d.DelGroups {
		delete(s.Groups, g.ID)
	}
}

// Bundle renders the diff as input for `ovs-ofctl -O OpenFlow15 bundle`, which
// applies it as one atomic transaction. Order: new and changed groups first
// (flows may point to them), then flow deletions, modifications and
// additions, then group deletions (deleting a group also deletes the flows
// that point to it, so it must come after those flows are gone or changed).
// Deletions are strict and carry the owner's cookie filter, so they can only
// ever remove our own flows.
func (d Diff) Bundle(o Owner) string {
	var b strings.Builder
	for _, g := range d.AddGroups {
		b.WriteString("group add " + g.String() + "\n")
	}
	for _, g := range d.ModGroups {
		b.WriteString("group modify " + g.String() + "\n")
	}
	for _, f := range d.DelFlows {
		b.WriteString("flow delete_strict ")
		b.WriteString(f.deleteText(o))
		b.WriteByte('\n')
	}
	for _, f := range d.ModFlows {
		b.WriteString("flow modify_strict ")
		b.WriteString(f.text(0, true))
		b.WriteByte('\n')
	}
	for _, l := range [][]Flow{d.ReplFlows, d.AddFlows} {
		for _, f := range l {
			b.WriteString("flow add ")
			b.WriteString(f.text(o.Tag|f.Cookie, true))
			b.WriteByte('\n')
		}
	}
	for _, g := range d.DelGroups {
		b.WriteString("group delete group_id=" + strconv.FormatUint(uint64(g.ID), 10) + "\n")
	}
	return b.String()
}

func (f Flow) deleteText(o Owner) string {
	var b strings.Builder
	b.WriteString("table=")
	b.WriteString(strconv.Itoa(int(f.Table)))
	b.WriteString(",priority=")
	b.WriteString(strconv.Itoa(int(f.Priority)))
	b.WriteString("," + o.CookieFilter())
	if f.Match != "" {
		b.WriteByte(',')
		b.WriteString(f.Match)
	}
	return b.String()
}
