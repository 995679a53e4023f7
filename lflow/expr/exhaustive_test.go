package expr

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// tinyTable is a symbol table with small fields, so that every packet can be
// enumerated: a, c share reg0; b lives in reg1 and requires c[0]; n is
// nominal; s is a string field (port keys 0..3); plus subfields and
// predicates of both levels.
func tinyTable(t testing.TB) *symtab.Table {
	st := symtab.New()
	must := func(_ *symtab.Symbol, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.AddField("a", of.Sub(of.Reg0, 0, 3), symtab.FieldOpts{}))
	must(st.AddField("c", of.Sub(of.Reg0, 3, 3), symtab.FieldOpts{}))
	must(st.AddField("b", of.Sub(of.Reg1, 0, 3), symtab.FieldOpts{Prereqs: "c[0]"}))
	must(st.AddField("n", of.Sub(of.Reg2, 0, 2), symtab.FieldOpts{Nominal: true}))
	must(st.AddField("s", of.Sub(of.Reg3, 0, 2), symtab.FieldOpts{String: true}))
	must(st.AddField("w", of.Sub(of.XXReg1, 30, 4), symtab.FieldOpts{})) // spans reg6/reg7
	must(st.AddSubfield("a.hi", "a", 1, 2, "", false))
	must(st.AddSubfield("c.0", "c", 0, 0, "", false))
	must(st.AddPredicate("pa", "a == {1, 2}"))
	must(st.AddPredicate("pn", "n == 3"))
	must(st.AddPredicate("pb", "b[2] && !pa"))
	return st
}

// packetSpace enumerates every assignment of the tiny fields' bits.
func tinyPackets() []of.Packet {
	var ps []of.Packet
	for x := 0; x < 1<<15; x++ {
		var p of.Packet
		p.SetSub(of.Sub(of.Reg0, 0, 6), bits.From64(uint64(x&63)))
		p.SetSub(of.Sub(of.Reg1, 0, 3), bits.From64(uint64(x>>6&7)))
		p.SetSub(of.Sub(of.Reg2, 0, 2), bits.From64(uint64(x>>9&3)))
		p.SetSub(of.Sub(of.Reg3, 0, 2), bits.From64(uint64(x>>11&3)))
		p.SetSub(of.Sub(of.XXReg1, 31, 2), bits.From64(uint64(x>>13&3))) // two of w's bits, one each side of the reg6/reg7 boundary
		ps = append(ps, p)
	}
	return ps
}

type exprGen struct {
	r *rand.Rand
}

func (g *exprGen) val(w int) string {
	v := g.r.Intn(1 << w)
	switch g.r.Intn(6) {
	case 0:
		m := g.r.Intn(1 << w)
		return fmt.Sprintf("%d/%d", v&m, m)
	case 1:
		return fmt.Sprintf("%#x", v)
	}
	return fmt.Sprint(v)
}

