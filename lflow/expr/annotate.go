package expr

import (
	"sync"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/symtab"
)

// Options supplies everything outside the expression that compiling or
// evaluating it needs. Nil callbacks mean "nothing known": a port name or
// port group then matches nothing, an address set reference is an error,
// and is_chassis_resident is false.
type Options struct {
	// Ports returns the tunnel key of a logical port (or multicast group)
	// name, for inport/outport. Unknown names make their disjunct match
	// nothing (as OVN does), not an error.
	Ports func(name string) (key uint32, ok bool)
	// AddressSets returns the addresses of an address set ($name). Names
	// like $pg_ip4 are ordinary address sets.
	AddressSets func(name string) (addrs []string, ok bool)
	// PortGroups returns the port names of a port group (@name).
	PortGroups func(name string) (ports []string, ok bool)
	// ChassisResident answers is_chassis_resident("port").
	ChassisResident func(port string) bool
	// ConjIDBase is the first conjunction id Compile may use; it uses
	// ConjIDBase .. ConjIDBase+Result.NConj-1.
	ConjIDBase uint32
}

// Compiler compiles many expressions against one symbol table, caching the
// parsed predicate expansions and prerequisites and the parsed contents of
// address sets. It is safe for concurrent use. Create a new Compiler (or
// call Reset) when address set contents change.
type Compiler struct {
	st *symtab.Table

	mu      sync.Mutex
	preds   map[*symtab.Symbol]*[2]*Expr // annotated expansion: [0] positive, [1] negated
	prereqs map[*symtab.Symbol]*Expr     // annotated prerequisites (nil: none)
	sets    map[setKey][]Const
	simp    map[*Expr]*Expr // memoized Simplify of shared nodes
}

type setKey struct {
	name   string
	sym    *symtab.Symbol
	lo, hi int
}

// NewCompiler returns a Compiler for symbol table st.
func NewCompiler(st *symtab.Table) *Compiler {
	return &Compiler{st: st, preds: map[*symtab.Symbol]*[2]*Expr{}, prereqs: map[*symtab.Symbol]*Expr{}, sets: map[setKey][]Const{}, simp: map[*Expr]*Expr{}}
}

// Reset forgets cached address set contents.
func (c *Compiler) Reset() {
	c.mu.Lock()
	c.sets = map[setKey][]Const{}
	c.mu.Unlock()
}

// Table returns the compiler's symbol table.
func (c *Compiler) Table() *symtab.Table { return c.st }

// Parse parses s with the compiler's table.
func (c *Compiler) Parse(s string) (*Expr, error) { return Parse(s, c.st) }

// Annotate expands predicates, turns subfields into slices of their fields
// and adds every symbol's prerequisites (e.g. tcp.dst == 80 becomes
// (ip4 || ip6) && ip.proto == 6 && tcp.dst == 80 in terms of fields).
func Annotate(e *Expr, st *symtab.Table) (*Expr, error) { return NewCompiler(st).Annotate(e) }

// Annotate is the package-level Annotate using c's caches.
func (c *Compiler) Annotate(e *Expr) (*Expr, error) { return c.annotate(e, 0) }

const maxAnnotateDepth = 32

func (c *Compiler) annotate(e *Expr, depth int) (*Expr, error) {
	if depth > maxAnnotateDepth {
		return nil, &Error{Pos: e.Pos, Msg: "prerequisites or predicates nested too deeply (cycle in the symbol table?)"}
	}
	switch e.Op {
	case OpAnd:
		subs := make([]*Expr, 0, 3*len(e.Subs))
		for _, s := range e.Subs {
			if s.Op == OpCmp && (s.Sym.Kind == symtab.Field) {
				// Inline the prerequisites instead of building an AND
				// that the combine below would flatten again.
				pre, err := c.prereqOf(s.Sym, depth)
				if err != nil {
					return nil, err
				}
				if pre != nil {
					if pre.Op == OpAnd {
						for _, x := range pre.Subs {
							subs = appendUnique(subs, x)
						}
					} else {
						subs = appendUnique(subs, pre)
					}
				}
				subs = append(subs, s)
				continue
			}
			a, err := c.annotate(s, depth)
			if err != nil {
				return nil, err
			}
			subs = append(subs, a)
		}
		return combine(OpAnd, subs), nil
	case OpOr:
		subs := make([]*Expr, 0, len(e.Subs))
		for _, s := range e.Subs {
			a, err := c.annotate(s, depth)
			if err != nil {
				return nil, err
			}
			subs = append(subs, a)
		}
		return combine(e.Op, subs), nil
	case OpCmp:
		return c.annotateCmp(e, depth)
	}
	return e, nil
}

