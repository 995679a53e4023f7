package trace

import (
	"errors"
	"fmt"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// MicroflowError is a bad microflow: the input, the position (line:column,
// 1-based) and the reason.
type MicroflowError struct {
	Input string
	Pos   lex.Pos
	Msg   string
}

func (e *MicroflowError) Error() string { return "microflow " + e.Pos.String() + ": " + e.Msg }

// Caret returns the input line the error is on and a line with a caret
// under the error's column, for terminals.
func (e *MicroflowError) Caret() string {
	lines := strings.Split(e.Input, "\n")
	if e.Pos.Line < 1 || e.Pos.Line > len(lines) {
		return ""
	}
	l := lines[e.Pos.Line-1]
	col := e.Pos.Col - 1
	if col < 0 {
		col = 0
	}
	pad := []rune(l)
	if col > len(pad) {
		col = len(pad)
	}
	var sb strings.Builder
	for _, r := range pad[:col] {
		if r == '\t' {
			sb.WriteByte('\t')
		} else {
			sb.WriteByte(' ')
		}
	}
	return l + "\n" + sb.String() + "^"
}

func mfErr(input string, pos lex.Pos, format string, args ...any) *MicroflowError {
	return &MicroflowError{Input: input, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// DefaultTTL is the ip.ttl of a microflow that does not give one (ovn-trace
// leaves it 0, which a router's ip.ttl-- treats as expired).
const DefaultTTL = 64

// parseMicroflow turns a microflow (a conjunction of equalities in the
// match language) into the packet entering datapath d. Prerequisites are
// implied (tcp.dst == 80 makes the packet TCP); where they leave a choice
// (IPv4 or IPv6) IPv4 is taken. Fields not given are zero, except ip.ttl
// (DefaultTTL) and the datapath (metadata).
func (t *Tracer) parseMicroflow(d *dpInfo, src string) (of.Packet, []string, error) {
	var p of.Packet
	if strings.TrimSpace(src) == "" {
		return p, nil, mfErr(src, lex.Pos{Line: 1, Col: 1}, "empty microflow: give at least inport, e.g. inport == \"p1\" && eth.dst == 00:00:00:00:00:02")
	}
	e, err := expr.Parse(src, t.st)
	if err != nil {
		var ee *expr.Error
		var le *lex.Error
		switch {
		case errors.As(err, &ee):
			return p, nil, mfErr(src, ee.Pos, "%s", ee.Msg)
		case errors.As(err, &le):
			return p, nil, mfErr(src, le.Pos, "%s", le.Msg)
		}
		return p, nil, mfErr(src, lex.Pos{Line: 1, Col: 1}, "%v", err)
	}
	if err := t.checkConjunction(d, src, e); err != nil {
		return p, nil, err
	}
	a, err := t.comp.Annotate(e)
	if err != nil {
		return p, nil, t.wrapExprErr(src, err)
	}
	r, err := t.comp.Resolve(a, t.exprOptions(d))
	if err != nil {
		return p, nil, t.wrapExprErr(src, err)
	}
	s, err := expr.Simplify(r)
	if err != nil {
		return p, nil, t.wrapExprErr(src, err)
	}
	n, err := expr.Normalize(s)
	if err != nil {
		return p, nil, t.wrapExprErr(src, err)
	}
	var warns []string
	clause := n
	switch n.Op {
	case expr.OpFalse:
		return p, nil, mfErr(src, lex.Pos{Line: 1, Col: 1}, "constraints are contradictory (no packet satisfies %s)", e)
	case expr.OpOr:
		clause = n.Subs[0]
		for _, c := range n.Subs {
			if hasTerm(c, of.EthType, 0x800) {
				clause = c
				break
			}
		}
		warns = append(warns, "microflow leaves the packet type open: tracing "+describeClause(clause))
	}
	var terms []*expr.Expr
	switch clause.Op {
	case expr.OpTerm:
		terms = []*expr.Expr{clause}
	case expr.OpAnd:
		for _, s := range clause.Subs {
			if s.Op == expr.OpOr { // a choice among values of one field: take the first
				terms = append(terms, s.Subs[0])
				continue
			}
			terms = append(terms, s)
		}
	}
	ttl := false
	for _, tm := range terms {
		if tm.Op != expr.OpTerm {
			continue
		}
		p.SetMasked(tm.F, tm.V, tm.M)
		if tm.F == of.IPTTL {
			ttl = true
		}
	}
	p.Set(symtab.DatapathField, bits.From64(uint64(d.Key)))
	if et := p.Get(of.EthType).Lo; (et == 0x800 || et == 0x86dd) && !ttl {
		p.Set(of.IPTTL, bits.From64(DefaultTTL))
	}
	if p.Get(symtab.InportField).IsZero() {
		warns = append(warns, "microflow does not give inport: the packet enters with no logical input port")
	}
	return p, warns, nil
}

func (t *Tracer) wrapExprErr(src string, err error) error {
	var ee *expr.Error
	if errors.As(err, &ee) && ee.Input == "" {
		return mfErr(src, ee.Pos, "%s", ee.Msg)
	}
	return mfErr(src, lex.Pos{Line: 1, Col: 1}, "%v", err)
}

func hasTerm(c *expr.Expr, f of.Field, v uint64) bool {
	if c.Op == expr.OpTerm {
		return c.F == f && c.V == bits.From64(v)
	}
	if c.Op == expr.OpAnd {
		for _, s := range c.Subs {
			if s.Op == expr.OpTerm && s.F == f && s.V == bits.From64(v) {
				return true
			}
		}
	}
	return false
}

func describeClause(c *expr.Expr) string {
	switch {
	case hasTerm(c, of.EthType, 0x800):
		return "IPv4 (add ip6 to the microflow for IPv6)"
	case hasTerm(c, of.EthType, 0x86dd):
		return "IPv6"
	}
	return c.String()
}

// checkConjunction accepts only what describes one packet: `&&` of
// `field == constant` (or a Boolean predicate such as ip4 or tcp), with
// known port names. Errors point at the offending part.
func (t *Tracer) checkConjunction(d *dpInfo, src string, e *expr.Expr) error {
	switch e.Op {
	case expr.OpTrue:
		return nil
	case expr.OpFalse:
		return mfErr(src, lex.Pos{Line: 1, Col: 1}, "constraints are contradictory")
	case expr.OpAnd:
		for _, s := range e.Subs {
			if err := t.checkConjunction(d, src, s); err != nil {
				return err
			}
		}
		return nil
	case expr.OpOr:
		return mfErr(src, orPos(src), "a microflow describes one packet: use `&&` of `field == value`, not `||`")
	case expr.OpCond:
		return mfErr(src, e.Pos, "is_chassis_resident() cannot describe a packet")
	case expr.OpCmp:
		if e.Sym.Kind == symtab.Predicate || e.Sym.IsBoolean() {
			return nil
		}
		if e.Rel != expr.Eq {
			return mfErr(src, e.Pos, "%s %s ... does not give %s one value: use ==", e.Sym.Name, e.Rel, e.Sym.Name)
		}
		if len(e.Vals) != 1 {
			return mfErr(src, e.Pos, "%s == {...} gives a set: give one value", e.Sym.Name)
		}
		v := e.Vals[0]
		if v.Ref != 0 {
			return mfErr(src, v.Pos, "%c%s is a set: give one value", v.Ref, v.Str)
		}
		if v.IsStr {
			pi, ok := d.ports[v.Str]
			if !ok {
				return mfErr(src, v.Pos, "unknown logical port %s in datapath %s", lex.Quote(v.Str), d.label())
			}
			if e.Sym.Name == "inport" && pi.group != nil {
				return mfErr(src, v.Pos, "%s is a multicast group, not an input port", lex.Quote(v.Str))
			}
		}
		return nil
	}
	return nil
}

// orPos finds the first `||` in src (for the error position).
func orPos(src string) lex.Pos {
	toks, err := lex.Tokenize(src)
	if err == nil {
		for _, tk := range toks {
			if tk.Kind == lex.Or {
				return tk.Pos
			}
		}
	}
	return lex.Pos{Line: 1, Col: 1}
}
