// Package testserver assembles fluxauth's account service for tests and benchmarks the way
// "fluxauth serve" does, so every test package builds it one way.
package testserver

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/token"
)

// CheapHashing are argon2id parameters that make tests fast; production uses config.Default().Password.
var CheapHashing = password.Params{Memory: 1024, Time: 1, Threads: 1}

// Options configure NewAccounts; zero fields take the defaults named.
type Options struct {
	Clock   fluxauth.Clock      // fluxauth.SystemClock
	Keys    *token.KeySet       // a fresh in-memory key
	Logger  *slog.Logger        // discards
	Hashing password.Params     // CheapHashing
	Flush   time.Duration       // the audit recorder's flush interval: 10ms
	Rules   *ratelimit.Rules    // no limits (the in-memory limiter is installed either way)
	Revoke  account.Revocations // the database, uncached
}

// NewAccounts returns an account service on store with its audit recorder, which is closed (and
// drained) when tb ends.
func NewAccounts(tb testing.TB, store fluxauth.Store, o Options) (*account.Service, *audit.Recorder) {
	tb.Helper()
	if o.Clock == nil {
		o.Clock = fluxauth.SystemClock{}
	}
	if o.Keys == nil {
		ks, err := token.GenerateKeySet(o.Clock, rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		o.Keys = ks
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Hashing == (password.Params{}) {
		o.Hashing = CheapHashing
	}
	if o.Flush == 0 {
		o.Flush = 10 * time.Millisecond
	}
	if o.Rules == nil {
		o.Rules = &ratelimit.Rules{}
	}
	if o.Revoke == nil {
		o.Revoke = revocation.NewDB(store, 0, o.Clock)
	}
	issuer, err := token.NewIssuer(token.Config{Issuer: "http://fluxauth.test", Audience: "fluxstudio", Keys: o.Keys, Clock: o.Clock})
	if err != nil {
		tb.Fatal(err)
	}
	recorder := audit.New(store, o.Logger, audit.Config{FlushInterval: o.Flush})
	tb.Cleanup(func() { recorder.Close(context.Background()) })
	admin, _ := store.(fluxauth.AdminStore) // every backend is one; the admin API needs it
	return &account.Service{
		Store: store, Admin: admin, Passwords: password.New(o.Hashing, 0, rand.Reader), Tokens: issuer, Refreshes: o.Keys.RefreshMinter(), Devices: o.Keys.DeviceMinter(),
		Revocations: o.Revoke, Events: recorder, Clock: o.Clock, Rand: rand.Reader, Logger: o.Logger,
		Config: config.Default().Account, Limiter: ratelimit.NewMemory(o.Clock), Rules: *o.Rules,
	}, recorder
}
