package lex

import (
	mbits "math/bits"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/govn/govn/lflow/bits"
)

// Lexer produces tokens from one input string on demand.
type Lexer struct {
	src  string
	off  int // byte offset of the next unread byte
	line int // line of src[off]
	col  int // column (in runes) of src[off]
}

// New returns a Lexer reading src.
func New(src string) *Lexer { return &Lexer{src: src, line: 1, col: 1} }

// Tokenize returns all tokens of src, ending with an EOF token, or the first
// error.
func Tokenize(src string) ([]Token, error) {
	// Tokens average well over 5 bytes of input (with their blanks); a
	// denser string grows the slice once or twice.
	return tokenizeInto(make([]Token, 0, len(src)/5+2), src)
}

// tokenizeInto appends the tokens of src to dst (normally empty with
// spare capacity) and returns the extended slice.
func tokenizeInto(toks []Token, src string) ([]Token, error) {
	l := New(src)
	for {
		t, err := l.Next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.Kind == EOF {
			return toks, nil
		}
	}
}

func (l *Lexer) pos() Pos { return Pos{l.line, l.col} }

// advance moves past n bytes, keeping line and column up to date. Columns
// count runes: UTF-8 continuation bytes do not advance the column.
func (l *Lexer) advance(n int) {
	for i := 0; i < n && l.off < len(l.src); i++ {
		c := l.src[l.off]
		l.off++
		switch {
		case c == '\n':
			l.line++
			l.col = 1
		case c&0xC0 == 0x80:
			// continuation byte
		default:
			l.col++
		}
	}
}

// posAt returns the position of byte offset off, which must be >= l.off and
// on the current line with only ASCII in between (used for mask errors).
func (l *Lexer) posAt(off int) Pos { return Pos{l.line, l.col + off - l.off} }

func isIDStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool   { return isIDStart(c) || isDigit(c) }
func isHex(c byte) bool     { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanID returns the end of an identifier starting at off: letters, digits,
// '_' and '.', but never a ".." (which is the range operator).
func (l *Lexer) scanID(off int) int {
	s := l.src
	for off < len(s) {
		c := s[off]
		if isAlnum(c) || c == '.' && !(off+1 < len(s) && s[off+1] == '.') {
			off++
			continue
		}
		break
	}
	return off
}

// hexColon reports whether the text at off is 1 to 4 hex digits followed by
// ':' (the start of a MAC or IPv6 constant; identifiers never contain ':').
func (l *Lexer) hexColon(off int) bool {
	s := l.src
	i := off
	for i < len(s) && i-off < 5 && isHex(s[i]) {
		i++
	}
	return i > off && i-off <= 4 && i < len(s) && s[i] == ':'
}

// Next returns the next token. After EOF it keeps returning EOF.
func (l *Lexer) Next() (Token, error) {
	// Skip white space and comments: "// to end of line" and "/* ... */".
	for l.off < len(l.src) {
		switch l.src[l.off] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			l.advance(1)
			continue
		case '/':
			rest := l.src[l.off:]
			if strings.HasPrefix(rest, "//") {
				n := strings.IndexByte(rest, '\n')
				if n < 0 {
					n = len(rest)
				}
				l.advance(n)
				continue
			}
			if strings.HasPrefix(rest, "/*") {
				n := strings.Index(rest[2:], "*/")
				if n < 0 {
					return Token{Pos: l.pos(), Off: l.off}, Errorf(l.pos(), "unterminated comment (`/*` without `*/`)")
				}
				l.advance(n + 4)
				continue
			}
		}
		break
	}
	start := l.off
	tok := Token{Pos: l.pos(), Off: start}
	if start >= len(l.src) {
		tok.Kind = EOF
		tok.End = start
		return tok, nil
	}
	s := l.src
	c := s[start]
	next := byte(0)
	if start+1 < len(s) {
		next = s[start+1]
	}
	n := 1 // bytes consumed for punctuation
	switch {
	case isHex(c) && l.hexColon(start):
		// MAC or IPv6 constant that starts with a letter: ff:ff:..., fe80::1.
		return l.number()
	case isIDStart(c):
		end := l.scanID(start)
		tok.Kind = Ident
		tok.Str = s[start:end]
		n = end - start
	case isDigit(c) || c == ':' && next == ':':
		return l.number()
	case c == '"':
		return l.str()
	case c == '$' || c == '@':
		end := start + 1
		if end < len(s) && isIDStart(s[end]) {
			end = l.scanID(end)
		}
		if end == start+1 {
			return tok, Errorf(tok.Pos, "`%c` must be followed by a name (e.g. %cname)", c, c)
		}
		tok.Kind = Macro
		if c == '@' {
			tok.Kind = PortGroup
		}
		tok.Str = s[start+1 : end]
		n = end - start
	case c == '(':
		tok.Kind = LParen
	case c == ')':
		tok.Kind = RParen
	case c == '{':
		tok.Kind = LBrace
	case c == '}':
		tok.Kind = RBrace
	case c == '[':
		tok.Kind = LBracket
	case c == ']':
		tok.Kind = RBracket
	case c == ',':
		tok.Kind = Comma
	case c == ';':
		tok.Kind = Semicolon
	case c == ':':
		tok.Kind = Colon
	case c == '=':
		tok.Kind = Assign
		if next == '=' {
			tok.Kind, n = Eq, 2
		}
	case c == '!':
		tok.Kind = Not
		if next == '=' {
			tok.Kind, n = Ne, 2
		}
	case c == '<':
		tok.Kind = Lt
		if next == '=' {
			tok.Kind, n = Le, 2
		} else if next == '-' && start+2 < len(s) && s[start+2] == '>' {
			tok.Kind, n = Exchange, 3
		}
	case c == '>':
		tok.Kind = Gt
		if next == '=' {
			tok.Kind, n = Ge, 2
		}
	case c == '&' || c == '|':
		if next != c {
			return tok, Errorf(tok.Pos, "`%c` must be doubled: use `%c%c`", c, c, c)
		}
		tok.Kind, n = And, 2
		if c == '|' {
			tok.Kind = Or
		}
	case c == '-':
		switch next {
		case '-':
			tok.Kind, n = Decrement, 2
		case '>':
			tok.Kind, n = Arrow, 2
		default:
			return tok, Errorf(tok.Pos, "unexpected `-` (negative numbers do not exist; `--` decrements, `->` is an arrow)")
		}
	case c == '.':
		if next != '.' {
			return tok, Errorf(tok.Pos, "`.` is only valid in `..`, in a name or in a number")
		}
		tok.Kind, n = Ellipsis, 2
	default:
		r, size := utf8.DecodeRuneInString(s[start:])
		if r == utf8.RuneError && size <= 1 {
			return tok, Errorf(tok.Pos, "invalid UTF-8 byte 0x%02x", c)
		}
		if r < 0x20 || r == 0x7f {
			return tok, Errorf(tok.Pos, "unexpected control character U+%04X", r)
		}
		return tok, Errorf(tok.Pos, "unexpected character %q", r)
	}
	l.advance(n)
	tok.End = l.off
	tok.Text = s[start:l.off]
	return tok, nil
}

