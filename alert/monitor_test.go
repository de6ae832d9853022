package alert_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/alert/alerttest"
	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// run feeds events to m as the audit subscription would and returns once m has handled them all and
// counted what it gathered.
func run(m *alert.Monitor, missed func() uint64, events ...fluxauth.SecurityEvent) {
	ch := make(chan fluxauth.SecurityEvent, len(events))
	for _, ev := range events {
		ch <- ev
	}
	close(ch)
	m.Run(context.Background(), ch, missed)
}

func critical(i int) fluxauth.SecurityEvent {
	return fluxauth.SecurityEvent{ID: fmt.Sprintf("e-%d", i), Type: fluxauth.EventSessionHijackAttempt, Severity: fluxauth.SeverityCritical,
		UserID: "u-1", IPAddress: "203.0.113.9", Metadata: map[string]any{"reason": "refresh_token_reused"}, CreatedAt: time.Now()}
}

func failedLogin(ip, userID string) fluxauth.SecurityEvent {
	return fluxauth.SecurityEvent{Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityWarning, UserID: userID, IPAddress: ip,
		Metadata: map[string]any{"reason": "wrong_password"}}
}

// deliveries closes w (delivering everything queued) and returns what rx received, in order.
func deliveries(t *testing.T, w *alert.Webhook, rx *alerttest.Webhook) []map[string]any {
	t.Helper()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := rx.Attempts()
	out := make([]map[string]any, n)
	for i := range n {
		out[i] = rx.Next(t, wait).Alert()
	}
	return out
}

func webhookSink(t *testing.T) (*alert.Webhook, *alerttest.Webhook) {
	t.Helper()
	rx := alerttest.NewWebhook(t, 0)
	url, _ := rx.URL()
	return newWebhook(t, url, nil, alert.WebhookConfig{QueueSize: 1000}), rx
}

func TestTheDefaultThresholdsAreTheIssues(t *testing.T) {
	th := config.Default().Alerts
	if th.FailedLogins.String() != "50/5m" || th.RateLimited.String() != "200/5m" {
		t.Fatalf("default thresholds: failed logins %s, rate limited %s", th.FailedLogins, th.RateLimited)
	}
}

// Critical events become alerts one for one, up to the cap per type per minute; the first alert
// after the cap says how many were held back.
func TestCriticalEventsAreCappedPerTypePerMinute(t *testing.T) {
	w, rx := webhookSink(t)
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	m := alert.NewMonitor(alert.MonitorConfig{Sinks: []alert.Sink{w}, Clock: clock})
	var flood []fluxauth.SecurityEvent
	for i := range 150 {
		flood = append(flood, critical(i))
	}
	other := critical(999)
	other.Type = "token_theft" // another type has a cap of its own
	run(m, nil, append(flood, other)...)
	clock.Advance(time.Minute)
	run(m, nil, critical(1000))

	got := deliveries(t, w, rx)
	if len(got) != alert.DefaultCapPerMinute+2 {
		t.Fatalf("%d alerts, want %d of the flood, the other type's, and the one after the minute", len(got), alert.DefaultCapPerMinute+2)
	}
	if got[0]["eventId"] != "e-0" || got[0]["userId"] != "u-1" || got[0]["ip"] != "203.0.113.9" || got[0]["severity"] != "critical" {
		t.Fatalf("first alert %v", got[0])
	}
	last := got[len(got)-1]
	if last["eventId"] != "e-1000" || alerttest.Number(last, "heldBack") != 50 {
		t.Fatalf("alert after the minute %v, want e-1000 with heldBack 50", last)
	}
	for _, a := range got[:len(got)-1] {
		if alerttest.Number(a, "heldBack") != 0 {
			t.Fatalf("heldBack reported before the cap was lifted: %v", a)
		}
	}
}

func TestFailedLoginsCrossTheirThresholdPerIPAndPerAccount(t *testing.T) {
	w, rx := webhookSink(t)
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	m := alert.NewMonitor(alert.MonitorConfig{Sinks: []alert.Sink{w}, Clock: clock,
		Thresholds: config.Default().Alerts, Counter: ratelimit.NewMemory(clock)})
	var evs []fluxauth.SecurityEvent
	for i := range 49 {
		// One address against one account, and many addresses against another.
		evs = append(evs, failedLogin("203.0.113.9", "u-1"), failedLogin(fmt.Sprintf("198.51.100.%d", i), "u-2"))
	}
	evs = append(evs, failedLogin("203.0.113.9", ""), failedLogin("192.0.2.1", "u-2")) // an unknown email's has no account
	run(m, nil, evs...)
	run(m, nil, failedLogin("203.0.113.9", "")) // the 51st from the address: no second alert

	got := deliveries(t, w, rx)
	byType := map[string]map[string]any{}
	for _, a := range got {
		byType[a["type"].(string)] = a
	}
	if len(got) != 2 {
		t.Fatalf("alerts %v, want one per IP (203.0.113.9) and one per account (u-2)", got)
	}
	ip, acct := byType[alert.FailedLoginsPerIP], byType[alert.FailedLoginsPerAccount]
	if ip["ip"] != "203.0.113.9" || alerttest.Number(ip, "count") != 50 || ip["threshold"] != "50/5m" || ip["kind"] != "threshold" {
		t.Errorf("per-IP alert %v", ip)
	}
	if acct["userId"] != "u-2" || alerttest.Number(acct, "count") != 50 {
		t.Errorf("per-account alert %v", acct)
	}
}

