package expr

import (
	"encoding/binary"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// CMatch is one OpenFlow match produced by Compile. If Conj is empty, a
// packet matching Match matches the expression (the flow carries the logical
// flow's actions). Otherwise the flow's actions are exactly Conj: the packet
// matches the expression if, for some conjunction id, it matches one flow of
// every dimension 1..n (then the "conj_id=id" flow fires).
type CMatch struct {
	Match of.Match
	Conj  []of.Conjunction
}

// Result is a compiled expression.
type Result struct {
	Matches []CMatch
	// Conjs lists the conjunctions used; each needs a "conj_id=ID" flow.
	Conjs []Conj
}

// Conj is one conjunctive match: its id and the part of the match common
// to all its dimension flows. The conj_id flow matches Match as well
// (redundant for the packet, but it gives OpenFlow the prerequisites that
// actions like ct() need, e.g. eth_type).
type Conj struct {
	ID    uint32
	Match of.Match
}

// NConj returns the number of conjunction ids used.
func (r *Result) NConj() int { return len(r.Conjs) }

// Compile parses nothing: it annotates, resolves, simplifies and normalizes
// e and converts it to OpenFlow matches. Conjunctive matches are used for
// clauses that AND two or more sets of alternatives on different fields
// (e.g. ip4.src == {a, b} && tcp.dst == {80, 443}), with ids from
// opts.ConjIDBase upwards. A result with no matches means the expression
// can never match (e.g. only unknown ports).
func Compile(e *Expr, st *symtab.Table, opts *Options) (*Result, error) {
	return NewCompiler(st).Compile(e, opts)
}

// Compile is the package-level Compile using c's caches.
func (c *Compiler) Compile(e *Expr, opts *Options) (*Result, error) {
	return c.compile(e, opts, "")
}

// CompileString parses and compiles s (errors carry s as Input).
func (c *Compiler) CompileString(s string, opts *Options) (*Result, error) {
	e, err := Parse(s, c.st)
	if err != nil {
		return nil, err
	}
	return c.compile(e, opts, s)
}

func (c *Compiler) compile(e *Expr, opts *Options, input string) (*Result, error) {
	if opts == nil {
		opts = &Options{}
	}
	a, err := c.annotate(e, 0)
	if err != nil {
		return nil, withInput(err, input)
	}
	r, err := c.resolve(a, opts, input)
	if err != nil {
		return nil, withInput(err, input)
	}
	cs, _, err := normalClauses(r, false, c)
	if err != nil {
		return nil, withInput(err, input)
	}
	for i := range cs {
		if len(cs[i].dims) > maxConjDims {
			return nil, withInput(errTooBig, input)
		}
	}
	return toMatches(cs, opts.ConjIDBase), nil
}

func withInput(err error, input string) error {
	if e, ok := err.(*Error); ok && e.Input == "" {
		c := *e
		c.Input = input
		return &c
	}
	return err
}

// maxConjDims is OpenFlow's limit on the dimensions of a conjunctive match.
const maxConjDims = 64

// matchKey is a compact identity for deduplicating matches.
func matchKey(m *of.Match, buf []byte) []byte {
	buf = buf[:0]
	for _, mf := range m.Fields() {
		buf = append(buf, byte(mf.Field))
		buf = binary.BigEndian.AppendUint64(buf, mf.Value.Hi)
		buf = binary.BigEndian.AppendUint64(buf, mf.Value.Lo)
		buf = binary.BigEndian.AppendUint64(buf, mf.Mask.Hi)
		buf = binary.BigEndian.AppendUint64(buf, mf.Mask.Lo)
	}
	return buf
}

func toMatches(cs []clause, base uint32) *Result {
	n := 0
	for i := range cs {
		k := 1
		for _, d := range cs[i].dims {
			if len(cs[i].dims) == 1 {
				k = len(d.alts)
			} else {
				k += len(d.alts)
			}
		}
		n += k
	}
	res := &Result{Matches: make([]CMatch, 0, n)}
	var index map[string]int // match key → index in res.Matches, once there are many
	var kb []byte
	const linear = 16
	add := func(m of.Match, conj *of.Conjunction) {
		i := -1
		if index == nil {
			for j := range res.Matches {
				if res.Matches[j].Match.Equal(&m) {
					i = j
					break
				}
			}
			if i < 0 && len(res.Matches) >= linear {
				index = make(map[string]int, 2*linear)
				for j := range res.Matches {
					kb = matchKey(&res.Matches[j].Match, kb)
					index[string(kb)] = j
				}
			}
		} else {
			kb = matchKey(&m, kb)
			if j, ok := index[string(kb)]; ok {
				i = j
			}
		}
		if i >= 0 {
			cm := &res.Matches[i]
			switch {
			case len(cm.Conj) == 0:
				// An ordinary flow already accepts these packets.
			case conj == nil:
				cm.Conj = nil
			default:
				cm.Conj = append(cm.Conj, *conj)
			}
			return
		}
		if index != nil {
			kb = matchKey(&m, kb)
			index[string(kb)] = len(res.Matches)
		}
		cm := CMatch{Match: m}
		if conj != nil {
			cm.Conj = []of.Conjunction{*conj}
		}
		res.Matches = append(res.Matches, cm)
	}
	for i := range cs {
		c := &cs[i]
		switch len(c.dims) {
		case 0:
			add(c.fixed, nil)
		case 1:
			d := &c.dims[0]
			for _, a := range d.alts {
				m := c.fixed.Clone()
				if m.Set(d.f, a.v, a.m) {
					add(m, nil)
				}
			}
		default:
			id := base + uint32(len(res.Conjs))
			res.Conjs = append(res.Conjs, Conj{ID: id, Match: c.fixed})
			n := uint8(len(c.dims))
			for k := range c.dims {
				d := &c.dims[k]
				conj := of.Conjunction{ID: id, K: uint8(k + 1), N: n}
				for _, a := range d.alts {
					m := c.fixed.Clone()
					if m.Set(d.f, a.v, a.m) {
						add(m, &conj)
					}
				}
			}
		}
	}
	return res
}

// Flows turns a Result into OpenFlow flows for one logical flow: every
// match is combined with base (e.g. metadata=datapath key); ordinary
// matches get actions, conjunctive ones their conjunction actions, and one
// "conj_id=N" flow per conjunction id gets actions.
func (r *Result) Flows(table uint8, priority uint16, cookie uint64, base of.Match, actions of.Actions) []of.Flow {
	out := make([]of.Flow, 0, len(r.Matches)+len(r.Conjs))
	for i := range r.Matches {
		cm := &r.Matches[i]
		m := cm.Match.Clone()
		ok := true
		for _, mf := range base.Fields() {
			if !m.Set(mf.Field, mf.Value, mf.Mask) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f := of.Flow{Table: table, Priority: priority, Cookie: cookie, Match: m, Actions: actions}
		if len(cm.Conj) > 0 {
			acts := make(of.Actions, len(cm.Conj))
			for j := range cm.Conj {
				acts[j] = cm.Conj[j]
			}
			f.Actions = acts
		}
		out = append(out, f)
	}
	for _, cj := range r.Conjs {
		m := cj.Match.Clone()
		ok := m.Set(of.ConjID, bits.From64(uint64(cj.ID)), bits.Ones(32))
		for _, mf := range base.Fields() {
			ok = ok && m.Set(mf.Field, mf.Value, mf.Mask)
		}
		if ok {
			out = append(out, of.Flow{Table: table, Priority: priority, Cookie: cookie, Match: m, Actions: actions})
		}
	}
	return out
}

// String prints the matches one per line, conjunctive ones followed by
// their conjunction actions, e.g. "ip,ip_src=10.0.0.1 => conjunction(1,1/2)".
func (r *Result) String() string {
	var sb strings.Builder
	for i := range r.Matches {
		cm := &r.Matches[i]
		if cm.Match.Len() == 0 {
			sb.WriteString("(any)")
		} else {
			cm.Match.AppendTo(&sb)
		}
		if len(cm.Conj) > 0 {
			sb.WriteString(" => ")
			for j, c := range cm.Conj {
				if j > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(c.String())
			}
		}
		sb.WriteByte('\n')
	}
	for _, cj := range r.Conjs {
		m := cj.Match.Clone()
		m.Set(of.ConjID, bits.From64(uint64(cj.ID)), bits.Ones(32))
		m.AppendTo(&sb)
		sb.WriteByte('\n')
	}
	if len(r.Matches) == 0 {
		sb.WriteString("(no flows)\n")
	}
	return sb.String()
}

// CompileMatch is the one-call path for tools (govnctl lflow compile): it
// parses match against the default symbol table with the given port keys
// and address sets and returns the flows in add-flows syntax (table,
// priority and actions as given; conj ids from 1).
func CompileMatch(match string, ports map[string]uint32, addrSets map[string][]string, portGroups map[string][]string,
	table uint8, priority uint16, actions of.Actions) (string, error) {
	c := NewCompiler(symtab.Default())
	opts := &Options{
		Ports: func(n string) (uint32, bool) { k, ok := ports[n]; return k, ok },
		AddressSets: func(n string) ([]string, bool) {
			a, ok := addrSets[n]
			return a, ok
		},
		PortGroups: func(n string) ([]string, bool) { p, ok := portGroups[n]; return p, ok },
		ConjIDBase: 1,
	}
	res, err := c.CompileString(match, opts)
	if err != nil {
		return "", err
	}
	return of.FlowsString(res.Flows(table, priority, 0, of.Match{}, actions)), nil
}

// WithConjBase returns a copy of r whose conjunction ids start at base
// instead (for a controller that caches results and reassigns ids).
func (r *Result) WithConjBase(base uint32) *Result {
	if len(r.Conjs) == 0 {
		return r
	}
	old := r.Conjs[0].ID
	out := &Result{Matches: make([]CMatch, len(r.Matches)), Conjs: make([]Conj, len(r.Conjs))}
	for i, cj := range r.Conjs {
		out.Conjs[i] = Conj{ID: cj.ID - old + base, Match: cj.Match}
	}
	for i, cm := range r.Matches {
		out.Matches[i] = CMatch{Match: cm.Match}
		if len(cm.Conj) > 0 {
			out.Matches[i].Conj = make([]of.Conjunction, len(cm.Conj))
			for j, c := range cm.Conj {
				c.ID = c.ID - old + base
				out.Matches[i].Conj[j] = c
			}
		}
	}
	return out
}
