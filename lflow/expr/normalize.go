package expr

import (
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
	"sort"
)

// MaxClauses bounds the size of a normalized expression; larger ones are an
// error rather than an unbounded amount of memory and flows.
const MaxClauses = 100000

// dim is one conjunction dimension: field f must match one of alts.
type dim struct {
	f    of.Field
	sym  *symtab.Symbol
	alts []vm
}

// clause is an AND: the fixed match plus one alternative from each dim.
type clause struct {
	fixed of.Match
	dims  []dim
}

type normalizer struct {
	c   *Compiler // for memoized simplification; may be nil
	err error
	// syms names each OpenFlow field by the first symbol seen on it (for
	// printing Normalize's result).
	// Nil unless Normalize's printable result is wanted.
	syms []*symtab.Symbol
}

func (z *normalizer) symOf(f of.Field) *symtab.Symbol {
	if int(f) < len(z.syms) {
		return z.syms[f]
	}
	return nil
}

var errTooBig = &Error{Pos: lex.Pos{Line: 1, Col: 1}, Msg: "expression is too complex: its OpenFlow form would exceed the size limit"}

// simpleTest reports whether e is one masked-equality test that can go
// straight into a match (an OpTerm, or == with one integer constant on an
// annotated field) and returns it in OpenFlow terms.
func simpleTest(e *Expr) (f of.Field, v, m bits.U128, sym *symtab.Symbol, ok bool) {
	switch e.Op {
	case OpTerm:
		return e.F, e.V, e.M, e.Sym, true
	case OpCmp:
		if e.Rel == Eq && len(e.Vals) == 1 && e.Sym.Kind == symtab.Field && e.Vals[0].Ref == 0 && !e.Vals[0].IsStr {
			sh := cmpShift(e)
			m = e.Vals[0].Mask.Lsh(sh)
			return e.Sym.OF.Field, e.Vals[0].Value.Lsh(sh).And(m), m, e.Sym, true
		}
	}
	return 0, v, m, nil, false
}

func isRelational(e *Expr) bool {
	return e.Op == OpCmp && e.Rel != Eq && e.Rel != Ne
}

func (z *normalizer) noteSym(f of.Field, sym *symtab.Symbol) {
	if int(f) < len(z.syms) && z.syms[f] == nil {
		z.syms[f] = sym
	}
}

// viaSimplify normalizes e after simplifying it (the general path).
func (z *normalizer) viaSimplify(e *Expr) []clause {
	s, err := z.c.simplify(e)
	if err != nil {
		z.err = err
		return nil
	}
	return z.norm(s)
}

// norm returns the clauses (an OR) of e, which must be annotated and
// resolved. Simple comparisons go straight into clauses; the rest is
// simplified first.
func (z *normalizer) norm(e *Expr) []clause {
	if z.err != nil {
		return nil
	}
	switch e.Op {
	case OpTrue:
		return []clause{{}}
	case OpFalse:
		return nil
	case OpTerm, OpCmp:
		if f, v, m, sym, ok := simpleTest(e); ok {
			var c clause
			if !c.fixed.Set(f, v, m) {
				return nil
			}
			z.noteSym(f, sym)
			return []clause{c}
		}
		if e.Op == OpCmp && e.Rel == Eq && e.Sym.Kind == symtab.Field {
			if cs, ok := z.eqClauses(e); ok {
				return cs
			}
			if d, ok := z.eqSet(e); ok {
				if d.alts == nil {
					return []clause{{}} // a value with an empty mask: always true
				}
				return []clause{{dims: []dim{d}}}
			}
		}
		if e.Op == OpCmp {
			return z.viaSimplify(e)
		}
	case OpOr:
		if d, ok := z.termSet(e); ok {
			return []clause{{dims: []dim{d}}}
		}
		out := make([]clause, 0, len(e.Subs))
		for _, s := range e.Subs {
			out = append(out, z.norm(s)...)
			if len(out) > MaxClauses {
				z.err = errTooBig
				return nil
			}
		}
		return z.collapseOr(out)
	case OpAnd:
		acc := []clause{{}}
		var rel []*Expr
		// Single tests first (cheap, in place), then the rest: the fixed
		// part built by the tests prunes the alternatives of the ORs early.
		// Relational tests are simplified together so that ranges on the
		// same field become one prefix cover.
		for pass := 0; pass < 3; pass++ {
			if pass == 2 {
				if len(rel) == 0 {
					break
				}
				if cs, ok := z.ranges(rel); ok {
					if cs == nil {
						return nil
					}
					acc = andClauses(acc, cs)
					if len(acc) == 0 {
						return nil
					}
					break
				}
				cs := z.viaSimplify(combine(OpAnd, rel))
				if z.err != nil || len(cs) == 0 {
					return nil
				}
				if len(acc)*len(cs) > MaxClauses {
					z.err = errTooBig
					return nil
				}
				acc = andClauses(acc, cs)
				if len(acc) == 0 {
					return nil
				}
				break
			}
			for _, s := range e.Subs {
				f, v, m, sym, simple := simpleTest(s)
				if simple != (pass == 0) {
					continue
				}
				if simple {
					z.noteSym(f, sym)
					out := acc[:0]
					for i := range acc {
						if acc[i].fixed.Set(f, v, m) {
							out = append(out, acc[i])
						}
					}
					acc = out
					if len(acc) == 0 {
						return nil
					}
					continue
				}
				if isRelational(s) {
					rel = append(rel, s)
					continue
				}
				cs := z.norm(s)
				if z.err != nil || len(cs) == 0 {
					return nil
				}
				if len(acc)*len(cs) > MaxClauses {
					z.err = errTooBig
					return nil
				}
				acc = andClauses(acc, cs)
				if len(acc) == 0 {
					return nil
				}
			}
		}
		return acc
	}
	z.err = &Error{Pos: e.Pos, Msg: "cannot normalize this expression (annotate and resolve it first)"}
	return nil
}

