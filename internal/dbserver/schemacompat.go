package dbserver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// SchemaDifferences compares the tables and columns defined in ours with the
// same tables and columns in reference (for example OVN's installed schema) and
// returns one human-readable line per difference, sorted. Tables and columns
// that exist only in reference are not differences: ours may be a subset.
// A table or column that exists only in ours is reported. Column types are
// compared after normalisation (so "string" equals {"key":"string"} and an
// omitted refType equals "strong"); isRoot, maxRows, indexes, ephemeral and
// mutable are compared too.
func SchemaDifferences(ours, reference []byte) ([]string, error) {
	var a, b rawSchema
	if err := json.Unmarshal(ours, &a); err != nil {
		return nil, fmt.Errorf("parse our schema: %w", err)
	}
	if err := json.Unmarshal(reference, &b); err != nil {
		return nil, fmt.Errorf("parse reference schema: %w", err)
	}
	var diffs []string
	if a.Name != b.Name {
		diffs = append(diffs, fmt.Sprintf("database name %q, reference has %q", a.Name, b.Name))
	}
	for tname, ta := range a.Tables {
		tb, ok := b.Tables[tname]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("table %s: not in reference schema", tname))
			continue
		}
		if ta.IsRoot != tb.IsRoot {
			diffs = append(diffs, fmt.Sprintf("table %s: isRoot %v, reference %v", tname, ta.IsRoot, tb.IsRoot))
		}
		if ta.MaxRows != tb.MaxRows {
			diffs = append(diffs, fmt.Sprintf("table %s: maxRows %d, reference %d", tname, ta.MaxRows, tb.MaxRows))
		}
		if ia, ib := normIndexes(ta.Indexes), normIndexes(tb.Indexes); !reflect.DeepEqual(ia, ib) {
			diffs = append(diffs, fmt.Sprintf("table %s: indexes %v, reference %v", tname, ia, ib))
		}
		for cname, ca := range ta.Columns {
			cb, ok := tb.Columns[cname]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("column %s.%s: not in reference schema", tname, cname))
				continue
			}
			na, err := normType(ca.Type)
			if err != nil {
				return nil, fmt.Errorf("our column %s.%s: %w", tname, cname, err)
			}
			nb, err := normType(cb.Type)
			if err != nil {
				return nil, fmt.Errorf("reference column %s.%s: %w", tname, cname, err)
			}
			if !reflect.DeepEqual(na, nb) {
				ja, _ := json.Marshal(na)
				jb, _ := json.Marshal(nb)
				diffs = append(diffs, fmt.Sprintf("column %s.%s: type %s, reference %s", tname, cname, ja, jb))
			}
			if ca.Ephemeral != cb.Ephemeral {
				diffs = append(diffs, fmt.Sprintf("column %s.%s: ephemeral %v, reference %v", tname, cname, ca.Ephemeral, cb.Ephemeral))
			}
			if ca.mutable() != cb.mutable() {
				diffs = append(diffs, fmt.Sprintf("column %s.%s: mutable %v, reference %v", tname, cname, ca.mutable(), cb.mutable()))
			}
		}
	}
	sort.Strings(diffs)
	return diffs, nil
}

type rawSchema struct {
	Name   string              `json:"name"`
	Tables map[string]rawTable `json:"tables"`
}

type rawTable struct {
	IsRoot  bool                 `json:"isRoot"`
	MaxRows int                  `json:"maxRows"`
	Indexes [][]string           `json:"indexes"`
	Columns map[string]rawColumn `json:"columns"`
}

type rawColumn struct {
	Type      json.RawMessage `json:"type"`
	Ephemeral bool            `json:"ephemeral"`
	Mutable   *bool           `json:"mutable"`
}

func (c rawColumn) mutable() bool { return c.Mutable == nil || *c.Mutable }

// normBase is the canonical form of an OVSDB <base-type>.
type normBase struct {
	Type       string   `json:"type"`
	Enum       []string `json:"enum,omitempty"`
	MinInteger *int64   `json:"minInteger,omitempty"`
	MaxInteger *int64   `json:"maxInteger,omitempty"`
	MinReal    *float64 `json:"minReal,omitempty"`
	MaxReal    *float64 `json:"maxReal,omitempty"`
	MinLength  *int64   `json:"minLength,omitempty"`
	MaxLength  *int64   `json:"maxLength,omitempty"`
	RefTable   string   `json:"refTable,omitempty"`
	RefType    string   `json:"refType,omitempty"`
}

