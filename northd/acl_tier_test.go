package northd

import (
	"strings"
	"testing"
)

// TestACLTierIncrementalMatchesFull: changing ACL tiers (which changes a
// switch's highest tier, and so every ACL flow of that switch) through the
// incremental path gives the same flows as a full recompute — for a
// switch's own ACL and for a port group's ACL.
func TestACLTierIncrementalMatchesFull(t *testing.T) {
	nb := loadFixture(t, "testdata/acl_tiers.json")
	e := NewEngine(nil, nil)
	e.SetCaps(goldenCaps)
	e.Run(nb)
	before := dumpEngine(e)

	var stateful, pgACL *ACL
	for _, a := range nb.ACLs {
		if a.Match == "tcp.dst == 23" {
			stateful = a
		}
		if a.Match == "outport == @pgt && icmp4" {
			pgACL = a
		}
	}
	if stateful == nil || pgACL == nil {
		t.Fatal("fixture ACLs not found")
	}
	// "stateful": highest tier 1 → 3. "tiers": its highest tier (3, from
	// the port group) drops to 2.
	a := *stateful
	a.Tier = 3
	nb.SetACL(&a)
	b := *pgACL
	b.Tier = 0
	nb.SetACL(&b)
	e.Run(nb)
	inc := dumpEngine(e)
	if inc == before {
		t.Fatal("changing tiers changed no flow")
	}
	if !strings.Contains(inc, "reg8[30..31] == 3 && reg0[9] == 1 && (tcp.dst == 23)") {
		t.Errorf("the tier-3 drop ACL's flow is missing:\n%s", inc)
	}

	nb.MarkAllDirty()
	fresh := NewEngine(nil, nil)
	fresh.SetCaps(goldenCaps)
	fresh.Run(nb)
	if full := dumpEngine(fresh); full != inc {
		t.Errorf("incremental result differs from full recompute:\n%s", lineDiff(full, inc))
	}
}
