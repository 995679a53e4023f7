package server

import (
	"strings"

	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/symtab"
)

// CheckMatch parses an ACL match with the logical-flow parser against OVN's
// symbol table and annotates it (expanding predicates and prerequisites), so
// unknown fields, type errors and syntax errors are caught with their
// position ("1:14: ...").
func CheckMatch(match string) error {
	e, err := expr.Parse(match, symtab.Default())
	if err != nil {
		return err
	}
	_, err = expr.Annotate(e, symtab.Default())
	return err
}

// matchRefs returns the address sets ($name) and port groups (@name) a match
// refers to. The match must already have been checked.
func matchRefs(match string) (sets, groups []string) {
	toks, err := lex.Tokenize(match)
	if err != nil {
		return nil, nil
	}
	for _, t := range toks {
		switch t.Kind {
		case lex.Macro:
			sets = append(sets, t.Str)
		case lex.PortGroup:
			groups = append(groups, t.Str)
		}
	}
	return sets, groups
}

// refersTo reports whether match names address set (sigil '$') or port
// group ('@') name.
func refersTo(match string, sigil byte, name string) bool {
	if !strings.Contains(match, string(sigil)+name) {
		return false
	}
	sets, groups := matchRefs(match)
	list := sets
	if sigil == '@' {
		list = groups
	}
	for _, n := range list {
		if n == name {
			return true
		}
	}
	return false
}
