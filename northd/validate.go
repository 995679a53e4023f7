package northd

import (
	"fmt"
	"sync"

	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/symtab"
)

// Validator checks logical-flow texts. northd never writes a flow whose
// match or actions it rejects.
type Validator interface {
	Match(s string) error
	Actions(s string) error
}

// LflowValidator validates with govn's lflow parser (lflow/expr,
// lflow/action) against OVN's symbol table. Results are cached by text, so
// a full recompute re-parses only texts it has not seen; it is safe for
// concurrent use.
type LflowValidator struct {
	st *symtab.Table
	c  *expr.Compiler

	mu      sync.Mutex
	matches map[string]error
	actions map[string]error
}

// NewLflowValidator returns a validator over symtab.Default().
func NewLflowValidator() *LflowValidator {
	st := symtab.Default()
	return &LflowValidator{st: st, c: expr.NewCompiler(st), matches: map[string]error{}, actions: map[string]error{}}
}

// maxCache bounds the caches; past it they are cleared (texts of deleted
// rows would otherwise accumulate forever).
const maxCache = 1 << 18

// Match parses and annotates a match expression ($sets and @groups are
// checked by reference elsewhere, not expanded).
func (v *LflowValidator) Match(s string) error {
	v.mu.Lock()
	err, ok := v.matches[s]
	v.mu.Unlock()
	if ok {
		return err
	}
	e, err := expr.Parse(s, v.st)
	if err == nil {
		_, err = v.c.Annotate(e)
	}
	v.mu.Lock()
	if len(v.matches) > maxCache {
		v.matches = map[string]error{}
	}
	v.matches[s] = err
	v.mu.Unlock()
	return err
}

// Actions parses an action list.
func (v *LflowValidator) Actions(s string) error {
	v.mu.Lock()
	err, ok := v.actions[s]
	v.mu.Unlock()
	if ok {
		return err
	}
	_, err = action.Parse(s, v.st)
	v.mu.Lock()
	if len(v.actions) > maxCache {
		v.actions = map[string]error{}
	}
	v.actions[s] = err
	v.mu.Unlock()
	return err
}

// References returns the address sets ($name) and port groups (@name) a
// match refers to.
func References(match string) (sets, groups []string, err error) {
	toks, err := lex.Tokenize(match)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range toks {
		switch t.Kind {
		case lex.Macro:
			sets = append(sets, t.Str)
		case lex.PortGroup:
			groups = append(groups, t.Str)
		}
	}
	return sets, groups, nil
}

// flowError is a generated flow the validator rejected: a northd bug,
// reported and not written.
type flowError struct {
	flow *Flow
	err  error
}

func (e *flowError) Error() string {
	return fmt.Sprintf("generated flow %s rejected: %v", e.flow, e.err)
}
