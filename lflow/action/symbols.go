package action

import (
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Parse parses an action string against symbol table st. Errors look like
// "1:14: reason" (line:column of the offending token).
func Parse(src string, st *symtab.Table) (*Parsed, error) {
	return parseWith(src, tableResolver{st})
}

type tableResolver struct{ t *symtab.Table }

func (r tableResolver) field(name string) (fieldInfo, string) {
	s, ok := r.t.Lookup(name)
	if !ok {
		return fieldInfo{}, "unknown field `" + name + "`"
	}
	if s.Kind == symtab.Predicate {
		return fieldInfo{Predicate: true}, ""
	}
	info := fieldInfo{Sub: s.OF, IsString: s.String, ReadOnly: !s.Writable}
	for x := s; x != nil; x = x.Parent {
		if x.Prereqs != "" {
			info.Prereqs = append(info.Prereqs, x.Prereqs)
		}
	}
	return info, ""
}

func (r tableResolver) bits(name string) (of.Subfield, bool) {
	s, ok := r.t.Lookup(name)
	if !ok || s.Kind == symtab.Predicate {
		return of.Subfield{}, false
	}
	return s.OF, true
}