func TestRateLimitRefusalsCrossTheirThresholdPerIP(t *testing.T) {
	w, rx := webhookSink(t)
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	m := alert.NewMonitor(alert.MonitorConfig{Sinks: []alert.Sink{w}, Clock: clock,
		Thresholds: config.Default().Alerts, Counter: ratelimit.NewMemory(clock)})
	for range 199 {
		m.RateLimited("203.0.113.9")
	}
	m.RateLimited("192.0.2.1")
	run(m, nil)
	m.RateLimited("203.0.113.9")
	run(m, nil)
	got := deliveries(t, w, rx)
	if len(got) != 1 || got[0]["type"] != alert.RateLimitedPerIP || got[0]["ip"] != "203.0.113.9" || alerttest.Number(got[0], "count") != 200 {
		t.Fatalf("alerts %v, want one for 203.0.113.9 at 200", got)
	}
}

// Events the subscription dropped are reported with the next alert, each only once.
func TestMissedEventsAreReportedWithTheNextAlert(t *testing.T) {
	w, rx := webhookSink(t)
	m := alert.NewMonitor(alert.MonitorConfig{Sinks: []alert.Sink{w}})
	missed := uint64(0)
	count := func() uint64 { return missed }
	missed = 12
	run(m, count, critical(1))
	run(m, count, critical(2))
	missed = 15
	run(m, count, critical(3))
	got := deliveries(t, w, rx)
	if len(got) != 3 {
		t.Fatalf("%d alerts", len(got))
	}
	for i, want := range []int{12, 0, 3} {
		if n := alerttest.Number(got[i], "missedEvents"); n != want {
			t.Errorf("alert %d: missedEvents %d, want %d", i, n, want)
		}
	}
}

// Two instances sharing Redis add their counts up and raise one alert between them.
func TestThresholdsAreSharedByInstancesThroughRedis(t *testing.T) {
	url := testenv.RedisURL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("fluxauth:alerttest:%d:", time.Now().UnixNano())
	instance := func() (*alert.Monitor, *alert.Webhook, *alerttest.Webhook) {
		rdb := redis.NewClient(opts)
		t.Cleanup(func() { rdb.Close() })
		clock := fluxauth.SystemClock{}
		counter := ratelimit.NewFallback(ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: prefix, Timeout: time.Second}),
			ratelimit.NewMemory(clock), breaker.New(breaker.Config{Name: "redis", Timeout: time.Second, Clock: clock, Logger: slog.New(slog.DiscardHandler)}))
		w, rx := webhookSink(t)
		return alert.NewMonitor(alert.MonitorConfig{Sinks: []alert.Sink{w}, Thresholds: config.Default().Alerts, Counter: counter}), w, rx
	}
	a, wa, rxa := instance()
	b, wb, rxb := instance()
	var thirty, twenty []fluxauth.SecurityEvent
	for range 30 {
		thirty = append(thirty, failedLogin("203.0.113.77", ""))
	}
	for range 20 {
		twenty = append(twenty, failedLogin("203.0.113.77", ""))
	}
	run(a, nil, thirty...)
	run(b, nil, twenty...)
	run(a, nil, thirty...)
	gotA, gotB := deliveries(t, wa, rxa), deliveries(t, wb, rxb)
	if len(gotA) != 0 || len(gotB) != 1 || alerttest.Number(gotB[0], "count") != 50 {
		t.Fatalf("instance a alerted %v, instance b %v: want one alert, from b, at 50", gotA, gotB)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
	if len(keys) > 0 {
		rdb.Del(context.Background(), keys...)
	}
}

// sinkFunc is a Sink that hands each alert to a function, synchronously.
type sinkFunc func(alert.Alert)

func (f sinkFunc) Send(a alert.Alert) { f(a) }

// The monitor adds up its counts when its clock's ticker fires, not on the wall clock: counts
// gathered between two ticks raise nothing until the clock moves by CountEvery.
func TestTheMonitorCountsOnItsClocksTicks(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	alerts := make(chan alert.Alert, 10)
	m := alert.NewMonitor(alert.MonitorConfig{Sinks: []alert.Sink{sinkFunc(func(a alert.Alert) { alerts <- a })}, Clock: clock,
		Thresholds: config.Default().Alerts, Counter: ratelimit.NewMemory(clock), CountEvery: time.Minute})
	events := make(chan fluxauth.SecurityEvent) // unbuffered: a send returns once the monitor took the event
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx, events, nil) }()
	defer func() { cancel(); <-done }()

	start := clock.Now()
	if at := clock.WaitTimers(t, 1); !at[0].Equal(start.Add(time.Minute)) {
		t.Fatalf("the monitor's ticker fires at %v, want CountEvery from now (%v)", at[0], start.Add(time.Minute))
	}
	for range 50 {
		events <- failedLogin("203.0.113.9", "")
	}
	events <- failedLogin("192.0.2.1", "") // taken only once the monitor has counted the 50 before it
	select {
	case a := <-alerts:
		t.Fatalf("alert %+v before the clock moved", a)
	default:
	}
	clock.Advance(time.Minute)
	select {
	case a := <-alerts:
		if a.Type != alert.FailedLoginsPerIP || a.IP != "203.0.113.9" {
			t.Fatalf("alert %+v", a)
		}
	case <-time.After(wait):
		t.Fatalf("no alert within %s of the tick", wait)
	}
}