// str lexes a double-quoted string with JSON-style escapes.
func (l *Lexer) str() (Token, error) {
	start := l.off
	tok := Token{Kind: String, Pos: l.pos(), Off: start}
	s := l.src
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(s) {
			return tok, Errorf(tok.Pos, "unterminated string (missing closing `\"`)")
		}
		c := s[i]
		if c == '"' {
			i++
			break
		}
		if c == '\\' {
			if i+1 >= len(s) {
				return tok, Errorf(tok.Pos, "unterminated string (missing closing `\"`)")
			}
			e := s[i+1]
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if i+6 > len(s) {
					return tok, Errorf(tok.Pos, "string escape `\\u` needs 4 hexadecimal digits")
				}
				v, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
				if err != nil {
					return tok, Errorf(tok.Pos, "string escape `\\u` needs 4 hexadecimal digits, not %q", s[i+2:i+6])
				}
				r := rune(v)
				if !utf8.ValidRune(r) {
					return tok, Errorf(tok.Pos, "string escape `\\u%04x` is not a valid character", v)
				}
				b.WriteRune(r)
				i += 6
				continue
			default:
				r, _ := utf8.DecodeRuneInString(s[i+1:])
				return tok, Errorf(tok.Pos, "unknown escape `\\%c` in string (known: \\\" \\\\ \\/ \\n \\t \\r \\b \\f \\uXXXX)", r)
			}
			i += 2
			continue
		}
		if c < 0x20 || c == 0x7f {
			return tok, Errorf(tok.Pos, "control character U+%04X in string (use an escape such as \\n)", c)
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return tok, Errorf(tok.Pos, "invalid UTF-8 byte 0x%02x in string", c)
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	l.advance(i - start)
	tok.End = l.off
	tok.Text = s[start:l.off]
	tok.Str = b.String()
	return tok, nil
}

// scanNumber returns the end of the constant starting at off: letters,
// digits, ':' and '.' but not "..". An IPv4 address followed by ':' (as in
// 10.0.0.1:80) ends before the ':'.
func (l *Lexer) scanNumber(off int) int {
	s := l.src
	start := off
	firstDot, firstColon := -1, -1
	for off < len(s) {
		c := s[off]
		switch {
		case isAlnum(c):
		case c == ':':
			if firstColon < 0 {
				firstColon = off
			}
		case c == '.' && !(off+1 < len(s) && s[off+1] == '.'):
			if firstDot < 0 {
				firstDot = off
			}
		default:
			goto done
		}
		off++
	}
done:
	if firstDot >= start && firstColon > firstDot {
		return firstColon
	}
	return off
}

// number lexes a constant with an optional /mask.
func (l *Lexer) number() (Token, error) {
	start := l.off
	tok := Token{Kind: Integer, Pos: l.pos(), Off: start}
	end := l.scanNumber(start)
	text := l.src[start:end]
	v, f, err := parseConstant(text)
	if err != nil {
		return tok, Errorf(tok.Pos, "%s", err.Error())
	}
	tok.Value, tok.Format = v, f
	if end < len(l.src) && l.src[end] == '/' {
		mpos := l.posAt(end + 1)
		mend := end + 1
		if mend < len(l.src) && (isDigit(l.src[mend]) || l.src[mend] == ':' || l.hexColon(mend)) {
			mend = l.scanNumber(mend)
		}
		mtext := l.src[end+1 : mend]
		if mtext == "" {
			return tok, Errorf(mpos, "expecting a mask or prefix length after `/`")
		}
		m, mf, err := parseConstant(mtext)
		if err != nil {
			return tok, Errorf(mpos, "%s", err.Error())
		}
		switch {
		case mf == f, (f == Decimal || f == Hex) && (mf == Decimal || mf == Hex):
			// explicit mask in the same notation
		case (f == IPv4 || f == IPv6) && mf == Decimal:
			w := f.Width()
			if m.Cmp(bits.From64(uint64(w))) > 0 {
				return tok, Errorf(mpos, "%s prefix length %s is out of range (0 to %d)", f.shortName(), mtext, w)
			}
			m = PrefixMask(int(m.Lo), w)
		default:
			return tok, Errorf(mpos, "mask %q (%s) does not suit the value %q (%s)", mtext, mf, text, f)
		}
		if !m.FitsIn(f.Width()) {
			return tok, Errorf(mpos, "mask %q is wider than the %s", mtext, f)
		}
		// Like OVN, 1-bits of the value outside the mask are allowed and
		// ignored (10.0.0.1/24 means 10.0.0.0/24); Value keeps only the
		// masked bits so every consumer sees the canonical value.
		tok.Value = v.And(m)
		tok.Mask, tok.Masked = m, true
		end = mend
	}
	l.advance(end - start)
	tok.End = l.off
	tok.Text = l.src[start:l.off]
	return tok, nil
}

