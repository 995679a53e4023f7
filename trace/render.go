package trace

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Format is an output form of a trace.
type Format string

// Output forms, as ovn-trace's --detailed, --summary and --minimal.
const (
	// Detailed: per pipeline section, each matched logical flow (table,
	// stage, match, priority, uuid, northbound object) and its actions.
	// Flows with match 1 and action next; are omitted, as ovn-trace does.
	Detailed Format = "detailed"
	// Summary: the executed actions, nested by pipeline and
	// transformation, without the flows.
	Summary Format = "summary"
	// Minimal: only changes to packet data (with constant operands) and
	// deliveries to logical ports.
	Minimal Format = "minimal"
)

// Render writes tr in form f.
func Render(w io.Writer, tr *Trace, f Format) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n", tr.Packet)
	switch f {
	case Detailed, "":
		r := &detailed{sb: &sb}
		r.section(tr.Root, 0)
		if out := outcomeLines(tr); out != "" {
			sb.WriteString("\n" + out)
		}
	case Summary:
		summary(&sb, tr.Root, 0)
	case Minimal:
		for _, l := range minimal(tr.Root) {
			sb.WriteString(l)
			sb.WriteByte('\n')
		}
	default:
		return fmt.Errorf("unknown trace output form %q (want detailed, summary or minimal)", f)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// String renders tr in form f.
func (tr *Trace) String(f Format) string {
	var sb strings.Builder
	if err := Render(&sb, tr, f); err != nil {
		return err.Error()
	}
	return sb.String()
}

// outcomeLines lists the outcomes, one per line.
func outcomeLines(tr *Trace) string {
	var sb strings.Builder
	for i := range tr.Outcomes {
		o := &tr.Outcomes[i]
		sb.WriteString("* ")
		sb.WriteString(o.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

type detailed struct{ sb *strings.Builder }

func (r *detailed) line(ind int, s string) {
	r.sb.WriteString(strings.Repeat(" ", ind))
	r.sb.WriteString(s)
	r.sb.WriteByte('\n')
}

// section prints a pipeline or transformation header and what is inside.
func (r *detailed) section(n *Node, ind int) {
	r.sb.WriteByte('\n')
	r.line(ind, n.Text)
	r.line(ind, strings.Repeat("-", utf8.RuneCountInString(n.Text)))
	for _, c := range n.Children {
		r.inSection(c, ind)
	}
}

func (r *detailed) inSection(c *Node, ind int) {
	switch c.Type {
	case NodeTable:
		if c.Flow != nil && c.Flow.Trivial {
			for _, a := range c.Children {
				for _, ch := range a.Children {
					r.child(ch, ind+4, ind, a.Tail)
				}
			}
			return
		}
		r.line(ind, c.Text)
		for _, a := range c.Children {
			r.action(a, ind+4, ind)
		}
	case NodePipeline, NodeTransform:
		r.section(c, ind+4)
	case NodeAction, NodeModify, NodeLog:
		r.action(c, ind+4, ind)
	default:
		r.line(ind+4, c.Text)
	}
}

func (r *detailed) action(a *Node, ind, secInd int) {
	r.line(ind, a.Text)
	for _, ch := range a.Children {
		r.child(ch, ind, secInd, a.Tail)
	}
}

// child prints what an action led to: sections of a tail action at the
// level of the enclosing section, others nested under the action.
func (r *detailed) child(ch *Node, ind, secInd int, tail bool) {
	switch ch.Type {
	case NodePipeline, NodeTransform:
		if tail {
			r.section(ch, secInd)
		} else {
			r.section(ch, ind)
		}
	case NodeTable:
		r.inSection(ch, ind)
	case NodeAction, NodeModify, NodeLog:
		r.action(ch, ind, secInd)
	default:
		r.line(ind, ch.Text)
	}
}

func summary(sb *strings.Builder, n *Node, ind int) {
	pad := strings.Repeat(" ", ind)
	switch n.Type {
	case NodePipeline, NodeTransform:
		sb.WriteString(pad + n.Text + " {\n")
		for _, c := range n.Children {
			summary(sb, c, ind+4)
		}
		sb.WriteString(pad + "};\n")
	case NodeTable:
		if n.Flow != nil && n.Flow.Trivial {
			for _, a := range n.Children {
				for _, c := range a.Children {
					summary(sb, c, ind)
				}
			}
			return
		}
		for _, c := range n.Children {
			summary(sb, c, ind)
		}
	case NodeAction, NodeModify, NodeLog:
		sb.WriteString(pad + n.Text + "\n")
		for _, c := range n.Children {
			summary(sb, c, ind)
		}
	default:
		sb.WriteString(pad + n.Text + ";\n")
	}
}

// minimal returns the minimal-form lines of n, unindented at its level.
func minimal(n *Node) []string {
	var out []string
	switch n.Type {
	case NodeModify, NodeLog:
		out = append(out, strings.Split(n.Minimal, "\n")...)
	case NodeOutput:
		out = append(out, fmt.Sprintf("output(%s);", quoteOr(n.Outcome.Port)))
	case NodeTransform:
		if n.Kind == "multicast" {
			break
		}
		var inner []string
		for _, c := range n.Children {
			inner = append(inner, minimal(c)...)
		}
		if len(inner) == 0 {
			return []string{n.Text + ";"}
		}
		out = append(out, n.Text+" {")
		for _, l := range inner {
			out = append(out, "    "+l)
		}
		return append(out, "};")
	}
	for _, c := range n.Children {
		out = append(out, minimal(c)...)
	}
	return out
}
