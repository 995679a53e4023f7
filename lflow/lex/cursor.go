package lex

import "sync"

// Cursor walks a token slice for a recursive-descent parser. The slice
// always ends with an EOF token, so Peek never runs off the end.
type Cursor struct {
	toks []Token
	i    int
	// pooled is the buffer toks came from (AcquireCursor), or nil.
	pooled *[]Token
}

// NewCursor tokenizes src and returns a Cursor over the tokens, or the first
// lexical error.
func NewCursor(src string) (*Cursor, error) {
	toks, err := Tokenize(src)
	if err != nil {
		return nil, err
	}
	return &Cursor{toks: toks}, nil
}

// tokBufs holds token slices for AcquireCursor: a parser that only walks
// its tokens and keeps none of the slice lexes every flow into the same
// few buffers instead of allocating one per string.
var tokBufs = sync.Pool{New: func() any { return new([]Token) }}

// maxPooledToks bounds the buffers kept in tokBufs, so one huge input does
// not stay resident.
const maxPooledToks = 4096

// AcquireCursor is NewCursor with a token buffer taken from a pool. The
// caller must call Release when done and must not keep the slice returned
// by Tokens past that (Token values copied out stay valid).
func AcquireCursor(src string) (*Cursor, error) {
	buf := tokBufs.Get().(*[]Token)
	toks, err := tokenizeInto((*buf)[:0], src)
	if err != nil {
		*buf = clearToks(toks)
		tokBufs.Put(buf)
		return nil, err
	}
	return &Cursor{toks: toks, pooled: buf}, nil
}

// Release returns the token buffer of a cursor made by AcquireCursor to
// the pool; the cursor must not be used afterwards. It does nothing for
// other cursors.
func (c *Cursor) Release() {
	if c.pooled == nil {
		return
	}
	buf := c.pooled
	*buf = clearToks(c.toks)
	c.toks, c.pooled = nil, nil
	if cap(*buf) <= maxPooledToks {
		tokBufs.Put(buf)
	}
}

// clearToks zeroes toks (dropping the strings they reference) and returns
// it emptied.
func clearToks(toks []Token) []Token {
	clear(toks)
	return toks[:0]
}

// CursorOf returns a Cursor over toks, which should end with an EOF token
// (one is appended if missing).
func CursorOf(toks []Token) *Cursor {
	if len(toks) == 0 || toks[len(toks)-1].Kind != EOF {
		end := 0
		var pos Pos
		if len(toks) > 0 {
			last := toks[len(toks)-1]
			end = last.End
			pos = Pos{last.Pos.Line, last.Pos.Col + len([]rune(last.Text))}
		} else {
			pos = Pos{1, 1}
		}
		toks = append(toks[:len(toks):len(toks)], Token{Kind: EOF, Pos: pos, Off: end, End: end})
	}
	return &Cursor{toks: toks}
}

// Peek returns the current token without consuming it.
func (c *Cursor) Peek() Token { return c.toks[c.i] }

// PeekN returns the token n places ahead (PeekN(0) == Peek()); past the end
// it returns the EOF token.
func (c *Cursor) PeekN(n int) Token {
	if c.i+n >= len(c.toks) {
		return c.toks[len(c.toks)-1]
	}
	return c.toks[c.i+n]
}

// Next consumes and returns the current token (EOF stays current at the end).
func (c *Cursor) Next() Token {
	t := c.toks[c.i]
	if c.i < len(c.toks)-1 {
		c.i++
	}
	return t
}

// Is reports whether the current token has kind k.
func (c *Cursor) Is(k Kind) bool { return c.toks[c.i].Kind == k }

// IsIdent reports whether the current token is the identifier name.
func (c *Cursor) IsIdent(name string) bool {
	t := c.toks[c.i]
	return t.Kind == Ident && t.Str == name
}

// Accept consumes the current token if it has kind k.
func (c *Cursor) Accept(k Kind) bool {
	if c.Is(k) {
		c.Next()
		return true
	}
	return false
}

// AcceptIdent consumes the current token if it is the identifier name.
func (c *Cursor) AcceptIdent(name string) bool {
	if c.IsIdent(name) {
		c.Next()
		return true
	}
	return false
}

// Expect consumes a token of kind k or returns an error such as
// "1:7: expecting `;`, found identifier `next`".
func (c *Cursor) Expect(k Kind) (Token, error) {
	if c.Is(k) {
		return c.Next(), nil
	}
	what := k.String()
	if k.IsPunct() {
		what = "`" + what + "`"
	}
	return Token{}, c.Unexpected(what)
}

// Unexpected returns "pos: expecting WHAT, found TOKEN" for the current token.
func (c *Cursor) Unexpected(what string) *Error {
	t := c.Peek()
	return Errorf(t.Pos, "expecting %s, found %s", what, t.Describe())
}

// Errorf returns an error at the current token's position.
func (c *Cursor) Errorf(format string, args ...any) *Error {
	return Errorf(c.Peek().Pos, format, args...)
}

// Mark returns the current position in the token stream, for Reset.
func (c *Cursor) Mark() int { return c.i }

// Reset returns to a position obtained from Mark (for backtracking).
func (c *Cursor) Reset(mark int) {
	if mark >= 0 && mark < len(c.toks) {
		c.i = mark
	}
}

// Tokens returns the whole token slice (ending with EOF).
func (c *Cursor) Tokens() []Token { return c.toks }