// eqClauses turns "field == {a, b, ...}" on a prerequisite field (which
// must never become a conjunction dimension) into one clause per value.
func (z *normalizer) eqClauses(e *Expr) ([]clause, bool) {
	f := e.Sym.OF.Field
	if !f.IsPrereq() || len(e.Vals) < 2 {
		return nil, false
	}
	sh := cmpShift(e)
	out := make([]clause, 0, len(e.Vals))
	for i := range e.Vals {
		c := &e.Vals[i]
		if c.Ref != 0 || c.IsStr {
			return nil, false
		}
		m := c.Mask.Lsh(sh)
		var cl clause
		if cl.fixed.Set(f, c.Value.Lsh(sh).And(m), m) {
			out = append(out, cl)
		}
	}
	z.noteSym(f, e.Sym)
	return out, true
}

// eqSet turns "field == {a, b, ...}" on a plain (not overlay, not
// prerequisite) field into a dimension without building terms. A nil
// alts in the result means some value has an empty mask (always true).
func (z *normalizer) eqSet(e *Expr) (dim, bool) {
	f := e.Sym.OF.Field
	if f.IsPrereq() || (f >= of.XReg0 && f <= of.XXReg3) || len(e.Vals) < 2 {
		return dim{}, false
	}
	sh := cmpShift(e)
	d := dim{f: f, sym: e.Sym, alts: make([]vm, 0, len(e.Vals))}
	for i := range e.Vals {
		c := &e.Vals[i]
		if c.Ref != 0 || c.IsStr {
			return dim{}, false
		}
		m := c.Mask.Lsh(sh)
		if m.IsZero() {
			return dim{f: f, sym: e.Sym}, true
		}
		d.alts = append(d.alts, vm{c.Value.Lsh(sh).And(m), m})
	}
	z.noteSym(f, e.Sym)
	return d, true
}

// termSet recognizes an OR of tests on one non-prerequisite field and
// returns it as a dimension directly.
func (z *normalizer) termSet(e *Expr) (dim, bool) {
	if len(e.Subs) < 2 {
		return dim{}, false
	}
	f0, _, _, sym, ok := simpleTest(e.Subs[0])
	if !ok || f0.IsPrereq() || (f0 >= of.XReg0 && f0 <= of.XXReg3) {
		return dim{}, false
	}
	d := dim{f: f0, sym: sym, alts: make([]vm, 0, len(e.Subs))}
	for _, s := range e.Subs {
		f, v, m, _, ok := simpleTest(s)
		if !ok || f != f0 {
			return dim{}, false
		}
		if m.IsZero() {
			return dim{}, false // always true: let the general path fold it
		}
		d.alts = append(d.alts, vm{v, m})
	}
	z.noteSym(f0, sym)
	return d, true
}

