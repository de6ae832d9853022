package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// newMail returns a reset mail for userID ("" for an address no account has), due at due.
func newMail(userID, address string, due time.Time) *fluxauth.OutboxMail {
	return &fluxauth.OutboxMail{ID: newID(), Kind: fluxauth.MailPasswordReset, UserID: userID, Address: address,
		NextAttemptAt: due, CreatedAt: due}
}

func enqueue(tb testing.TB, s fluxauth.Store, mails ...*fluxauth.OutboxMail) {
	tb.Helper()
	update(tb, s, func(tx fluxauth.Tx) error {
		for _, m := range mails {
			if err := tx.EnqueueMail(context.Background(), m); err != nil {
				return fmt.Errorf("EnqueueMail: %w", err)
			}
		}
		return nil
	})
}

// claim calls ClaimMail, failing tb on an error other than ErrNotFound; nil when nothing is due.
func claim(tb testing.TB, s fluxauth.Store, now time.Time, lease time.Duration) *fluxauth.OutboxMail {
	tb.Helper()
	m, err := s.ClaimMail(context.Background(), now, lease)
	if err == fluxauth.ErrNotFound {
		return nil
	}
	must(tb, "ClaimMail", err)
	return m
}

func settle(tb testing.TB, s fluxauth.Store, m *fluxauth.OutboxMail, attempt int, o fluxauth.MailOutcome) bool {
	tb.Helper()
	ok, err := s.SettleMail(context.Background(), m.ID, attempt, o)
	must(tb, "SettleMail", err)
	return ok
}

