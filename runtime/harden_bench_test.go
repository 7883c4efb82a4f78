package runtime

import "testing"

// BenchmarkSealedExe is what every create and exec pays for the CVE-2019-5736 protection: a
// copy of the running binary into a sealed memfd.
func BenchmarkSealedExe(b *testing.B) {
	for b.Loop() {
		f, _, err := sealedExe("", exeMinFD(10))
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
