package bits

import (
	"flag"
	"math/big"
	"math/rand"
	"testing"
)

func toBig(a U128) *big.Int {
	b := a.Bytes()
	return new(big.Int).SetBytes(b[:])
}

func mod128(x *big.Int) *big.Int {
	m := new(big.Int).Lsh(big.NewInt(1), 128)
	return x.Mod(x, m)
}

// TestAgainstBigInt checks the arithmetic and shifts against math/big.
func TestAgainstBigInt(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 5000; i++ {
		a := U128{r.Uint64() >> uint(r.Intn(64)), r.Uint64() >> uint(r.Intn(64))}
		b := U128{r.Uint64() >> uint(r.Intn(64)), r.Uint64() >> uint(r.Intn(64))}
		n := uint(r.Intn(130))
		checks := []struct {
			name string
			got  U128
			want *big.Int
		}{
			{"add", a.Add(b), mod128(new(big.Int).Add(toBig(a), toBig(b)))},
			{"sub", a.Sub(b), mod128(new(big.Int).Sub(toBig(a), toBig(b)))},
			{"lsh", a.Lsh(n), mod128(new(big.Int).Lsh(toBig(a), n))},
			{"rsh", a.Rsh(n), new(big.Int).Rsh(toBig(a), n)},
			{"and", a.And(b), new(big.Int).And(toBig(a), toBig(b))},
		}
		for _, c := range checks {
			if toBig(c.got).Cmp(c.want) != 0 {
				t.Fatalf("%s(%v, %v, %d) = %v, want %v", c.name, a, b, n, toBig(c.got), c.want)
			}
		}
		if got, want := a.Cmp(b), toBig(a).Cmp(toBig(b)); got != want {
			t.Fatalf("Cmp(%v,%v) = %d, want %d", a, b, got, want)
		}
		if got, want := a.BitLen(), toBig(a).BitLen(); got != want {
			t.Fatalf("BitLen(%v) = %d, want %d", a, got, want)
		}
		if bs := a.Bytes(); FromBytes(bs[:]) != a {
			t.Fatalf("FromBytes(Bytes(%v)) differs", a)
		}
	}
}

func TestOnesAndRange(t *testing.T) {
	for n := 0; n <= 128; n++ {
		if got := Ones(n).OnesCount(); got != n {
			t.Fatalf("Ones(%d) has %d bits set", n, got)
		}
	}
	r := Range(60, 70)
	for i := 0; i < 128; i++ {
		if r.Bit(i) != (i >= 60 && i <= 70) {
			t.Fatalf("Range(60,70) bit %d = %v", i, r.Bit(i))
		}
	}
	if Range(3, 3).TrailingZeros() != 3 || Zero.TrailingZeros() != 128 {
		t.Fatal("TrailingZeros wrong")
	}
	if From64(5).SetBit(100, true).Bit(100) != true || From64(5).SetBit(0, false) != From64(4) {
		t.Fatal("SetBit wrong")
	}
	if got := (U128{Hi: 1, Lo: 2}).Hex(); got != "0x10000000000000002" {
		t.Fatalf("Hex = %s", got)
	}
}

// update is accepted (and unused) so that `go test ./lflow/... -update`,
// which regenerates the golden files of the other lflow packages, also runs here.
var _ = flag.Bool("update", false, "regenerate golden files (no golden files in this package)")
