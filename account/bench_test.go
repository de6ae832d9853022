package account_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

func newService(b *testing.B, store fluxauth.Backend, params password.Params) *account.Service {
	b.Helper()
	cfg := testserver.Config(b) // no rate limits
	cfg.Password = params
	cfg.RevocationCacheTTL = 500 * time.Millisecond
	cfg.Account.SuspiciousRefreshRate = ratelimit.Limit{} // benchmarks refresh far faster than any person
	return testserver.Start(b, cfg, app.Deps{Store: store, Clock: fluxauth.SystemClock{}}).Accounts
}

// latencies records per-operation durations and reports p50 and p99.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	if len(l.d) == 0 {
		return
	}
	b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(l.d))/elapsed.Seconds(), "ops/s")
}

var benchStores = map[string]func(b *testing.B) fluxauth.Backend{
	"sqlite":   func(b *testing.B) fluxauth.Backend { return sqlitetest.MustOpenDB(b) },
	"postgres": func(b *testing.B) fluxauth.Backend { return postgrestest.MustOpenDB(b) },
}

// BenchmarkRefresh measures the whole refresh path (lookup, lock, rotate, user read, access-token
// signing) with many sessions refreshed concurrently, each by one client at a time.
func BenchmarkRefresh(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			svc := newService(b, benchStores[name](b), password.Params{Memory: 1024, Time: 1, Threads: 1})
			const sessions = 64
			tokens := make(chan string, sessions)
			for i := 0; i < sessions; i++ {
				res, err := svc.Signup(context.Background(), account.SignupInput{
					Email: fmt.Sprintf("bench%d@example.com", i), Password: "correct horse battery", Name: "B"})
				if err != nil {
					b.Fatal(err)
				}
				tokens <- res.RefreshToken
			}
			var lat latencies
			var failed atomic.Int64
			b.SetParallelism(8) // 16 clients on 2 cores: enough to keep the database busy
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rt := <-tokens
					t0 := time.Now()
					res, err := svc.Refresh(context.Background(), rt, account.Device{IP: "127.0.0.1", UserAgent: "bench"})
					lat.add(time.Since(t0))
					if err != nil {
						failed.Add(1)
						tokens <- rt
						continue
					}
					tokens <- res.RefreshToken
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d refreshes failed", n)
			}
			lat.report(b, elapsed)
		})
	}
}

// BenchmarkLoginParallel measures logins at the production argon2id parameters with far more
// concurrent callers than cores: throughput should approach cores ÷ hash time while the bounded
// pool keeps memory flat.
func BenchmarkLoginParallel(b *testing.B) {
	svc := newService(b, sqlitetest.MustOpenDB(b), config.Default().Password)
	if _, err := svc.Signup(context.Background(), account.SignupInput{Email: "login@example.com", Password: "correct horse battery", Name: "L"}); err != nil {
		b.Fatal(err)
	}
	var lat latencies
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			if _, err := svc.Login(context.Background(), account.LoginInput{Email: "login@example.com", Password: "correct horse battery"}); err != nil {
				b.Error(err)
				return
			}
			lat.add(time.Since(t0))
		}
	})
	lat.report(b, time.Since(start))
}
