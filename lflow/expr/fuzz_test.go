package expr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// FuzzParseExpr: no input may panic any stage; every accepted input's
// canonical form parses back to itself and means the same on a packet.
func FuzzParseExpr(f *testing.F) {
	for _, name := range []string{"expr-canonical.txt", "expr-flows.txt", "expr-errors.txt"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
				f.Add(line)
			}
		}
	}
	st := symtab.Default()
	c := NewCompiler(st)
	opts := goldenOpts()
	var p of.Packet
	p.Set(of.EthType, u64(0x800))
	p.Set(of.IPProto, u64(6))
	p.Set(of.TCPDst, u64(80))
	p.Set(of.IPSrc, u64(0x0a000001))
	p.Set(of.Reg14, u64(1))
	f.Fuzz(func(t *testing.T, s string) {
		if os.Getenv("FUZZ_SLOW") != "" {
			t0 := time.Now()
			defer func() {
				if d := time.Since(t0); d > 3*time.Second {
					t.Fatalf("%q took %v", s, d)
				}
			}()
		}
		e, err := Parse(s, st)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%q: error %T is not *expr.Error", s, err)
			}
			return
		}
		canon := e.String()
		e2, err := Parse(canon, st)
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", s, canon, err)
		}
		if e2.String() != canon {
			t.Fatalf("%q: canonical form unstable: %q → %q", s, canon, e2.String())
		}
		v1, err1 := c.Evaluate(e, &p, opts)
		v2, err2 := c.Evaluate(e2, &p, opts)
		if (err1 == nil) != (err2 == nil) || v1 != v2 {
			t.Fatalf("%q: canonical %q evaluates differently: %v/%v vs %v/%v", s, canon, v1, err1, v2, err2)
		}
		res, err := c.Compile(e, opts)
		if err != nil {
			return
		}
		_ = res.Flows(1, 100, 0, of.Match{}, nil)
		_ = res.String()
	})
}

func u64(v uint64) bits.U128 { return bits.From64(v) }
