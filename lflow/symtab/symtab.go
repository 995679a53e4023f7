// Package symtab is the symbol table of the logical-flow language: the
// fields, subfields and predicates that matches and actions may name (see
// ovn-sb(5), Logical_Flow), each with its OpenFlow mapping, width,
// prerequisites, level of measurement, writability and display format.
//
// Default() returns the table for OVN logical switch/router pipelines; tests
// build small tables with New and the Add* methods. A Table is immutable once
// built and safe for concurrent readers.
//
// The package is pure: no I/O.
package symtab

import (
	"fmt"
	"sort"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

// Kind is what a symbol names.
type Kind uint8

const (
	// Field: a packet or metadata field stored in OpenFlow bits (Symbol.OF).
	Field Kind = iota
	// Subfield: a bit range of another field (Symbol.Parent, Lo..Hi).
	Subfield
	// Predicate: shorthand for a Boolean expression (Symbol.Expansion).
	Predicate
)

func (k Kind) String() string {
	switch k {
	case Field:
		return "field"
	case Subfield:
		return "subfield"
	case Predicate:
		return "predicate"
	}
	return "kind?"
}

// Level is the level of measurement (ovn-sb(5), "Level of Measurement").
type Level uint8

const (
	// Ordinal fields can be tested bit by bit: slices, masks and <, <=, >, >=
	// are allowed.
	Ordinal Level = iota
	// Nominal fields and predicates may only be tested for equality in a
	// positive sense (after outer ! are taken into account).
	Nominal
	// Boolean predicates may be tested either way.
	Boolean
)

func (l Level) String() string {
	switch l {
	case Ordinal:
		return "ordinal"
	case Nominal:
		return "nominal"
	case Boolean:
		return "Boolean"
	}
	return "level?"
}

// Symbol is one name in the table.
type Symbol struct {
	Name string
	Kind Kind
	// Width in bits: the field's or subfield's width, 1 for predicates.
	// String fields have the width of the key they resolve to.
	Width int

	// OF is where a Field's bits live (usually a whole OpenFlow field; a
	// field may also be a bit range of one, e.g. in test tables). For a
	// Subfield it is the resolved location of the subfield's bits.
	OF of.Subfield

	// Parent and Lo/Hi (inclusive bit numbers within Parent) for Subfields.
	Parent *Symbol
	Lo, Hi int

	// Expansion is a Predicate's expression text.
	Expansion string

	// Prereqs is an expression (text) that every use of the symbol implies,
	// or "". A subfield's parent's prerequisites apply as well.
	Prereqs string

	// String fields (inport, outport) compare against quoted names that
	// resolve to integer keys through a lookup callback.
	String bool

	// Writable reports whether actions may assign to the symbol.
	Writable bool

	Level Level

	// Format is the display format for values of the symbol.
	Format of.Format
}

// IsBoolean reports whether the symbol can be used alone as a condition
// (a 1-bit field or subfield, or a predicate).
func (s *Symbol) IsBoolean() bool { return s.Kind == Predicate || (!s.String && s.Width == 1) }

// Table is a set of symbols.
type Table struct {
	syms map[string]*Symbol
}

// New returns an empty table.
func New() *Table { return &Table{syms: make(map[string]*Symbol)} }

// Lookup returns the symbol named name.
func (t *Table) Lookup(name string) (*Symbol, bool) {
	s, ok := t.syms[name]
	return s, ok
}

// Symbols returns all symbols sorted by name.
func (t *Table) Symbols() []*Symbol {
	out := make([]*Symbol, 0, len(t.syms))
	for _, s := range t.syms {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FieldOpts are the optional properties of a field.
type FieldOpts struct {
	Prereqs  string
	String   bool // string field (inport/outport)
	Writable bool
	Nominal  bool      // only equality tests (default: ordinal when the OpenFlow field is maskable)
	Format   of.Format // display format (default: the OpenFlow field's)
	// FormatSet says Format was given explicitly (of.FormatDecimal is 0).
	FormatSet bool
}

func (t *Table) add(s *Symbol) error {
	if s.Name == "" {
		return fmt.Errorf("symbol with empty name")
	}
	if _, dup := t.syms[s.Name]; dup {
		return fmt.Errorf("duplicate symbol %q", s.Name)
	}
	if s.Prereqs != "" {
		if _, err := lex.Tokenize(s.Prereqs); err != nil {
			return fmt.Errorf("symbol %q: prerequisites %q: %v", s.Name, s.Prereqs, err)
		}
	}
	t.syms[s.Name] = s
	return nil
}

// AddField adds a field stored in OpenFlow bits loc (use of.Whole(f) for a
// whole field).
func (t *Table) AddField(name string, loc of.Subfield, o FieldOpts) (*Symbol, error) {
	if !loc.Field.Valid() || loc.Ofs < 0 || loc.Bits() <= 0 || loc.Ofs+loc.Bits() > loc.Field.Width() {
		return nil, fmt.Errorf("field %q: invalid OpenFlow location %v", name, loc)
	}
	loc.NBits = loc.Bits()
	s := &Symbol{
		Name: name, Kind: Field, Width: loc.NBits, OF: loc,
		Prereqs: o.Prereqs, String: o.String, Writable: o.Writable,
		Format: loc.Field.Format(),
	}
	if o.FormatSet {
		s.Format = o.Format
	}
	if o.Nominal || o.String || !loc.Field.Maskable() {
		s.Level = Nominal
	}
	return s, t.add(s)
}

// AddSubfield adds name as bits lo..hi (inclusive) of field parent.
// Writable follows the parent unless readOnly.
func (t *Table) AddSubfield(name, parent string, lo, hi int, prereqs string, readOnly bool) (*Symbol, error) {
	p, ok := t.syms[parent]
	if !ok {
		return nil, fmt.Errorf("subfield %q: unknown parent %q", name, parent)
	}
	if p.Kind != Field || p.Level != Ordinal {
		return nil, fmt.Errorf("subfield %q: parent %q must be an ordinal field", name, parent)
	}
	if lo < 0 || hi < lo || hi >= p.Width {
		return nil, fmt.Errorf("subfield %q: bits %d..%d outside %d-bit %q", name, lo, hi, p.Width, parent)
	}
	s := &Symbol{
		Name: name, Kind: Subfield, Width: hi - lo + 1,
		OF:     of.Subfield{Field: p.OF.Field, Ofs: p.OF.Ofs + lo, NBits: hi - lo + 1},
		Parent: p, Lo: lo, Hi: hi, Prereqs: prereqs, Writable: p.Writable && !readOnly,
		Level: Ordinal, Format: of.FormatHex,
	}
	// Small subfields are numbers (vlan.vid, ct_mark.ecmp_reply_port), 48-bit
	// ones MAC addresses (ct_label.ecmp_reply_eth), the rest bit patterns.
	switch {
	case s.Width <= 16 || p.Format == of.FormatDecimal:
		s.Format = of.FormatDecimal
	case s.Width == 48:
		s.Format = of.FormatMAC
	}
	return s, t.add(s)
}

// AddPredicate adds name as shorthand for expansion. Its level is Nominal if
// the expansion names a nominal symbol, else Boolean.
func (t *Table) AddPredicate(name, expansion string) (*Symbol, error) {
	toks, err := lex.Tokenize(expansion)
	if err != nil {
		return nil, fmt.Errorf("predicate %q: %v", name, err)
	}
	s := &Symbol{Name: name, Kind: Predicate, Width: 1, Expansion: expansion, Level: Boolean, Format: of.FormatDecimal}
	for _, tok := range toks {
		if tok.Kind != lex.Ident {
			continue
		}
		ref, ok := t.syms[tok.Str]
		if !ok {
			return nil, fmt.Errorf("predicate %q: unknown symbol %q (define it first)", name, tok.Str)
		}
		if ref.Level == Nominal {
			s.Level = Nominal
		}
	}
	return s, t.add(s)
}

// Read returns the value of symbol s (a field or subfield) in packet p,
// right-aligned. String fields return the key stored in their register.
func (s *Symbol) Read(p *of.Packet) bits.U128 { return p.GetSub(s.OF) }

// Write stores the low Width bits of v into symbol s in packet p.
func (s *Symbol) Write(p *of.Packet, v bits.U128) { p.SetSub(s.OF, v) }

// Slice returns the OpenFlow location of bits lo..hi (inclusive) of field
// or subfield s.
func (s *Symbol) Slice(lo, hi int) of.Subfield {
	return of.Subfield{Field: s.OF.Field, Ofs: s.OF.Ofs + lo, NBits: hi - lo + 1}
}
