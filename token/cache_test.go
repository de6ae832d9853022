package token

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

func TestVerifiedCacheNeverOutlivesTheToken(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	ks, err := GenerateKeySet(clock, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Config{Issuer: "i", Audience: "a", Keys: ks, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Sign(Claims{UserID: "u", SessionID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second verification is a cache hit
		if c, err := iss.Verify(tok); err != nil || c.UserID != "u" || c.SessionID != "s" {
			t.Fatalf("verify %d: %v %+v", i, err, c)
		}
	}
	if _, ok := iss.cache.get(tok, clock.Now()); !ok {
		t.Fatal("a verified token was not cached")
	}
	clock.Advance(DefaultTTL + DefaultLeeway + time.Second)
	if _, err := iss.Verify(tok); err == nil {
		t.Fatal("an expired token verified from the cache")
	}
	// A tampered token never hits, even though its prefix did.
	if _, err := iss.Verify(tok[:len(tok)-2] + "AA"); err == nil {
		t.Fatal("tampered token accepted")
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	c := newVerifiedCache(32)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		c.put(string(rune('a'+i%26))+time.Duration(i).String(), Claims{}, now.Add(time.Hour), now)
	}
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].m)
	}
	if total > 32 {
		t.Fatalf("%d entries, limit 32", total)
	}
}

func BenchmarkVerifyES256Cached(b *testing.B) {
	ks, _ := GenerateKeySet(nil, rand.Reader)
	iss, err := NewIssuer(Config{Issuer: "i", Audience: "a", Keys: ks})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, _ := iss.Sign(Claims{UserID: "u", SessionID: "s"})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := iss.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
