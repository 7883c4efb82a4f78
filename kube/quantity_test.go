package kube

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// written is q as the official type writes it in a manifest.
func written(t *testing.T, q resource.Quantity) string {
	t.Helper()
	b, err := q.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s, err := strconv.Unquote(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quantityValues() []int64 {
	var vs []int64
	for v := int64(0); v <= 5000; v++ {
		vs = append(vs, v)
	}
	for e := 10; e <= 62; e++ {
		p := int64(1) << e
		vs = append(vs, p-1, p, p+1, 3*p/2, 5*(p/1024), 1000*(p>>10))
	}
	for p := int64(1000); p <= 1e18; p *= 10 {
		vs = append(vs, p-1, p, p+1, 15*p/10, 1024*p)
	}
	vs = append(vs, math.MaxInt64, math.MaxInt64-1, 64<<20, 256<<20, 512<<20, 128<<20, 16<<20, 1<<30)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		vs = append(vs, r.Int64N(1<<r.IntN(63)+1))
	}
	return vs
}

func TestBytesAndMilliCPUAsResourceWritesThem(t *testing.T) {
	for _, v := range quantityValues() {
		if v < 0 {
			continue
		}
		if got, want := string(bytesQuantity(v)), written(t, *resource.NewQuantity(v, resource.BinarySI)); got != want {
			t.Errorf("bytes %d: %s, resource.Quantity writes %s", v, got, want)
		}
		if got, want := string(milliCPU(v)), written(t, *resource.NewMilliQuantity(v, resource.DecimalSI)); got != want {
			t.Errorf("milli cpu %d: %s, resource.Quantity writes %s", v, got, want)
		}
	}
}

// claimSizes are claim sizes users write, and spellings where resource.Quantity keeps or
// rewrites the user's form.
var claimSizes = []string{
	"0", "0Gi", "0.0", "0.5Gi", "0.5", "0.1", "1", "1Gi", "10Gi", "1024Mi", "1536Mi", "1.5Gi",
	"1.3Gi", "2G", "500M", "1500M", "15000M", "1.5G", "1.500k", "1.234k", "1.000001M", "100k",
	"1000", "1023", "1024", "1025", "8Gi", "9Gi", "1025Ki", "2049Ki", "1Ki", "1Ei", "7Ei",
	"8Ei", "1E", "9E", "9.2E", "500m", "1m", "1u", "1n", "0.5n", "1.2345678901n", "123456789012345678",
	"1234567890123456789", "9223372036854775807", "0.000000001", "0.0000000001", "1.0", "1.00",
	"12.5M", "100Ti", "3Pi", "1.25Ti",
}

func TestParseQuantityAsResourceWritesIt(t *testing.T) {
	inputs := append([]string(nil), claimSizes...)
	r := rand.New(rand.NewPCG(3, 4))
	suffixes := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		return b.String()
	}
	for range 50000 {
		num := strconv.Itoa(1+r.IntN(9)) + digits(r.IntN(20))
		if r.IntN(8) == 0 {
			num = "0"
		}
		if r.IntN(3) == 0 && num != "0" {
			num += "000" // trailing zeros
		}
		s := num
		if r.IntN(2) == 0 {
			s += "." + digits(1+r.IntN(12))
		}
		inputs = append(inputs, s+suffixes[r.IntN(len(suffixes))])
	}
	for _, s := range inputs {
		got, err := parseQuantity(s)
		want, perr := resource.ParseQuantity(s)
		if perr != nil {
			if err == nil {
				t.Errorf("%q: accepted as %s, resource.ParseQuantity refuses it: %v", s, got, perr)
			}
			continue
		}
		if err != nil {
			if !tooLarge(s) {
				t.Errorf("%q: refused: %v", s, err)
			}
			continue
		}
		if w := written(t, want); string(got) != w {
			t.Errorf("%q: %s, resource.Quantity writes %s", s, got, w)
		}
	}
}

// tooLarge says whether s, a number with a suffix, is more than 2^63-1 (which
// resource.Quantity caps or writes without a suffix, and parseQuantity refuses).
func tooLarge(s string) bool {
	i := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if i < 0 {
		i = len(s)
	}
	v, ok := new(big.Rat).SetString(s[:i])
	if !ok {
		return false
	}
	mult := map[string]*big.Int{"": big.NewInt(1)}
	for k, e := range map[string]int{"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60} {
		mult[k] = new(big.Int).Lsh(big.NewInt(1), uint(e))
	}
	for k, e := range map[string]int64{"k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18} {
		mult[k] = new(big.Int).Exp(big.NewInt(10), big.NewInt(e), nil)
	}
	if e, ok := map[string]int64{"n": 9, "u": 6, "m": 3}[s[i:]]; ok {
		v.Quo(v, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(e), nil)))
	} else if m, ok := mult[s[i:]]; ok {
		v.Mul(v, new(big.Rat).SetInt(m))
	} else {
		return false
	}
	return v.Cmp(new(big.Rat).SetInt64(math.MaxInt64)) > 0
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range claimSizes {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseQuantity(s)
		if err != nil {
			return
		}
		want, perr := resource.ParseQuantity(s)
		if perr != nil {
			t.Fatalf("%q: accepted as %s, resource.ParseQuantity refuses it: %v", s, got, perr)
		}
		if w := written(t, want); string(got) != w {
			t.Fatalf("%q: %s, resource.Quantity writes %s", s, got, w)
		}
	})
}

func TestParseQuantityRefusesWhatIsNoSize(t *testing.T) {
	for _, s := range []string{"", "lots", "-1Gi", "+1Gi", "1e9", "1E3", "01Gi", ".5Gi", "1.Gi", "1 Gi", "1gi", "1GiB", "1Kib", "Gi", "10Ei", "9.3E"} {
		q, err := parseQuantity(s)
		if err == nil {
			t.Errorf("%q: accepted as %s", s, q)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(s)) {
			t.Errorf("%q: error does not name the value: %v", s, err)
		}
	}
}

func TestRenderRefusesABadClaimSize(t *testing.T) {
	_, err := Render(webDBCache(), Options{ClaimSize: "lots"})
	if err == nil || !strings.Contains(err.Error(), `claim size: quantity "lots"`) {
		t.Fatalf("got %v", err)
	}
	res, err := Render(webDBCache(), Options{ClaimSize: "1536Mi"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Objects {
		if c, ok := o.(*PersistentVolumeClaim); ok && c.Spec.Resources.Requests[ResourceStorage] != "1536Mi" {
			t.Errorf("claim %s requests %v", c.Name, c.Spec.Resources.Requests)
		}
	}
}
