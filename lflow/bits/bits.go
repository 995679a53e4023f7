// Package bits provides U128, the fixed-width value type the logical-flow
// language uses for every field (the widest fields — ip6.*, xxreg* — are 128
// bits). Bit 0 is the least significant bit.
package bits

import (
	"fmt"
	mbits "math/bits"
)

// U128 is an unsigned 128-bit integer.
type U128 struct{ Hi, Lo uint64 }

// Zero is the zero value, spelled out for readability.
var Zero = U128{}

// From64 returns v as a U128.
func From64(v uint64) U128 { return U128{Lo: v} }

// Ones returns a value with the low n bits set (0 <= n <= 128).
func Ones(n int) U128 {
	switch {
	case n <= 0:
		return U128{}
	case n >= 128:
		return U128{^uint64(0), ^uint64(0)}
	case n >= 64:
		return U128{Hi: (uint64(1) << uint(n-64)) - 1, Lo: ^uint64(0)}
	default:
		return U128{Lo: (uint64(1) << uint(n)) - 1}
	}
}

// Range returns a value with bits [lo, hi] (inclusive) set.
func Range(lo, hi int) U128 { return Ones(hi + 1).AndNot(Ones(lo)) }

func (a U128) And(b U128) U128    { return U128{a.Hi & b.Hi, a.Lo & b.Lo} }
func (a U128) Or(b U128) U128     { return U128{a.Hi | b.Hi, a.Lo | b.Lo} }
func (a U128) Xor(b U128) U128    { return U128{a.Hi ^ b.Hi, a.Lo ^ b.Lo} }
func (a U128) AndNot(b U128) U128 { return U128{a.Hi &^ b.Hi, a.Lo &^ b.Lo} }
func (a U128) Not() U128          { return U128{^a.Hi, ^a.Lo} }
func (a U128) IsZero() bool       { return a.Hi == 0 && a.Lo == 0 }

// Lsh shifts left by n bits (bits shifted past bit 127 are lost).
func (a U128) Lsh(n uint) U128 {
	switch {
	case n >= 128:
		return U128{}
	case n >= 64:
		return U128{Hi: a.Lo << (n - 64)}
	case n == 0:
		return a
	default:
		return U128{Hi: a.Hi<<n | a.Lo>>(64-n), Lo: a.Lo << n}
	}
}

// Rsh shifts right by n bits.
func (a U128) Rsh(n uint) U128 {
	switch {
	case n >= 128:
		return U128{}
	case n >= 64:
		return U128{Lo: a.Hi >> (n - 64)}
	case n == 0:
		return a
	default:
		return U128{Hi: a.Hi >> n, Lo: a.Lo>>n | a.Hi<<(64-n)}
	}
}

// Bit reports whether bit i is set.
func (a U128) Bit(i int) bool {
	if i >= 64 {
		return a.Hi>>(uint(i)-64)&1 == 1
	}
	return a.Lo>>uint(i)&1 == 1
}

// SetBit returns a with bit i set to v.
func (a U128) SetBit(i int, v bool) U128 {
	m := From64(1).Lsh(uint(i))
	if v {
		return a.Or(m)
	}
	return a.AndNot(m)
}

// Cmp returns -1, 0 or +1 as a is less than, equal to or greater than b.
func (a U128) Cmp(b U128) int {
	switch {
	case a.Hi < b.Hi:
		return -1
	case a.Hi > b.Hi:
		return 1
	case a.Lo < b.Lo:
		return -1
	case a.Lo > b.Lo:
		return 1
	}
	return 0
}

// Add returns a+b modulo 2^128.
func (a U128) Add(b U128) U128 {
	lo, c := mbits.Add64(a.Lo, b.Lo, 0)
	hi, _ := mbits.Add64(a.Hi, b.Hi, c)
	return U128{hi, lo}
}

// Sub returns a-b modulo 2^128.
func (a U128) Sub(b U128) U128 {
	lo, c := mbits.Sub64(a.Lo, b.Lo, 0)
	hi, _ := mbits.Sub64(a.Hi, b.Hi, c)
	return U128{hi, lo}
}

// OnesCount returns the number of set bits.
func (a U128) OnesCount() int { return mbits.OnesCount64(a.Hi) + mbits.OnesCount64(a.Lo) }

// TrailingZeros returns the number of trailing zero bits (128 for zero).
func (a U128) TrailingZeros() int {
	if a.Lo != 0 {
		return mbits.TrailingZeros64(a.Lo)
	}
	return 64 + mbits.TrailingZeros64(a.Hi)
}

// BitLen returns the minimum number of bits needed to represent a (0 for zero).
func (a U128) BitLen() int {
	if a.Hi != 0 {
		return 64 + mbits.Len64(a.Hi)
	}
	return mbits.Len64(a.Lo)
}

// FitsIn reports whether a can be represented in width bits.
func (a U128) FitsIn(width int) bool { return a.BitLen() <= width }

// Bytes returns a as 16 big-endian bytes.
func (a U128) Bytes() [16]byte {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(a.Hi >> (56 - 8*uint(i)))
		b[8+i] = byte(a.Lo >> (56 - 8*uint(i)))
	}
	return b
}

// FromBytes interprets up to 16 big-endian bytes as an unsigned integer.
func FromBytes(b []byte) U128 {
	var v U128
	for _, c := range b {
		v = v.Lsh(8).Or(From64(uint64(c)))
	}
	return v
}

// Hex returns a in hexadecimal with a 0x prefix and no leading zeros.
func (a U128) Hex() string {
	if a.Hi == 0 {
		return fmt.Sprintf("%#x", a.Lo)
	}
	return fmt.Sprintf("%#x%016x", a.Hi, a.Lo)
}

// String returns a in decimal if it fits in 64 bits, else in hexadecimal.
func (a U128) String() string {
	if a.Hi == 0 {
		return fmt.Sprintf("%d", a.Lo)
	}
	return a.Hex()
}
