package expr

import (
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Simplify rewrites an annotated, resolved expression so that only masked
// equality tests on OpenFlow bits (OpTerm) remain, combined with AND/OR:
// != becomes an OR of single-bit tests, <, <=, >, >= and ranges become ORs
// of bitwise prefixes, xreg/xxreg tests become tests on their 32-bit
// registers. Comparisons must be on fields with integer constants (run
// Annotate and Resolve first); anything else is an error.
func Simplify(e *Expr) (*Expr, error) { return (*Compiler)(nil).simplify(e) }

// Simplify is the package-level Simplify, memoizing c's cached subtrees.
func (c *Compiler) Simplify(e *Expr) (*Expr, error) { return c.simplify(e) }

func (c *Compiler) simplify(e *Expr) (*Expr, error) {
	if c == nil || !e.shared {
		return c.simplify1(e)
	}
	c.mu.Lock()
	r, ok := c.simp[e]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := c.simplify1(e)
	if err != nil {
		return nil, err
	}
	markShared(r)
	c.mu.Lock()
	c.simp[e] = r
	c.mu.Unlock()
	return r, nil
}

func (c *Compiler) simplify1(e *Expr) (*Expr, error) {
	switch e.Op {
	case OpTrue, OpFalse, OpTerm:
		return e, nil
	case OpCond:
		return nil, &Error{Pos: e.Pos, Msg: "is_chassis_resident must be resolved before Simplify"}
	case OpOr:
		subs := make([]*Expr, 0, len(e.Subs))
		for _, s := range e.Subs {
			x, err := c.simplify(s)
			if err != nil {
				return nil, err
			}
			subs = append(subs, x)
		}
		return combine(OpOr, subs), nil
	case OpAnd:
		return c.simplifyAnd(e)
	case OpCmp:
		if e.Sym.Kind != symtab.Field {
			return nil, &Error{Pos: e.Pos, Msg: "comparison on " + e.Sym.Name + " must be annotated before Simplify"}
		}
		for i := range e.Vals {
			if e.Vals[i].Ref != 0 || e.Vals[i].IsStr {
				return nil, &Error{Pos: e.Pos, Msg: "comparison on " + e.Sym.Name + " must be resolved before Simplify"}
			}
		}
		switch e.Rel {
		case Eq, Ne:
			return simplifyEq(e), nil
		}
		lo, hi, ok := interval(e.Rel, e.Vals[0].Value, e.Hi-e.Lo+1)
		if !ok {
			return exprFalse, nil
		}
		return rangeExpr(e, lo, hi), nil
	}
	return nil, &Error{Pos: e.Pos, Msg: "unknown expression node"}
}

// mkTerm returns the test "bits of sym's slice starting at shift (absolute
// in OpenFlow field f) equal v under m", split into 32-bit registers for
// xreg/xxreg.
func mkTerm(sym *symtab.Symbol, f of.Field, v, m bits.U128) *Expr {
	if m.IsZero() {
		return exprTrue
	}
	switch {
	case f >= of.XReg0 && f <= of.XReg7:
		n := int(f - of.XReg0)
		return splitReg(sym, v, m, []of.Field{of.Reg(2 * n), of.Reg(2*n + 1)})
	case f >= of.XXReg0 && f <= of.XXReg3:
		n := int(f - of.XXReg0)
		return splitReg(sym, v, m, []of.Field{of.Reg(4 * n), of.Reg(4*n + 1), of.Reg(4*n + 2), of.Reg(4*n + 3)})
	}
	return &Expr{Op: OpTerm, Sym: sym, F: f, V: v.And(m), M: m}
}

func splitReg(sym *symtab.Symbol, v, m bits.U128, regs []of.Field) *Expr {
	var subs []*Expr
	for i, r := range regs {
		shift := uint(32 * (len(regs) - 1 - i))
		pm := m.Rsh(shift).And(bits.Ones(32))
		if pm.IsZero() {
			continue
		}
		subs = append(subs, &Expr{Op: OpTerm, Sym: sym, F: r, V: v.Rsh(shift).And(pm), M: pm})
	}
	return combine(OpAnd, subs)
}

func cmpShift(e *Expr) uint { return uint(e.Sym.OF.Ofs + e.Lo) }

func simplifyEq(e *Expr) *Expr {
	sh := cmpShift(e)
	f := e.Sym.OF.Field
	if e.Rel == Eq && len(e.Vals) == 1 {
		return mkTerm(e.Sym, f, e.Vals[0].Value.Lsh(sh), e.Vals[0].Mask.Lsh(sh))
	}
	subs := make([]*Expr, 0, len(e.Vals))
	for i := range e.Vals {
		c := &e.Vals[i]
		v, m := c.Value.Lsh(sh), c.Mask.Lsh(sh)
		if e.Rel == Eq {
			subs = append(subs, mkTerm(e.Sym, f, v, m))
			continue
		}
		// f != v/m: some masked bit differs.
		var bitsOr []*Expr
		for b := 0; b < 128; b++ {
			if !m.Bit(b) {
				continue
			}
			one := bits.From64(1).Lsh(uint(b))
			x := bits.Zero
			if !v.Bit(b) {
				x = one
			}
			bitsOr = append(bitsOr, mkTerm(e.Sym, f, x, one))
		}
		subs = append(subs, combine(OpOr, bitsOr))
	}
	if e.Rel == Eq {
		return combine(OpOr, subs)
	}
	return combine(OpAnd, subs)
}

// interval returns the closed interval [lo, hi] of w-bit values satisfying
// "x rel v", or ok=false if it is empty.
func interval(rel Rel, v bits.U128, w int) (lo, hi bits.U128, ok bool) {
	max := bits.Ones(w)
	one := bits.From64(1)
	switch rel {
	case Lt:
		if v.IsZero() {
			return lo, hi, false
		}
		return bits.Zero, v.Sub(one), true
	case Le:
		return bits.Zero, v, true
	case Gt:
		if v == max {
			return lo, hi, false
		}
		return v.Add(one), max, true
	case Ge:
		return v, max, true
	}
	return lo, hi, false
}

// rangeExpr returns the OR of prefix tests covering [lo, hi] for the
// comparison's slice.
func rangeExpr(e *Expr, lo, hi bits.U128) *Expr {
	w := e.Hi - e.Lo + 1
	sh := cmpShift(e)
	f := e.Sym.OF.Field
	var subs []*Expr
	for _, p := range prefixCover(lo, hi, w) {
		subs = append(subs, mkTerm(e.Sym, f, p.v.Lsh(sh), p.m.Lsh(sh)))
	}
	return combine(OpOr, subs)
}

type vm struct{ v, m bits.U128 }

// prefixCover returns the minimal list of value/mask prefixes of a w-bit
// field whose union is [lo, hi] (lo <= hi).
func prefixCover(lo, hi bits.U128, w int) []vm {
	var out []vm
	max := bits.Ones(w)
	one := bits.From64(1)
	a := lo
	for a.Cmp(hi) <= 0 {
		k := a.TrailingZeros()
		if k > w {
			k = w
		}
		for k > 0 && a.Add(bits.Ones(k)).Cmp(hi) > 0 {
			k--
		}
		out = append(out, vm{a, max.AndNot(bits.Ones(k))})
		end := a.Add(bits.Ones(k))
		if end == max {
			break
		}
		a = end.Add(one)
	}
	return out
}

// simplifyAnd simplifies an AND, combining relational tests on the same
// slice into one interval first (so 1 <= tcp.dst <= 100 becomes one prefix
// cover, not the intersection of two).
func (c *Compiler) simplifyAnd(e *Expr) (*Expr, error) {
	type rng struct {
		cmp    *Expr
		lo, hi bits.U128
	}
	var ranges []rng
	subs := make([]*Expr, 0, len(e.Subs))
	for _, s := range e.Subs {
		if s.Op == OpCmp && s.Sym.Kind == symtab.Field && s.Rel != Eq && s.Rel != Ne && len(s.Vals) == 1 {
			w := s.Hi - s.Lo + 1
			lo, hi, ok := interval(s.Rel, s.Vals[0].Value, w)
			if !ok {
				return exprFalse, nil
			}
			merged := false
			for i := range ranges {
				r := &ranges[i]
				if r.cmp.Sym == s.Sym && r.cmp.Lo == s.Lo && r.cmp.Hi == s.Hi {
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
				ranges = append(ranges, rng{s, lo, hi})
			}
			continue
		}
		x, err := c.simplify(s)
		if err != nil {
			return nil, err
		}
		subs = append(subs, x)
	}
	for _, r := range ranges {
		if r.lo.Cmp(r.hi) > 0 {
			return exprFalse, nil
		}
		subs = append(subs, rangeExpr(r.cmp, r.lo, r.hi))
	}
	return combine(OpAnd, subs), nil
}
