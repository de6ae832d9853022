package loadtest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestSummaryCountsStatusesErrorsAndExactQuantiles(t *testing.T) {
	s := NewSummary("refresh", 100)
	t0 := time.Unix(1000, 0)
	for i := 1; i <= 100; i++ {
		r := &vegeta.Result{Code: 200, Timestamp: t0.Add(time.Duration(i) * 10 * time.Millisecond), Latency: time.Duration(i) * time.Millisecond,
			Body: []byte(`{"refreshToken":"SECRET-REFRESH","accessToken":"SECRET-ACCESS"}`)}
		switch {
		case i > 97:
			r.Code, r.Body = 401, []byte(`{"error":{"code":"refresh_token_reused","message":"The refresh token was already used."}}`)
		case i == 97:
			r.Code, r.Body, r.Error = 0, nil, `Post "http://127.0.0.1:8080/api/auth/refresh#u=5": context deadline exceeded`
			r.URL = "http://127.0.0.1:8080/api/auth/refresh#u=5"
		}
		s.Add(r)
	}
	s.Close()
	if s.Requests != 100 || s.Successes != 96 || s.Statuses[200] != 96 || s.Statuses[401] != 3 || s.Statuses[0] != 1 {
		t.Fatalf("counts: %+v", s)
	}
	if got := s.SuccessRatio(); got != 0.96 {
		t.Errorf("success ratio %v", got)
	}
	want := Latencies{Mean: 50500 * time.Microsecond, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if s.Latency != want {
		t.Errorf("latency %+v, want %+v", s.Latency, want)
	}
	// Elapsed runs from the first start (10ms) to the last end (1000ms + 100ms).
	if s.Elapsed != 1090*time.Millisecond {
		t.Errorf("elapsed %s", s.Elapsed)
	}
	if len(s.Errors) != 2 || s.Errors[0] != (ErrorCount{"401 refresh_token_reused", 3}) ||
		s.Errors[1].Kind != `Post "http://127.0.0.1:8080/api/auth/refresh": context deadline exceeded` {
		t.Errorf("errors %+v", s.Errors)
	}
	var out bytes.Buffer
	s.WriteText(&out)
	if strings.Contains(out.String(), "SECRET") {
		t.Errorf("the summary printed a token:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "p99 99.00ms") {
		t.Errorf("no p99 in:\n%s", out.String())
	}
}

func TestSummaryBoundsTheKindsOfErrorsItKeeps(t *testing.T) {
	s := NewSummary("x", 0)
	for i := range 3 * maxErrorKinds {
		s.Add(&vegeta.Result{Error: "dial tcp: error " + strings.Repeat("x", i)})
	}
	s.Close()
	if len(s.Errors) != maxErrorKinds+1 || s.Errors[len(s.Errors)-1] != (ErrorCount{"other kinds", 2 * maxErrorKinds}) {
		t.Fatalf("errors: %d kinds, last %+v", len(s.Errors), s.Errors[len(s.Errors)-1])
	}
}

func TestCheckTargetRefusesNonLoopbackAddresses(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://[::1]:8080/x", "http://localhost:9"} {
		if _, err := CheckTarget(t.Context(), ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://93.184.215.14", "ftp://127.0.0.1", "127.0.0.1:8080"} {
		if _, err := CheckTarget(t.Context(), bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := loopbackOnly("tcp", "192.0.2.1:80", nil); err == nil {
		t.Error("the dialer would connect to 192.0.2.1")
	}
}
