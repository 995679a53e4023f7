// Package lex splits OVN logical-flow match and action text into tokens.
//
// The language is the one described in ovn-sb(5) (Logical_Flow table, match
// and actions columns). Both the expression parser (lflow/expr) and the action
// parser (lflow/action) consume the tokens produced here, usually through a
// Cursor.
//
// Every token remembers where it started (line and column, both 1-based,
// columns counted in characters) and the exact text it was made from, so
// parsers can report errors a person can find. Constants (integers, MAC
// addresses, IPv4 and IPv6 addresses) carry their value as a bits.U128, an
// optional mask, and the notation they were written in so they can be printed
// back canonically.
//
// The package never panics on any input: malformed input yields an *Error.
package lex

import (
	"fmt"
	mbits "math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
)

// Kind is the kind of a token.
type Kind uint8

// Token kinds. Punctuation kinds are named after what they look like.
const (
	EOF       Kind = iota // end of input
	Ident                 // identifier: eth.src, reg0, ct.new, next, _x
	String                // quoted string: "lsp1" (Token.Str holds the unescaped text)
	Integer               // integer, MAC, IPv4 or IPv6 constant (see Token.Format), optionally masked
	Macro                 // $name: address set reference (Token.Str holds name without '$')
	PortGroup             // @name: port group reference (Token.Str holds name without '@')

	LParen    // (
	RParen    // )
	LBrace    // {
	RBrace    // }
	LBracket  // [
	RBracket  // ]
	Comma     // ,
	Semicolon // ;
	Colon     // :
	Assign    // =
	Eq        // ==
	Ne        // !=
	Lt        // <
	Le        // <=
	Gt        // >
	Ge        // >=
	Not       // !
	And       // &&
	Or        // ||
	Ellipsis  // ..
	Exchange  // <->
	Decrement // --
	Arrow     // ->
)

var kindText = [...]string{
	EOF:       "end of input",
	Ident:     "identifier",
	String:    "string",
	Integer:   "constant",
	Macro:     "address set",
	PortGroup: "port group",
	LParen:    "(",
	RParen:    ")",
	LBrace:    "{",
	RBrace:    "}",
	LBracket:  "[",
	RBracket:  "]",
	Comma:     ",",
	Semicolon: ";",
	Colon:     ":",
	Assign:    "=",
	Eq:        "==",
	Ne:        "!=",
	Lt:        "<",
	Le:        "<=",
	Gt:        ">",
	Ge:        ">=",
	Not:       "!",
	And:       "&&",
	Or:        "||",
	Ellipsis:  "..",
	Exchange:  "<->",
	Decrement: "--",
	Arrow:     "->",
}

