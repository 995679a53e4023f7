// Package expr implements OVN logical-flow match expressions (ovn-sb(5),
// Logical_Flow match column): parsing, annotation (predicate expansion,
// prerequisites, subfields), simplification (only masked equality left),
// normalization (OR of ANDs) and conversion to OpenFlow matches, using
// conjunctive matches (conjunction(id,k/n)) when a cross product would
// explode. Evaluate decides an expression against a packet, for trace.
//
// Stages (each returns a new Expr; inputs are never modified):
//
//	Parse → Annotate → Resolve → Simplify → Normalize → matches (Compile)
//
// Address sets, port groups, logical port keys and chassis residence are
// supplied by the caller through Options: there is no global state.
//
// The package is pure (no I/O) and never panics on any input.
package expr

import (
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Op is the kind of an Expr node.
type Op uint8

const (
	OpFalse Op = iota // matches nothing ("0")
	OpTrue            // matches everything ("1")
	OpCmp             // comparison of a symbol (or slice) with constants
	OpAnd             // all of Subs
	OpOr              // any of Subs
	OpCond            // is_chassis_resident("port"), possibly negated
	OpTerm            // masked equality on OpenFlow bits (after Simplify)
)

// Rel is a relational operator.
type Rel uint8

const (
	Eq Rel = iota
	Ne
	Lt
	Le
	Gt
	Ge
)

var relText = [...]string{"==", "!=", "<", "<=", ">", ">="}

func (r Rel) String() string {
	if int(r) < len(relText) {
		return relText[r]
	}
	return "?"
}

// negate returns the operator of !(a r b).
func (r Rel) negate() Rel {
	switch r {
	case Eq:
		return Ne
	case Ne:
		return Eq
	case Lt:
		return Ge
	case Le:
		return Gt
	case Gt:
		return Le
	}
	return Lt
}

// reverse returns r' such that (a r b) == (b r' a).
func (r Rel) reverse() Rel {
	switch r {
	case Lt:
		return Gt
	case Le:
		return Ge
	case Gt:
		return Lt
	case Ge:
		return Le
	}
	return r
}

// Const is one constant on the right-hand side of a comparison: an integer
// (Value, with Mask covering the compared bits unless Masked), a string
// (string fields), or a reference to an address set ($name) or port group
// (@name) that Resolve expands.
type Const struct {
	Value, Mask bits.U128
	Masked      bool
	IsStr       bool
	Str         string
	Ref         byte // 0, '$' (address set) or '@' (port group); Str holds the name
	Pos         lex.Pos
}

// Expr is an expression node. Which fields are meaningful depends on Op.
type Expr struct {
	Op Op
	// Rel, Sliced: see OpCmp below; Neg: see OpCond; F: see OpTerm. (The
	// small fields come first so the struct packs tightly.)
	Rel    Rel
	Sliced bool
	Neg    bool
	F      of.Field
	// shared marks nodes owned by a Compiler cache (annotated predicates and
	// prerequisites); their simplified form is memoized.
	shared bool

	Subs []*Expr // OpAnd, OpOr

	// OpCmp: Sym (as written before Annotate; a field symbol after), the bit
	// range Lo..Hi within Sym, whether a slice was written (Sliced), the
	// operator (Rel) and the constants (several = a set: == any of them,
	// != none of them).
	Sym    *symtab.Symbol
	Lo, Hi int
	Vals   []Const
	Pos    lex.Pos

	// OpCond: the port of is_chassis_resident; Neg says it is negated.
	Port string

	// OpTerm: OpenFlow field F must equal V under mask M (absolute bit
	// positions in F). Sym (may be nil) names it for printing.
	V, M bits.U128
}

var (
	exprTrue  = &Expr{Op: OpTrue}
	exprFalse = &Expr{Op: OpFalse}
)

// True and False return the constant expressions.
func True() *Expr  { return exprTrue }
func False() *Expr { return exprFalse }

func boolExpr(b bool) *Expr {
	if b {
		return exprTrue
	}
	return exprFalse
}

// String returns the canonical text of e. Parse(e.String()) yields an
// equivalent expression for every stage before Simplify; later stages print
// OpenFlow-level terms with their symbol's name where possible.
func (e *Expr) String() string {
	var sb strings.Builder
	e.format(&sb, 0)
	return sb.String()
}

// format writes e; parent is the enclosing operator (OpAnd/OpOr) or 0.
func (e *Expr) format(sb *strings.Builder, parent Op) {
	switch e.Op {
	case OpTrue:
		sb.WriteString("1")
	case OpFalse:
		sb.WriteString("0")
	case OpCond:
		if e.Neg {
			sb.WriteByte('!')
		}
		sb.WriteString("is_chassis_resident(")
		sb.WriteString(lex.Quote(e.Port))
		sb.WriteString(")")
	case OpCmp:
		e.formatCmp(sb)
	case OpTerm:
		e.formatTerm(sb)
	case OpAnd, OpOr:
		if s, ok := e.formatAsSet(); ok {
			sb.WriteString(s)
			return
		}
		paren := parent != 0
		if paren {
			sb.WriteByte('(')
		}
		sep := " && "
		if e.Op == OpOr {
			sep = " || "
		}
		for i, s := range e.Subs {
			if i > 0 {
				sb.WriteString(sep)
			}
			s.format(sb, e.Op)
		}
		if paren {
			sb.WriteByte(')')
		}
	default:
		sb.WriteString("?")
	}
}

// symRef prints the symbol with its slice.
func (e *Expr) symRef(sb *strings.Builder) {
	sb.WriteString(e.Sym.Name)
	if e.Sliced || e.Lo != 0 || (e.Sym.Kind != symtab.Predicate && e.Hi != e.Sym.Width-1) {
		sb.WriteByte('[')
		sb.WriteString(strconv.Itoa(e.Lo))
		if e.Hi != e.Lo {
			sb.WriteString("..")
			sb.WriteString(strconv.Itoa(e.Hi))
		}
		sb.WriteByte(']')
	}
}

// valueFormat is how constants compared with e's symbol (slice) print.
func (e *Expr) valueFormat() of.Format {
	w := e.Hi - e.Lo + 1
	if w == 1 {
		return of.FormatDecimal
	}
	f := e.Sym.Format
	if w != e.Sym.Width {
		if f == of.FormatDecimal {
			return f
		}
		return of.FormatHex
	}
	switch f {
	case of.FormatCTState, of.FormatFrag:
		return of.FormatHex
	}
	return f
}

func formatConst(sb *strings.Builder, c *Const, f of.Format, width int) {
	switch {
	case c.Ref != 0:
		sb.WriteByte(c.Ref)
		sb.WriteString(c.Str)
	case c.IsStr:
		sb.WriteString(lex.Quote(c.Str))
	case c.Masked:
		sb.WriteString(formatMasked(c.Value, c.Mask, f, width))
	default:
		sb.WriteString(of.FormatValue(f, c.Value))
	}
}

func formatMasked(v, m bits.U128, f of.Format, width int) string {
	switch f {
	case of.FormatIPv4, of.FormatIPv6:
		if n := of.PrefixLen(m, width); n >= 0 {
			return of.FormatValue(f, v) + "/" + strconv.Itoa(n)
		}
		return of.FormatValue(f, v) + "/" + of.FormatValue(f, m)
	case of.FormatMAC:
		return of.FormatValue(f, v) + "/" + of.FormatValue(f, m)
	}
	return v.Hex() + "/" + m.Hex()
}

func (e *Expr) formatCmp(sb *strings.Builder) {
	// Boolean shorthand: "ct.new", "!ct.new", "tcp".
	if len(e.Vals) == 1 && !e.Vals[0].Masked && e.Vals[0].Ref == 0 && !e.Vals[0].IsStr &&
		(e.Rel == Eq || e.Rel == Ne) && e.Hi == e.Lo && e.Vals[0].Value.Hi == 0 && e.Vals[0].Value.Lo <= 1 {
		if (e.Rel == Eq) != (e.Vals[0].Value.Lo == 1) {
			sb.WriteByte('!')
		}
		e.symRef(sb)
		return
	}
	e.symRef(sb)
	sb.WriteByte(' ')
	sb.WriteString(e.Rel.String())
	sb.WriteByte(' ')
	f, w := e.valueFormat(), e.Hi-e.Lo+1
	if len(e.Vals) == 1 {
		formatConst(sb, &e.Vals[0], f, w)
		return
	}
	sb.WriteByte('{')
	for i := range e.Vals {
		if i > 0 {
			sb.WriteString(", ")
		}
		formatConst(sb, &e.Vals[i], f, w)
	}
	sb.WriteByte('}')
}

// termView expresses an OpTerm in its symbol's coordinates: the symbol,
// bit range and value to print, or ok=false if the term reaches outside the
// symbol (then the OpenFlow field is printed instead).
func (e *Expr) termView() (name string, lo, hi int, v, m bits.U128, f of.Format, whole bool) {
	s := e.Sym
	if s != nil && s.OF.Field == e.F {
		rng := bits.Range(s.OF.Ofs, s.OF.Ofs+s.Width-1)
		if e.M.AndNot(rng).IsZero() {
			v = e.V.Rsh(uint(s.OF.Ofs))
			m = e.M.Rsh(uint(s.OF.Ofs))
			return s.Name, 0, s.Width - 1, v, m, s.Format, true
		}
	}
	return e.F.String(), 0, e.F.Width() - 1, e.V, e.M, e.F.Format(), false
}

func (e *Expr) formatTerm(sb *strings.Builder) {
	name, lo, hi, v, m, f, _ := e.termView()
	width := hi - lo + 1
	if f == of.FormatCTState || f == of.FormatFrag {
		f = of.FormatHex
	}
	full := bits.Ones(width)
	switch {
	case m == full:
		if width == 1 {
			if v.IsZero() {
				sb.WriteByte('!')
			}
			sb.WriteString(name)
			return
		}
		sb.WriteString(name)
		sb.WriteString(" == ")
		sb.WriteString(of.FormatValue(f, v))
	case (f == of.FormatIPv4 || f == of.FormatIPv6) && of.PrefixLen(m, width) >= 0:
		sb.WriteString(name)
		sb.WriteString(" == ")
		sb.WriteString(formatMasked(v, m, f, width))
	case f != of.FormatMAC && f != of.FormatIPv4 && f != of.FormatIPv6 && isContiguous(m):
		// A contiguous mask prints as a slice: reg0[4..7] == 0x3.
		a := m.TrailingZeros()
		b := m.BitLen() - 1
		sb.WriteString(name)
		sb.WriteByte('[')
		sb.WriteString(strconv.Itoa(a))
		if b != a {
			sb.WriteString("..")
			sb.WriteString(strconv.Itoa(b))
		}
		sb.WriteByte(']')
		x := v.Rsh(uint(a))
		if a == b {
			sb.WriteString(" == ")
			sb.WriteString(x.String())
			return
		}
		sb.WriteString(" == ")
		if f == of.FormatDecimal {
			sb.WriteString(x.String())
		} else {
			sb.WriteString(x.Hex())
		}
	default:
		sb.WriteString(name)
		sb.WriteString(" == ")
		sb.WriteString(formatMasked(v, m, f, width))
	}
}

func isContiguous(m bits.U128) bool {
	if m.IsZero() {
		return false
	}
	t := m.TrailingZeros()
	return m.Rsh(uint(t)).Add(bits.From64(1)).And(m.Rsh(uint(t))).IsZero()
}

// formatAsSet prints an OR of equalities (or an AND of inequalities) on the
// same symbol and slice as "sym == {a, b}" / "sym != {a, b}".
func (e *Expr) formatAsSet() (string, bool) {
	if len(e.Subs) < 2 {
		return "", false
	}
	want := Eq
	if e.Op == OpAnd {
		want = Ne
	}
	first := e.Subs[0]
	if first.Op != OpCmp || first.Rel != want {
		return "", false
	}
	vals := make([]Const, 0, len(e.Subs))
	for _, s := range e.Subs {
		if s.Op != OpCmp || s.Rel != want || s.Sym != first.Sym || s.Lo != first.Lo || s.Hi != first.Hi {
			return "", false
		}
		vals = append(vals, s.Vals...)
	}
	if first.Hi == first.Lo || first.Sym.Kind == symtab.Predicate {
		return "", false
	}
	c := *first
	c.Vals = vals
	var sb strings.Builder
	c.formatCmp(&sb)
	return sb.String(), true
}

// Error is a parse or compile error: the input, the position (line:column,
// 1-based, in characters) and a reason.
type Error struct {
	Input string
	Pos   lex.Pos
	Msg   string
}

// Error returns "line:col: reason".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

func errorf(input string, pos lex.Pos, format string, args ...any) *Error {
	return &Error{Input: input, Pos: pos, Msg: sprintf(format, args...)}
}

// And returns the conjunction of es (e.g. a logical flow's match and its
// actions' prerequisites), flattening and folding constants. The operands
// are not modified.
func And(es ...*Expr) *Expr { return combine(OpAnd, append([]*Expr(nil), es...)) }

// Or returns the disjunction of es. The operands are not modified.
func Or(es ...*Expr) *Expr { return combine(OpOr, append([]*Expr(nil), es...)) }
