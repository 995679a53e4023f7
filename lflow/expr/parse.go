package expr

import (
	"fmt"
	"sync"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/symtab"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// tokPool recycles token buffers between parses (tokens are only needed
// while parsing: expressions keep positions and strings, not tokens).
var tokPool = sync.Pool{New: func() any { b := make([]lex.Token, 0, 64); return &b }}

// maxDepth bounds nesting (parentheses, !) so hostile input cannot exhaust
// the stack.
const maxDepth = 200

type parser struct {
	input string
	toks  []lex.Token
	i     int
	st    *symtab.Table
	depth int
}

// Parse parses a match expression against symbol table st. Negations are
// pushed down to the comparisons (so the result has no NOT nodes), sets are
// kept as multi-valued comparisons, and $address_set / @port_group
// references are kept unresolved (Resolve expands them). Every error is an
// *Error.
func Parse(s string, st *symtab.Table) (*Expr, error) {
	bp := tokPool.Get().(*[]lex.Token)
	defer tokPool.Put(bp)
	toks := (*bp)[:0]
	l := lex.New(s)
	for {
		t, err := l.Next()
		if err != nil {
			*bp = toks
			if le, ok := err.(*lex.Error); ok {
				return nil, &Error{Input: s, Pos: le.Pos, Msg: le.Msg}
			}
			return nil, &Error{Input: s, Pos: lex.Pos{Line: 1, Col: 1}, Msg: err.Error()}
		}
		toks = append(toks, t)
		if t.Kind == lex.EOF {
			break
		}
	}
	*bp = toks
	p := &parser{input: s, toks: toks, st: st}
	e, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.Kind != lex.EOF {
		return nil, p.errAt(t, "syntax error at %s: expecting `&&`, `||` or end of input", t.Describe())
	}
	if err := p.checkNominal(e); err != nil {
		return nil, err
	}
	return e, nil
}

func (p *parser) peek() *lex.Token { return &p.toks[p.i] }
func (p *parser) next() *lex.Token {
	t := &p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *parser) errAt(t *lex.Token, format string, args ...any) *Error {
	return errorf(p.input, t.Pos, format, args...)
}

// parseExpr: not_expr { (&& | ||) not_expr }, && and || not mixed.
func (p *parser) parseExpr() (*Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errAt(p.peek(), "expression nested too deeply (more than %d levels)", maxDepth)
	}
	first, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	k := p.peek().Kind
	if k != lex.And && k != lex.Or {
		return first, nil
	}
	op := OpAnd
	if k == lex.Or {
		op = OpOr
	}
	subs := make([]*Expr, 1, 8)
	subs[0] = first
	for {
		t := p.peek()
		if t.Kind != lex.And && t.Kind != lex.Or {
			break
		}
		if t.Kind != k {
			return nil, p.errAt(t, "`&&` and `||` must be parenthesized when used together")
		}
		p.next()
		e, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		subs = append(subs, e)
	}
	return combine(op, subs), nil
}

// combine builds an AND/OR, flattening nested nodes of the same operator,
// folding constants and dropping repeated (pointer-identical) members. It
// may reuse subs, which the caller must not use afterwards.
func combine(op Op, subs []*Expr) *Expr {
	simple := true
	for i, s := range subs {
		if s.Op == op || s.Op == OpTrue || s.Op == OpFalse {
			simple = false
			break
		}
		for _, o := range subs[:i] {
			if o == s {
				simple = false
				break
			}
		}
	}
	if simple {
		switch len(subs) {
		case 0:
			return boolExpr(op == OpAnd)
		case 1:
			return subs[0]
		}
		return &Expr{Op: op, Subs: subs}
	}
	n := 0
	for _, s := range subs {
		if s.Op == op {
			n += len(s.Subs)
		} else {
			n++
		}
	}
	out := make([]*Expr, 0, n)
	add := func(x *Expr) {
		for _, o := range out {
			if o == x {
				return
			}
		}
		out = append(out, x)
	}
	for _, s := range subs {
		switch {
		case s.Op == op:
			for _, x := range s.Subs {
				add(x)
			}
		case s.Op == OpTrue && op == OpAnd, s.Op == OpFalse && op == OpOr:
			// identity element: drop
		case s.Op == OpFalse && op == OpAnd:
			return exprFalse
		case s.Op == OpTrue && op == OpOr:
			return exprTrue
		default:
			add(s)
		}
	}
	switch len(out) {
	case 0:
		return boolExpr(op == OpAnd)
	case 1:
		return out[0]
	}
	return &Expr{Op: op, Subs: out}
}