// String returns the symbol for punctuation kinds (e.g. "==") and a
// description for the others (e.g. "identifier").
func (k Kind) String() string {
	if int(k) < len(kindText) {
		return kindText[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// IsPunct reports whether k is a punctuation/operator kind.
func (k Kind) IsPunct() bool { return k >= LParen && int(k) < len(kindText) }

// Format is the notation a constant was written in.
type Format uint8

// Constant formats.
const (
	Decimal Format = iota // 42
	Hex                   // 0x2a
	MAC                   // 00:11:22:33:44:55
	IPv4                  // 10.0.0.1
	IPv6                  // fe80::1, ::ffff:10.0.0.1
)

func (f Format) String() string {
	switch f {
	case Decimal:
		return "decimal integer"
	case Hex:
		return "hexadecimal integer"
	case MAC:
		return "MAC address"
	case IPv4:
		return "IPv4 address"
	case IPv6:
		return "IPv6 address"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Width is the natural width of a format in bits (128 for the integer
// formats, whose width comes from the field they are used with).
func (f Format) Width() int {
	switch f {
	case MAC:
		return 48
	case IPv4:
		return 32
	}
	return 128
}

// Pos is a position in the input: 1-based line and 1-based column, where
// columns count characters (runes), not bytes.
type Pos struct {
	Line, Col int
}

// String returns "line:col".
func (p Pos) String() string { return strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col) }

// Token is one lexical token.
type Token struct {
	Kind Kind
	Pos  Pos    // where the token starts
	Off  int    // byte offset of the token's first byte in the input
	End  int    // byte offset just past the token
	Text string // the exact input text of the token (input[Off:End])

	// Str is the identifier name (Ident), the unescaped contents (String),
	// or the name after '$' / '@' (Macro, PortGroup).
	Str string

	// For Integer tokens only:
	Value  bits.U128 // the value
	Mask   bits.U128 // the mask, meaningful only if Masked
	Masked bool      // a /mask or /prefix-length was given
	Format Format    // notation, used for canonical printing
}

// String returns the token in canonical form: identifiers as-is, strings
// quoted, constants in their format with canonical mask, punctuation as its
// symbol, EOF as "end of input".
func (t Token) String() string {
	switch t.Kind {
	case Ident:
		return t.Str
	case String:
		return Quote(t.Str)
	case Macro:
		return "$" + t.Str
	case PortGroup:
		return "@" + t.Str
	case Integer:
		if t.Masked {
			return FormatMasked(t.Value, t.Mask, t.Format)
		}
		return FormatValue(t.Value, t.Format)
	}
	return t.Kind.String()
}

// Describe returns a short description of the token for error messages,
// e.g. "`==`", "identifier `eth.src`", "end of input".
func (t Token) Describe() string {
	switch t.Kind {
	case EOF:
		return "end of input"
	case Ident:
		return "identifier `" + t.Str + "`"
	case String:
		return "string " + Quote(t.Str)
	case Integer:
		return "constant `" + t.Text + "`"
	case Macro:
		return "address set `$" + t.Str + "`"
	case PortGroup:
		return "port group `@" + t.Str + "`"
	}
	return "`" + t.Kind.String() + "`"
}

// Error is a lexical or syntax error at a position.
type Error struct {
	Pos Pos
	Msg string
}

// Error returns "line:col: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errorf returns an *Error at pos.
func Errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// FormatValue prints v in format f: decimal, 0x-hex, MAC, or IPv4/IPv6
// address (RFC 5952 for IPv6). Decimal values of 2^64 or more print in hex,
// because OVN's lexer accepts decimal constants only below 2^64.
func FormatValue(v bits.U128, f Format) string {
	switch f {
	case Hex:
		return v.Hex()
	case Decimal:
		if v.Hi != 0 {
			return v.Hex()
		}
	case MAC:
		b := v.Bytes()
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[10], b[11], b[12], b[13], b[14], b[15])
	case IPv4:
		b := v.Bytes()
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String()
	case IPv6:
		return netip.AddrFrom16(v.Bytes()).String()
	}
	return Decimal128(v)
}

// FormatMasked prints v/mask in format f. IPv4 and IPv6 masks that are CIDR
// prefixes print as a prefix length (10.0.0.0/8); every other mask prints in
// the same format as the value.
func FormatMasked(v, mask bits.U128, f Format) string {
	if f == IPv4 || f == IPv6 {
		if n, ok := PrefixLen(mask, f.Width()); ok {
			return FormatValue(v, f) + "/" + strconv.Itoa(n)
		}
	}
	if f == Decimal && (v.Hi != 0 || mask.Hi != 0) {
		f = Hex // both halves in the same notation
	}
	return FormatValue(v, f) + "/" + FormatValue(mask, f)
}

// PrefixLen reports whether mask, within a width-bit field, is a CIDR mask
// (n leading ones followed by zeros) and returns n.
func PrefixLen(mask bits.U128, width int) (int, bool) {
	if !mask.FitsIn(width) {
		return 0, false
	}
	n := mask.OnesCount()
	return n, mask == bits.Range(width-n, width-1) || n == 0
}

// PrefixMask returns the mask with the top n bits of a width-bit field set.
func PrefixMask(n, width int) bits.U128 {
	if n <= 0 {
		return bits.Zero
	}
	return bits.Range(width-n, width-1)
}

// Decimal128 prints v in decimal (all 128 bits).
func Decimal128(v bits.U128) string {
	if v.Hi == 0 {
		return strconv.FormatUint(v.Lo, 10)
	}
	var buf [40]byte
	i := len(buf)
	for !v.IsZero() {
		var r uint64
		v, r = divmod10(v)
		i--
		buf[i] = byte('0' + r)
	}
	return string(buf[i:])
}

// divmod10 returns v/10 and v%10.
func divmod10(v bits.U128) (bits.U128, uint64) {
	hq := v.Hi / 10
	hr := v.Hi % 10
	// (hr<<64 + Lo) / 10, with hr < 10 so the quotient fits in 64 bits.
	lo, rem := mbits.Div64(hr, v.Lo, 10)
	return bits.U128{Hi: hq, Lo: lo}, rem
}

// Quote returns s as a double-quoted string with the escapes the lexer
// understands.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
