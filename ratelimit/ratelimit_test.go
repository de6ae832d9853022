package ratelimit_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/ratelimit/limitertest"
)

func TestMemoryPassesTheLimiterContract(t *testing.T) {
	limitertest.Run(t, func(t *testing.T) limitertest.Harness {
		clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
		return limitertest.Harness{Limiter: ratelimit.NewMemory(clock), Wait: clock.Advance, Tick: time.Second}
	})
}

func TestRedisPassesTheLimiterContract(t *testing.T) {
	rdb := mustSharedRedis(t)
	limitertest.Run(t, func(t *testing.T) limitertest.Harness {
		return limitertest.Harness{
			Limiter: ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: uniquePrefix(t, rdb), Timeout: time.Second}),
			Wait:    time.Sleep, // Redis keeps time by its own clock
			Tick:    500 * time.Millisecond,
			Slack:   250 * time.Millisecond, // 50 parallel calls under -race take a while
		}
	})
}

func TestFallbackPassesTheLimiterContractWhileRedisIsUp(t *testing.T) {
	rdb := mustSharedRedis(t)
	limitertest.Run(t, func(t *testing.T) limitertest.Harness {
		clock := testenv.NewClock(time.Now())
		shared := ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: uniquePrefix(t, rdb), Timeout: time.Second})
		// The breaker's timeout as generous as the Redis limiter's own: 50 parallel calls dialling
		// fresh connections under -race on a busy machine can pass 25 ms, and a fallback then is
		// not what this test is about (fallback_test.go tests the timeout).
		b := breaker.New(breaker.Config{Name: "redis", Clock: clock, Logger: discardLogger(), Timeout: time.Second})
		f := ratelimit.NewFallback(shared, ratelimit.NewMemory(clock), b)
		t.Cleanup(func() {
			if f.Degraded() {
				t.Error("fallback went degraded with Redis up")
			}
		})
		return limitertest.Harness{Limiter: f, Wait: time.Sleep, Tick: 500 * time.Millisecond, Slack: 250 * time.Millisecond}
	})
}

