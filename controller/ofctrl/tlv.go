package ofctrl

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// TLVMap maps one Geneve option (class, type, length in bytes) to a
// tun_metadataN field, as `ovs-ofctl add-tlv-map` takes it.
type TLVMap struct {
	Class uint16
	Type  uint8
	Len   uint8  // option data length in bytes (multiple of 4, at most 124)
	Field string // "tun_metadata0".."tun_metadata63"
}

// String renders the mapping as add-tlv-map takes it:
// "{class=0x102,type=0x80,len=4}->tun_metadata0".
func (m TLVMap) String() string {
	return fmt.Sprintf("{class=%#x,type=%#x,len=%d}->%s", m.Class, m.Type, m.Len, m.Field)
}

var (
	tlvSpec  = regexp.MustCompile(`^\{class=(0x[0-9a-fA-F]+|\d+),type=(0x[0-9a-fA-F]+|\d+),len=(\d+)\}->(tun_metadata\d+)$`)
	tlvField = regexp.MustCompile(`^tun_metadata(\d+)$`)
)

// ParseTLVMap parses "{class=0x102,type=0x80,len=4}->tun_metadata0".
func ParseTLVMap(s string) (TLVMap, error) {
	m := tlvSpec.FindStringSubmatch(strings.ReplaceAll(s, " ", ""))
	if m == nil {
		return TLVMap{}, fmt.Errorf("tlv map %q: want {class=C,type=T,len=L}->tun_metadataN", s)
	}
	return newTLVMap(s, m[1], m[2], m[3], m[4])
}

func newTLVMap(s, class, typ, length, field string) (TLVMap, error) {
	c, err := strconv.ParseUint(class, 0, 16)
	if err != nil {
		return TLVMap{}, fmt.Errorf("tlv map %q: class %q: %v", s, class, err)
	}
	t, err := strconv.ParseUint(typ, 0, 8)
	if err != nil {
		return TLVMap{}, fmt.Errorf("tlv map %q: type %q: %v", s, typ, err)
	}
	l, err := strconv.ParseUint(length, 10, 8)
	if err != nil || l == 0 || l%4 != 0 || l > 124 {
		return TLVMap{}, fmt.Errorf("tlv map %q: length %q: want a multiple of 4 in 4..124", s, length)
	}
	fm := tlvField.FindStringSubmatch(field)
	if fm == nil {
		return TLVMap{}, fmt.Errorf("tlv map %q: field %q: want tun_metadataN", s, field)
	}
	if n, _ := strconv.Atoi(fm[1]); n > 63 {
		return TLVMap{}, fmt.Errorf("tlv map %q: field %q: at most tun_metadata63", s, field)
	}
	return TLVMap{Class: uint16(c), Type: uint8(t), Len: uint8(l), Field: field}, nil
}

// ParseDumpTLVMap parses `ovs-ofctl -O OpenFlow15 dump-tlv-map BR` output:
// the rows after the " ------" separator are "class type length field".
func ParseDumpTLVMap(out string) ([]TLVMap, error) {
	var maps []TLVMap
	inTable := false
	for n, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "------") {
			inTable = true
			continue
		}
		if !inTable || len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("dump-tlv-map line %d %q: want class type length field", n+1, line)
		}
		m, err := newTLVMap(line, f[0], f[1], f[2], f[3])
		if err != nil {
			return nil, fmt.Errorf("dump-tlv-map line %d: %w", n+1, err)
		}
		maps = append(maps, m)
	}
	return maps, nil
}
