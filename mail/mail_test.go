package mail_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/mail"
	"github.com/fluxstudio/fluxauth/mail/mailtest"
	"github.com/fluxstudio/fluxauth/sqlite"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/token"
)

var links = mail.Links{
	ResetURL: "https://app.example/reset?token={token}", VerifyURL: "https://app.example/verify?token={token}",
	ResetTTL: 30 * time.Minute, VerifyTTL: 48 * time.Hour,
}

type rig struct {
	db     *sqlite.DB
	smtp   *mailtest.Server
	clock  *testenv.Clock
	sender *mail.Sender
	logs   *bytes.Buffer
}

func newRig(t *testing.T, opts ...mailtest.Option) *rig {
	t.Helper()
	r := &rig{db: sqlitetest.MustOpenDB(t), smtp: mailtest.NewServer(t, opts...), clock: testenv.NewClock(time.Now()), logs: &bytes.Buffer{}}
	settings, err := mail.ParseSMTPURL(r.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	r.sender = mail.NewSender(mail.Sender{
		Store: r.db, Transport: mail.NewSMTP(settings, "FluxStudio <no-reply@fluxstudio.test>"), Links: links,
		Clock: r.clock, Rand: rand.Reader, Logger: slog.New(slog.NewTextHandler(r.logs, nil)), MaxAttempts: 3,
	})
	return r
}

func (r *rig) user(t *testing.T, email string) *fluxauth.User {
	t.Helper()
	now := r.clock.Now()
	u := &fluxauth.User{ID: newID(t), Email: email, Name: "Jane Doe", UserType: "client", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
	if err := r.db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func newID(t *testing.T) string { return uuid.NewString() }

func (r *rig) enqueue(t *testing.T, kind, userID, address string) *fluxauth.OutboxMail {
	t.Helper()
	now := r.clock.Now()
	m := &fluxauth.OutboxMail{ID: newID(t), Kind: kind, UserID: userID, Address: address, NextAttemptAt: now, CreatedAt: now}
	if err := r.db.Update(context.Background(), func(tx fluxauth.Tx) error { return tx.EnqueueMail(context.Background(), m) }); err != nil {
		t.Fatal(err)
	}
	return m
}

// usable reports whether raw is a usable link token of purpose, spending it if so.
func (r *rig) usable(t *testing.T, raw, purpose string) bool {
	t.Helper()
	err := r.db.Update(context.Background(), func(tx fluxauth.Tx) error {
		_, err := tx.UseLinkToken(context.Background(), token.HashLinkToken(raw), purpose, r.clock.Now())
		return err
	})
	if err != nil && err != fluxauth.ErrNotFound {
		t.Fatal(err)
	}
	return err == nil
}

func TestAResetMailCarriesAFreshTokenStoredOnlyAsItsHash(t *testing.T) {
	r := newRig(t)
	u := r.user(t, "jane@example.com")
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	if n := r.sender.Drain(context.Background()); n != 1 {
		t.Fatalf("Drain settled %d mails, want 1", n)
	}
	msgs := r.smtp.Wait(t, 1, 5*time.Second)
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "jane@example.com" || m.From != "no-reply@fluxstudio.test" {
		t.Fatalf("envelope from %q to %v", m.From, m.To)
	}
	if m.Subject != "Reset your FluxStudio password" {
		t.Fatalf("subject %q", m.Subject)
	}
	raw := mailtest.LinkToken(t, m, "https://app.example/reset")
	for _, want := range []string{"Jane Doe", "FluxStudio", "expires in 30 minutes", "fluxauth"} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("the text and HTML parts do not both say %q", want)
		}
	}
	if !strings.Contains(m.HTML, `href="https://app.example/reset?token=`+raw+`"`) {
		t.Errorf("the HTML part does not link to the token:\n%s", m.HTML)
	}
	if strings.Contains(r.logs.String(), raw) {
		t.Fatal("the token reached the sender's log")
	}
	if r.usable(t, raw, fluxauth.MailVerifyEmail) {
		t.Fatal("a reset token was usable for verification")
	}
	if !r.usable(t, raw, fluxauth.MailPasswordReset) {
		t.Fatal("the mailed token is not usable")
	}
}

func TestAVerificationMailStatesItsOwnExpiry(t *testing.T) {
	r := newRig(t)
	u := r.user(t, "verify@example.com")
	r.enqueue(t, fluxauth.MailVerifyEmail, u.ID, u.Email)
	r.sender.Drain(context.Background())
	m := r.smtp.Wait(t, 1, 5*time.Second)[0]
	raw := mailtest.LinkToken(t, m, "https://app.example/verify")
	if !strings.Contains(m.Text, "expires in 48 hours") || m.Subject != "Confirm your FluxStudio email address" {
		t.Fatalf("subject %q, text:\n%s", m.Subject, m.Text)
	}
	r.clock.Advance(48*time.Hour - time.Microsecond)
	if !r.usable(t, raw, fluxauth.MailVerifyEmail) {
		t.Fatal("the token died before its 48 hours")
	}
}

func TestAMailForNoAccountOrAVerifiedAddressSendsNothing(t *testing.T) {
	r := newRig(t)
	verified := r.user(t, "done@example.com")
	if err := r.db.Update(context.Background(), func(tx fluxauth.Tx) error {
		return tx.SetEmailVerified(context.Background(), verified.ID, r.clock.Now())
	}); err != nil {
		t.Fatal(err)
	}
	r.enqueue(t, fluxauth.MailPasswordReset, "", "nobody@example.com")
	r.enqueue(t, fluxauth.MailVerifyEmail, verified.ID, verified.Email)
	if n := r.sender.Drain(context.Background()); n != 2 {
		t.Fatalf("Drain settled %d, want 2", n)
	}
	r.clock.Advance(24 * time.Hour)
	if n := r.sender.Drain(context.Background()); n != 0 {
		t.Fatalf("settled mails came back: %d", n)
	}
	if msgs := r.smtp.Messages(); len(msgs) != 0 {
		t.Fatalf("%d mails sent, want none", len(msgs))
	}
	if n, _ := r.db.CountDeadLinkTokens(context.Background(), r.clock.Now().Add(1000*time.Hour)); n != 0 {
		t.Fatalf("%d link tokens minted for mails never sent", n)
	}
}

func TestAnSMTPOutageRetriesWithBackoffAndSendsOnceWhenBack(t *testing.T) {
	r := newRig(t)
	u := r.user(t, "outage@example.com")
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	r.smtp.Stop()
	r.sender.Drain(context.Background())
	if !strings.Contains(r.logs.String(), "error_class=unreachable") {
		t.Fatalf("the failure was not logged by class:\n%s", r.logs)
	}
	if n, _ := r.db.CountDeadLinkTokens(context.Background(), r.clock.Now().Add(1000*time.Hour)); n != 0 {
		t.Fatalf("the undelivered mail's token was kept (%d)", n)
	}
	r.smtp.Start()
	r.clock.Advance(mail.DefaultBackoff - time.Microsecond)
	if n := r.sender.Drain(context.Background()); n != 0 {
		t.Fatal("the mail was retried before its backoff")
	}
	r.clock.Advance(time.Microsecond)
	if n := r.sender.Drain(context.Background()); n != 1 {
		t.Fatalf("the retry settled %d, want 1", n)
	}
	r.clock.Advance(time.Hour)
	r.sender.Drain(context.Background())
	if msgs := r.smtp.Wait(t, 1, 5*time.Second); len(msgs) != 1 {
		t.Fatalf("%d mails, want exactly 1", len(msgs))
	}
}

func TestAMailIsAbandonedAfterMaxAttemptsWithDoublingBackoff(t *testing.T) {
	r := newRig(t)
	u := r.user(t, "never@example.com")
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	r.smtp.Stop()
	for i, wait := range []time.Duration{mail.DefaultBackoff, 2 * mail.DefaultBackoff} {
		r.sender.Drain(context.Background())
		r.clock.Advance(wait - time.Microsecond)
		if r.sender.Drain(context.Background()) != 0 {
			t.Fatalf("attempt %d was retried before %s", i+2, wait)
		}
		r.clock.Advance(time.Microsecond)
	}
	r.sender.Drain(context.Background()) // the third and last attempt
	if !strings.Contains(r.logs.String(), "mail: giving up") {
		t.Fatalf("no give-up logged:\n%s", r.logs)
	}
	r.smtp.Start()
	r.clock.Advance(24 * time.Hour)
	r.sender.Drain(context.Background())
	if msgs := r.smtp.Messages(); len(msgs) != 0 {
		t.Fatalf("an abandoned mail was sent: %d", len(msgs))
	}
}

func TestANewerMailRetiresTheOlderToken(t *testing.T) {
	r := newRig(t)
	u := r.user(t, "twice@example.com")
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	r.sender.Drain(context.Background())
	r.clock.Advance(time.Second)
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	r.sender.Drain(context.Background())
	msgs := r.smtp.Wait(t, 2, 5*time.Second)
	older, newer := mailtest.LinkToken(t, msgs[0], "https://app.example/reset"), mailtest.LinkToken(t, msgs[1], "https://app.example/reset")
	if r.usable(t, older, fluxauth.MailPasswordReset) {
		t.Fatal("the older token survived the newer mail")
	}
	if !r.usable(t, newer, fluxauth.MailPasswordReset) {
		t.Fatal("the newer token is not usable")
	}
}

func TestSMTPCredentialsAreUsedAndAWrongPasswordIsRetried(t *testing.T) {
	r := newRig(t, mailtest.RequireAuth("fluxauth", "s3cret"))
	u := r.user(t, "auth@example.com")
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	r.sender.Drain(context.Background())
	r.smtp.Wait(t, 1, 5*time.Second)

	wrong, err := mail.ParseSMTPURL(strings.Replace(r.smtp.URL(), "s3cret", "wrong", 1))
	if err != nil {
		t.Fatal(err)
	}
	err = mail.NewSMTP(wrong, "no-reply@fluxstudio.test").Send(context.Background(), &mail.Message{To: "a@example.com", Subject: "s", Text: "t", HTML: "h"})
	if err == nil {
		t.Fatal("a wrong SMTP password sent mail")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the error quotes the password: %v", err)
	}
}

func TestSTARTTLSIsRequiredUnlessTLSNoneIsGiven(t *testing.T) {
	srv := mailtest.NewServer(t) // offers no STARTTLS
	s, err := mail.ParseSMTPURL("smtp://" + srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	err = mail.NewSMTP(s, "no-reply@fluxstudio.test").Send(context.Background(), &mail.Message{To: "a@example.com", Subject: "s", Text: "t", HTML: "h"})
	if err == nil || len(srv.Messages()) != 0 {
		t.Fatalf("mail went out in clear text without tls=none: %v", err)
	}
}

func TestTheLogTransportWritesTheMailAtWarningLevel(t *testing.T) {
	var buf bytes.Buffer
	err := mail.Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}.Send(context.Background(),
		&mail.Message{To: "dev@example.com", Subject: "Reset", Text: "open https://localhost/reset?token=abc"})
	if err != nil || !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "token=abc") {
		t.Fatalf("log transport wrote %q, %v", buf.String(), err)
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: String() of the result, or "error"
		port     int
	}{
		{"", "off", 0},
		{"log:", "log:", 0},
		{"smtp://user:pass@mail.example.com", "smtp://user@mail.example.com:587", 587},
		{"smtp://mail.example.com:2525", "smtp://mail.example.com:2525", 2525},
		{"smtps://user:pass@mail.example.com", "smtps://user@mail.example.com:465", 465},
		{"smtp://127.0.0.1:2525?tls=none", "smtp://127.0.0.1:2525?tls=none", 2525},
		{"smtp://[::1]:25?tls=none", "smtp://[::1]:25?tls=none", 25},
		{"smtp://localhost?tls=none", "smtp://localhost:587?tls=none", 587},
		{"smtp://mail.example.com?tls=none", "error", 0},
		{"smtp://user:hunter2@mail.example.com:xx", "error", 0},
		{"smtp://10.0.0.5?tls=none", "error", 0},
		{"smtps://127.0.0.1?tls=none", "error", 0},
		{"smtp://mail.example.com?tls=yes", "error", 0},
		{"smtp://mail.example.com?debug=1", "error", 0},
		{"smtp://mail.example.com:99999", "error", 0},
		{"smtp://mail.example.com/path", "error", 0},
		{"http://mail.example.com", "error", 0},
		{"smtp://", "error", 0},
		{"log", "error", 0},
	} {
		s, err := mail.ParseSMTPURL(tc.in)
		if tc.want == "error" {
			if err == nil {
				t.Errorf("ParseSMTPURL(%q) = %v, want an error", tc.in, s)
			}
			continue
		}
		if err != nil || s.String() != tc.want || s.Port != tc.port {
			t.Errorf("ParseSMTPURL(%q) = %v (port %d), %v; want %s port %d", tc.in, s, s.Port, err, tc.want, tc.port)
		}
	}
	for _, bad := range []string{"smtp://user:hunter2@mail.example.com:xx", "smtp://user:hunter2@mail.example.com?tls=none", "smtp://user:hunter2@h/p"} {
		if _, err := mail.ParseSMTPURL(bad); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseSMTPURL(%q) error %v: want one that does not quote the password", bad, err)
		}
	}
	s, _ := mail.ParseSMTPURL("smtps://user:hunter2@mail.example.com")
	if s.Password != "hunter2" || strings.Contains(fmt.Sprint(s), "hunter2") || strings.Contains(fmt.Sprintf("%#v %+v", s, s), "hunter2") {
		t.Fatalf("the password is lost or printed: %#v", s)
	}
	if !s.Real() || !s.Enabled() {
		t.Fatal("smtps is not a real transport")
	}
	if l, _ := mail.ParseSMTPURL("log:"); l.Real() || !l.Enabled() {
		t.Fatal("log: is real, or disabled")
	}
}

