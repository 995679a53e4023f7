package ovs

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/govn/govn/controller/ofctrl"
)

// clone returns f with its own copy of the text.
func clone(f ofctrl.Flow) ofctrl.Flow {
	f.Match, f.Actions = strings.Clone(f.Match), strings.Clone(f.Actions)
	return f
}

// TestFlowCacheSharesText: after a diff, an installed flow that is wanted
// unchanged is held by the cache through the desired flow's text (key and
// value), so the caller's copy is the only one; conflicts between desired
// flows of one key are still found whether the key is installed or new.
func TestFlowCacheSharesText(t *testing.T) {
	o := ofctrl.DefaultOwner
	a := ofctrl.Flow{Table: 8, Priority: 100, Cookie: 1, Match: "ip,metadata=0x1", Actions: "resubmit(,9)"}
	b := ofctrl.Flow{Table: 9, Priority: 50, Cookie: 2, Match: "arp,metadata=0x1", Actions: "drop"}
	c := newFlowCache(nil)
	d, rej := c.diff(o, []ofctrl.Flow{a, b}, nil, nil, nil)
	if len(rej) != 0 || len(d.AddFlows) != 2 {
		t.Fatalf("first diff: %v, rejected %v", d, rej)
	}
	c.apply(d)

	a2, b2 := clone(a), clone(b)
	d, rej = c.diff(o, []ofctrl.Flow{a2, b2}, nil, nil, nil)
	if len(rej) != 0 || !d.Empty() || d.Unchanged != 2 {
		t.Fatalf("equal copies: %v, rejected %v", d, rej)
	}
	for k, cf := range c.flows {
		want := a2
		if k.Table == b.Table {
			want = b2
		}
		if unsafe.StringData(k.Match) != unsafe.StringData(want.Match) || unsafe.StringData(cf.f.Match) != unsafe.StringData(want.Match) ||
			unsafe.StringData(cf.f.Actions) != unsafe.StringData(want.Actions) {
			t.Fatalf("table %d: the cache keeps its own copy of the text", k.Table)
		}
		if cf.f != want {
			t.Fatalf("table %d: cached %v, want %v", k.Table, cf.f, want)
		}
	}
	if len(c.flows) != 2 || c.perTable[8] != 1 || c.perTable[9] != 1 {
		t.Fatalf("cache: %d flows, per table %d/%d", len(c.flows), c.perTable[8], c.perTable[9])
	}

	// A second desired flow with an installed key and other actions
	// conflicts with the first; an identical duplicate does not. Same for
	// a key that is not installed yet.
	aBad := a
	aBad.Actions = "drop"
	n := ofctrl.Flow{Table: 10, Priority: 1, Match: "ip", Actions: "resubmit(,11)"}
	nBad := n
	nBad.Cookie = 7
	d, rej = c.diff(o, []ofctrl.Flow{a, b, a, aBad, n, clone(n), nBad}, nil, nil, nil)
	if len(rej) != 2 || rej[0].Flow.Actions != "drop" || !strings.Contains(rej[0].Err.Error(), "resubmit(,9)") ||
		rej[1].Flow.Cookie != 7 || !strings.Contains(rej[1].Err.Error(), "resubmit(,11)") {
		t.Fatalf("conflicts: %v", rej)
	}
	if len(d.AddFlows) != 1 || d.AddFlows[0] != n || d.Unchanged != 2 || len(d.DelFlows) != 0 {
		t.Fatalf("diff with conflicts: %v", d)
	}
	// Among new keys the first wanted wins wherever the others are.
	m := ofctrl.Flow{Table: 11, Priority: 5, Match: "arp", Actions: "drop"}
	mBad := m
	mBad.Actions = "resubmit(,12)"
	d, rej = c.diff(o, []ofctrl.Flow{m, n, mBad, a, clone(m), b, mBad}, nil, nil, nil)
	if len(rej) != 2 || rej[0].Flow.Actions != "resubmit(,12)" || rej[1].Flow.Actions != "resubmit(,12)" ||
		len(d.AddFlows) != 2 || d.AddFlows[0] != n || d.AddFlows[1] != m {
		t.Fatalf("new keys wanted twice: %v, rejected %v", d, rej)
	}
	// Flows no longer wanted are deleted.
	d, _ = c.diff(o, []ofctrl.Flow{b}, nil, nil, nil)
	if len(d.DelFlows) != 1 || d.DelFlows[0] != a {
		t.Fatalf("deletion: %v", d)
	}
}
