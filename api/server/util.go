package server

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// fieldSet is the set of proto field names an update writes.
type fieldSet map[string]bool

// updateFields checks mask against the settable fields of a resource; an
// empty mask means all of them.
func updateFields(resource string, mask *fieldmaskpb.FieldMask, settable ...string) (fieldSet, error) {
	fs := fieldSet{}
	if mask == nil || len(mask.Paths) == 0 {
		for _, f := range settable {
			fs[f] = true
		}
		return fs, nil
	}
	for _, p := range mask.Paths {
		if !slices.Contains(settable, p) {
			return nil, badField(resource, "update_mask", p, "not a settable field (settable: %v)", settable)
		}
		fs[p] = true
	}
	return fs, nil
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// optString maps "" to nil (an empty optional column).
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sortedCopy returns a sorted copy of s.
func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