func (c *Compiler) annotateCmp(e *Expr, depth int) (*Expr, error) {
	sym := e.Sym
	switch sym.Kind {
	case symtab.Predicate:
		positive := (e.Rel == Eq) == (e.Vals[0].Value.Lo == 1)
		exp, err := c.predicate(sym, depth)
		if err != nil {
			return nil, err
		}
		if positive {
			return exp[0], nil
		}
		return exp[1], nil
	case symtab.Subfield:
		own, err := c.prereqOf(sym, depth)
		if err != nil {
			return nil, err
		}
		n := *e
		n.Sym = sym.Parent
		n.Lo, n.Hi, n.Sliced = e.Lo+sym.Lo, e.Hi+sym.Lo, true
		a, err := c.annotateCmp(&n, depth+1)
		if err != nil {
			return nil, err
		}
		if own == nil {
			return a, nil
		}
		return combine(OpAnd, []*Expr{own, a}), nil
	}
	pre, err := c.prereqOf(sym, depth)
	if err != nil {
		return nil, err
	}
	if pre == nil {
		return e, nil
	}
	return combine(OpAnd, []*Expr{pre, e}), nil
}

func (c *Compiler) predicate(sym *symtab.Symbol, depth int) (*[2]*Expr, error) {
	c.mu.Lock()
	exp, ok := c.preds[sym]
	c.mu.Unlock()
	if ok {
		return exp, nil
	}
	raw, err := Parse(sym.Expansion, c.st)
	if err != nil {
		return nil, &Error{Input: sym.Expansion, Pos: lex.Pos{Line: 1, Col: 1}, Msg: "expansion of predicate " + sym.Name + ": " + err.Error()}
	}
	pos, err := c.annotate(raw, depth+1)
	if err != nil {
		return nil, err
	}
	neg, err := c.annotate(Not(raw), depth+1)
	if err != nil {
		return nil, err
	}
	markShared(pos)
	markShared(neg)
	exp = &[2]*Expr{pos, neg}
	c.mu.Lock()
	c.preds[sym] = exp
	c.mu.Unlock()
	return exp, nil
}

func (c *Compiler) prereqOf(sym *symtab.Symbol, depth int) (*Expr, error) {
	if sym.Prereqs == "" {
		return nil, nil
	}
	c.mu.Lock()
	pre, ok := c.prereqs[sym]
	c.mu.Unlock()
	if ok {
		return pre, nil
	}
	raw, err := Parse(sym.Prereqs, c.st)
	if err != nil {
		return nil, &Error{Input: sym.Prereqs, Pos: lex.Pos{Line: 1, Col: 1}, Msg: "prerequisites of " + sym.Name + ": " + err.Error()}
	}
	pre, err = c.annotate(raw, depth+1)
	if err != nil {
		return nil, err
	}
	markShared(pre)
	c.mu.Lock()
	c.prereqs[sym] = pre
	c.mu.Unlock()
	return pre, nil
}

// Resolve replaces port names, port groups, address sets and
// is_chassis_resident with what opts says, leaving only integer
// comparisons, Boolean constants and AND/OR. e should be annotated (string
// fields must be fields, not predicates).
func Resolve(e *Expr, st *symtab.Table, opts *Options) (*Expr, error) {
	return NewCompiler(st).Resolve(e, opts)
}

// Resolve is the package-level Resolve using c's caches.
func (c *Compiler) Resolve(e *Expr, opts *Options) (*Expr, error) {
	if opts == nil {
		opts = &Options{}
	}
	return c.resolve(e, opts, "")
}

