package translate

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"testing"

	"github.com/govn/govn/controller"
)

// cloneEnv copies an Env deeply enough that changing the copy's maps
// leaves the original as it was (Update compares the two).
func cloneEnv(e *Env) *Env {
	c := &Env{Datapaths: map[uint32]*Datapath{}, AddressSets: maps.Clone(e.AddressSets), PortGroups: maps.Clone(e.PortGroups),
		Resident: maps.Clone(e.Resident), RemoteVIFs: maps.Clone(e.RemoteVIFs)}
	for k, d := range e.Datapaths {
		c.Datapaths[k] = &Datapath{Key: d.Key, Router: d.Router, Ports: maps.Clone(d.Ports)}
	}
	if c.AddressSets == nil {
		c.AddressSets = map[string][]string{}
	}
	if c.PortGroups == nil {
		c.PortGroups = map[string][]string{}
	}
	if c.Resident == nil {
		c.Resident = map[string]bool{}
	}
	if c.RemoteVIFs == nil {
		c.RemoteVIFs = map[string]bool{}
	}
	return c
}

var groupRef = regexp.MustCompile(`group:(\d+)`)

// canonical renders an Output as sorted text with group ids replaced by
// the groups' specs (ids are allocated in run order, so an incremental run
// may number them differently from a fresh one).
func canonical(out *Output) (flows, errs []string) {
	spec := map[string]string{}
	for _, g := range out.Groups {
		spec[fmt.Sprint(g.ID)] = g.Spec
	}
	for _, f := range out.Flows {
		s := groupRef.ReplaceAllStringFunc(f.String(), func(m string) string {
			return "group:{" + spec[m[len("group:"):]] + "}"
		})
		flows = append(flows, s)
	}
	for _, e := range out.Errors {
		errs = append(errs, e.Error())
	}
	slices.Sort(flows)
	slices.Sort(errs)
	return flows, errs
}

