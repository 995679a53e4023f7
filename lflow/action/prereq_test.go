package action_test

import (
	"testing"

	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/symtab"
)

// TestPrereqsAreExpressions checks that every prerequisite the golden
// inputs produce is an expression lflow/expr parses and annotates against
// the same symbol table, so callers can AND it into the match.
func TestPrereqsAreExpressions(t *testing.T) {
	st := symtab.Default()
	c := expr.NewCompiler(st)
	seen := map[string]bool{}
	for _, in := range goldenInputs(t) {
		src, _ := testParams(in)
		parsed, err := action.Parse(src, st)
		if err != nil {
			continue
		}
		for _, p := range parsed.Prereqs {
			if seen[p] {
				continue
			}
			seen[p] = true
			e, err := expr.Parse(p, st)
			if err == nil {
				_, err = c.Annotate(e)
			}
			if err != nil {
				t.Errorf("%s: prerequisite %q: %v", src, p, err)
			}
		}
	}
	if len(seen) < 8 {
		t.Errorf("only %d distinct prerequisites seen: %v", len(seen), seen)
	}
}