// collapseOr turns an OR of single tests on one (non-prerequisite) field
// into one clause with a dimension, so that ANDs of such sets can become
// conjunctive matches instead of cross products.
func (z *normalizer) collapseOr(cs []clause) []clause {
	if len(cs) < 2 {
		return cs
	}
	// single returns the field of a clause that tests just one
	// (non-prerequisite) field, or 0.
	single := func(c *clause) of.Field {
		switch {
		case c.fixed.Len() == 1 && len(c.dims) == 0:
			return c.fixed.Fields()[0].Field
		case c.fixed.Len() == 0 && len(c.dims) == 1:
			return c.dims[0].f
		}
		return 0
	}
	// Group the single-field clauses by field, keeping first-use order;
	// every other clause stays as it is.
	var fields []of.Field
	counts := 0
	for i := range cs {
		f := single(&cs[i])
		if f == 0 || f.IsPrereq() {
			continue
		}
		counts++
		seen := false
		for _, g := range fields {
			if g == f {
				seen = true
				break
			}
		}
		if !seen {
			fields = append(fields, f)
		}
	}
	if counts == len(fields) {
		return cs // nothing to merge
	}
	out := make([]clause, 0, len(cs)-counts+len(fields))
	for _, f := range fields {
		d := dim{f: f, sym: z.symOf(f)}
		for i := range cs {
			c := &cs[i]
			if single(c) != f {
				continue
			}
			if len(c.dims) == 1 {
				if d.sym == nil {
					d.sym = c.dims[0].sym
				}
				d.alts = append(d.alts, c.dims[0].alts...)
			} else {
				mf := c.fixed.Fields()[0]
				d.alts = append(d.alts, vm{mf.Value, mf.Mask})
			}
		}
		if len(d.alts) == 1 {
			var c clause
			c.fixed.Set(f, d.alts[0].v, d.alts[0].m)
			out = append(out, c)
		} else {
			out = append(out, clause{dims: []dim{d}})
		}
	}
	for i := range cs {
		if f := single(&cs[i]); f == 0 || f.IsPrereq() {
			out = append(out, cs[i])
		}
	}
	return out
}

// andClauses returns the clauses of (OR of acc) AND (OR of cs). acc's
// clauses are owned and reused; cs is only read.
func andClauses(acc, cs []clause) []clause {
	if len(cs) == 1 {
		out := acc[:0]
		steal := len(acc) == 1
		for i := range acc {
			if mergeInto(&acc[i], &cs[0], steal) {
				out = append(out, acc[i])
			}
		}
		return out
	}
	var next []clause
	for i := range acc {
		a := &acc[i]
		// Find the clauses of cs compatible with a's fixed part; clone a
		// for all but the last, which takes a over.
		last := -1
		for j := range cs {
			if fixedCompatible(&a.fixed, &cs[j].fixed) {
				last = j
			}
		}
		for j := 0; j <= last; j++ {
			if !fixedCompatible(&a.fixed, &cs[j].fixed) {
				continue
			}
			if j == last {
				if mergeInto(a, &cs[j], false) {
					next = append(next, *a)
				}
			} else if m, ok := mergeClause(a, &cs[j]); ok {
				next = append(next, m)
			}
		}
	}
	return next
}

// fixedCompatible reports whether two fixed matches can hold together.
func fixedCompatible(a, b *of.Match) bool {
	for _, mf := range b.Fields() {
		if !compatible(a, mf.Field, vm{mf.Value, mf.Mask}) {
			return false
		}
	}
	return true
}

// mergeClause ANDs two clauses into a new one (a and b are unchanged).
func mergeClause(a, b *clause) (clause, bool) {
	r := clause{fixed: a.fixed.Clone()}
	for _, mf := range b.fixed.Fields() {
		if !r.fixed.Set(mf.Field, mf.Value, mf.Mask) {
			return r, false
		}
	}
	switch {
	case len(b.dims) == 0:
		r.dims = a.dims[:len(a.dims):len(a.dims)]
	case len(a.dims) == 0:
		r.dims = b.dims[:len(b.dims):len(b.dims)]
	default:
		r.dims = make([]dim, 0, len(a.dims)+len(b.dims))
		r.dims = append(append(r.dims, a.dims...), b.dims...)
	}
	return r, true
}

// mergeInto ANDs b into a in place (b is unchanged). Dimension slices are
// capped before appending, so slices shared between clauses never alias.
func mergeInto(a, b *clause, steal bool) bool {
	if a.fixed.Len() == 0 {
		if steal {
			a.fixed = b.fixed // b is not used again
		} else {
			a.fixed = b.fixed.Clone()
		}
	} else {
		for _, mf := range b.fixed.Fields() {
			if !a.fixed.Set(mf.Field, mf.Value, mf.Mask) {
				return false
			}
		}
	}
	if len(b.dims) > 0 {
		a.dims = append(a.dims[:len(a.dims):len(a.dims)], b.dims...)
	}
	return true
}

