package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/fluxstudio/fluxauth"
	"log/slog"
	"sync"
	"time"

	"github.com/fluxstudio/fluxauth/token"
)

// runState is whether an App has run, shared by Run and Shutdown.
type runState struct {
	mu      sync.Mutex
	started bool               // Run was called, or Shutdown came first
	cancel  context.CancelFunc // ends Run's context
	done    chan struct{}      // closed once Run has returned (or Shutdown discarded the App)
	err     error              // Run's error, set before done is closed
}

func (s *runState) init() { s.done = make(chan struct{}) }

// errRunTwice is Run's answer when the App has already run or was shut down.
var errRunTwice = errors.New("app: Run called on an App that already ran or was shut down")

// Run serves until ctx ends or Shutdown is called, then stops gracefully (see shutdown), or until
// one of its goroutines fails, which stops the rest. Every goroutine of the service is started
// here and has returned when Run does, and what New opened is closed by then. It returns the
// failure, or the graceful stop's error; a requested stop that went well is nil. An App runs once.
func (a *App) Run(ctx context.Context) error {
	a.state.mu.Lock()
	if a.state.started {
		a.state.mu.Unlock()
		return errRunTwice
	}
	ctx, cancel := context.WithCancel(ctx)
	a.state.started, a.state.cancel = true, cancel
	a.state.mu.Unlock()
	defer cancel()

	err := a.run(ctx)
	a.closeAll()
	a.state.err = err
	close(a.state.done)
	return err
}

// Shutdown stops a running App as the end of Run's context does, waits for Run to return and
// returns its error. On an App that never ran, it closes what New opened, and Run may not follow.
func (a *App) Shutdown() error {
	a.state.mu.Lock()
	if !a.state.started {
		a.state.started = true
		a.state.mu.Unlock()
		a.discard()
		close(a.state.done)
		return nil
	}
	cancel := a.state.cancel
	a.state.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	<-a.state.done
	return a.state.err
}

// run starts every goroutine in one lifecycle and waits for all of them.
func (a *App) run(ctx context.Context) error {
	cfg, logger := a.cfg, a.Logger
	// From here every goroutine belongs to lc: run returns only when all of them have.
	lc := newLifecycle(ctx, logger)
	lc.loop("signing-key reload", func(ctx context.Context) error { reloadKeys(ctx, a.keys, a.Clock, logger); return nil })
	if cfg.CleanupAt != "off" {
		job := CleanupJob(cfg, a.Store, a.Clock, logger)
		lc.loop("daily cleanup", func(ctx context.Context) error { return job.Daily(ctx, cfg.CleanupAt) })
	}
	if a.Mail != nil && !a.deps.HoldMail {
		// At shutdown a mail being sent is interrupted and recorded for an immediate retry, by this
		// instance's next start or by another instance.
		lc.loop("mail sender", func(ctx context.Context) error { a.Mail.Run(ctx); return nil })
	}
	if a.redisRevocations != nil {
		lc.loop("revocation re-announcement", func(ctx context.Context) error { a.redisRevocations.Run(ctx); return nil })
	}
	// The audit writer outlives ctx: shutdown drains the requests, whose events it still writes, and
	// then closes the recorder, which is when it writes what is queued and returns.
	lc.loop("audit writer", a.Recorder.Run)
	lc.loop("alert monitor", func(context.Context) error { a.alerts.run(); return nil }) // until alerts.stop
	if a.Webhook != nil {
		// Like the audit writer it outlives ctx: alerts.stop, after the recorder is drained, closes
		// it, which is when it delivers what is queued (within alertFlushTimeout) and returns.
		lc.loop("alert webhook", a.Webhook.Run)
	}
	lc.loop("security feed", a.Hub.Run)
	lc.loop("security feed wakes", func(ctx context.Context) error { a.Hub.Listen(ctx, a.Store, a.Recorder); return nil })
	stopEvents := func() {}
	if a.Metrics != nil {
		events := a.Recorder.Follow(1024)
		a.Metrics.ExportSubscriberDrops("metrics", events.Dropped)
		stopEvents = events.Close
		lc.loop("metrics event counter", func(context.Context) error {
			for ev := range events.C { // until shutdown ends the subscription
				a.Metrics.CountEvent(ev)
			}
			return nil
		})
		lc.serve("internal listener", a.internal, a.internalLn)
		logger.Info("internal listener (/metrics, /debug/pprof/)", "addr", a.internalLn.Addr().String())
	}
	lc.serve("public listener", a.public, a.publicLn)
	logger.Info("fluxauth listening", "addr", a.publicLn.Addr().String(), "version", a.version, "database", databaseKind(cfg), "redis", cfg.RedisURL != "")

	lc.onShutdown(func() error { return a.shutdown(stopEvents) })
	return lc.wait()
}

