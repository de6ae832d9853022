// The benchmarks are an external test package so that they can measure at the production argon2id
// parameters, which internal/config (an importer of this package) owns.
package password_test

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/password"
)

// The login goal (docs/BENCHMARKS.md#targets) is cores ÷ hash time: BenchmarkVerify gives the hash time and
// BenchmarkVerifyParallel the throughput the pool actually reaches (verifies/s).

// newProductionHasher returns a Hasher at the default parameters, with a pool of GOMAXPROCS.
func newProductionHasher(tb testing.TB) *password.Hasher {
	tb.Helper()
	return password.New(config.Default().Password, 0, nil)
}

func hashOf(tb testing.TB, h *password.Hasher, pw string) string {
	tb.Helper()
	encoded, err := h.Hash(context.Background(), pw)
	if err != nil {
		tb.Fatal(err)
	}
	return encoded
}

func BenchmarkHash(b *testing.B) {
	h := newProductionHasher(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newProductionHasher(b)
	encoded := hashOf(b, h, "correct horse battery staple")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, encoded, "correct horse battery staple"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	h := newProductionHasher(b)
	encoded := hashOf(b, h, "correct horse battery staple")
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4) // more callers than slots, as under load: the pool, not the caller count, sets the pace
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(ctx, encoded, "correct horse battery staple"); err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkVerifyBcryptCost10 is what a not-yet-upgraded legacy account costs, for comparison with
// an argon2id verification: with such accounts stored, Pad holds every login answer this long.
func BenchmarkVerifyBcryptCost10(b *testing.B) {
	h := newProductionHasher(b)
	encoded, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), 10)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, string(encoded), "correct horse battery staple"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkCheckPolicy(b *testing.B) {
	password.CheckPolicy("warm the list") // build the lookup set outside the measurement
	b.ReportAllocs()
	for b.Loop() {
		if err := password.CheckPolicy("Correct Horse Battery Staple"); err != nil {
			b.Fatal(err)
		}
	}
}
