// Command fluxload is fluxauth's load generator: it signs simulated users up, then drives one
// scenario open-loop against a fluxauth on this machine (loopback only) and reports what it saw.
// See docs/BENCHMARKS.md for how the published figures were produced with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fluxstudio/fluxauth/internal/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fluxload:", err)
		os.Exit(1)
	}
}

type options struct {
	target, scenario            string
	users, setupConcurrency     int
	rate, connections           int
	duration, timeout, userWait time.Duration
	findMax                     bool
	fm                          loadtest.FindMaxConfig
	connTest, dialRate          int
	idleInterval, hold          time.Duration
	idlePath                    string
	jsonOut                     bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{fm: loadtest.DefaultFindMax}
	fs := flag.NewFlagSet("fluxload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "http://127.0.0.1:8080", "fluxauth base URL; must resolve to loopback")
	fs.StringVar(&o.scenario, "scenario", "refresh", "one of "+strings.Join(loadtest.Scenarios, ", "))
	fs.IntVar(&o.users, "users", 1000, "simulated users signed up before the run")
	fs.IntVar(&o.setupConcurrency, "setup-concurrency", 16, "signups in flight at once during setup")
	fs.IntVar(&o.rate, "rate", 500, "requests per second (open loop)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send")
	fs.IntVar(&o.connections, "connections", 0, "most workers and connections (default: -users)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.DurationVar(&o.userWait, "user-wait", 10*time.Second, "how long a refresh waits for a user with no request in flight before it counts as failed")
	fs.BoolVar(&o.findMax, "find-max", false, "step the rate up until success < 99.9% or p99 > 100ms, then run at half the maximum for -duration")
	fs.IntVar(&o.fm.Start, "start", loadtest.DefaultFindMax.Start, "find-max: first rate")
	fs.IntVar(&o.fm.Step, "step", loadtest.DefaultFindMax.Step, "find-max: rate increase per step")
	fs.IntVar(&o.fm.Max, "max-rate", loadtest.DefaultFindMax.Max, "find-max: highest rate tried")
	fs.DurationVar(&o.fm.StepDuration, "step-duration", loadtest.DefaultFindMax.StepDuration, "find-max: length of each step")
	fs.IntVar(&o.connTest, "connections-test", 0, "instead of a scenario, hold N keep-alive connections open (e.g. 10000), each sending a request every -idle-interval")
	fs.DurationVar(&o.idleInterval, "idle-interval", 5*time.Second, "connections test: time between one connection's requests")
	fs.DurationVar(&o.hold, "hold", 60*time.Second, "connections test: how long all connections are held once open")
	fs.IntVar(&o.dialRate, "dial-rate", 1000, "connections test: new connections per second")
	fs.StringVar(&o.idlePath, "idle-path", "/healthz", "connections test: path requested (/api/auth/me signs -users users up first)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.connections == 0 {
		o.connections = max(o.users, 1)
	}
	o.fm.HalfDuration = o.duration
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	base, err := loadtest.CheckTarget(ctx, o.target)
	if err != nil {
		return err
	}
	want := uint64(max(o.connections, o.connTest, o.setupConcurrency) + 256)
	if got, err := loadtest.RaiseFileLimit(want); err != nil || got < want {
		fmt.Fprintf(stderr, "fluxload: open-files limit is %d, below the %d this run may need (%v)\n", got, want, err)
	}
	runID := loadtest.RunID()
	needUsers := o.scenario != "signup"
	if o.connTest > 0 {
		needUsers = o.idlePath == "/api/auth/me"
	}
	var users []*loadtest.User
	if needUsers {
		began := time.Now()
		users, err = loadtest.Setup(ctx, loadtest.SetupConfig{
			Target: base.String(), Users: o.users, Concurrency: o.setupConcurrency,
			Timeout: 10 * time.Minute, Client: loadtest.NewClient(o.setupConcurrency, 30*time.Second),
		}, runID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "setup: %d users signed up in %s\n", len(users), time.Since(began).Round(time.Millisecond))
	}

	if o.connTest > 0 {
		res, err := loadtest.Idle(ctx, loadtest.IdleConfig{
			Addr: base.Host, Conns: o.connTest, Interval: o.idleInterval, Hold: o.hold,
			DialRate: o.dialRate, Path: o.idlePath, Users: users,
		})
		if err != nil {
			return err
		}
		if o.jsonOut {
			if err := writeJSON(stdout, res); err != nil {
				return err
			}
		} else {
			res.WriteText(stdout)
		}
		if !res.Passed() {
			return errors.New("connections test failed")
		}
		return nil
	}

	w, err := loadtest.NewWorkload(o.scenario, loadtest.WorkloadConfig{Base: base.String(), Users: users, RunID: runID, UserWait: o.userWait})
	if err != nil {
		return err
	}
	rc := loadtest.RunConfig{Rate: o.rate, Duration: o.duration, Connections: o.connections, Client: loadtest.NewClient(o.connections, o.timeout)}
	if o.findMax {
		res, err := loadtest.FindMax(ctx, w, rc, o.fm, func(s *loadtest.Summary) {
			fmt.Fprintf(stderr, "step %5d/s: success %.3f%%  p50 %s  p99 %s  sent %.0f/s  fluxload cpu %.2f\n",
				s.TargetRate, 100*s.SuccessRatio(), s.Latency.P50, s.Latency.P99, s.Rate, s.ClientCPU)
		})
		if err != nil {
			return err
		}
		if o.jsonOut {
			return writeJSON(stdout, res)
		}
		fmt.Fprintf(stdout, "max sustainable rate: %d/s (stopped: %s)\n", res.MaxRate, res.Reason)
		if n := len(res.Steps); n > 0 {
			res.Steps[n-1].WriteText(stdout)
		}
		if res.Half != nil {
			res.Half.WriteText(stdout)
		}
		reportRetired(stdout, w)
		return nil
	}
	s, err := loadtest.Run(ctx, w, rc)
	if err != nil {
		return err
	}
	if o.jsonOut {
		return writeJSON(stdout, s)
	}
	s.WriteText(stdout)
	reportRetired(stdout, w)
	return nil
}

func reportRetired(w io.Writer, wl *loadtest.Workload) {
	if wl.Pool != nil && wl.Pool.Retired() > 0 {
		fmt.Fprintf(w, "  %d users were signed out by the server and left the run\n", wl.Pool.Retired())
	}
}
