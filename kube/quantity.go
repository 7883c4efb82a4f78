package kube

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Quantities as Kubernetes writes them (k8s.io/apimachinery's resource.Quantity): an amount in
// the canonical form for its format, binary ("512Mi", for byte counts) or decimal ("500m",
// "1G"). Only what kube emits is here: byte counts, thousandths of a cpu, and the claim size
// the user gives, which is parsed and written back as the official type would (the tests compare
// both with resource.Quantity over many values).

// bytesQuantity is n bytes, as resource.NewQuantity(n, resource.BinarySI) writes it: 256Mi, 1500, 1k.
func bytesQuantity(n int64) Quantity {
	return Quantity(canonical(new(big.Int).Mul(big.NewInt(n), nanoPerUnit), true))
}

// milliCPU is m thousandths of a cpu, as resource.NewMilliQuantity(m, resource.DecimalSI)
// writes it: 500m, 1, 1500m.
func milliCPU(m int64) Quantity {
	return Quantity(canonical(new(big.Int).Mul(big.NewInt(m), big.NewInt(1e6)), false))
}

var nanoPerUnit = big.NewInt(1e9)

// suffixes are the quantity suffixes and their powers (of 2 for Ki..Ei, else of 10).
var suffixes = []struct {
	s   string
	exp int
}{
	{"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}, {"Pi", 50}, {"Ei", 60},
	{"n", -9}, {"u", -6}, {"m", -3}, {"k", 3}, {"M", 6}, {"G", 9}, {"T", 12}, {"P", 15}, {"E", 18},
}

// splitQuantity splits the claim sizes we accept into their parts: a plain decimal number (no
// sign, no exponent, no superfluous leading zero) and an optional suffix with its power.
func splitQuantity(s string) (num, frac string, exp int, binary, ok bool) {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x.s) {
			s, exp, binary = s[:len(s)-len(x.s)], x.exp, strings.HasSuffix(x.s, "i")
			break
		}
	}
	num, frac, dot := strings.Cut(s, ".")
	ok = isDigits(num) && (num == "0" || num[0] != '0') && (!dot || isDigits(frac))
	return num, frac, exp, binary, ok
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// parseQuantity checks a quantity given by the user (a claim size: 1Gi, 500Mi, 10G) and
// returns it as Kubernetes writes it back: resource.MustParse(s) marshalled.
func parseQuantity(s string) (Quantity, error) {
	num, frac, exp, binary, ok := splitQuantity(s)
	if !ok {
		return "", fmt.Errorf("quantity %q: want a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei or k, M, G, T, P, E (e.g. 1Gi, 500Mi, 10G)", s)
	}

	// The exact value in units of 1e-9, rounded up to a whole number as ParseQuantity rounds
	// what it cannot hold.
	digits, _ := new(big.Int).SetString(num+frac, 10)
	v := new(big.Rat).SetInt(digits)
	v.Mul(v, new(big.Rat).SetInt(nanoPerUnit))
	v.Quo(v, new(big.Rat).SetInt(pow(10, len(frac))))
	switch {
	case binary:
		v.Mul(v, new(big.Rat).SetInt(pow(2, exp)))
	case exp >= 0:
		v.Mul(v, new(big.Rat).SetInt(pow(10, exp)))
	default:
		v.Quo(v, new(big.Rat).SetInt(pow(10, -exp)))
	}
	nano := new(big.Int).Quo(v.Num(), v.Denom())
	if !v.IsInt() {
		nano.Add(nano, big.NewInt(1))
	}
	if nano.Cmp(new(big.Int).Mul(big.NewInt(math.MaxInt64), nanoPerUnit)) > 0 {
		return "", fmt.Errorf("quantity %q: too large (more than 2^63-1)", s)
	}
	// A decimal amount that ParseQuantity holds exactly in an int64 with a scale that is a
	// multiple of 3 keeps the user's spelling (1.500k stays 1.500k); every other amount is
	// written canonically.
	// (ParseQuantity's digits without leading zeros are num+frac: num has none but "0".)
	if !binary && nano.Sign() != 0 {
		shifted, scale := num+frac, exp-len(frac)
		if len(shifted) <= 18 && scale >= -9 && scale%3 == 0 && !strings.HasSuffix(shifted, "000") && shifted[0] != '0' {
			return Quantity(s), nil
		}
	}
	return Quantity(canonical(nano, binary)), nil
}

func pow(base, exp int) *big.Int {
	return new(big.Int).Exp(big.NewInt(int64(base)), big.NewInt(int64(exp)), nil)
}

// suffix is the suffix of a power of 10 (a multiple of 3, -9 to 18) or of 2 (10 to 60).
func suffix(exp int, binary bool) string {
	for _, x := range suffixes {
		if x.exp == exp && binary == strings.HasSuffix(x.s, "i") {
			return x.s
		}
	}
	return ""
}

// canonical writes an amount of nano units (at least 0, at most MaxInt64 units) in canonical
// form. Binary format needs a whole number of at least 1024 units (else the amount is written
// decimally, as Kubernetes does): the number with every factor 1024 moved into the suffix.
// Decimal format: the number with every factor 10 moved into the exponent, then the exponent
// lowered to a multiple of 3 that has a suffix.
func canonical(nano *big.Int, binary bool) string {
	if nano.Sign() == 0 {
		return "0"
	}
	if binary {
		units, rem := new(big.Int).QuoRem(nano, nanoPerUnit, new(big.Int))
		if rem.Sign() == 0 && units.Cmp(big.NewInt(1024)) >= 0 {
			n, e := units.Int64(), 0
			for n%1024 == 0 {
				n, e = n/1024, e+1
			}
			return fmt.Sprintf("%d%s", n, suffix(10*e, true))
		}
	}
	n, e := new(big.Int).Set(nano), -9
	ten := big.NewInt(10)
	for {
		q, r := new(big.Int).QuoRem(n, ten, new(big.Int))
		if r.Sign() != 0 {
			break
		}
		n, e = q, e+1
	}
	for e%3 != 0 {
		n.Mul(n, ten)
		e--
	}
	return n.String() + suffix(e, false)
}
