package loadtest

import (
	"net/url"
	"slices"
	"testing"
	"time"
)

// TestSmokeRunsEveryScenarioAgainstARealServer is the harness end to end for a couple of seconds:
// setup through the API, the refresh chains, /me, login, signup, mixed, faults and the connections
// test, all without a failed request (but those faults fails on purpose). It checks that the harness works, not how fast: the machine running
// it may be busy, so how many requests fit in the run is not asserted, only that some were sent,
// that every one succeeded and that the counts agree with each other.
func TestSmokeRunsEveryScenarioAgainstARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke test sends a few hundred requests")
	}
	base := mustStartServer(t)
	ctx := t.Context()
	users, err := Setup(ctx, SetupConfig{Target: base, Users: 20, Concurrency: 4, Timeout: 30 * time.Second, Client: NewClient(4, 10*time.Second)}, RunID())
	if err != nil {
		t.Fatal(err)
	}
	const rate = 100
	durations := map[string]time.Duration{"refresh": 1500 * time.Millisecond, "faults": 500 * time.Millisecond}
	var ran []string
	for _, name := range Scenarios {
		w, err := NewWorkload(name, WorkloadConfig{Base: base, Users: users, RunID: RunID()})
		if err != nil {
			t.Fatal(err)
		}
		d := durations[name]
		if d == 0 {
			d = 300 * time.Millisecond
		}
		before := make([]string, len(users))
		for i, u := range users {
			before[i] = u.refresh
		}
		s, err := Run(ctx, w, RunConfig{Rate: rate, Duration: d, Connections: 20, Client: NewClient(20, 10*time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		ran = append(ran, s.Name)
		checkSmokeSummary(t, name, s, rate, d)
		if w.Pool == nil {
			continue
		}
		if n := w.Pool.Retired(); n > 0 {
			t.Errorf("%s: %d users lost their session", name, n)
		}
		// Run returns after every answer was read, so every user is back in the idle queue.
		if idle := len(w.Pool.idle); idle != len(users) {
			t.Errorf("%s: %d of %d users idle after the run: an answer was never observed", name, idle, len(users))
		}
		advanced := 0
		for i, u := range users {
			if u.refresh != before[i] {
				advanced++
			}
		}
		if name == "refresh" && (advanced == 0 || advanced > s.Successes) {
			t.Errorf("%s: %d chains advanced after %d successful refreshes", name, advanced, s.Successes)
		}
	}
	if !slices.Equal(ran, Scenarios) {
		t.Errorf("scenarios run: %q, want %q", ran, Scenarios)
	}

	u, _ := url.Parse(base)
	res, err := Idle(ctx, IdleConfig{Addr: u.Host, Conns: 50, Interval: 100 * time.Millisecond, Hold: 300 * time.Millisecond, DialRate: 500, Path: "/api/auth/me", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed() {
		t.Errorf("connections test failed: %+v, errors %+v", res, res.Summary.Errors)
	}
}

// checkSmokeSummary checks one run's summary for correctness: requests were sent, all succeeded,
// and the counts are consistent. The only bound on the count is the one pacing guarantees whatever
// the load: an open loop never sends more than rate × duration.
func checkSmokeSummary(tb testing.TB, name string, s *Summary, rate int, d time.Duration) {
	tb.Helper()
	if s.Name != name {
		tb.Errorf("%s: summary is named %q", name, s.Name)
	}
	if s.Requests == 0 {
		tb.Errorf("%s: no requests sent", name)
	}
	if most := int(float64(rate)*d.Seconds()) + 1; s.Requests > most {
		tb.Errorf("%s: %d requests, more than the %d that %d/s for %v allows", name, s.Requests, most, rate, d)
	}
	// The faults scenario's failing logins are answered 401 invalid_credentials, on purpose.
	failed := 0
	if name == "faults" {
		for _, e := range s.Errors {
			if e.Kind == "401 invalid_credentials" {
				failed = e.Count
			}
		}
		if failed == 0 || failed != s.Statuses[401] {
			tb.Errorf("%s: %d failing logins answered invalid_credentials, of %d 401s", name, failed, s.Statuses[401])
		}
	}
	if s.Successes+failed != s.Requests || len(s.Errors) != min(failed, 1) {
		tb.Errorf("%s: %d of %d requests succeeded, errors %+v", name, s.Successes, s.Requests, s.Errors)
	}
	statuses := 0
	for code, n := range s.Statuses {
		statuses += n
		if (code < 200 || code > 299) && !(code == 401 && failed > 0) {
			tb.Errorf("%s: %d answers with status %d", name, n, code)
		}
	}
	if statuses != s.Requests {
		tb.Errorf("%s: statuses %v add up to %d, not the %d requests", name, s.Statuses, statuses, s.Requests)
	}
}