// normColumnType is the canonical form of an OVSDB <type>.
type normColumnType struct {
	Key   normBase  `json:"key"`
	Value *normBase `json:"value,omitempty"`
	Min   int       `json:"min"`
	Max   string    `json:"max"`
}

func normIndexes(ix [][]string) []string {
	out := make([]string, 0, len(ix))
	for _, cols := range ix {
		c := append([]string(nil), cols...)
		sort.Strings(c)
		out = append(out, strings.Join(c, ","))
	}
	sort.Strings(out)
	return out
}

func normType(raw json.RawMessage) (normColumnType, error) {
	var atomic string
	if json.Unmarshal(raw, &atomic) == nil {
		return normColumnType{Key: normBase{Type: atomic}, Min: 1, Max: "1"}, nil
	}
	var t struct {
		Key   json.RawMessage `json:"key"`
		Value json.RawMessage `json:"value"`
		Min   *int            `json:"min"`
		Max   json.RawMessage `json:"max"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return normColumnType{}, fmt.Errorf("bad type %s: %w", raw, err)
	}
	out := normColumnType{Min: 1, Max: "1"}
	var err error
	if out.Key, err = normBaseType(t.Key); err != nil {
		return out, err
	}
	if len(t.Value) > 0 {
		v, err := normBaseType(t.Value)
		if err != nil {
			return out, err
		}
		out.Value = &v
	}
	if t.Min != nil {
		out.Min = *t.Min
	}
	if len(t.Max) > 0 {
		out.Max = strings.Trim(string(t.Max), `"`)
	}
	return out, nil
}

func normBaseType(raw json.RawMessage) (normBase, error) {
	var atomic string
	if json.Unmarshal(raw, &atomic) == nil {
		return normBase{Type: atomic}, nil
	}
	var b struct {
		Type       string          `json:"type"`
		Enum       json.RawMessage `json:"enum"`
		MinInteger *int64          `json:"minInteger"`
		MaxInteger *int64          `json:"maxInteger"`
		MinReal    *float64        `json:"minReal"`
		MaxReal    *float64        `json:"maxReal"`
		MinLength  *int64          `json:"minLength"`
		MaxLength  *int64          `json:"maxLength"`
		RefTable   string          `json:"refTable"`
		RefType    string          `json:"refType"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return normBase{}, fmt.Errorf("bad base type %s: %w", raw, err)
	}
	out := normBase{Type: b.Type, MinInteger: b.MinInteger, MaxInteger: b.MaxInteger, MinReal: b.MinReal,
		MaxReal: b.MaxReal, MinLength: b.MinLength, MaxLength: b.MaxLength, RefTable: b.RefTable, RefType: b.RefType}
	if out.RefTable != "" && out.RefType == "" {
		out.RefType = "strong"
	}
	if len(b.Enum) > 0 {
		// An enum is either a single atom or ["set", [atoms...]].
		var set []json.RawMessage
		if json.Unmarshal(b.Enum, &set) == nil && len(set) == 2 && string(set[0]) == `"set"` {
			var atoms []json.RawMessage
			if err := json.Unmarshal(set[1], &atoms); err != nil {
				return out, fmt.Errorf("bad enum %s: %w", b.Enum, err)
			}
			for _, a := range atoms {
				out.Enum = append(out.Enum, string(a))
			}
		} else {
			out.Enum = []string{string(b.Enum)}
		}
		sort.Strings(out.Enum)
	}
	return out, nil
}

// SchemaMissing lists the tables and columns that reference defines and ours
// does not, sorted ("table T" or "column T.C"). Real OVN tools warn about
// each of them ("database lacks ... table") but keep working.
func SchemaMissing(ours, reference []byte) ([]string, error) {
	var a, b rawSchema
	if err := json.Unmarshal(ours, &a); err != nil {
		return nil, fmt.Errorf("parse our schema: %w", err)
	}
	if err := json.Unmarshal(reference, &b); err != nil {
		return nil, fmt.Errorf("parse reference schema: %w", err)
	}
	var out []string
	for tname, tb := range b.Tables {
		ta, ok := a.Tables[tname]
		if !ok {
			out = append(out, "table "+tname)
			continue
		}
		for cname := range tb.Columns {
			if _, ok := ta.Columns[cname]; !ok {
				out = append(out, "column "+tname+"."+cname)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