func compatible(m *of.Match, f of.Field, x vm) bool {
	v, mk, ok := m.Get(f)
	if !ok {
		return true
	}
	return v.Xor(x.v).And(mk).And(x.m).IsZero()
}

// finish resolves a clause's dimensions against its fixed part: merges
// dimensions on the same field, drops alternatives that contradict the
// fixed match, and turns one-alternative dimensions into fixed tests. It
// returns false if the clause matches nothing.
func finish(c *clause, budget *int) (bool, error) {
	if len(c.dims) == 0 {
		return true, nil
	}
	var dims []dim
	for _, d := range c.dims {
		merged := false
		for i := range dims {
			if dims[i].f == d.f {
				*budget -= len(dims[i].alts) * len(d.alts)
				if *budget < 0 {
					return false, errTooBig
				}
				soft := 40 * MaxClauses
				dims[i].alts = dropSubsumed(dedupeAlts(intersectAlts(dims[i].alts, d.alts)), &soft)
				merged = true
				break
			}
		}
		if !merged {
			dims = append(dims, dim{f: d.f, sym: d.sym, alts: d.alts})
		}
	}
	out := dims[:0]
	for _, d := range dims {
		alts := make([]vm, 0, len(d.alts))
		var seen map[vm]struct{}
		if len(d.alts) > 32 {
			seen = make(map[vm]struct{}, len(d.alts))
		}
		_, fm, _ := c.fixed.Get(d.f)
		implied := false
		for _, a := range d.alts {
			if !compatible(&c.fixed, d.f, a) {
				continue
			}
			if a.m.AndNot(fm).IsZero() && !isOverlay(d.f) {
				implied = true // the fixed part already implies this alternative
				break
			}
			if seen != nil {
				if _, dup := seen[a]; dup {
					continue
				}
				seen[a] = struct{}{}
			} else {
				dup := false
				for _, b := range alts {
					if b == a {
						dup = true
						break
					}
				}
				if dup {
					continue
				}
			}
			alts = append(alts, a)
		}
		if implied {
			continue // the dimension always holds: drop it
		}
		switch len(alts) {
		case 0:
			return false, nil
		case 1:
			if !c.fixed.Set(d.f, alts[0].v, alts[0].m) {
				return false, nil
			}
		default:
			d.alts = alts
			out = append(out, d)
		}
	}
	c.dims = out
	// A one-alternative dimension moved into fixed may contradict others.
	for _, d := range c.dims {
		ok := false
		for _, a := range d.alts {
			if compatible(&c.fixed, d.f, a) {
				ok = true
				break
			}
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func intersectAlts(a, b []vm) []vm {
	var out []vm
	for _, x := range a {
		for _, y := range b {
			common := x.m.And(y.m)
			if !x.v.Xor(y.v).And(common).IsZero() {
				continue
			}
			out = append(out, vm{x.v.Or(y.v), x.m.Or(y.m)})
		}
	}
	return out
}

// Normalize returns a simplified expression in normal form: an OR of ANDs
// whose members are tests on distinct OpenFlow fields, except that an AND
// may contain ORs of tests on a single field (the dimensions that Compile
// turns into conjunctive matches). Contradictory clauses are removed.
func Normalize(e *Expr) (*Expr, error) {
	cs, z, err := normalClauses(e, true, nil)
	if err != nil {
		return nil, err
	}
	ors := make([]*Expr, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		var ands []*Expr
		for _, mf := range c.fixed.Fields() {
			ands = append(ands, &Expr{Op: OpTerm, Sym: z.symOf(mf.Field), F: mf.Field, V: mf.Value, M: mf.Mask})
		}
		for _, d := range c.dims {
			alts := make([]*Expr, len(d.alts))
			for j, a := range d.alts {
				alts[j] = &Expr{Op: OpTerm, Sym: d.sym, F: d.f, V: a.v, M: a.m}
			}
			ands = append(ands, &Expr{Op: OpOr, Subs: alts})
		}
		switch len(ands) {
		case 0:
			ors = append(ors, exprTrue)
		case 1:
			ors = append(ors, ands[0])
		default:
			ors = append(ors, &Expr{Op: OpAnd, Subs: ands})
		}
	}
	switch len(ors) {
	case 0:
		return exprFalse, nil
	case 1:
		return ors[0], nil
	}
	return &Expr{Op: OpOr, Subs: ors}, nil
}

func normalClauses(e *Expr, names bool, c *Compiler) ([]clause, *normalizer, error) {
	z := &normalizer{c: c}
	if names {
		z.syms = make([]*symtab.Symbol, of.NumFields)
	}
	cs := z.norm(e)
	if z.err != nil {
		return nil, nil, z.err
	}
	out := cs[:0]
	budget := 4 * MaxClauses
	for i := range cs {
		budget -= 1 + len(cs[i].dims)
		ok, err := finish(&cs[i], &budget)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, cs[i])
			for _, d := range cs[i].dims {
				budget -= len(d.alts)
			}
			if budget < 0 {
				return nil, nil, errTooBig
			}
		}
	}
	// Dimensions on prerequisite fields never reach here (collapseOr keeps
	// them as separate clauses), so every clause is now final.
	return out, z, nil
}

// dropSubsumed removes alternatives implied by a more general one (x
// covers y if y fixes every bit x fixes, to the same value): OR-ing them
// adds nothing. Comparisons are charged to budget; when it runs out the
// remaining alternatives are kept as they are (still correct).
func dropSubsumed(alts []vm, budget *int) []vm {
	if len(alts) < 2 {
		return alts
	}
	sort.SliceStable(alts, func(i, j int) bool { return alts[i].m.OnesCount() < alts[j].m.OnesCount() })
	kept := alts[:0:0]
	kept = make([]vm, 0, len(alts))
	for i, y := range alts {
		if *budget <= 0 {
			return append(kept, alts[i:]...)
		}
		*budget -= len(kept)
		covered := false
		for _, x := range kept {
			if x.m.AndNot(y.m).IsZero() && y.v.And(x.m) == x.v {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, y)
		}
	}
	return kept
}

// dedupeAlts removes repeated alternatives, keeping first-use order.
func dedupeAlts(alts []vm) []vm {
	seen := make(map[vm]struct{}, len(alts))
	out := alts[:0]
	for _, a := range alts {
		if _, dup := seen[a]; !dup {
			seen[a] = struct{}{}
			out = append(out, a)
		}
	}
	return out
}

func isOverlay(f of.Field) bool { return f >= of.XReg0 && f <= of.XXReg3 }

// ranges turns the relational tests of one AND (on plain fields) into a
// clause: tests on the same slice are intersected into one interval, and
// each interval becomes the dimension of its prefix cover. It returns
// ok=false if some test needs the general path (overlay registers), and a
// nil clause list if the intervals are empty.
func (z *normalizer) ranges(rel []*Expr) ([]clause, bool) {
	type rng struct {
		e      *Expr
		lo, hi bits.U128
	}
	rs := make([]rng, 0, len(rel))
	for _, e := range rel {
		if e.Sym.Kind != symtab.Field || len(e.Vals) != 1 || isOverlay(e.Sym.OF.Field) || e.Sym.OF.Field.IsPrereq() {
			return nil, false
		}
		w := e.Hi - e.Lo + 1
		lo, hi, ok := interval(e.Rel, e.Vals[0].Value, w)
		if !ok {
			return nil, true
		}
		merged := false
		for i := range rs {
			r := &rs[i]
			if r.e.Sym == e.Sym && r.e.Lo == e.Lo && r.e.Hi == e.Hi {
				if lo.Cmp(r.lo) > 0 {
					r.lo = lo
				}
				if hi.Cmp(r.hi) < 0 {
					r.hi = hi
				}
				merged = true
				break
			}
		}
		if !merged {
			rs = append(rs, rng{e, lo, hi})
		}
	}
	var c clause
	for _, r := range rs {
		if r.lo.Cmp(r.hi) > 0 {
			return nil, true
		}
		sh := cmpShift(r.e)
		f := r.e.Sym.OF.Field
		z.noteSym(f, r.e.Sym)
		ps := prefixCover(r.lo, r.hi, r.e.Hi-r.e.Lo+1)
		if len(ps) == 1 {
			if !c.fixed.Set(f, ps[0].v.Lsh(sh), ps[0].m.Lsh(sh)) {
				return nil, true
			}
			continue
		}
		d := dim{f: f, sym: r.e.Sym, alts: ps}
		for i := range d.alts {
			d.alts[i] = vm{d.alts[i].v.Lsh(sh), d.alts[i].m.Lsh(sh)}
		}
		c.dims = append(c.dims, d)
	}
	return []clause{c}, true
}
