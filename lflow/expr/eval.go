package expr

import (
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Evaluate reports whether packet p matches e, for trace. e may be any
// stage (parsed, annotated, simplified or normalized): Evaluate annotates
// and resolves it itself, with opts answering ports, sets and
// is_chassis_resident exactly as Compile would.
func Evaluate(e *Expr, st *symtab.Table, p *of.Packet, opts *Options) (bool, error) {
	return NewCompiler(st).Evaluate(e, p, opts)
}

// Evaluate is the package-level Evaluate using c's caches.
func (c *Compiler) Evaluate(e *Expr, p *of.Packet, opts *Options) (bool, error) {
	if opts == nil {
		opts = &Options{}
	}
	a, err := c.annotate(e, 0)
	if err != nil {
		return false, err
	}
	r, err := c.resolve(a, opts, "")
	if err != nil {
		return false, err
	}
	return eval(r, p), nil
}

func eval(e *Expr, p *of.Packet) bool {
	switch e.Op {
	case OpTrue:
		return true
	case OpFalse:
		return false
	case OpAnd:
		for _, s := range e.Subs {
			if !eval(s, p) {
				return false
			}
		}
		return true
	case OpOr:
		for _, s := range e.Subs {
			if eval(s, p) {
				return true
			}
		}
		return false
	case OpTerm:
		return p.Get(e.F).And(e.M) == e.V
	case OpCmp:
		x := p.GetSub(e.Sym.Slice(e.Lo, e.Hi))
		switch e.Rel {
		case Eq, Ne:
			in := false
			for i := range e.Vals {
				if x.And(e.Vals[i].Mask) == e.Vals[i].Value.And(e.Vals[i].Mask) {
					in = true
					break
				}
			}
			return in == (e.Rel == Eq)
		}
		c := x.Cmp(e.Vals[0].Value)
		switch e.Rel {
		case Lt:
			return c < 0
		case Le:
			return c <= 0
		case Gt:
			return c > 0
		}
		return c >= 0
	}
	return false
}

// Prepared is an expression annotated and resolved once, for evaluating it
// against many packets (trace runs every logical flow of a table).
type Prepared struct{ e *Expr }

// Prepare annotates and resolves e with opts.
func (c *Compiler) Prepare(e *Expr, opts *Options) (*Prepared, error) {
	if opts == nil {
		opts = &Options{}
	}
	a, err := c.annotate(e, 0)
	if err != nil {
		return nil, err
	}
	r, err := c.resolve(a, opts, "")
	if err != nil {
		return nil, err
	}
	return &Prepared{e: r}, nil
}

// Matches reports whether p matches the prepared expression.
func (pe *Prepared) Matches(p *of.Packet) bool { return eval(pe.e, p) }

// String returns the annotated, resolved expression.
func (pe *Prepared) String() string { return pe.e.String() }