// TestUpdateMatchesFullCompute drives one Translator through a sequence of
// changes with Update (only the changed flows and a new Env each time) and
// checks after each step that its output equals what a new Translator
// computes from scratch for the same flows and Env, and that Update
// compiled only a few (flow, datapath) pairs.
func TestUpdateMatchesFullCompute(t *testing.T) {
	topo := buildTopology(t, 6, 60)
	flows := map[string]Flow{}
	for _, f := range topo.flows {
		flows[f.UUID] = f
	}
	// Extra flows with the dependencies the northd topology lacks:
	// address sets, port groups, chassis residency, groups.
	extra := []Flow{
		{UUID: "e0000001-0000-4000-8000-000000000001", Pipeline: controller.Egress, Table: 4, Priority: 2001,
			Match: `ip4.src == $as1 && outport == @pg1`, Actions: "drop;", Datapaths: []uint32{1, 2}},
		{UUID: "e0000002-0000-4000-8000-000000000002", Table: 12, Priority: 120,
			Match: "ct.new && ip4.dst == 10.0.0.100 && tcp.dst == 80", Actions: "ct_lb_mark(backends=10.0.0.1:80,10.0.0.2:80);", Datapaths: []uint32{1}},
		{UUID: "e0000003-0000-4000-8000-000000000003", Table: 20, Priority: 100,
			Match: `is_chassis_resident("sw1-p1")`, Actions: "next;", Datapaths: []uint32{2}},
		{UUID: "e0000004-0000-4000-8000-000000000004", Table: 21, Priority: 100,
			Match: `ip4.dst == $as2`, Actions: "next;", Datapaths: []uint32{3, 4, 5}},
		{UUID: "e0000005-0000-4000-8000-000000000005", Table: 22, Priority: 100,
			Match: `bad syntax ==`, Actions: "next;", Datapaths: []uint32{3}},
	}
	for _, f := range extra {
		flows[f.UUID] = f
	}
	env := cloneEnv(topo.env)
	env.AddressSets["as1"] = []string{"10.1.0.1", "10.1.0.2"}
	env.PortGroups["pg1"] = []string{"sw0-p1", "sw1-p3"}

	tr := New()
	all := func() []Flow { return slices.Collect(maps.Values(flows)) }
	first := tr.Update(all(), nil, env)
	if first.Compiled == 0 || first.Reused != 0 {
		t.Fatalf("first run compiled %d, reused %d", first.Compiled, first.Reused)
	}
	check := func(step string, out *Output, maxCompiled int) {
		t.Helper()
		want := New().Translate(all(), env)
		gf, ge := canonical(out)
		wf, we := canonical(want)
		if !slices.Equal(gf, wf) {
			for _, d := range diffLines(gf, wf) {
				t.Errorf("%s: %s", step, d)
			}
		}
		if !slices.Equal(ge, we) {
			t.Errorf("%s: errors %v, want %v", step, ge, we)
		}
		if out.Compiled+out.Reused != want.Compiled || out.Skipped != want.Skipped {
			t.Errorf("%s: %d compiled + %d reused, %d skipped; a full compute has %d, %d skipped", step,
				out.Compiled, out.Reused, out.Skipped, want.Compiled, want.Skipped)
		}
		if out.Compiled > maxCompiled {
			t.Errorf("%s: compiled %d (flow, datapath) pairs, want at most %d", step, out.Compiled, maxCompiled)
		}
	}
	check("first", first, first.Compiled)

	step := func(name string, maxCompiled int, change func(e *Env) (changed []Flow, deleted []string)) {
		t.Helper()
		next := cloneEnv(env)
		changed, deleted := change(next)
		for _, f := range changed {
			flows[f.UUID] = f
		}
		for _, u := range deleted {
			delete(flows, u)
		}
		env = next
		check(name, tr.Update(changed, deleted, env), maxCompiled)
	}
	// A port is added to switch 3 (key 3): its flows name it.
	newPort := []Flow{
		{UUID: "f0000001-0000-4000-8000-000000000001", Table: 0, Priority: 50,
			Match: `inport == "new1" && eth.src == 0e:00:00:00:00:01`, Actions: "next;", Datapaths: []uint32{3}},
		{UUID: "f0000001-0000-4000-8000-000000000002", Table: 25, Priority: 50,
			Match: `eth.dst == 0e:00:00:00:00:01`, Actions: `outport = "new1"; output;`, Datapaths: []uint32{3}},
	}
	step("port added", 4, func(e *Env) ([]Flow, []string) {
		e.Datapaths[3].Ports["new1"] = 200
		return newPort, nil
	})
	// A flow naming a port before the port exists (an error), then the port.
	early := Flow{UUID: "f0000002-0000-4000-8000-000000000001", Table: 25, Priority: 50,
		Match: `eth.dst == 0e:00:00:00:00:02`, Actions: `outport = "new2"; output;`, Datapaths: []uint32{3}}
	step("flow before its port", 2, func(e *Env) ([]Flow, []string) { return []Flow{early}, nil })
	step("its port appears", 2, func(e *Env) ([]Flow, []string) {
		e.Datapaths[3].Ports["new2"] = 201
		return nil, nil
	})
	// The port binds here, then moves away (remote VIF): its ingress flow
	// comes and goes.
	step("port bound here", 4, func(e *Env) ([]Flow, []string) {
		e.Resident["new1"] = true
		return nil, nil
	})
	step("port bound elsewhere", 4, func(e *Env) ([]Flow, []string) {
		delete(e.Resident, "new1")
		e.RemoteVIFs["new1"] = true
		return nil, nil
	})
	step("residency of a gateway port", 2, func(e *Env) ([]Flow, []string) {
		e.Resident["sw1-p1"] = true
		return nil, nil
	})
	// Port key changes (a port recreated with another tunnel key).
	step("port key changes", 10, func(e *Env) ([]Flow, []string) {
		e.Datapaths[3].Ports["new1"] = 202
		return nil, nil
	})
	// Address set and port group contents change.
	step("address set changes", 4, func(e *Env) ([]Flow, []string) {
		e.AddressSets["as1"] = []string{"10.1.0.1", "10.1.0.3", "10.1.0.4"}
		return nil, nil
	})
	step("address set appears", 6, func(e *Env) ([]Flow, []string) {
		e.AddressSets["as2"] = []string{"10.2.0.1"}
		return nil, nil
	})
	step("port group changes", 4, func(e *Env) ([]Flow, []string) {
		e.PortGroups["pg1"] = []string{"sw0-p1"}
		return nil, nil
	})
	step("address set reordered", 0, func(e *Env) ([]Flow, []string) {
		e.AddressSets["as1"] = []string{"10.1.0.4", "10.1.0.3", "10.1.0.1"}
		return nil, nil
	})
	// A logical flow is modified (actions and match), a load balancer's
	// backends change (new group), flows are deleted.
	step("flow modified", 2, func(e *Env) ([]Flow, []string) {
		f := early
		f.Match, f.Actions = `eth.dst == 0e:00:00:00:00:03`, `outport = "new1"; output;`
		return []Flow{f}, nil
	})
	step("load balancer backends", 1, func(e *Env) ([]Flow, []string) {
		f := extra[1]
		f.Actions = "ct_lb_mark(backends=10.0.0.1:80);"
		return []Flow{f}, nil
	})
	step("flows deleted", 0, func(e *Env) ([]Flow, []string) {
		return nil, []string{newPort[0].UUID, newPort[1].UUID, extra[2].UUID}
	})
	step("port removed", 4, func(e *Env) ([]Flow, []string) {
		delete(e.Datapaths[3].Ports, "new1")
		delete(e.RemoteVIFs, "new1")
		return nil, nil
	})
	// A datapath stops being local, then becomes local again, then turns
	// into a router.
	step("datapath no longer local", 0, func(e *Env) ([]Flow, []string) {
		delete(e.Datapaths, 4)
		return nil, nil
	})
	n4 := 0
	for _, f := range flows {
		if slices.Contains(f.Datapaths, 4) {
			n4++
		}
	}
	step("datapath local again", n4, func(e *Env) ([]Flow, []string) {
		e.Datapaths[4] = cloneEnv(topo.env).Datapaths[4]
		return nil, nil
	})
	step("datapath becomes a router", n4, func(e *Env) ([]Flow, []string) {
		e.Datapaths[4].Router = true
		return nil, nil
	})
	// A flow moves to other datapaths (its datapath group changed).
	step("flow datapaths change", 3, func(e *Env) ([]Flow, []string) {
		f := extra[3]
		f.Datapaths = []uint32{1, 5}
		return []Flow{f}, nil
	})
	// Nothing changed: nothing compiled.
	step("no change", 0, func(e *Env) ([]Flow, []string) { return nil, nil })
	// The same Env again: everything validated, nothing compiled.
	check("same env", tr.Update(nil, nil, env), 0)
}