var mailTests = []test{
	{"a claimed mail comes back as enqueued, with its attempt counted and its lease", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "mail-owner@example.com")
		m := newMail(u.ID, u.Email, at(0))
		unknown := newMail("", "nobody@example.com", at(time.Second))
		enqueue(t, s, unknown, m)
		got := claim(t, s, at(time.Minute), time.Minute)
		want := *m
		want.Attempts, want.ClaimedUntil = 1, at(2*time.Minute)
		equal(t, "first claim (the oldest due)", got, &want)
		got = claim(t, s, at(time.Minute), time.Minute)
		want = *unknown
		want.Attempts, want.ClaimedUntil = 1, at(2*time.Minute)
		equal(t, "second claim (no account)", got, &want)
		if m := claim(t, s, at(time.Minute), time.Minute); m != nil {
			t.Fatalf("a third claim got %+v while both leases run", m)
		}
	}},
	{"a mail is not claimed before it is due, nor while leased, and again once the lease ran out", func(t *testing.T, s fluxauth.Store) {
		m := newMail("", "later@example.com", at(time.Hour))
		enqueue(t, s, m)
		if got := claim(t, s, at(time.Hour-time.Microsecond), time.Minute); got != nil {
			t.Fatal("a mail was claimed before it was due")
		}
		first := claim(t, s, at(time.Hour), time.Minute)
		if first == nil || first.Attempts != 1 {
			t.Fatalf("claim at the due time = %+v, want attempt 1", first)
		}
		if got := claim(t, s, at(time.Hour+time.Minute-time.Microsecond), time.Minute); got != nil {
			t.Fatal("a mail was claimed again while its lease ran")
		}
		second := claim(t, s, at(time.Hour+time.Minute), time.Minute)
		if second == nil || second.Attempts != 2 {
			t.Fatalf("claim once the lease ran out = %+v, want attempt 2", second)
		}
		if settle(t, s, m, 1, fluxauth.MailOutcome{SentAt: at(2 * time.Hour)}) {
			t.Fatal("the first claim, overtaken, settled the mail")
		}
		if !settle(t, s, m, 2, fluxauth.MailOutcome{SentAt: at(2 * time.Hour)}) {
			t.Fatal("the latest claim could not settle the mail")
		}
		if settle(t, s, m, 2, fluxauth.MailOutcome{SentAt: at(3 * time.Hour)}) {
			t.Fatal("a sent mail was settled twice")
		}
		if got := claim(t, s, at(100*time.Hour), time.Minute); got != nil {
			t.Fatalf("a sent mail was claimed: %+v", got)
		}
	}},
	{"a retried mail is due again at its retry time, with its error class; an abandoned one never", func(t *testing.T, s fluxauth.Store) {
		retried := newMail("", "retry@example.com", at(0))
		abandoned := newMail("", "abandon@example.com", at(0))
		enqueue(t, s, retried, abandoned)
		a := claim(t, s, at(0), time.Minute)
		b := claim(t, s, at(0), time.Minute)
		if a == nil || b == nil {
			t.Fatal("two due mails were not both claimed")
		}
		r, x := a, b
		if a.ID != retried.ID {
			r, x = b, a
		}
		if !settle(t, s, r, 1, fluxauth.MailOutcome{RetryAt: at(time.Hour), ErrorClass: "unreachable"}) ||
			!settle(t, s, x, 1, fluxauth.MailOutcome{AbandonedAt: at(time.Second), ErrorClass: "rejected"}) {
			t.Fatal("settling the claims failed")
		}
		if got := claim(t, s, at(time.Hour-time.Microsecond), time.Minute); got != nil {
			t.Fatalf("a mail was claimed before its retry time: %+v", got)
		}
		got := claim(t, s, at(time.Hour), time.Minute)
		want := *retried
		want.Attempts, want.NextAttemptAt, want.ClaimedUntil, want.LastError = 2, at(time.Hour), at(time.Hour+time.Minute), "unreachable"
		equal(t, "the retried mail", got, &want)
		if !settle(t, s, got, 2, fluxauth.MailOutcome{SentAt: at(time.Hour)}) {
			t.Fatal("the retried mail could not be settled as sent")
		}
		if got := claim(t, s, at(1000*time.Hour), time.Minute); got != nil {
			t.Fatalf("an abandoned mail was claimed: %+v", got)
		}
	}},
	{"of concurrent claimers of one mail exactly one gets it", func(t *testing.T, s fluxauth.Store) {
		const claimers = 16
		enqueue(t, s, newMail("", "race@example.com", at(0)))
		var wg sync.WaitGroup
		var won atomic.Int32
		start := make(chan struct{})
		for range claimers {
			wg.Go(func() {
				<-start
				_, err := s.ClaimMail(context.Background(), at(time.Second), time.Minute)
				switch err {
				case nil:
					won.Add(1)
				case fluxauth.ErrNotFound:
				default:
					t.Errorf("ClaimMail: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Fatalf("%d of %d concurrent claimers got the one mail, want 1", n, claimers)
		}
	}},
	{"concurrent claimers share many mails, each mail claimed once", func(t *testing.T, s fluxauth.Store) {
		const mails, claimers = 40, 8
		var all []*fluxauth.OutboxMail
		for i := range mails {
			all = append(all, newMail("", fmt.Sprintf("many-%d@example.com", i), at(time.Duration(i)*time.Millisecond)))
		}
		enqueue(t, s, all...)
		var mu sync.Mutex
		claimed := map[string]int{}
		var wg sync.WaitGroup
		for range claimers {
			wg.Go(func() {
				for {
					m, err := s.ClaimMail(context.Background(), at(time.Hour), time.Hour)
					if err == fluxauth.ErrNotFound {
						return
					}
					if err != nil {
						t.Errorf("ClaimMail: %v", err)
						return
					}
					mu.Lock()
					claimed[m.ID]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(claimed) != mails {
			t.Fatalf("%d mails claimed, want %d", len(claimed), mails)
		}
		for id, n := range claimed {
			if n != 1 {
				t.Fatalf("mail %s claimed %d times", id, n)
			}
		}
	}},
	{"settling an ID the database cannot hold settles nothing", func(t *testing.T, s fluxauth.Store) {
		ok, err := s.SettleMail(context.Background(), "not-a-uuid", 1, fluxauth.MailOutcome{SentAt: at(0)})
		if ok || err != nil {
			t.Fatalf("SettleMail = %t, %v; want false, nil", ok, err)
		}
	}},
}

// newLinkToken returns a reset token of userID issued at created, living an hour.
func newLinkToken(userID string, created time.Time) *fluxauth.LinkToken {
	id := newID()
	return &fluxauth.LinkToken{ID: id, UserID: userID, Purpose: fluxauth.MailPasswordReset, TokenHash: hashOf(id),
		CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
}

func insertLinkTokens(tb testing.TB, s fluxauth.Store, tokens ...*fluxauth.LinkToken) {
	tb.Helper()
	for _, lt := range tokens {
		must(tb, "InsertLinkToken", s.InsertLinkToken(context.Background(), lt))
	}
}

// useLink spends the token with hash in a transaction of its own: nil when it is not usable.
func useLink(tb testing.TB, s fluxauth.Store, hash, purpose string, now time.Time) *fluxauth.LinkToken {
	tb.Helper()
	var got *fluxauth.LinkToken
	err := s.Update(context.Background(), func(tx fluxauth.Tx) error {
		var err error
		got, err = tx.UseLinkToken(context.Background(), hash, purpose, now)
		return err
	})
	if err == fluxauth.ErrNotFound {
		return nil
	}
	must(tb, "UseLinkToken", err)
	return got
}

var linkTokenTests = []test{
	{"a link token is spent once, for its purpose, before it expires", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "link-owner@example.com")
		lt := newLinkToken(u.ID, at(0))
		insertLinkTokens(t, s, lt)
		if useLink(t, s, lt.TokenHash, fluxauth.MailVerifyEmail, at(time.Minute)) != nil {
			t.Fatal("a reset token was spent as a verification token")
		}
		if useLink(t, s, hashOf("unknown"), fluxauth.MailPasswordReset, at(time.Minute)) != nil {
			t.Fatal("an unknown token was spent")
		}
		if useLink(t, s, lt.TokenHash, fluxauth.MailPasswordReset, lt.ExpiresAt) != nil {
			t.Fatal("a token was spent at its expiry")
		}
		got := useLink(t, s, lt.TokenHash, fluxauth.MailPasswordReset, lt.ExpiresAt.Add(-time.Microsecond))
		want := *lt
		want.UsedAt = lt.ExpiresAt.Add(-time.Microsecond)
		if got == nil {
			t.Fatal("a usable token was refused just before its expiry")
		}
		equal(t, "the spent token", got, &want)
		if useLink(t, s, lt.TokenHash, fluxauth.MailPasswordReset, at(time.Minute)) != nil {
			t.Fatal("a token was spent twice")
		}
	}},
	{"a spend rolled back leaves the token usable", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "link-rollback@example.com")
		lt := newLinkToken(u.ID, at(0))
		insertLinkTokens(t, s, lt)
		err := s.Update(context.Background(), func(tx fluxauth.Tx) error {
			if _, err := tx.UseLinkToken(context.Background(), lt.TokenHash, lt.Purpose, at(time.Minute)); err != nil {
				return err
			}
			return errBoom
		})
		wantErr(t, "Update", err, errBoom)
		if useLink(t, s, lt.TokenHash, lt.Purpose, at(time.Minute)) == nil {
			t.Fatal("a rolled-back spend used the token up")
		}
	}},
	{"retiring ends the tokens of the user and purpose issued before the kept one, or all", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "link-retire@example.com")
		other := mustCreateUser(t, s, "link-bystander@example.com")
		older := newLinkToken(u.ID, at(0))
		kept := newLinkToken(u.ID, at(time.Minute))
		newer := newLinkToken(u.ID, at(2*time.Minute))
		verify := newLinkToken(u.ID, at(0))
		verify.Purpose = fluxauth.MailVerifyEmail
		theirs := newLinkToken(other.ID, at(0))
		insertLinkTokens(t, s, older, kept, newer, verify, theirs)
		n, err := s.RetireLinkTokens(ctx, u.ID, fluxauth.MailPasswordReset, kept, at(3*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("RetireLinkTokens before the kept one = %d, %v; want 1", n, err)
		}
		if useLink(t, s, older.TokenHash, older.Purpose, at(4*time.Minute)) != nil {
			t.Fatal("an older token survived a newer one")
		}
		for _, lt := range []*fluxauth.LinkToken{kept, verify, theirs} {
			if useLink(t, s, lt.TokenHash, lt.Purpose, at(4*time.Minute)) == nil {
				t.Fatalf("token %s (%s) was retired too", lt.ID, lt.Purpose)
			}
		}
		update(t, s, func(tx fluxauth.Tx) error {
			n, err := tx.RetireLinkTokens(ctx, u.ID, fluxauth.MailPasswordReset, nil, at(5*time.Minute))
			if err == nil && n != 1 {
				err = fmt.Errorf("RetireLinkTokens of all = %d, want the 1 unused left", n)
			}
			return err
		})
		if useLink(t, s, newer.TokenHash, newer.Purpose, at(6*time.Minute)) != nil {
			t.Fatal("a token survived retiring all")
		}
		if n, err := s.RetireLinkTokens(ctx, "not-a-uuid", fluxauth.MailPasswordReset, nil, at(0)); n != 0 || err != nil {
			t.Fatalf("RetireLinkTokens of an impossible user = %d, %v", n, err)
		}
	}},
	{"tokens issued in the same instant are ordered by ID", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "link-tie@example.com")
		a, b := newLinkToken(u.ID, at(0)), newLinkToken(u.ID, at(0))
		if a.ID > b.ID {
			a, b = b, a
		}
		insertLinkTokens(t, s, a, b)
		if n, err := s.RetireLinkTokens(context.Background(), u.ID, fluxauth.MailPasswordReset, b, at(time.Second)); n != 1 || err != nil {
			t.Fatalf("RetireLinkTokens = %d, %v; want the one with the lower ID", n, err)
		}
		if useLink(t, s, a.TokenHash, a.Purpose, at(time.Second)) != nil || useLink(t, s, b.TokenHash, b.Purpose, at(time.Second)) == nil {
			t.Fatal("the tie was broken the wrong way")
		}
	}},
	{"a deleted link token is gone, and deleting one that is not there is no error", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "link-delete@example.com")
		lt := newLinkToken(u.ID, at(0))
		insertLinkTokens(t, s, lt)
		must(t, "DeleteLinkToken", s.DeleteLinkToken(ctx, lt.ID))
		if useLink(t, s, lt.TokenHash, lt.Purpose, at(time.Second)) != nil {
			t.Fatal("a deleted token was spent")
		}
		must(t, "DeleteLinkToken again", s.DeleteLinkToken(ctx, lt.ID))
		must(t, "DeleteLinkToken of an impossible ID", s.DeleteLinkToken(ctx, "not-a-uuid"))
		wantErr(t, "InsertLinkToken of a taken hash", s.InsertLinkToken(ctx, &fluxauth.LinkToken{ID: newID(), UserID: u.ID,
			Purpose: lt.Purpose, TokenHash: hashOf("dup"), CreatedAt: at(0), ExpiresAt: at(time.Hour)}), nil)
		wantErr(t, "InsertLinkToken of a taken hash", s.InsertLinkToken(ctx, &fluxauth.LinkToken{ID: newID(), UserID: u.ID,
			Purpose: lt.Purpose, TokenHash: hashOf("dup"), CreatedAt: at(0), ExpiresAt: at(time.Hour)}), fluxauth.ErrConflict)
	}},
	{"of concurrent spenders of one token exactly one gets it", func(t *testing.T, s fluxauth.Store) {
		const spenders = 16
		u := mustCreateUser(t, s, "link-race@example.com")
		lt := newLinkToken(u.ID, at(0))
		insertLinkTokens(t, s, lt)
		var wg sync.WaitGroup
		var won atomic.Int32
		start := make(chan struct{})
		for range spenders {
			wg.Go(func() {
				<-start
				err := s.Update(context.Background(), func(tx fluxauth.Tx) error {
					_, err := tx.UseLinkToken(context.Background(), lt.TokenHash, lt.Purpose, at(time.Minute))
					return err
				})
				switch err {
				case nil:
					won.Add(1)
				case fluxauth.ErrNotFound:
				default:
					t.Errorf("UseLinkToken: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Fatalf("%d of %d concurrent spenders got the token, want 1", n, spenders)
		}
	}},
	{"a link token takes tries up to its budget, counted by concurrent callers no further", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "link-tries@example.com")
		lt := newLinkToken(u.ID, at(0))
		insertLinkTokens(t, s, lt)
		if _, err := s.AttemptLinkToken(ctx, lt.TokenHash, fluxauth.MailVerifyEmail, 5, at(time.Minute)); err != fluxauth.ErrNotFound {
			t.Fatalf("AttemptLinkToken for another purpose: %v, want ErrNotFound", err)
		}
		if _, err := s.LinkToken(ctx, lt.TokenHash, fluxauth.MailVerifyEmail, at(time.Minute)); err != fluxauth.ErrNotFound {
			t.Fatalf("LinkToken for another purpose: %v, want ErrNotFound", err)
		}
		for range 7 { // a lookup counts no try
			if got, err := s.LinkToken(ctx, lt.TokenHash, lt.Purpose, at(time.Minute)); err != nil || got.UserID != u.ID {
				t.Fatalf("LinkToken: %+v, %v", got, err)
			}
		}
		var wg sync.WaitGroup
		var granted atomic.Int32
		for range 20 {
			wg.Go(func() {
				got, err := s.AttemptLinkToken(ctx, lt.TokenHash, lt.Purpose, 5, at(time.Minute))
				switch err {
				case nil:
					if got.UserID != u.ID {
						t.Errorf("AttemptLinkToken returned user %q, want %q", got.UserID, u.ID)
					}
					granted.Add(1)
				case fluxauth.ErrNotFound:
				default:
					t.Errorf("AttemptLinkToken: %v", err)
				}
			})
		}
		wg.Wait()
		if n := granted.Load(); n != 5 {
			t.Fatalf("%d of 20 concurrent tries were granted, want 5", n)
		}
		if useLink(t, s, lt.TokenHash, lt.Purpose, at(time.Minute)) == nil {
			t.Fatal("a token out of tries could not be spent by a try already granted")
		}
		fresh := newLinkToken(u.ID, at(0))
		insertLinkTokens(t, s, fresh)
		if _, err := s.AttemptLinkToken(ctx, fresh.TokenHash, fresh.Purpose, 5, fresh.ExpiresAt); err != fluxauth.ErrNotFound {
			t.Fatalf("AttemptLinkToken of an expired token: %v, want ErrNotFound", err)
		}
		useLink(t, s, fresh.TokenHash, fresh.Purpose, at(time.Minute))
		if _, err := s.AttemptLinkToken(ctx, fresh.TokenHash, fresh.Purpose, 5, at(time.Minute)); err != fluxauth.ErrNotFound {
			t.Fatalf("AttemptLinkToken of a spent token: %v, want ErrNotFound", err)
		}
		if _, err := s.LinkToken(ctx, fresh.TokenHash, fresh.Purpose, at(time.Minute)); err != fluxauth.ErrNotFound {
			t.Fatalf("LinkToken of a spent token: %v, want ErrNotFound", err)
		}
	}},
	{"SetEmailVerified keeps the first proof", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "verify-me@example.com")
		update(t, s, func(tx fluxauth.Tx) error {
			must(t, "SetEmailVerified", tx.SetEmailVerified(ctx, u.ID, at(time.Hour)))
			must(t, "SetEmailVerified again", tx.SetEmailVerified(ctx, u.ID, at(2*time.Hour)))
			wantErr(t, "SetEmailVerified of a missing user", tx.SetEmailVerified(ctx, newID(), at(0)), fluxauth.ErrNotFound)
			wantErr(t, "SetEmailVerified of an impossible ID", tx.SetEmailVerified(ctx, "legacy-1", at(0)), fluxauth.ErrNotFound)
			return nil
		})
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		u.EmailVerifiedAt, u.UpdatedAt = at(time.Hour), at(2*time.Hour)
		equal(t, "the verified user", got, u)
	}},
}