func (c *Compiler) resolve(e *Expr, opts *Options, input string) (*Expr, error) {
	switch e.Op {
	case OpAnd, OpOr:
		var subs []*Expr
		changed := false
		for i, s := range e.Subs {
			r, err := c.resolve(s, opts, input)
			if err != nil {
				return nil, err
			}
			if r != s && !changed {
				changed = true
				subs = append(make([]*Expr, 0, len(e.Subs)), e.Subs[:i]...)
			}
			if changed {
				subs = append(subs, r)
			}
		}
		if !changed {
			return e, nil
		}
		return combine(e.Op, subs), nil
	case OpCond:
		r := false
		if opts.ChassisResident != nil {
			r = opts.ChassisResident(e.Port)
		}
		return boolExpr(r != e.Neg), nil
	case OpCmp:
		return c.resolveCmp(e, opts, input)
	}
	return e, nil
}

func (c *Compiler) resolveCmp(e *Expr, opts *Options, input string) (*Expr, error) {
	needs := false
	for i := range e.Vals {
		if e.Vals[i].Ref != 0 || e.Vals[i].IsStr {
			needs = true
			break
		}
	}
	if !needs {
		return e, nil
	}
	w := e.Hi - e.Lo + 1
	vals := make([]Const, 0, len(e.Vals))
	addPort := func(name string, pos lex.Pos) {
		if opts.Ports == nil {
			return
		}
		if key, ok := opts.Ports(name); ok && bits.From64(uint64(key)).FitsIn(w) {
			vals = append(vals, Const{Value: bits.From64(uint64(key)), Mask: bits.Ones(w), Pos: pos})
		}
	}
	for i := range e.Vals {
		v := &e.Vals[i]
		switch {
		case v.Ref == '@':
			if opts.PortGroups == nil {
				continue
			}
			ports, _ := opts.PortGroups(v.Str)
			for _, p := range ports {
				addPort(p, v.Pos)
			}
		case v.Ref == '$':
			cs, err := c.addressSet(e, v, opts, input)
			if err != nil {
				return nil, err
			}
			vals = append(vals, cs...)
		case v.IsStr:
			addPort(v.Str, v.Pos)
		default:
			vals = append(vals, *v)
		}
	}
	if len(vals) == 0 {
		// == {} matches nothing; != {} matches everything.
		return boolExpr(e.Rel == Ne), nil
	}
	n := *e
	n.Vals = vals
	return &n, nil
}

func (c *Compiler) addressSet(e *Expr, v *Const, opts *Options, input string) ([]Const, error) {
	key := setKey{v.Str, e.Sym, e.Lo, e.Hi}
	c.mu.Lock()
	cs, ok := c.sets[key]
	c.mu.Unlock()
	if ok {
		return cs, nil
	}
	if opts.AddressSets == nil {
		return nil, errorf(input, v.Pos, "unknown address set $%s", v.Str)
	}
	addrs, ok := opts.AddressSets(v.Str)
	if !ok {
		return nil, errorf(input, v.Pos, "unknown address set $%s", v.Str)
	}
	cs = make([]Const, 0, len(addrs))
	for _, a := range addrs {
		toks, err := lex.Tokenize(a)
		if err != nil || len(toks) != 2 || toks[0].Kind != lex.Integer {
			return nil, errorf(input, v.Pos, "address set $%s: %q is not a constant", v.Str, a)
		}
		k, err := intConst(a, e.Sym, e.Lo, e.Hi, &toks[0])
		if err != nil {
			return nil, errorf(input, v.Pos, "address set $%s: %s", v.Str, err.(*Error).Msg)
		}
		k.Pos = v.Pos
		cs = append(cs, k)
	}
	c.mu.Lock()
	c.sets[key] = cs
	c.mu.Unlock()
	return cs, nil
}

// markShared flags every node of a cached tree (see Expr.shared). Nodes
// already shared (from nested caches) are left alone.
func markShared(e *Expr) {
	if e.shared || e == exprTrue || e == exprFalse {
		return
	}
	e.shared = true
	for _, s := range e.Subs {
		markShared(s)
	}
}

// appendUnique appends x unless it is already in list (by pointer).
func appendUnique(list []*Expr, x *Expr) []*Expr {
	for _, y := range list {
		if y == x {
			return list
		}
	}
	return append(list, x)
}