func diffLines(got, want []string) []string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		g[s] = true
	}
	for _, s := range want {
		w[s] = true
	}
	var out []string
	for _, s := range got {
		if !w[s] {
			out = append(out, "extra: "+s)
		}
	}
	for _, s := range want {
		if !g[s] {
			out = append(out, "missing: "+s)
		}
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("same flows, other multiplicity (%d vs %d)", len(got), len(want)))
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... %d more", len(out)-10))
	}
	return out
}

// The action parse cache stays bounded: a translation with more distinct
// action texts than parseCacheMax does not keep an AST per logical flow.
func TestParseCacheBounded(t *testing.T) {
	topo := buildTopology(t, 10, 3000)
	distinct := map[string]bool{}
	for _, f := range topo.flows {
		distinct[f.Actions] = true
	}
	if len(distinct) <= parseCacheMax {
		t.Fatalf("topology has %d distinct action texts, want more than %d for this test", len(distinct), parseCacheMax)
	}
	tr := New()
	out := tr.Translate(topo.flows, topo.env)
	if len(out.Errors) != 0 || len(out.Flows) == 0 {
		t.Fatalf("translation: %d flows, errors %v", len(out.Flows), out.Errors)
	}
	if len(tr.parsed) > parseCacheMax {
		t.Fatalf("parse cache holds %d entries after a full translation, bound is %d", len(tr.parsed), parseCacheMax)
	}
}