// mailCleanupTests run with the cleanup store's.
var mailCleanupTests = []storageTest{
	{"mails settled before the cutoff are deleted, at most limit at a time; pending ones never", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		cutoff := at(100 * time.Hour)
		settled := func(o fluxauth.MailOutcome) *fluxauth.OutboxMail {
			m := newMail("", "c-"+newID()[:8]+"@example.com", at(0))
			enqueue(t, s, m)
			c := claim(t, s, at(0), time.Minute)
			if c == nil || !settle(t, s, c, 1, o) {
				t.Fatal("could not settle a mail")
			}
			return m
		}
		settled(fluxauth.MailOutcome{SentAt: cutoff.Add(-time.Microsecond)})
		settled(fluxauth.MailOutcome{AbandonedAt: cutoff.Add(-time.Hour), ErrorClass: "rejected"})
		settled(fluxauth.MailOutcome{SentAt: cutoff}) // the cutoff is exclusive
		settled(fluxauth.MailOutcome{RetryAt: at(1000 * time.Hour), ErrorClass: "unreachable"})
		enqueue(t, s, newMail("", "pending@example.com", at(0)))
		if n := count(t, "CountSettledMail")(s.CountSettledMail(ctx, cutoff)); n != 2 {
			t.Fatalf("CountSettledMail = %d, want 2", n)
		}
		for i, want := range []int{1, 1, 0} {
			if n := count(t, "DeleteSettledMail")(s.DeleteSettledMail(ctx, cutoff, 1)); n != want {
				t.Fatalf("batch %d: DeleteSettledMail = %d, want %d", i+1, n, want)
			}
		}
		if n := count(t, "CountSettledMail")(s.CountSettledMail(ctx, at(10000*time.Hour))); n != 1 {
			t.Fatalf("CountSettledMail far ahead = %d, want the 1 sent at the cutoff", n)
		}
		if m := claim(t, s, at(0), time.Minute); m == nil || m.Address != "pending@example.com" {
			t.Fatalf("the pending mail is gone: %+v", m)
		}
	}},
	{"link tokens used or expired before the cutoff are deleted; usable ones never", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "link-cleanup@example.com")
		cutoff := at(100 * time.Hour)
		usedBefore := newLinkToken(u.ID, at(0))
		expiredBefore := newLinkToken(u.ID, cutoff.Add(-2*time.Hour)) // expires an hour before the cutoff
		usedAfter := newLinkToken(u.ID, cutoff.Add(-30*time.Minute))
		usable := newLinkToken(u.ID, cutoff.Add(-30*time.Minute))
		insertLinkTokens(t, s, usedBefore, expiredBefore, usedAfter, usable)
		useLink(t, s, usedBefore.TokenHash, usedBefore.Purpose, at(time.Minute))
		useLink(t, s, usedAfter.TokenHash, usedAfter.Purpose, cutoff)
		if n := count(t, "CountDeadLinkTokens")(s.CountDeadLinkTokens(ctx, cutoff)); n != 2 {
			t.Fatalf("CountDeadLinkTokens = %d, want 2", n)
		}
		for i, want := range []int{1, 1, 0} {
			if n := count(t, "DeleteDeadLinkTokens")(s.DeleteDeadLinkTokens(ctx, cutoff, 1)); n != want {
				t.Fatalf("batch %d: DeleteDeadLinkTokens = %d, want %d", i+1, n, want)
			}
		}
		if useLink(t, s, usable.TokenHash, usable.Purpose, cutoff) == nil {
			t.Fatal("the usable token is gone")
		}
	}},
}
