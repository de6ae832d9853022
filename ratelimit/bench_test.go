package ratelimit_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// benchKeys spreads benchmark calls over many keys, as real traffic is, under a limit that mostly
// allows, so both script branches and the map sharding are exercised.
var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = ratelimit.Key("login:ip", "10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
	}
	return keys
}()

var benchLimit = ratelimit.Limit{Rate: 1000, Period: time.Second}

func benchRedis(b *testing.B) *ratelimit.Redis {
	b.Helper()
	rdb := mustSharedRedis(b)
	return ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: uniquePrefix(b, rdb)})
}

func BenchmarkMemoryAllow(b *testing.B) {
	runParallel(b, ratelimit.NewMemory(fluxauth.SystemClock{}))
}

func BenchmarkRedisAllow(b *testing.B) {
	runParallel(b, benchRedis(b))
}

func BenchmarkFallbackAllowRedisUp(b *testing.B) {
	f := ratelimit.NewFallback(benchRedis(b), ratelimit.NewMemory(fluxauth.SystemClock{}), newBreaker(fluxauth.SystemClock{}))
	runParallel(b, f)
}

// BenchmarkRedisAllowLatency measures one caller's checks one after another: the cost a request
// pays. It reports the p50, p99 and max latency in microseconds.
func BenchmarkRedisAllowLatency(b *testing.B) {
	lim := benchRedis(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := lim.Allow(ctx, benchKeys[i%len(benchKeys)], benchLimit); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

// BenchmarkRedisAllowLatencyParallel is the same under GOMAXPROCS concurrent callers: latency
// includes queueing for the connection pool and Redis's single thread.
func BenchmarkRedisAllowLatencyParallel(b *testing.B) {
	lim := benchRedis(b)
	var (
		mu  sync.Mutex
		all []time.Duration
		seq atomic.Int64
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		var lat []time.Duration
		for pb.Next() {
			start := time.Now()
			if _, err := lim.Allow(ctx, benchKeys[int(seq.Add(1))%len(benchKeys)], benchLimit); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(start))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	reportPercentiles(b, all)
}

func runParallel(b *testing.B, lim ratelimit.Limiter) {
	b.Helper()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := lim.Allow(ctx, benchKeys[int(seq.Add(1))%len(benchKeys)], benchLimit); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e3, "max-µs")
}
