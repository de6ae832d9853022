package loadtest

import (
	"net/url"
	"testing"
	"time"
)

// TestSmokeRunsEveryScenarioAgainstARealServer is the harness end to end for a couple of seconds:
// setup through the API, the refresh chains, /me, login, signup, mixed and the connections test,
// all without a failed request.
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
	durations := map[string]time.Duration{"refresh": 1500 * time.Millisecond}
	for _, name := range Scenarios {
		w, err := NewWorkload(name, WorkloadConfig{Base: base, Users: users, RunID: RunID()})
		if err != nil {
			t.Fatal(err)
		}
		d := durations[name]
		if d == 0 {
			d = 300 * time.Millisecond
		}
		s, err := Run(ctx, w, RunConfig{Rate: 100, Duration: d, Connections: 20, Client: NewClient(20, 10*time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if s.Requests < int(90*d.Seconds()) || s.SuccessRatio() != 1 {
			t.Errorf("%s: %d requests, success %.3f, errors %+v", name, s.Requests, s.SuccessRatio(), s.Errors)
		}
		if w.Pool != nil && w.Pool.Retired() > 0 {
			t.Errorf("%s: %d users lost their session", name, w.Pool.Retired())
		}
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
