package account

import (
	"context"

	"github.com/fluxstudio/fluxauth"
)

// update runs fn in one store transaction. Events fn inserts are handed to the recorder's
// subscribers once, after the transaction commits, never for a rolled-back attempt.
func (s *Service) update(ctx context.Context, fn func(tx fluxauth.Tx) error) error {
	var events []*fluxauth.SecurityEvent
	err := s.Store.Update(ctx, func(tx fluxauth.Tx) error {
		events = events[:0]
		return fn(eventTx{tx, &events})
	})
	if err == nil && len(events) > 0 {
		s.Events.Committed(events...)
	}
	return err
}

// eventTx remembers the events inserted through it.
type eventTx struct {
	fluxauth.Tx
	events *[]*fluxauth.SecurityEvent
}

func (t eventTx) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	if err := t.Tx.InsertEvents(ctx, events...); err != nil {
		return err
	}
	*t.events = append(*t.events, events...)
	return nil
}
