package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"
)

// lifecycle owns every goroutine the App starts, in one errgroup: the listeners, the background
// loops and the shutdown that stops them. wait returns when all of them have returned, so nothing
// the App started outlives it (nor the database and Redis clients closed after it). A goroutine
// that returns before shutdown was asked for, with an error or without, is a failure: it is
// logged, shuts everything else down, and makes Run (and serve) fail. So is a listener's Serve
// error. Adding a component with a loop is one line: lc.loop("its name", component.Run).
type lifecycle struct {
	g      *errgroup.Group
	ctx    context.Context // ends at SIGTERM or when a goroutine fails
	logger *slog.Logger
}

func newLifecycle(ctx context.Context, logger *slog.Logger) *lifecycle {
	g, gctx := errgroup.WithContext(ctx)
	return &lifecycle{g: g, ctx: gctx, logger: logger}
}

// loop runs fn, which must return only once its ctx has ended.
func (l *lifecycle) loop(name string, fn func(ctx context.Context) error) {
	l.g.Go(func() error {
		err := fn(l.ctx)
		if l.ctx.Err() != nil {
			return nil // asked to stop
		}
		if err == nil {
			err = errors.New("returned while serving")
		}
		return l.failed(name, err)
	})
}

// serve runs srv on ln until shutdown closes it.
func (l *lifecycle) serve(name string, srv *http.Server, ln net.Listener) {
	l.g.Go(func() error {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			return nil // closed by shutdown, the only thing that closes it
		}
		if err == nil {
			err = errors.New("returned while serving")
		}
		return l.failed(name, err)
	})
}

// onShutdown runs fn once the lifecycle's context ends; its error is Run's.
func (l *lifecycle) onShutdown(fn func() error) {
	l.g.Go(func() error {
		<-l.ctx.Done()
		return fn()
	})
}

func (l *lifecycle) failed(name string, err error) error {
	err = fmt.Errorf("%s stopped unexpectedly: %w", name, err)
	l.logger.Error("fluxauth: "+name+" stopped unexpectedly; shutting down", "err", err)
	return err
}

// wait returns once every goroutine has returned: the first failure, or the shutdown's error.
func (l *lifecycle) wait() error { return l.g.Wait() }
