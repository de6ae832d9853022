package token

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"

	"github.com/fluxstudio/fluxauth"
)

// Targets (docs/BENCHMARKS.md#targets), in process: sign < 0.1 ms, verify < 0.05 ms.

func benchIssuer(b *testing.B, alg string) *Issuer {
	b.Helper()
	if alg == AlgHS256 {
		return mustIssuer(b, Config{HMACSecret: testSecret, Clock: fluxauth.SystemClock{}})
	}
	return mustIssuer(b, Config{Keys: mustKeySet(b, nil), Clock: fluxauth.SystemClock{}})
}

func benchmarkSign(b *testing.B, alg string) {
	iss := benchIssuer(b, alg)
	c := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkVerify measures a full verification: the verified-token cache is off (see
// BenchmarkVerifyES256Cached for the repeat presentation of one token).
func benchmarkVerify(b *testing.B, alg string) {
	iss := benchIssuer(b, alg)
	iss.cache = nil
	tok := mustSign(b, iss, testClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkVerifyParallel(b *testing.B, alg string) {
	iss := benchIssuer(b, alg)
	iss.cache = nil
	tok := mustSign(b, iss, testClaims())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := iss.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSignES256(b *testing.B)           { benchmarkSign(b, AlgES256) }
func BenchmarkSignHS256(b *testing.B)           { benchmarkSign(b, AlgHS256) }
func BenchmarkVerifyES256(b *testing.B)         { benchmarkVerify(b, AlgES256) }
func BenchmarkVerifyHS256(b *testing.B)         { benchmarkVerify(b, AlgHS256) }
func BenchmarkVerifyES256Parallel(b *testing.B) { benchmarkVerifyParallel(b, AlgES256) }
func BenchmarkVerifyHS256Parallel(b *testing.B) { benchmarkVerifyParallel(b, AlgHS256) }

// BenchmarkECDSAP256VerifyFloor is the bare crypto/ecdsa verification Verify cannot go below; the
// gap between it and BenchmarkVerifyES256 is what JWT parsing and claim checks cost.
func BenchmarkECDSAP256VerifyFloor(b *testing.B) {
	priv := currentPrivateKey(mustKeySet(b, nil))
	hash := sha256.Sum256([]byte("header.payload"))
	sig, err := ecdsa.SignASN1(nil, priv, hash[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&priv.PublicKey, hash[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkNewRefreshToken(b *testing.B) {
	m := testMinter(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.New(nil, testSession); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRefreshSuccessor(b *testing.B) {
	m := testMinter(b, 1)
	p, _, _ := m.New(nil, testSession)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Successor(p, testSession); err != nil {
			b.Fatal(err)
		}
	}
}