func TestLinkTemplates(t *testing.T) {
	for in, ok := range map[string]bool{
		"https://app.example/reset?token={token}": true,
		"http://localhost:3000/r/{token}":         true,
		"https://app.example/reset":               false,
		"ftp://app.example/{token}":               false,
		"/reset?token={token}":                    false,
		"{token}":                                 false,
	} {
		if err := mail.ValidLinkTemplate(in); (err == nil) != ok {
			t.Errorf("ValidLinkTemplate(%q) = %v, want ok %t", in, err, ok)
		}
	}
	if got := mail.Link("https://a.example/r?token={token}&x=1", "abc"); got != "https://a.example/r?token=abc&x=1" {
		t.Fatalf("Link = %s", got)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Minute: "30 minutes", time.Minute: "1 minute", 48 * time.Hour: "48 hours", time.Hour: "1 hour",
		90 * time.Second: "90 seconds", 90 * time.Minute: "90 minutes",
	} {
		if got := mail.HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// roundsStore is the outbox telling when the sender found nothing more to claim: a round's end.
type roundsStore struct {
	mail.Store
	rounds chan struct{}
}

func (s roundsStore) ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (*fluxauth.OutboxMail, error) {
	m, err := s.Store.ClaimMail(ctx, now, lease)
	if err != nil {
		s.rounds <- struct{}{}
	}
	return m, err
}

// Run sends what another instance enqueued (no Notify reaches this one) at the next poll, every
// Poll, and what this instance enqueued at once.
func TestTheSenderPollsEveryPollAndWakesOnNotify(t *testing.T) {
	r := newRig(t)
	rounds := make(chan struct{}, 10)
	r.sender.Store = roundsStore{Store: r.db, rounds: rounds}
	start := r.clock.Now()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.sender.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-stopped })
	<-rounds // the round at start
	if at := r.clock.WaitTimers(t, 1); !at[0].Equal(start.Add(mail.DefaultPoll)) {
		t.Fatalf("the sender polls next at %v, want %v", at[0], start.Add(mail.DefaultPoll))
	}
	u := r.user(t, "jane@example.com")
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	r.clock.Advance(mail.DefaultPoll - time.Microsecond)
	if n := len(r.smtp.Messages()); n != 0 {
		t.Fatalf("%d mails sent before the poll", n)
	}
	r.clock.Advance(time.Microsecond)
	r.smtp.Wait(t, 1, 5*time.Second)
	<-rounds // the poll's round, ended once it found nothing more
	if at := r.clock.WaitTimers(t, 1); !at[0].Equal(start.Add(2 * mail.DefaultPoll)) {
		t.Fatalf("after a poll the sender polls next at %v, want %v", at[0], start.Add(2*mail.DefaultPoll))
	}
	r.enqueue(t, fluxauth.MailPasswordReset, u.ID, u.Email)
	r.sender.Notify()
	r.smtp.Wait(t, 2, 5*time.Second)
}
