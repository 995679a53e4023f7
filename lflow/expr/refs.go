package expr

// Refs lists what e refers to outside itself, so a controller knows which
// logical flows to recompile when an address set, port group, port binding
// or chassis residence changes. Each list is deduplicated, in first-use
// order. Call it on a parsed (not yet resolved) expression.
type Refs struct {
	AddressSets []string // $name
	PortGroups  []string // @name
	Ports       []string // "name" compared with inport/outport
	Resident    []string // is_chassis_resident("name")
}

// Refs returns the external references of e.
func (e *Expr) Refs() Refs {
	var r Refs
	e.refs(&r)
	return r
}

func addUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func (e *Expr) refs(r *Refs) {
	switch e.Op {
	case OpAnd, OpOr:
		for _, s := range e.Subs {
			s.refs(r)
		}
	case OpCond:
		r.Resident = addUnique(r.Resident, e.Port)
	case OpCmp:
		for i := range e.Vals {
			v := &e.Vals[i]
			switch {
			case v.Ref == '$':
				r.AddressSets = addUnique(r.AddressSets, v.Str)
			case v.Ref == '@':
				r.PortGroups = addUnique(r.PortGroups, v.Str)
			case v.IsStr:
				r.Ports = addUnique(r.Ports, v.Str)
			}
		}
	}
}