// parseNot: "!" not_expr | primary.
func (p *parser) parseNot() (*Expr, error) {
	if p.peek().Kind == lex.Not {
		bang := p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, p.errAt(bang, "expression nested too deeply (more than %d levels)", maxDepth)
		}
		e, relational, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		if relational {
			return nil, p.errAt(bang, "missing parentheses around operand of `!` (write `!(...)`)")
		}
		return Not(e), nil
	}
	e, _, err := p.parsePrimary()
	return e, err
}

// parsePrimary returns the expression and whether it is an unparenthesized
// comparison (which `!` may not be applied to).
func (p *parser) parsePrimary() (*Expr, bool, error) {
	t := p.peek()
	switch t.Kind {
	case lex.Not:
		e, err := p.parseNot()
		return e, false, err
	case lex.LParen:
		p.next()
		e, err := p.parseExpr()
		if err != nil {
			return nil, false, err
		}
		if c := p.peek(); c.Kind != lex.RParen {
			return nil, false, p.errAt(c, "syntax error at %s: expecting `)`", c.Describe())
		}
		p.next()
		return e, false, nil
	case lex.Ident:
		if t.Str == "is_chassis_resident" && p.toks[p.i+1].Kind == lex.LParen {
			return p.parseChassisResident()
		}
		return p.parseFieldCmp()
	case lex.Integer:
		nk := p.toks[p.i+1].Kind
		if isRel(nk) {
			return p.parseConstFirst()
		}
		if !t.Masked && t.Value.Hi == 0 && t.Value.Lo <= 1 {
			p.next()
			return boolExpr(t.Value.Lo == 1), false, nil
		}
		return nil, false, p.errAt(t, "syntax error at %s: expecting a comparison (only 0 and 1 may stand alone)", t.Describe())
	}
	return nil, false, p.errAt(t, "syntax error at %s: expecting a field, predicate, constant, `!` or `(`", t.Describe())
}

func isRel(k lex.Kind) bool {
	switch k {
	case lex.Eq, lex.Ne, lex.Lt, lex.Le, lex.Gt, lex.Ge:
		return true
	}
	return false
}

func relOf(k lex.Kind) Rel {
	switch k {
	case lex.Eq:
		return Eq
	case lex.Ne:
		return Ne
	case lex.Lt:
		return Lt
	case lex.Le:
		return Le
	case lex.Gt:
		return Gt
	}
	return Ge
}

func (p *parser) parseChassisResident() (*Expr, bool, error) {
	p.next() // name
	p.next() // (
	t := p.peek()
	if t.Kind != lex.String {
		return nil, false, p.errAt(t, "syntax error at %s: is_chassis_resident expects a quoted port name", t.Describe())
	}
	p.next()
	if c := p.peek(); c.Kind != lex.RParen {
		return nil, false, p.errAt(c, "syntax error at %s: expecting `)`", c.Describe())
	}
	p.next()
	return &Expr{Op: OpCond, Port: t.Str, Pos: t.Pos}, false, nil
}

// fieldRef is a parsed "sym" or "sym[lo..hi]".
type fieldRef struct {
	sym    *symtab.Symbol
	lo, hi int
	sliced bool
	tok    *lex.Token
}

