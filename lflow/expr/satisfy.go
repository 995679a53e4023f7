package expr

import "github.com/govn/govn/lflow/of"

// Satisfy returns a packet that matches e (all fields not constrained by e
// are zero), for turning a trace "microflow" such as
// `inport == "p1" && eth.src == 00:00:00:00:00:01 && ip4.dst == 10.0.0.2`
// into a packet. It fails if no packet matches e.
func (c *Compiler) Satisfy(e *Expr, opts *Options) (of.Packet, error) {
	var p of.Packet
	if opts == nil {
		opts = &Options{}
	}
	a, err := c.annotate(e, 0)
	if err != nil {
		return p, err
	}
	r, err := c.resolve(a, opts, "")
	if err != nil {
		return p, err
	}
	cs, _, err := normalClauses(r, false, c)
	if err != nil {
		return p, err
	}
	for i := range cs {
		cl := &cs[i]
		m := cl.fixed.Clone()
		ok := true
		for _, d := range cl.dims {
			found := false
			for _, alt := range d.alts {
				t := m.Clone()
				if t.Set(d.f, alt.v, alt.m) {
					m, found = t, true
					break
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for _, mf := range m.Fields() {
			p.SetMasked(mf.Field, mf.Value, mf.Mask)
		}
		return p, nil
	}
	return p, &Error{Pos: e.Pos, Msg: "no packet matches " + e.String()}
}
