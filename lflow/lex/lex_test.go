package lex

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/bits"
)

var update = flag.Bool("update", false, "rewrite golden files in lflow/testdata")

// golden runs fn on every input of a golden file and compares (or with
// -update rewrites) the "=> " lines that follow each input. Lines starting
// with '#' and blank lines are kept as they are.
func golden(t *testing.T, path string, fn func(input string) []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := 0; i < len(lines); {
		line := lines[i]
		i++
		if line == "" || strings.HasPrefix(line, "#") {
			out = append(out, line)
			continue
		}
		if strings.HasPrefix(line, "=> ") || line == "=>" {
			t.Errorf("%s:%d: result line without input", path, i)
			continue
		}
		var want []string
		for i < len(lines) && strings.HasPrefix(lines[i], "=>") {
			want = append(want, strings.TrimPrefix(strings.TrimPrefix(lines[i], "=>"), " "))
			i++
		}
		got := fn(line)
		out = append(out, line)
		for _, g := range got {
			out = append(out, "=> "+g)
		}
		if !*update && strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: input %q:\n got: %s\nwant: %s", path, line, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func describe(toks []Token) string {
	var parts []string
	for _, t := range toks {
		if t.Kind == EOF {
			break
		}
		s := t.String()
		switch t.Kind {
		case Integer:
			s += "<" + t.Format.String() + ">"
		case Ident:
			s = "id:" + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestGolden(t *testing.T) {
	golden(t, "../testdata/lex.txt", func(in string) []string {
		toks, err := Tokenize(in)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return []string{describe(toks)}
	})
}

func TestPositions(t *testing.T) {
	in := "eth.src == 00:11:22:33:44:55 &&\n  ip4.dst == \"é\" ||\r\n\tx"
	toks, err := Tokenize(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		text string
		pos  Pos
	}{
		{"eth.src", Pos{1, 1}}, {"==", Pos{1, 9}}, {"00:11:22:33:44:55", Pos{1, 12}}, {"&&", Pos{1, 30}},
		{"ip4.dst", Pos{2, 3}}, {"==", Pos{2, 11}}, {`"é"`, Pos{2, 14}}, {"||", Pos{2, 18}},
		{"x", Pos{3, 2}}, {"", Pos{3, 3}},
	}
	if len(toks) != len(want) {
		t.Fatalf("got %d tokens, want %d: %s", len(toks), len(want), describe(toks))
	}
	for i, w := range want {
		if toks[i].Text != w.text || toks[i].Pos != w.pos {
			t.Errorf("token %d: got %q at %v, want %q at %v", i, toks[i].Text, toks[i].Pos, w.text, w.pos)
		}
		if in[toks[i].Off:toks[i].End] != toks[i].Text {
			t.Errorf("token %d: offsets %d..%d do not match text %q", i, toks[i].Off, toks[i].End, toks[i].Text)
		}
	}
	// An error after a multi-byte character is reported in characters.
	_, err = Tokenize("\"ü\" #")
	var le *Error
	if !errors.As(err, &le) || le.Pos != (Pos{1, 5}) {
		t.Errorf("got %v, want error at 1:5", err)
	}
}

func TestValues(t *testing.T) {
	cases := []struct {
		in     string
		value  bits.U128
		mask   bits.U128
		masked bool
		format Format
	}{
		{"340282366920938463463374607431768211455", bits.Ones(128), bits.Zero, false, Decimal},
		{"0xffffffffffffffffffffffffffffffff", bits.Ones(128), bits.Zero, false, Hex},
		{"10.0.0.0/8", bits.From64(0x0a000000), bits.From64(0xff000000), true, IPv4},
		{"10.0.0.0/255.0.0.0", bits.From64(0x0a000000), bits.From64(0xff000000), true, IPv4},
		{"ff:ff:ff:ff:ff:ff", bits.Ones(48), bits.Zero, false, MAC},
		{"::ffff:1.2.3.4", bits.From64(0xffff01020304), bits.Zero, false, IPv6},
		{"fe80::/10", bits.U128{Hi: 0xfe80 << 48}, bits.U128{Hi: 0xffc0 << 48}, true, IPv6},
		{"0x10/0xf0", bits.From64(0x10), bits.From64(0xf0), true, Hex},
	}
	for _, c := range cases {
		toks, err := Tokenize(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		tk := toks[0]
		if len(toks) != 2 || tk.Kind != Integer || tk.Value != c.value || tk.Masked != c.masked || tk.Mask != c.mask || tk.Format != c.format {
			t.Errorf("%s: got %+v", c.in, tk)
		}
	}
}

func TestCursor(t *testing.T) {
	c, err := NewCursor("next; x")
	if err != nil {
		t.Fatal(err)
	}
	if !c.AcceptIdent("next") || !c.Accept(Semicolon) {
		t.Fatal("accept failed")
	}
	if _, err := c.Expect(Semicolon); err == nil || err.Error() != "1:7: expecting `;`, found identifier `x`" {
		t.Errorf("got %v", err)
	}
	c.Next()
	if !c.Is(EOF) || c.Next().Kind != EOF || c.PeekN(5).Kind != EOF {
		t.Error("cursor does not stay at EOF")
	}
	if _, err := c.Expect(RParen); err == nil || err.Error() != "1:8: expecting `)`, found end of input" {
		t.Errorf("got %v", err)
	}
}

// FuzzLex checks that the lexer never panics, that tokens tile the input in
// order with correct text, and that canonical constants re-lex to the same
// value.
func FuzzLex(f *testing.F) {
	for _, s := range []string{
		"eth.src == 00:11:22:33:44:55 && ip4.dst == 10.0.0.0/8", "reg0[0..15] = 0x1234;",
		"ct_lb_mark(backends=10.0.0.1:80,[fe80::1]:80);", `outport = "lsp\"1";`, "$as1 @pg2 ip.ttl--;",
		"ip6.dst == ::ffff:1.2.3.4/96", "eth.src <-> eth.dst;", "1/0x1", "-->", "a...b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := Tokenize(s)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || le.Pos.Line < 1 || le.Pos.Col < 1 {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		prev := 0
		for _, tk := range toks {
			if tk.Off < prev || tk.End < tk.Off || tk.End > len(s) || s[tk.Off:tk.End] != tk.Text {
				t.Fatalf("token %+v does not tile input %q", tk, s)
			}
			if strings.TrimSpace(stripComments(s[prev:tk.Off])) != "" {
				t.Fatalf("skipped non-space %q", s[prev:tk.Off])
			}
			prev = tk.End
			if tk.Kind == Integer {
				again, err := Tokenize(tk.String())
				wantFormat := tk.Format
				if wantFormat == Decimal && (tk.Value.Hi != 0 || tk.Mask.Hi != 0) {
					wantFormat = Hex // printed in hex for OVN compatibility
				}
				if err != nil || len(again) != 2 || again[0].Value != tk.Value || again[0].Mask != tk.Mask || again[0].Format != wantFormat {
					t.Fatalf("constant %q printed as %q does not re-lex: %v %+v", tk.Text, tk.String(), err, again)
				}
			}
			if tk.Kind == String {
				again, err := Tokenize(tk.String())
				if err != nil || again[0].Str != tk.Str {
					t.Fatalf("string %q printed as %q does not re-lex", tk.Text, tk.String())
				}
			}
		}
		if toks[len(toks)-1].Kind != EOF {
			t.Fatal("no EOF")
		}
	})
}

func TestCommentPositions(t *testing.T) {
	toks, err := Tokenize("/* a\n b */ x // c\n  y")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 3 || toks[0].Str != "x" || toks[0].Pos != (Pos{2, 7}) || toks[1].Str != "y" || toks[1].Pos != (Pos{3, 3}) {
		t.Errorf("tokens %+v", toks)
	}
}

// stripComments removes // and /* */ comments from a gap between tokens.
func stripComments(gap string) string {
	var b strings.Builder
	for gap != "" {
		switch {
		case strings.HasPrefix(gap, "//"):
			n := strings.IndexByte(gap, '\n')
			if n < 0 {
				return b.String()
			}
			gap = gap[n:]
		case strings.HasPrefix(gap, "/*"):
			n := strings.Index(gap[2:], "*/")
			if n < 0 {
				return b.String() + gap
			}
			gap = gap[n+4:]
		default:
			b.WriteByte(gap[0])
			gap = gap[1:]
		}
	}
	return b.String()
}
