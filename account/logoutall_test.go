package account_test

import (
	"context"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

// A login whose transaction is still open when "log out everywhere" starts is ended by it: logout-all
// takes the user's lock, which the login holds until it commits, and then sees its session. (Read
// outside the transaction, the sessions listing missed it, and the new session outlived the logout.)
// On PostgreSQL, with the login held inside its transaction by an advisory lock the test holds.
func TestLogoutAllEndsASessionWhoseLoginCommitsMeanwhile(t *testing.T) {
	store := postgrestest.MustOpenDB(t)
	r := newRigOn(t, store)
	first := r.signup("everywhere@example.com")
	ctx := context.Background()
	pool := store.Pool()

	// From here every new refresh token waits, inside its transaction, for the test's advisory lock.
	hold, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()
	if _, err := hold.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_advisory_lock_shared(4242);
			PERFORM pg_advisory_unlock_shared(4242);
			RETURN NULL;
		END $$;
		CREATE TRIGGER wait_for_test AFTER INSERT ON refresh_tokens FOR EACH ROW EXECUTE FUNCTION wait_for_test();`); err != nil {
		t.Fatal(err)
	}
	waiting := func(kind string) int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = $1`, kind).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10 s for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	type loginResult struct {
		res *account.Result
		err error
	}
	loggedIn := make(chan loginResult, 1)
	go func() {
		res, err := r.svc.Login(ctx, account.LoginInput{Email: "everywhere@example.com", Password: "correct horse battery staple", Device: device})
		loggedIn <- loginResult{res, err}
	}()
	until("the login to hold its transaction open", func() bool { return waiting("advisory") == 1 })

	loggedOut := make(chan error, 1)
	go func() {
		loggedOut <- r.svc.LogoutAll(ctx, &account.Principal{UserID: first.User.ID, SessionID: first.SessionID}, device)
	}()
	// Logout-all either waits for the login's lock on the user, or (wrongly) finishes without it.
	finished := false
	until("logout-all to wait for the login or finish", func() bool {
		select {
		case err := <-loggedOut:
			loggedOut <- err
			finished = true
			return true
		default:
			return waiting("transactionid")+waiting("tuple") > 0
		}
	})
	if _, err := hold.Exec(ctx, `SELECT pg_advisory_unlock(4242)`); err != nil {
		t.Fatal(err)
	}
	login := <-loggedIn
	if login.err != nil {
		t.Fatalf("login: %v", login.err)
	}
	if err := <-loggedOut; err != nil {
		t.Fatalf("logout-all: %v", err)
	}
	revoked, _, err := store.SessionRevoked(ctx, login.res.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if !revoked {
		t.Fatalf("the session of a login in flight during logout-all is alive (logout-all finished before the login committed: %v)", finished)
	}
	if live := r.sessionState(first.User.ID); len(live) != 0 {
		t.Fatalf("%d sessions alive after logout-all", len(live))
	}
}