func (p *parser) parseFieldRef() (fieldRef, error) {
	t := p.next()
	if t.Kind != lex.Ident {
		return fieldRef{}, p.errAt(t, "syntax error at %s: expecting a field name", t.Describe())
	}
	sym, ok := p.st.Lookup(t.Str)
	if !ok {
		return fieldRef{}, p.errAt(t, "unknown field or predicate %q", t.Str)
	}
	r := fieldRef{sym: sym, lo: 0, hi: sym.Width - 1, tok: t}
	if sym.Kind == symtab.Predicate {
		r.hi = 0
	}
	if p.peek().Kind != lex.LBracket {
		return r, nil
	}
	lb := p.next()
	if sym.Kind == symtab.Predicate {
		return r, p.errAt(lb, "cannot select bits of predicate %q", sym.Name)
	}
	if sym.String {
		return r, p.errAt(lb, "cannot select bits of string field %q", sym.Name)
	}
	if sym.Level == symtab.Nominal {
		return r, p.errAt(lb, "cannot select bits of nominal field %q", sym.Name)
	}
	lo, err := p.smallInt()
	if err != nil {
		return r, err
	}
	hi := lo
	if p.peek().Kind == lex.Ellipsis {
		p.next()
		if hi, err = p.smallInt(); err != nil {
			return r, err
		}
	}
	if c := p.peek(); c.Kind != lex.RBracket {
		return r, p.errAt(c, "syntax error at %s: expecting `]`", c.Describe())
	}
	p.next()
	if hi < lo {
		return r, p.errAt(lb, "invalid bit range %d..%d of %q (the first bit must not exceed the last)", lo, hi, sym.Name)
	}
	if hi >= sym.Width {
		return r, p.errAt(lb, "bit range %d..%d is outside %d-bit field %q", lo, hi, sym.Width, sym.Name)
	}
	r.lo, r.hi, r.sliced = lo, hi, true
	return r, nil
}

func (p *parser) smallInt() (int, error) {
	t := p.next()
	if t.Kind != lex.Integer || t.Masked || t.Value.Hi != 0 || t.Value.Lo > 1<<20 {
		return 0, p.errAt(t, "syntax error at %s: expecting a bit number", t.Describe())
	}
	return int(t.Value.Lo), nil
}

// parseFieldCmp: field [relop value] .
func (p *parser) parseFieldCmp() (*Expr, bool, error) {
	r, err := p.parseFieldRef()
	if err != nil {
		return nil, false, err
	}
	t := p.peek()
	if !isRel(t.Kind) {
		// A Boolean symbol standing alone means "== 1".
		if r.sym.Kind == symtab.Predicate || (!r.sym.String && r.hi == r.lo) {
			return p.newCmp(r, Eq, []Const{{Value: bits.From64(1), Mask: bits.From64(1), Pos: r.tok.Pos}}), false, nil
		}
		if r.sym.String {
			return nil, false, p.errAt(t, "syntax error at %s: string field %q must be compared with `==` (e.g. %s == \"name\")", t.Describe(), r.sym.Name, r.sym.Name)
		}
		return nil, false, p.errAt(r.tok, "%q is a %d-bit field, not a Boolean: compare it explicitly (e.g. `%s != 0`)", r.sym.Name, r.hi-r.lo+1, r.sym.Name)
	}
	p.next()
	rel := relOf(t.Kind)
	vals, err := p.parseValues(r, rel)
	if err != nil {
		return nil, false, err
	}
	if r.sym.Kind == symtab.Predicate && (len(vals) != 1 || vals[0].Masked || vals[0].Ref != 0) {
		return nil, false, errorf(p.input, vals[0].Pos, "predicate %q can only be compared with a single 0 or 1", r.sym.Name)
	}
	e, err := p.checkCmp(r, rel, vals, t)
	return e, true, err
}

