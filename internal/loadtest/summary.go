package loadtest

import (
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// maxErrorKinds bounds how many distinct errors a summary keeps apart; the rest are counted
// together, so a run that fails in a million different ways still uses little memory.
const maxErrorKinds = 20

// Summary is what one run measured. Latencies are exact (every sample is kept and sorted), not a
// sketch: runs are bounded, and p99 is the figure the targets name.
type Summary struct {
	Name       string        `json:"name"`
	TargetRate int           `json:"targetRate,omitempty"` // req/s asked for; 0 when not paced
	Requests   int           `json:"requests"`
	Successes  int           `json:"successes"` // 2xx answers
	Statuses   map[int]int   `json:"statuses"`  // 0 counts requests that got no HTTP answer
	Errors     []ErrorCount  `json:"errors,omitempty"`
	Elapsed    time.Duration `json:"elapsed"`    // first request sent to last answer received
	Rate       float64       `json:"rate"`       // requests sent per second
	Throughput float64       `json:"throughput"` // successes per second
	Latency    Latencies     `json:"latency"`
	// ClientCPU is the share of one core fluxload itself used: it competes with the server for the
	// same cores, which a reader of the figures must know.
	ClientCPU float64 `json:"clientCpu,omitempty"`

	latencies  []time.Duration
	errIndex   map[string]int
	otherErrs  int
	first, end time.Time
	closed     bool
}

// Latencies are over every request, failed ones included.
type Latencies struct {
	Mean time.Duration `json:"mean"`
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
	P99  time.Duration `json:"p99"`
	Max  time.Duration `json:"max"`
}

// ErrorCount is one kind of failure: "401 refresh_token_reused", or a transport error.
type ErrorCount struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// NewSummary starts an empty summary.
func NewSummary(name string, targetRate int) *Summary {
	return &Summary{Name: name, TargetRate: targetRate, Statuses: map[int]int{}, errIndex: map[string]int{}}
}

// Add records one result. Only the status, timing and, for failures, the error code are kept: a
// success body holds tokens and is never looked at here.
func (s *Summary) Add(r *vegeta.Result) {
	s.Requests++
	s.Statuses[int(r.Code)]++
	s.latencies = append(s.latencies, r.Latency)
	if s.first.IsZero() || r.Timestamp.Before(s.first) {
		s.first = r.Timestamp
	}
	if end := r.End(); end.After(s.end) {
		s.end = end
	}
	if r.Code >= 200 && r.Code < 300 {
		s.Successes++
		return
	}
	s.addError(errorKind(r))
}

func (s *Summary) addError(kind string) {
	if i, ok := s.errIndex[kind]; ok {
		s.Errors[i].Count++
		return
	}
	if len(s.Errors) >= maxErrorKinds {
		s.otherErrs++
		return
	}
	s.errIndex[kind] = len(s.Errors)
	s.Errors = append(s.Errors, ErrorCount{Kind: kind, Count: 1})
}

// errorKind names a failure without its secrets: the status and fluxauth's error code, or the
// transport error with the target URL (and its user fragment) taken out.
func errorKind(r *vegeta.Result) string {
	if r.Method == noIdleUser {
		return "no idle user: every user already had a request in flight"
	}
	if r.Code != 0 {
		return fmt.Sprintf("%d %s", r.Code, errorCode(r.Body))
	}
	msg := r.Error
	if r.URL != "" {
		if u, err := url.Parse(r.URL); err == nil {
			u.Fragment = ""
			msg = strings.ReplaceAll(msg, r.URL, u.String())
		}
	}
	if msg == "" {
		msg = "no answer"
	}
	return msg
}

// Close computes the figures; Add must not be called after it.
func (s *Summary) Close() {
	if s.closed {
		return
	}
	s.closed = true
	sort.SliceStable(s.Errors, func(i, j int) bool { return s.Errors[i].Count > s.Errors[j].Count })
	if s.otherErrs > 0 {
		s.Errors = append(s.Errors, ErrorCount{Kind: "other kinds", Count: s.otherErrs})
	}
	if s.Requests == 0 {
		return
	}
	s.Elapsed = s.end.Sub(s.first)
	if secs := s.Elapsed.Seconds(); secs > 0 {
		s.Rate = float64(s.Requests) / secs
		s.Throughput = float64(s.Successes) / secs
	}
	slices.Sort(s.latencies)
	var sum time.Duration
	for _, l := range s.latencies {
		sum += l
	}
	s.Latency = Latencies{
		Mean: sum / time.Duration(len(s.latencies)),
		P50:  quantile(s.latencies, 0.50),
		P90:  quantile(s.latencies, 0.90),
		P99:  quantile(s.latencies, 0.99),
		Max:  s.latencies[len(s.latencies)-1],
	}
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// SuccessRatio is successes over requests (1 for an empty run, which failed nothing).
func (s *Summary) SuccessRatio() float64 {
	if s.Requests == 0 {
		return 1
	}
	return float64(s.Successes) / float64(s.Requests)
}

// WriteText writes the summary for a human.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s", s.Name)
	if s.TargetRate > 0 {
		fmt.Fprintf(w, " at %d req/s", s.TargetRate)
	}
	fmt.Fprintf(w, "\n  requests     %d in %s (%.0f req/s sent)\n", s.Requests, s.Elapsed.Round(time.Millisecond), s.Rate)
	fmt.Fprintf(w, "  success      %.3f%% (%d), throughput %.0f/s\n", 100*s.SuccessRatio(), s.Successes, s.Throughput)
	codes := make([]int, 0, len(s.Statuses))
	for c := range s.Statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	fmt.Fprintf(w, "  statuses    ")
	for _, c := range codes {
		fmt.Fprintf(w, " %d:%d", c, s.Statuses[c])
	}
	fmt.Fprintln(w)
	l := s.Latency
	fmt.Fprintf(w, "  latency      p50 %s  p90 %s  p99 %s  max %s  mean %s\n", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean))
	if s.ClientCPU > 0 {
		fmt.Fprintf(w, "  fluxload cpu %.2f cores\n", s.ClientCPU)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "  error        %dx %s\n", e.Count, e.Kind)
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