func TestTwoInstancesSharingRedisEnforceOneGlobalLimit(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := uniquePrefix(t, mustSharedRedis(t))
	// Two instances: separate clients and limiters, one Redis. The timeout allows for dialling 20
	// connections at once under -race; timeouts are not what this test is about.
	cfg := ratelimit.RedisConfig{Prefix: prefix, Timeout: time.Second}
	a := ratelimit.NewRedis(mustRedisClient(t, url), cfg)
	b := ratelimit.NewRedis(mustRedisClient(t, url), cfg)
	l := ratelimit.Limit{Rate: 5, Period: time.Hour}

	t.Run("alternating", func(t *testing.T) {
		allowed := 0
		for i := range 20 {
			lim := a
			if i%2 == 1 {
				lim = b
			}
			allowed += allowedOf(t, lim, "login:ip:10.1.1.1", l, 1)
		}
		if allowed != 5 {
			t.Fatalf("allowed %d of 20 across two instances, want 5 (not 10)", allowed)
		}
	})
	t.Run("in parallel", func(t *testing.T) {
		var mu sync.Mutex
		allowed := 0
		var wg sync.WaitGroup
		for i := range 40 {
			lim := a
			if i%2 == 1 {
				lim = b
			}
			wg.Go(func() {
				r, err := lim.Allow(context.Background(), "login:ip:10.2.2.2", l)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				if r.Allowed {
					allowed++
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		if allowed != 5 {
			t.Fatalf("allowed %d of 40 parallel calls across two instances, want 5", allowed)
		}
	})
}

func TestRedisKeysCarryThePrefixAndExpireWhenRested(t *testing.T) {
	rdb := mustSharedRedis(t)
	prefix := uniquePrefix(t, rdb)
	lim := ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: prefix})
	r, err := lim.Allow(context.Background(), "signup:ip:10.0.0.9", ratelimit.Limit{Rate: 5, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.PTTL(context.Background(), prefix+"signup:ip:10.0.0.9").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > r.ResetAfter+time.Millisecond {
		t.Fatalf("key TTL %v, want positive and at most ResetAfter %v", ttl, r.ResetAfter)
	}
}

func TestRedisErrorsWrapUnavailable(t *testing.T) {
	lim := ratelimit.NewRedis(mustRedisClient(t, "redis://127.0.0.1:"+strconv.Itoa(freePort(t))+"/0"), ratelimit.RedisConfig{})
	_, err := lim.Allow(context.Background(), "k", ratelimit.Limit{Rate: 1, Period: time.Second})
	if err == nil || !isUnavailable(err) {
		t.Fatalf("Allow on a closed port: %v, want an error wrapping fluxauth.ErrUnavailable", err)
	}
}

func TestMemoryDropsRestedKeys(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	m := ratelimit.NewMemory(clock)
	l := ratelimit.Limit{Rate: 1, Period: time.Second}
	for i := range 2000 {
		allowedOf(t, m, ratelimit.Key("login:ip", "10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256)), l, 1)
	}
	clock.Advance(2 * time.Minute) // every key rested, and a sweep due in every shard
	for i := range 2000 {
		allowedOf(t, m, ratelimit.Key("login:ip", "10.1."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256)), l, 1)
	}
	if n := m.Len(); n > 2000 {
		t.Fatalf("holding %d keys after the first 2000 rested, want at most the 2000 active", n)
	}
}

func TestParseLimitReadsConfigurationStrings(t *testing.T) {
	for s, want := range map[string]ratelimit.Limit{
		"5/1m":     {Rate: 5, Period: time.Minute},
		"20/m":     {Rate: 20, Period: time.Minute},
		"5/1h":     {Rate: 5, Period: time.Hour},
		"5/1m:10":  {Rate: 5, Period: time.Minute, Burst: 10},
		"1/15m:10": {Rate: 1, Period: 15 * time.Minute, Burst: 10},
		"300/1m":   {Rate: 300, Period: time.Minute},
		" 2/500ms": {Rate: 2, Period: 500 * time.Millisecond},
		"off":      {},
	} {
		got, err := ratelimit.ParseLimit(s)
		if err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "5", "5/", "0/1m", "-1/1m", "x/1m", "5/0s", "5/-1m", "5/1m:0", "5/1m:x", "5/fortnight", "10/1us"} {
		if l, err := ratelimit.ParseLimit(s); err == nil {
			t.Errorf("ParseLimit(%q) = %+v, want an error", s, l)
		}
	}
}

func TestLimitStringRoundTripsThroughParseLimit(t *testing.T) {
	for _, l := range []ratelimit.Limit{
		{Rate: 5, Period: time.Minute}, {Rate: 20, Period: time.Minute, Burst: 20}, {Rate: 5, Period: time.Hour, Burst: 5},
		{Rate: 1, Period: 15 * time.Minute, Burst: 10}, {Rate: 300, Period: time.Second, Burst: 1}, {},
		{Rate: 2, Period: 1500 * time.Millisecond}, {Rate: 1, Period: 36 * time.Hour},
	} {
		got, err := ratelimit.ParseLimit(l.String())
		if err != nil {
			t.Fatalf("ParseLimit(%q): %v", l.String(), err)
		}
		if got.Burst == 0 {
			got.Burst = got.Rate
		}
		if l.Burst == 0 {
			l.Burst = l.Rate
		}
		if got != l {
			t.Errorf("%+v → %q → %+v", l, l.String(), got)
		}
	}
	for l, want := range map[ratelimit.Limit]string{
		{Rate: 1, Period: 15 * time.Minute, Burst: 10}: "1/15m:10",
		{Rate: 5, Period: time.Hour, Burst: 5}:         "5/1h",
		{}:                                             "off",
	} {
		if s := l.String(); s != want {
			t.Errorf("%+v formats as %q, want %q", l, s, want)
		}
	}
}

func TestKeyEscapesPartsSoTuplesCannotCollide(t *testing.T) {
	a := ratelimit.Key("login:ipemail", "::1", "a@x")
	b := ratelimit.Key("login:ipemail", ":", ":1:a@x")
	if a == b {
		t.Fatalf("two tuples share key %q", a)
	}
	if got := ratelimit.Key("login:ip", "1.2.3.4"); got != "login:ip:1.2.3.4" {
		t.Fatalf("Key = %q, want login:ip:1.2.3.4", got)
	}
}

// A client chooses the parts (an email of 58 KB was seen); the limiter keeps every key for its
// window, so a key's length must be bounded whatever the parts.
func TestKeyOfALongPartIsBoundedAndStillDistinct(t *testing.T) {
	long := strings.Repeat("a", 58<<10) + "@example.com"
	other := strings.Repeat("a", 58<<10) + "@example.org"
	k := ratelimit.Key("login:ipemail", "203.0.113.7", long)
	if len(k) > len("login:ipemail:203.0.113.7:")+ratelimit.MaxKeyPart {
		t.Fatalf("key of a %d-byte part is %d bytes long", len(long), len(k))
	}
	if k != ratelimit.Key("login:ipemail", "203.0.113.7", long) {
		t.Fatal("the same parts gave two keys")
	}
	if k == ratelimit.Key("login:ipemail", "203.0.113.7", other) {
		t.Fatal("two long parts share a key")
	}
	// A short part that spells what a hashed one is written as keeps a key of its own.
	hashed := k[strings.LastIndexByte(k, ':')+1:]
	if ratelimit.Key("login:ipemail", "203.0.113.7", hashed) == k {
		t.Fatal("a written part collides with a hashed one")
	}
	// Escaping counts: 30 bytes that escape to 90 are hashed too.
	if k := ratelimit.Key("s", strings.Repeat("é", 15)); len(k) > len("s:")+ratelimit.MaxKeyPart {
		t.Fatalf("escaped part written whole: %d bytes", len(k))
	}
}