// parseConstFirst: const relop field [relop const] .
func (p *parser) parseConstFirst() (*Expr, bool, error) {
	c1 := p.next()
	opTok := p.next()
	rel1 := relOf(opTok.Kind)
	r, err := p.parseFieldRef()
	if err != nil {
		return nil, false, err
	}
	v1, err := p.constFor(r, c1)
	if err != nil {
		return nil, false, err
	}
	e1, err := p.checkCmp(r, rel1.reverse(), []Const{v1}, opTok)
	if err != nil {
		return nil, false, err
	}
	t := p.peek()
	if !isRel(t.Kind) {
		return e1, true, nil
	}
	rel2 := relOf(t.Kind)
	ok := (rel1 == Lt || rel1 == Le) && (rel2 == Lt || rel2 == Le) ||
		(rel1 == Gt || rel1 == Ge) && (rel2 == Gt || rel2 == Ge)
	if !ok {
		return nil, false, p.errAt(t, "range test must use `<`/`<=` twice or `>`/`>=` twice (e.g. `1 <= %s <= 10`)", r.sym.Name)
	}
	p.next()
	c2 := p.next()
	if c2.Kind != lex.Integer {
		return nil, false, p.errAt(c2, "syntax error at %s: expecting a constant to end the range", c2.Describe())
	}
	v2, err := p.constFor(r, c2)
	if err != nil {
		return nil, false, err
	}
	e2, err := p.checkCmp(r, rel2, []Const{v2}, t)
	if err != nil {
		return nil, false, err
	}
	return &Expr{Op: OpAnd, Subs: []*Expr{e1, e2}}, true, nil
}

func (p *parser) newCmp(r fieldRef, rel Rel, vals []Const) *Expr {
	return &Expr{Op: OpCmp, Sym: r.sym, Lo: r.lo, Hi: r.hi, Sliced: r.sliced, Rel: rel, Vals: vals, Pos: r.tok.Pos}
}

// checkCmp validates operator/value combinations that do not depend on
// enclosing negations.
func (p *parser) checkCmp(r fieldRef, rel Rel, vals []Const, opTok *lex.Token) (*Expr, error) {
	if rel != Eq && rel != Ne {
		if r.sym.Level == symtab.Nominal || r.sym.String {
			return nil, p.errAt(opTok, "only `==` and `!=` may be used with nominal field %q", r.sym.Name)
		}
		if r.sym.Kind == symtab.Predicate {
			return nil, p.errAt(opTok, "only `==` and `!=` may be used with predicate %q", r.sym.Name)
		}
		if len(vals) != 1 || vals[0].Ref != 0 {
			return nil, p.errAt(opTok, "only `==` and `!=` may be used with a set of values")
		}
		if vals[0].Masked {
			return nil, p.errAt(opTok, "only `==` and `!=` may be used with a masked constant")
		}
	}
	return p.newCmp(r, rel, vals), nil
}

// parseValues parses a constant, a {set}, $address_set or @port_group.
func (p *parser) parseValues(r fieldRef, rel Rel) ([]Const, error) {
	t := p.peek()
	if t.Kind != lex.LBrace {
		c, err := p.parseValue(r)
		if err != nil {
			return nil, err
		}
		return []Const{c}, nil
	}
	p.next()
	var vals []Const
	for {
		t := p.peek()
		if t.Kind == lex.RBrace {
			p.next()
			break
		}
		if t.Kind == lex.Comma && len(vals) > 0 {
			p.next()
			continue
		}
		c, err := p.parseValue(r)
		if err != nil {
			return nil, err
		}
		vals = append(vals, c)
	}
	if len(vals) == 0 {
		return nil, p.errAt(t, "empty set `{}`: a set needs at least one value")
	}
	return vals, nil
}

func (p *parser) parseValue(r fieldRef) (Const, error) {
	t := p.next()
	switch t.Kind {
	case lex.Integer:
		return p.constFor(r, t)
	case lex.String:
		if !r.sym.String {
			return Const{}, p.errAt(t, "%q is an integer field, got %s", r.sym.Name, t.Describe())
		}
		return Const{IsStr: true, Str: t.Str, Pos: t.Pos}, nil
	case lex.Macro:
		if r.sym.String || r.sym.Kind == symtab.Predicate {
			return Const{}, p.errAt(t, "address set $%s cannot be compared with %q", t.Str, r.sym.Name)
		}
		return Const{Ref: '$', Str: t.Str, Pos: t.Pos}, nil
	case lex.PortGroup:
		if !r.sym.String {
			return Const{}, p.errAt(t, "port group @%s can only be compared with a port field (inport, outport), not %q", t.Str, r.sym.Name)
		}
		return Const{Ref: '@', Str: t.Str, Pos: t.Pos}, nil
	}
	return Const{}, p.errAt(t, "syntax error at %s: expecting a constant", t.Describe())
}

