package expr

import (
	"testing"

	"github.com/govn/govn/lflow/symtab"
)

// BenchmarkParse measures Parse alone on a typical ACL match.
func BenchmarkParse(b *testing.B) {
	st := symtab.Default()
	s := `outport == @pg_web && ip4 && ip4.src == $as_clients && tcp.dst == {80, 443}`
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(s, st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileRange measures the whole pipeline on a range ACL.
func BenchmarkCompileRange(b *testing.B) {
	c := NewCompiler(symtab.Default())
	opts := goldenOpts()
	s := `inport == "lsp123" && ip4.dst == 10.1.2.0/24 && 1024 <= tcp.dst <= 2048`
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.CompileString(s, opts); err != nil {
			b.Fatal(err)
		}
	}
}