// shutdown is the graceful stop, in the order that loses nothing: drain the requests in flight
// (new connections are refused at once), give the revocations Redis missed one more try, write the
// security events the requests queued, and only then stop the alerts, so that the events written
// last are alerted on too.
func (a *App) shutdown(stopEvents func()) error {
	cfg, logger := a.cfg, a.Logger
	logger.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var errs []error
	// In-flight requests get the timeout but for a reserve in which the events they queued
	// are written. Shutdown closes the listeners at once: new connections are refused.
	drainCtx, cancelDrain := context.WithDeadline(shutCtx, deadline.Add(-eventReserve(cfg.ShutdownTimeout)))
	defer cancelDrain()
	if a.internal != nil {
		a.internal.Close() // metrics and profiles are not worth waiting for
	}
	if err := a.public.Shutdown(drainCtx); err != nil {
		logger.Error("shutdown: in-flight requests outlasted the shutdown timeout; closing their connections",
			"timeout", cfg.ShutdownTimeout, "err", err)
		a.public.Close()
		errs = append(errs, fmt.Errorf("graceful shutdown: in-flight requests cut: %w", err))
	}
	// Requests are done; revocations Redis missed get one more try before its client closes.
	if a.redisRevocations != nil {
		if err := a.redisRevocations.Flush(shutCtx); err != nil {
			logger.Warn("revocation: not every failed announcement reached redis before shutdown", "err", err)
		}
	}
	// The events the requests queued are written before the database closes; those that
	// cannot be by the deadline are counted in the log (Close), never dropped silently.
	if err := a.Recorder.Close(shutCtx); err != nil {
		errs = append(errs, err)
	}
	stopEvents()
	a.alerts.stop() // after the recorder is drained: the events it wrote last are alerted on too
	if len(errs) == 0 {
		logger.Info("stopped")
	}
	return errors.Join(errs...)
}

// CloseBound bounds closing a client at exit. A healthy pool closes in milliseconds; one whose
// database stopped answering waits for every connection's cancel request, which pgx gives 15 s.
const CloseBound = 500 * time.Millisecond

// closeWithin closes a client on the way out, giving up after CloseBound: the process is exiting,
// and the operating system closes whatever is left.
func closeWithin(logger *slog.Logger, what string, closeFn func() error) {
	done := make(chan struct{})
	go func() {
		closeFn()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(CloseBound):
		logger.Warn("exit: "+what+" connections still closing; leaving them to the operating system", "waited", CloseBound)
	}
}

// eventReserve is the part of the shutdown timeout kept for writing the security events the last
// requests queued: a quarter, at most 2 s (a batch takes milliseconds; the rest is for a database
// that is slow to answer).
func eventReserve(timeout time.Duration) time.Duration { return min(timeout/4, 2*time.Second) }

// keyReloadEvery is how often serve re-reads the key file: often enough that every instance signs
// with a rotated-in key within seconds, and a reload is only a small file read.
const keyReloadEvery = 10 * time.Second

// reloadKeys picks up keys rotated into the shared file while serving (an in-memory key set has
// nothing to reload).
func reloadKeys(ctx context.Context, keys *token.KeySet, clock fluxauth.Clock, logger *slog.Logger) {
	ticker, ticks := clock.NewTicker(keyReloadEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			changed, err := keys.Reload()
			if err != nil {
				logger.Error("signing keys: reload failed; keeping the keys in use", "err", err)
			} else if changed {
				logger.Info("signing keys reloaded", "current_kid", keys.CurrentKID())
			}
		}
	}
}
