package action

import (
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

// SelectChoice is one candidate of select: a value and its weight.
type SelectChoice struct {
	Value  int
	Weight int // 1..65535, default 100
}

// Select is `R = select(N1[=W1], N2[=W2], ...);`: store one of the values,
// chosen by a hash of the packet's 5-tuple, in R and go on to the next
// table (OVN's ECMP routes use it).
type Select struct {
	pos
	Dst     Field
	Choices []SelectChoice
}

func (a *Select) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Dst.String() + " = select(")
	for i, c := range a.Choices {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(c.Value))
		if c.Weight != 100 {
			sb.WriteString("=" + strconv.Itoa(c.Weight))
		}
	}
	sb.WriteString(");")
}
func (a *Select) String() string { return str(a) }

func (p *parser) selectAction(at pos, dst Field) (Action, error) {
	ft := p.c.Next()
	p.c.Next() // '('
	if dst.IsString {
		return nil, lex.Errorf(dst.Pos, "the result of select cannot go to the port-name field %s", dst)
	}
	a := &Select{pos: at, Dst: dst}
	for {
		vt := p.c.Peek()
		n, err := p.smallInt(65535, "select value")
		if err != nil {
			return nil, err
		}
		if !bits.From64(uint64(n)).FitsIn(dst.Width()) {
			return nil, lex.Errorf(vt.Pos, "select value %d does not fit in the %d-bit field %s", n, dst.Width(), dst)
		}
		c := SelectChoice{Value: n, Weight: 100}
		if p.c.Accept(lex.Assign) {
			wt := p.c.Peek()
			if c.Weight, err = p.smallInt(65535, "weight"); err != nil {
				return nil, err
			}
			if c.Weight == 0 {
				return nil, lex.Errorf(wt.Pos, "weight must be 1 to 65535")
			}
		}
		a.Choices = append(a.Choices, c)
		if len(a.Choices) > 1000 {
			return nil, lex.Errorf(vt.Pos, "too many select values (more than 1000)")
		}
		if !p.c.Accept(lex.Comma) {
			break
		}
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	if len(a.Choices) < 2 {
		return nil, lex.Errorf(ft.Pos, "select needs at least two values")
	}
	return a, p.expectSemi()
}

// selectGroup encodes select as a select group hashing the 5-tuple; each
// bucket stores its value and resubmits to the next table.
func (e *encoder) selectGroup(a *Select, out of.Actions) (of.Actions, error) {
	t, err := e.nextTable(a.P)
	if err != nil {
		return nil, err
	}
	if e.p.AllocGroup == nil {
		return nil, lex.Errorf(a.P, "select needs a group allocator")
	}
	g := of.Group{Type: "select", SelectionMethod: "dp_hash"}
	for i, c := range a.Choices {
		g.Buckets = append(g.Buckets, of.Bucket{ID: uint32(i), Weight: c.Weight, Actions: of.Actions{
			of.SetField{Dst: a.Dst.Sub, Value: bits.From64(uint64(c.Value))}, of.Resubmit{Table: t},
		}})
	}
	id, err := e.p.AllocGroup(g)
	if err != nil {
		return nil, lex.Errorf(a.P, "select: allocating a group: %v", err)
	}
	g.ID = id
	e.groups = append(e.groups, g)
	return append(out, of.GroupAction{ID: id}), nil
}