func (g *exprGen) set(w int) string {
	n := 1 + g.r.Intn(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = g.val(w)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

var rels = []string{"==", "!=", "<", "<=", ">", ">="}

func (g *exprGen) leaf() string {
	switch g.r.Intn(14) {
	case 0:
		return []string{"0", "1"}[g.r.Intn(2)]
	case 1:
		f := []string{"a", "b", "c", "w"}[g.r.Intn(4)]
		w := map[string]int{"a": 3, "b": 3, "c": 3, "w": 4}[f]
		return fmt.Sprintf("%s %s %s", f, rels[g.r.Intn(6)], fmt.Sprint(g.r.Intn(1<<w)))
	case 2:
		f := []string{"a", "b", "c"}[g.r.Intn(3)]
		if g.r.Intn(2) == 0 {
			return fmt.Sprintf("%s %s %s", f, []string{"==", "!="}[g.r.Intn(2)], g.set(3))
		}
		return fmt.Sprintf("%s %s %s", f, []string{"==", "!="}[g.r.Intn(2)], g.val(3))
	case 3:
		lo := g.r.Intn(3)
		hi := lo + g.r.Intn(3-lo)
		f := []string{"a", "b", "c"}[g.r.Intn(3)]
		if lo == hi {
			return fmt.Sprintf("%s[%d]", f, lo)
		}
		return fmt.Sprintf("%s[%d..%d] %s %d", f, lo, hi, rels[g.r.Intn(6)], g.r.Intn(1<<(hi-lo+1)))
	case 4:
		x, y := g.r.Intn(8), g.r.Intn(8)
		op := []string{"<", "<="}[g.r.Intn(2)]
		return fmt.Sprintf("%d %s %s %s %d", x, op, []string{"a", "b", "c"}[g.r.Intn(3)], op, y)
	case 5:
		return fmt.Sprintf("n == %s", []string{g.set(2), fmt.Sprint(g.r.Intn(4))}[g.r.Intn(2)])
	case 6:
		names := []string{`"p0"`, `"p1"`, `"p2"`, `"p3"`, `"px"`}
		if g.r.Intn(2) == 0 {
			return "s == " + names[g.r.Intn(5)]
		}
		return fmt.Sprintf("s == {%s, %s}", names[g.r.Intn(5)], names[g.r.Intn(5)])
	case 7:
		return []string{"pa", "pn", "pb", "!pa", "!pb"}[g.r.Intn(5)]
	case 8:
		return []string{"a.hi == 2", "c.0", "!c.0", "a.hi != 1", "a.hi < 2"}[g.r.Intn(5)]
	case 9:
		return []string{`is_chassis_resident("here")`, `is_chassis_resident("there")`}[g.r.Intn(2)]
	case 10:
		return fmt.Sprintf("w[%d..%d] == %d", 1, 2, g.r.Intn(4))
	}
	f := []string{"a", "b", "c"}[g.r.Intn(3)]
	return fmt.Sprintf("%s %s %s", f, rels[g.r.Intn(6)], fmt.Sprint(g.r.Intn(8)))
}

func (g *exprGen) expr(depth int) string {
	if depth == 0 || g.r.Intn(3) == 0 {
		return g.leaf()
	}
	switch g.r.Intn(5) {
	case 0:
		return "!(" + g.expr(depth-1) + ")"
	case 1, 2:
		n := 2 + g.r.Intn(2)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = "(" + g.expr(depth-1) + ")"
		}
		return strings.Join(parts, " && ")
	}
	n := 2 + g.r.Intn(2)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "(" + g.expr(depth-1) + ")"
	}
	return strings.Join(parts, " || ")
}

// ofSim is a tiny OpenFlow classifier for the flows of one expression, all
// at one priority: a packet is accepted if it matches an ordinary flow, or,
// for some conjunction id, a flow of every dimension 1..n of it (the
// conj_id flow then fires).
type ofSim struct {
	flows []of.Flow
}

func (s *ofSim) accepts(p *of.Packet) bool {
	type conjState struct {
		n    uint8
		seen uint64
	}
	var conj map[uint32]*conjState
	for i := range s.flows {
		f := &s.flows[i]
		if _, _, ok := f.Match.Get(of.ConjID); ok {
			continue // reached only through conjunction
		}
		if !f.Match.Matches(p) {
			continue
		}
		isConj := false
		for _, a := range f.Actions {
			c, ok := a.(of.Conjunction)
			if !ok {
				continue
			}
			isConj = true
			if conj == nil {
				conj = map[uint32]*conjState{}
			}
			st := conj[c.ID]
			if st == nil {
				st = &conjState{n: c.N}
				conj[c.ID] = st
			}
			st.seen |= 1 << (c.K - 1)
		}
		if !isConj {
			return true
		}
	}
	for id, st := range conj {
		if st.seen == (uint64(1)<<st.n)-1 {
			// The conj_id flow must exist.
			for i := range s.flows {
				if v, _, ok := s.flows[i].Match.Get(of.ConjID); ok && v.Lo == uint64(id) {
					return true
				}
			}
		}
	}
	return false
}

