// Package storetest is the contract every fluxauth.Store implementation passes, in the manner of
// testing/fstest: a backend's own test calls Run with a function that opens an empty, migrated store.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/google/uuid"
)

// Backend is a store under test and what the suite needs to watch it from outside.
type Backend struct {
	Store fluxauth.Backend
	// LockWaits returns a count that rises as soon as one of Store's transactions starts waiting for
	// a lock another transaction holds: the number waiting now (PostgreSQL's pg_stat_activity) or the
	// number of waits so far (a connection pool's wait count) both do. With it a test can hold a
	// lock, see a second transaction queue behind it, and only then let the first commit: an
	// interleaving forced without sleeping.
	LockWaits func(ctx context.Context) (int64, error)
}

// Run runs the contract suite. open must return an empty, migrated store for tb and release it when
// tb ends; it is called once per subtest, and subtests run in parallel.
func Run(t *testing.T, open func(tb testing.TB) Backend) {
	for _, ids := range []struct {
		name string
		wrap func(fluxauth.Backend) fluxauth.Backend
	}{
		{"uuid user ids", func(b fluxauth.Backend) fluxauth.Backend { return b }},
		{"legacy user ids", withLegacyIDs},
	} {
		open := func(tb testing.TB) Backend {
			b := open(tb)
			b.Store = ids.wrap(b.Store)
			return b
		}
		store := func(tb testing.TB) fluxauth.Store { return open(tb).Store }
		storage := func(tb testing.TB) fluxauth.Backend { return open(tb).Store }
		t.Run(ids.name, func(t *testing.T) {
			run(t, "users", slices.Concat(userTests, passwordHashParamsTests), store)
			run(t, "identities", identityTests, store)
			run(t, "refresh tokens", tokenTests, store)
			run(t, "rotation", rotateTests, store)
			run(t, "update", updateTests, store)
			run(t, "admin", slices.Concat(adminTests, seriesTests, userSearchTests), storage)
			run(t, "claims", claimTests, store)
			run(t, "device tokens", deviceTokenTests, store)
			run(t, "mail outbox", mailTests, store)
			run(t, "link tokens", linkTokenTests, store)
			run(t, "user locks", userLockTests, open)
		})
	}
	// What never names a user, or only as a column of its own, runs once.
	store := func(tb testing.TB) fluxauth.Store { return open(tb).Store }
	storage := func(tb testing.TB) fluxauth.Backend { return open(tb).Store }
	run(t, "events", eventTests, store)
	run(t, "concurrency", concurrencyTests, store)
	run(t, "event feed", feedTests, storage)
	run(t, "cleanup", slices.Concat(cleanupTests, deviceTokenCleanupTests, mailCleanupTests), storage)
	run(t, "id tokens", idTokenTests, storage)
	run(t, "imports", importTests, storage)
	run(t, "locks", append(lockTests, idTokenLockTests...), open)
}

func run[S any](t *testing.T, suite string, tests []testOf[S], open func(tb testing.TB) S) {
	t.Run(suite, func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t, open(t))
			})
		}
	})
}