func (f Format) shortName() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

type constError string

func (e constError) Error() string { return string(e) }

// parseConstant interprets the text of one constant (without mask).
func parseConstant(text string) (bits.U128, Format, error) {
	hasColon := strings.IndexByte(text, ':') >= 0
	hasDot := strings.IndexByte(text, '.') >= 0
	switch {
	case hasColon && !hasDot && strings.Count(text, ":") == 5 && !strings.Contains(text, "::"):
		v, ok := parseMAC(text)
		if !ok {
			return v, MAC, constError("invalid MAC address " + strconv.Quote(text))
		}
		return v, MAC, nil
	case hasColon:
		a, err := netip.ParseAddr(text)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return bits.Zero, IPv6, constError("invalid IPv6 address " + strconv.Quote(text))
		}
		b := a.As16()
		return bits.FromBytes(b[:]), IPv6, nil
	case hasDot:
		a, err := netip.ParseAddr(text)
		if err != nil || !a.Is4() {
			return bits.Zero, IPv4, constError("invalid IPv4 address " + strconv.Quote(text))
		}
		b := a.As4()
		return bits.FromBytes(b[:]), IPv4, nil
	case len(text) >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'):
		digits := strings.TrimLeft(text[2:], "0")
		if len(text) == 2 {
			return bits.Zero, Hex, constError("hexadecimal constant " + strconv.Quote(text) + " has no digits after 0x")
		}
		var v bits.U128
		for i := 2; i < len(text); i++ {
			if !isHex(text[i]) {
				return bits.Zero, Hex, constError("invalid hexadecimal constant " + strconv.Quote(text))
			}
		}
		if len(digits) > 32 {
			return bits.Zero, Hex, constError("hexadecimal constant " + strconv.Quote(text) + " does not fit in 128 bits")
		}
		for i := 0; i < len(digits); i++ {
			v = v.Lsh(4).Or(bits.From64(uint64(hexVal(digits[i]))))
		}
		return v, Hex, nil
	}
	for i := 0; i < len(text); i++ {
		if !isDigit(text[i]) {
			return bits.Zero, Decimal, constError("invalid numeric constant " + strconv.Quote(text))
		}
	}
	if len(text) > 1 && text[0] == '0' {
		return bits.Zero, Decimal, constError("decimal constant " + strconv.Quote(text) + " must not have leading zeros (write 0x... for hexadecimal)")
	}
	var v bits.U128
	for i := 0; i < len(text); i++ {
		// v = v*10 + d, detecting overflow past 128 bits.
		hiHi, hiLo := mbits.Mul64(v.Hi, 10)
		loHi, loLo := mbits.Mul64(v.Lo, 10)
		hi, c1 := mbits.Add64(hiLo, loHi, 0)
		lo, c2 := mbits.Add64(loLo, uint64(text[i]-'0'), 0)
		hi, c3 := mbits.Add64(hi, c2, 0)
		if hiHi != 0 || c1 != 0 || c3 != 0 {
			return bits.Zero, Decimal, constError("decimal constant " + strconv.Quote(text) + " does not fit in 128 bits")
		}
		v = bits.U128{Hi: hi, Lo: lo}
	}
	return v, Decimal, nil
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// parseMAC parses six ':'-separated groups of one or two hex digits.
func parseMAC(text string) (bits.U128, bool) {
	var v bits.U128
	groups := strings.Split(text, ":")
	if len(groups) != 6 {
		return v, false
	}
	for _, g := range groups {
		if len(g) < 1 || len(g) > 2 {
			return v, false
		}
		var b byte
		for i := 0; i < len(g); i++ {
			if !isHex(g[i]) {
				return v, false
			}
			b = b<<4 | hexVal(g[i])
		}
		v = v.Lsh(8).Or(bits.From64(uint64(b)))
	}
	return v, true
}