func TestExhaustiveTiny(t *testing.T) {
	st := tinyTable(t)
	c := NewCompiler(st)
	ports := map[string]uint32{"p0": 0, "p1": 1, "p2": 2, "p3": 3}
	opts := &Options{
		Ports:           func(n string) (uint32, bool) { k, ok := ports[n]; return k, ok },
		ChassisResident: func(p string) bool { return p == "here" },
		ConjIDBase:      7,
	}
	packets := tinyPackets()
	g := &exprGen{r: rand.New(rand.NewSource(1))}
	n := 400
	if testing.Short() {
		n = 100
	}
	parsed, conjs, flowsTotal := 0, 0, 0
	for i := 0; i < n; i++ {
		s := g.expr(3)
		e, err := Parse(s, st)
		if err != nil {
			continue // e.g. a nominal test under !: rejected by design
		}
		parsed++
		a, err := c.Annotate(e)
		if err != nil {
			t.Fatalf("%s: annotate: %v", s, err)
		}
		r, err := c.Resolve(a, opts)
		if err != nil {
			t.Fatalf("%s: resolve: %v", s, err)
		}
		simp, err := Simplify(r)
		if err != nil {
			t.Fatalf("%s: simplify: %v", s, err)
		}
		norm, err := Normalize(simp)
		if err != nil {
			t.Fatalf("%s: normalize: %v", s, err)
		}
		res, err := c.Compile(e, opts)
		if err != nil {
			t.Fatalf("%s: compile: %v", s, err)
		}
		conjs += res.NConj()
		sim := &ofSim{flows: res.Flows(0, 100, 0, of.Match{}, of.Actions{of.Resubmit{Table: 1}})}
		flowsTotal += len(sim.flows)
		// The canonical form must mean the same thing.
		e2, err := Parse(e.String(), st)
		if err != nil {
			t.Fatalf("%s: canonical %q does not parse: %v", s, e.String(), err)
		}
		// Evaluate = eval of the annotated, resolved tree (checked
		// against the public Evaluate on a sample of packets below).
		a2, err := c.Annotate(e2)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := c.Resolve(a2, opts)
		if err != nil {
			t.Fatal(err)
		}
		// Satisfy finds a matching packet iff one exists.
		sat, satErr := c.Satisfy(e, opts)
		if satErr == nil {
			if ok, _ := c.Evaluate(e, &sat, opts); !ok {
				t.Fatalf("%s: Satisfy returned %s, which does not match", s, sat.String())
			}
		}
		anyMatch := false
		for pi := range packets {
			p := &packets[pi]
			want := eval(r, p)
			anyMatch = anyMatch || want
			if pi%4099 == 0 {
				if pub, err := c.Evaluate(e, p, opts); err != nil || pub != want {
					t.Fatalf("%s: Evaluate = %v, %v; want %v", s, pub, err, want)
				}
				if prep, err := c.Prepare(e, opts); err != nil || prep.Matches(p) != want {
					t.Fatalf("%s: Prepare(...).Matches disagrees (%v)", s, err)
				}
			}
			check := func(stage string, got bool) {
				if got != want {
					t.Fatalf("%s\npacket %s: Evaluate=%v but %s=%v\nannotated: %s\nsimplified: %s\nnormalized: %s\nflows:\n%s",
						s, p.String(), want, stage, got, a, simp, norm, of.FlowsString(sim.flows))
				}
			}
			check("canonical form", eval(r2, p))
			check("simplified", eval(simp, p))
			check("normalized", eval(norm, p))
			check("OpenFlow", sim.accepts(p))
		}
		// (Not the converse: the enumeration covers only 2 of w's 4 bits.)
		if anyMatch && satErr != nil {
			t.Fatalf("%s: a packet matches, but Satisfy: %v", s, satErr)
		}
	}
	t.Logf("%d of %d random expressions parsed; %d OpenFlow flows, %d conjunctions; each checked on %d packets",
		parsed, n, flowsTotal, conjs, len(packets))
	if parsed < n/2 || conjs == 0 {
		t.Fatalf("generator too weak: %d parsed, %d conjunctions", parsed, conjs)
	}
}