// testOf is one case of the suite, named after the behaviour it pins down.
type testOf[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

type (
	// test is a case that needs only the Store.
	test = testOf[fluxauth.Store]
	// storageTest is a case of the admin or the cleanup store.
	storageTest = testOf[fluxauth.Backend]
	// backendTest is a case that also watches the store from outside.
	backendTest = testOf[Backend]
)

// t0 carries nanoseconds and a non-UTC zone on purpose: stores keep microseconds, in UTC.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))

func at(d time.Duration) time.Time { return t0.Add(d) }

func newID() string { return uuid.NewString() }

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// stored is what a store must give back for t: microsecond precision, UTC, zero kept zero.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func update(tb testing.TB, s fluxauth.Store, fn func(tx fluxauth.Tx) error) {
	tb.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func must(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// equal compares got with want field by field after normalising want's times as a store keeps them.
func equal[T any](tb testing.TB, what string, got, want *T) {
	tb.Helper()
	w := *want
	normalizeTimes(reflect.ValueOf(&w).Elem())
	g := *got
	if !reflect.DeepEqual(g, w) {
		tb.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
	checkUTC(tb, what, reflect.ValueOf(g))
}

func normalizeTimes(v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		if f, ok := v.Field(i).Interface().(time.Time); ok {
			v.Field(i).Set(reflect.ValueOf(stored(f)))
		}
	}
}

func checkUTC(tb testing.TB, what string, v reflect.Value) {
	tb.Helper()
	for i := 0; i < v.NumField(); i++ {
		if f, ok := v.Field(i).Interface().(time.Time); ok && !f.IsZero() && f.Location() != time.UTC {
			tb.Fatalf("%s: %s is in %v, want UTC", what, v.Type().Field(i).Name, f.Location())
		}
	}
}

func newUser(email string) *fluxauth.User {
	return &fluxauth.User{
		ID:           newID(),
		Email:        email,
		Name:         "Ada Lovelace",
		UserType:     fluxauth.UserTypeClient,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA",
		CreatedAt:    at(0),
		UpdatedAt:    at(time.Second),
	}
}

func mustCreateUser(tb testing.TB, s fluxauth.Store, email string) *fluxauth.User {
	tb.Helper()
	u := newUser(email)
	must(tb, "CreateUser", s.CreateUser(context.Background(), u))
	return u
}

// newToken returns the first token of a new session of userID, created at created.
func newToken(userID string, created time.Time) *fluxauth.RefreshToken {
	id := newID()
	return &fluxauth.RefreshToken{
		ID:                id,
		SessionID:         newID(),
		UserID:            userID,
		TokenHash:         hashOf(id),
		DeviceName:        "Pixel 9",
		DeviceFingerprint: "fp-" + id[:8],
		IPAddress:         "2001:db8::1",
		UserAgent:         "FluxStudio/3.1 (Android 15)",
		SessionCreatedAt:  created,
		CreatedAt:         created,
		LastUsedAt:        created,
		ExpiresAt:         created.Add(30 * 24 * time.Hour),
		AuthTime:          created.Add(-time.Hour),
	}
}

// childOf returns the token parent rotates into at when.
func childOf(parent *fluxauth.RefreshToken, when time.Time) *fluxauth.RefreshToken {
	c := *parent
	c.ID = newID()
	c.ParentID = parent.ID
	c.TokenHash = hashOf(c.ID)
	c.CreatedAt, c.LastUsedAt = when, when
	c.ExpiresAt = when.Add(30 * 24 * time.Hour)
	c.SpentAt, c.RevokedAt, c.RevokeReason = time.Time{}, time.Time{}, ""
	return &c
}

func insertTokens(tb testing.TB, s fluxauth.Store, tokens ...*fluxauth.RefreshToken) {
	tb.Helper()
	update(tb, s, func(tx fluxauth.Tx) error {
		for _, rt := range tokens {
			if err := tx.InsertRefreshToken(context.Background(), rt); err != nil {
				return fmt.Errorf("InsertRefreshToken: %w", err)
			}
		}
		return nil
	})
}

// rotate spends parent and inserts its child, as a refresh does, returning the child.
func rotate(tb testing.TB, s fluxauth.Store, parent *fluxauth.RefreshToken, when time.Time) *fluxauth.RefreshToken {
	tb.Helper()
	child := childOf(parent, when)
	update(tb, s, func(tx fluxauth.Tx) error {
		ok, err := tx.RotateRefreshToken(context.Background(), parent.ID, child, when)
		if err == nil && !ok {
			err = fmt.Errorf("RotateRefreshToken: %s is not live", parent.ID)
		}
		return err
	})
	parent.SpentAt, parent.LastUsedAt = when, when
	return child
}

// tokenByHash reads a token by hash in a transaction of its own.
func tokenByHash(s fluxauth.Store, hash string) (*fluxauth.RefreshToken, error) {
	var got *fluxauth.RefreshToken
	err := s.Update(context.Background(), func(tx fluxauth.Tx) error {
		var err error
		got, err = tx.RefreshTokenByHash(context.Background(), hash)
		return err
	})
	return got, err
}

// readToken reads a token by hash in a transaction of its own, failing tb if it is not there.
func readToken(tb testing.TB, s fluxauth.Store, hash string) *fluxauth.RefreshToken {
	tb.Helper()
	got, err := tokenByHash(s, hash)
	must(tb, "RefreshTokenByHash", err)
	return got
}

func ids[T any](items []*T, id func(*T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func tokenIDs(ts []*fluxauth.RefreshToken) []string {
	return ids(ts, func(t *fluxauth.RefreshToken) string { return t.ID })
}

func eventIDs(es []*fluxauth.SecurityEvent) []string {
	return ids(es, func(e *fluxauth.SecurityEvent) string { return e.ID })
}

func sameIDs(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s:\n got %v\nwant %v", what, got, want)
	}
}

var errBoom = errors.New("boom")

// stepClock hands out strictly increasing times; safe for concurrent use.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) next() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}