// constFor checks that integer token t fits the field reference.
func (p *parser) constFor(r fieldRef, t *lex.Token) (Const, error) {
	if r.sym.String {
		return Const{}, p.errAt(t, "%q is a string field (a port name in quotes), got %s", r.sym.Name, t.Describe())
	}
	return intConst(p.input, r.sym, r.lo, r.hi, t)
}

func intConst(input string, sym *symtab.Symbol, lo, hi int, t *lex.Token) (Const, error) {
	w := hi - lo + 1
	what := "field"
	if sym.Kind == symtab.Predicate {
		what = "predicate"
	}
	if !t.Value.FitsIn(w) || (t.Masked && !t.Mask.FitsIn(w)) {
		return Const{}, errorf(input, t.Pos, "%s %q expects a %d-bit value, got %q", what, sym.Name, w, t.Text)
	}
	c := Const{Value: t.Value, Mask: bits.Ones(w), Pos: t.Pos}
	if t.Masked {
		if sym.Level == symtab.Nominal && t.Mask != bits.Ones(w) {
			return Const{}, errorf(input, t.Pos, "nominal %s %q cannot be matched with a mask", what, sym.Name)
		}
		c.Mask, c.Masked = t.Mask, t.Mask != bits.Ones(w)
		c.Value = c.Value.And(t.Mask)
	}
	return c, nil
}

// Not returns the negation of e, with the negation pushed down to the
// comparisons (De Morgan; == ↔ !=, < ↔ >=, ...).
func Not(e *Expr) *Expr {
	switch e.Op {
	case OpTrue:
		return exprFalse
	case OpFalse:
		return exprTrue
	case OpAnd, OpOr:
		op := OpOr
		if e.Op == OpOr {
			op = OpAnd
		}
		subs := make([]*Expr, len(e.Subs))
		for i, s := range e.Subs {
			subs[i] = Not(s)
		}
		return &Expr{Op: op, Subs: subs}
	case OpCmp:
		c := *e
		c.Rel = e.Rel.negate()
		return &c
	case OpCond:
		c := *e
		c.Neg = !e.Neg
		return &c
	case OpTerm:
		// A masked equality's negation: any masked bit differs.
		var subs []*Expr
		for i := 0; i < e.F.Width(); i++ {
			if !e.M.Bit(i) {
				continue
			}
			b := bits.From64(1).Lsh(uint(i))
			v := bits.Zero
			if !e.V.Bit(i) {
				v = b
			}
			subs = append(subs, &Expr{Op: OpTerm, F: e.F, V: v, M: b, Sym: e.Sym})
		}
		return combine(OpOr, subs)
	}
	return e
}

// checkNominal enforces that nominal fields and predicates are only tested
// positively once all negations are pushed down.
func (p *parser) checkNominal(e *Expr) error {
	switch e.Op {
	case OpAnd, OpOr:
		for _, s := range e.Subs {
			if err := p.checkNominal(s); err != nil {
				return err
			}
		}
	case OpCmp:
		if e.Sym.Level != symtab.Nominal {
			return nil
		}
		if e.Sym.Kind == symtab.Predicate {
			positive := (e.Rel == Eq) == (e.Vals[0].Value.Lo == 1)
			if !positive {
				return errorf(p.input, e.Pos, "nominal predicate %q may only be tested positively (e.g. `%s`, not `!%s`)", e.Sym.Name, e.Sym.Name, e.Sym.Name)
			}
			return nil
		}
		if e.Rel != Eq {
			return errorf(p.input, e.Pos, "nominal field %q may only be tested for equality, taking enclosing `!` into account (e.g. `%s == ...`, not `%s != ...`)", e.Sym.Name, e.Sym.Name, e.Sym.Name)
		}
	}
	return nil
}
