package lex

import (
	"reflect"
	"testing"
)

// TestAcquireCursorMatchesTokenize: a pooled cursor walks exactly the
// tokens Tokenize returns, tokens copied out survive the buffer's reuse by
// later cursors, and a lexical error is the same error.
func TestAcquireCursorMatchesTokenize(t *testing.T) {
	srcs := []string{
		`eth.dst = eth.src; eth.src = 0a:00:00:00:00:01; arp.op = 2; output;`,
		`inport == "sw0-p1" && arp.tpa == 10.0.0.1 && arp.op == 1`,
		`ct_commit { ct_label.blocked = 0; }; next;`,
		``,
		`reg0[0] = 1; next(pipeline=egress, table=3);`,
	}
	var kept []Token
	var want []Token
	for round := 0; round < 3; round++ {
		for _, src := range srcs {
			exp, err := Tokenize(src)
			if err != nil {
				t.Fatalf("Tokenize(%q): %v", src, err)
			}
			c, err := AcquireCursor(src)
			if err != nil {
				t.Fatalf("AcquireCursor(%q): %v", src, err)
			}
			var got []Token
			for {
				tok := c.Next()
				got = append(got, tok)
				if tok.Kind == EOF {
					break
				}
			}
			c.Release()
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("round %d %q: pooled cursor tokens differ\n got %+v\nwant %+v", round, src, got, exp)
			}
			if round == 0 {
				kept = append(kept, got...)
				want = append(want, exp...)
			}
		}
	}
	if !reflect.DeepEqual(kept, want) {
		t.Fatal("tokens copied out of a released cursor changed when its buffer was reused")
	}
	bad := `a == "unterminated`
	_, werr := Tokenize(bad)
	_, gerr := AcquireCursor(bad)
	if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
		t.Fatalf("error mismatch: Tokenize %v, AcquireCursor %v", werr, gerr)
	}
	// The buffer went back to the pool after the error: a later cursor works.
	c, err := AcquireCursor(srcs[0])
	if err != nil || c.Next().Text != "eth.dst" {
		t.Fatalf("cursor after error: %v", err)
	}
	c.Release()
	c.Release() // a second Release is harmless
}
