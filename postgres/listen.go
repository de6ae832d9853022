package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventsChannel is the channel the trigger of migration 013 notifies at the commit of every
// statement that inserts security events.
const EventsChannel = "fluxauth_security_events"

// ListenEvents calls wake whenever any instance commits security events, until ctx ends. It holds
// one connection of its own (outside the pool: a listening connection must not serve queries) and
// reconnects after retry when it is lost, calling onError with why. wake is also called each time
// listening starts, since commits made while it was not listening were not notified: a reader woken
// then reads them. wake must not block.
func (db *DB) ListenEvents(ctx context.Context, wake func(), retry time.Duration, onError func(error)) {
	for {
		err := db.listen(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		onError(mapErr(err))
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (db *DB) listen(ctx context.Context, wake func()) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		// ctx has ended or the connection failed: say goodbye, but never wait on a dead server.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+EventsChannel); err != nil {
		return err
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}
