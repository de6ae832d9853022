package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// MaxRequestsPerRun bounds one run (rate × duration), so a typo cannot keep the machine busy for
// hours or fill memory with latency samples.
const MaxRequestsPerRun = 5_000_000

// RunConfig is one open-loop run: Rate requests per second for Duration, whatever the answers.
type RunConfig struct {
	Rate        int
	Duration    time.Duration
	Connections int // workers and connections; each worker has at most one request in flight
	Client      *http.Client
}

func (c RunConfig) validate() error {
	if c.Rate < 1 {
		return errors.New("rate must be at least 1 req/s")
	}
	if c.Duration <= 0 || c.Duration > time.Hour {
		return errors.New("duration must be between 0 and 1h")
	}
	if float64(c.Rate)*c.Duration.Seconds() > MaxRequestsPerRun {
		return fmt.Errorf("rate × duration is over %d requests", MaxRequestsPerRun)
	}
	if c.Connections < 1 {
		return errors.New("connections must be at least 1")
	}
	if c.Client == nil {
		return errors.New("no client")
	}
	return nil
}

// Run sends w's requests at a constant rate for the configured duration and summarises them. The
// pacing does not wait for answers (open loop); vegeta adds workers, up to Connections, when the
// ones it has are all waiting.
func Run(ctx context.Context, w *Workload, cfg RunConfig) (*Summary, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(cfg.Client),
		vegeta.Workers(uint64(min(cfg.Connections, 32))),
		vegeta.MaxWorkers(uint64(cfg.Connections)),
		vegeta.MaxBody(64<<10),
		vegeta.Redirects(vegeta.NoFollow),
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	sum := NewSummary(w.Name, cfg.Rate)
	cpu0 := processCPU()
	began := time.Now()
	for r := range atk.Attack(w.Targeter, vegeta.Rate{Freq: cfg.Rate, Per: time.Second}, cfg.Duration, w.Name) {
		if w.Observe != nil {
			w.Observe(r)
		}
		sum.Add(r)
	}
	if wall := time.Since(began); wall > 0 {
		sum.ClientCPU = float64(processCPU()-cpu0) / float64(wall)
	}
	sum.Close()
	return sum, ctx.Err()
}

// FindMaxConfig is the rate search: Start, Start+Step, … each for StepDuration, until a step fails.
type FindMaxConfig struct {
	Start, Step, Max int
	StepDuration     time.Duration
	MinSuccess       float64       // a step passes with at least this success ratio…
	MaxP99           time.Duration // …this p99 or less…
	MinSentRatio     float64       // …and at least this share of the asked requests actually sent
	HalfDuration     time.Duration // the run at half the maximum
}

// DefaultFindMax is the search docs/BENCHMARKS.md uses.
var DefaultFindMax = FindMaxConfig{
	Start: 250, Step: 250, Max: 20000, StepDuration: 10 * time.Second,
	MinSuccess: 0.999, MaxP99: 100 * time.Millisecond, MinSentRatio: 0.95, HalfDuration: 30 * time.Second,
}

// FindMaxResult is the search's outcome.
type FindMaxResult struct {
	Steps   []*Summary `json:"steps"`
	MaxRate int        `json:"maxRate"` // highest passing rate; 0 if the first step failed
	Reason  string     `json:"reason"`  // why the search stopped
	Half    *Summary   `json:"half,omitempty"`
}

// stepFailure says why a step does not count as sustained, or "" if it does.
func (fm FindMaxConfig) stepFailure(s *Summary, cfg RunConfig) string {
	asked := float64(cfg.Rate) * cfg.Duration.Seconds()
	switch {
	case s.SuccessRatio() < fm.MinSuccess:
		return fmt.Sprintf("success %.3f%% < %.3f%% at %d/s", 100*s.SuccessRatio(), 100*fm.MinSuccess, cfg.Rate)
	case s.Latency.P99 > fm.MaxP99:
		return fmt.Sprintf("p99 %s > %s at %d/s", ms(s.Latency.P99), ms(fm.MaxP99), cfg.Rate)
	case float64(s.Requests) < fm.MinSentRatio*asked:
		return fmt.Sprintf("only %d of %.0f requests sent at %d/s (the generator fell behind)", s.Requests, asked, cfg.Rate)
	}
	return ""
}

// FindMax steps the rate up until a step fails, then runs at half the highest passing rate: the
// The latency goals (docs/BENCHMARKS.md#targets) hold there, not at saturation. progress is told of each finished step.
func FindMax(ctx context.Context, w *Workload, base RunConfig, fm FindMaxConfig, progress func(*Summary)) (*FindMaxResult, error) {
	if fm.Start < 1 || fm.Step < 1 || fm.Max < fm.Start || fm.StepDuration <= 0 {
		return nil, errors.New("find-max: bad search parameters")
	}
	res := &FindMaxResult{Reason: fmt.Sprintf("reached the ceiling of %d/s", fm.Max)}
	// Bounded: at most (Max-Start)/Step+1 steps of StepDuration each.
	for rate := fm.Start; rate <= fm.Max; rate += fm.Step {
		cfg := base
		cfg.Rate, cfg.Duration = rate, fm.StepDuration
		s, err := Run(ctx, w, cfg)
		if err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, s)
		if progress != nil {
			progress(s)
		}
		if why := fm.stepFailure(s, cfg); why != "" {
			res.Reason = why
			break
		}
		res.MaxRate = rate
	}
	if res.MaxRate == 0 || fm.HalfDuration <= 0 {
		return res, nil
	}
	cfg := base
	cfg.Rate, cfg.Duration = max(1, res.MaxRate/2), fm.HalfDuration
	// Let the queues the failing step built drain before measuring latency.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	s, err := Run(ctx, w, cfg)
	if err != nil {
		return res, err
	}
	s.Name = w.Name + " at half the maximum"
	res.Half = s
	return res, nil
}
