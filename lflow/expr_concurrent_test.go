package lflow_test

import (
	"sync"
	"testing"

	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/symtab"
)

// TestCompilerConcurrent: one Compiler shared by goroutines gives the same
// results as a fresh one used serially (run with -race).
func TestCompilerConcurrent(t *testing.T) {
	matches := aclMatches(240)
	want := make([]string, len(matches))
	serial := expr.NewCompiler(symtab.Default())
	for i, m := range matches {
		res, err := serial.CompileString(m, aclOptions(1))
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.String()
	}
	shared := expr.NewCompiler(symtab.Default())
	var wg sync.WaitGroup
	errs := make(chan string, len(matches)*4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := range matches {
				i := (k + g*60) % len(matches)
				res, err := shared.CompileString(matches[i], aclOptions(1))
				if err != nil {
					errs <- err.Error()
					continue
				}
				if res.String() != want[i] {
					errs <- matches[i] + ": concurrent result differs:\n" + res.String() + "want:\n" + want[i]
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
