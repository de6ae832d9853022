package storetest

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// legacyIDs is a store through which every user created with a random UUID for ID (newUser's)
// gets, instead, an ID as the legacy server's users keep them when imported: "123", "usr_9f2",
// "a.b-c" and the other characters an ID may hold. The suites that touch users run once through it
// and once without, so each case holds for both kinds of ID. The new ID is written into the *User
// the case passed, which goes on using it.
type legacyIDs struct {
	fluxauth.Backend
	n *atomic.Int64
}

// legacyStyles are the kinds of ID the legacy server's users have, each made unique by n.
var legacyStyles = []func(n int64) string{
	func(n int64) string { return fmt.Sprint(100 + n) },              // "123": its numeric IDs
	func(n int64) string { return fmt.Sprintf("usr_%x", 0x9f2+n) },   // "usr_9f2"
	func(n int64) string { return fmt.Sprintf("a.b-c%d", n) },        // dots and dashes
	func(n int64) string { return fmt.Sprintf("~legacy:%d@FS_", n) }, // every other character allowed, upper case
}

func withLegacyIDs(b fluxauth.Backend) fluxauth.Backend {
	return legacyIDs{Backend: b, n: new(atomic.Int64)}
}

func (s legacyIDs) legacy(u *fluxauth.User) {
	if id, err := uuid.Parse(u.ID); err == nil && id.Version() == 4 { // newID's, not a case's own
		n := s.n.Add(1)
		u.ID = legacyStyles[n%int64(len(legacyStyles))](n)
	}
}

func (s legacyIDs) CreateUser(ctx context.Context, u *fluxauth.User) error {
	s.legacy(u)
	return s.Backend.CreateUser(ctx, u)
}

func (s legacyIDs) Update(ctx context.Context, fn func(tx fluxauth.Tx) error) error {
	return s.Backend.Update(ctx, func(tx fluxauth.Tx) error { return fn(legacyTx{tx, s}) })
}

type legacyTx struct {
	fluxauth.Tx
	s legacyIDs
}

func (t legacyTx) CreateUser(ctx context.Context, u *fluxauth.User) error {
	t.s.legacy(u)
	return t.Tx.CreateUser(ctx, u)
}
