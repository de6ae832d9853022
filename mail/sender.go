package mail

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/token"
)

// Store is what the Sender needs of the database.
type Store interface {
	fluxauth.MailOutbox
	fluxauth.LinkTokenStore
	UserByID(ctx context.Context, id string) (*fluxauth.User, error)
}

// Links says where each kind of mail's link points (templates holding {token}) and how long its
// token lives.
type Links struct {
	ResetURL  string
	VerifyURL string
	ResetTTL  time.Duration
	VerifyTTL time.Duration
}

func (l Links) of(kind string) (template string, ttl time.Duration) {
	if kind == fluxauth.MailVerifyEmail {
		return l.VerifyURL, l.VerifyTTL
	}
	return l.ResetURL, l.ResetTTL
}

// Defaults of the Sender's pacing.
const (
	DefaultPoll        = 5 * time.Second
	DefaultLease       = 2 * time.Minute // several times sendTimeout: a live sender is never overtaken
	DefaultMaxAttempts = 10
	DefaultBackoff     = 30 * time.Second // doubled after each failure, up to maxBackoff
	maxBackoff         = time.Hour
)

// Sender works through the outbox: it claims each due mail (one sender at a time per mail, across
// instances), resolves it to a mail or to nothing (no account, an address already verified), mints
// the mail's link token and stores its hash, sends, and then retires the user's older tokens of the
// purpose. A failed delivery deletes the token it minted and is retried with exponential backoff
// until MaxAttempts, then abandoned. A crash loses nothing: a claimed mail whose sender died is
// claimed again when its lease runs out, so a mail may, rarely, go out twice (the crash came between
// the server's acceptance and the record of it); it is never lost.
//
// Run wakes on Notify (a mail enqueued by this instance) and polls every Poll for the others'.
type Sender struct {
	Store     Store
	Transport Transport
	Links     Links
	Clock     fluxauth.Clock
	Rand      io.Reader
	Logger    *slog.Logger
	// Zero values take the defaults above.
	Poll        time.Duration
	Lease       time.Duration
	MaxAttempts int
	Backoff     time.Duration

	wake chan struct{}
}

// NewSender returns s ready to Run, its zero pacing fields set to the defaults.
func NewSender(s Sender) *Sender {
	if s.Poll == 0 {
		s.Poll = DefaultPoll
	}
	if s.Lease == 0 {
		s.Lease = DefaultLease
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.Backoff == 0 {
		s.Backoff = DefaultBackoff
	}
	s.wake = make(chan struct{}, 1)
	return &s
}

// Notify tells Run a mail was enqueued; it never blocks.
func (s *Sender) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends due mails until ctx ends: at once, on every Notify, and every Poll on the sender's clock.
func (s *Sender) Run(ctx context.Context) {
	t, poll := s.Clock.NewTicker(s.Poll)
	defer t.Stop()
	for {
		s.Drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-poll:
		}
	}
}

// Drain works on due mails until none is left or ctx ends, and returns how many it settled.
func (s *Sender) Drain(ctx context.Context) int {
	n := 0
	for ctx.Err() == nil {
		m, err := s.Store.ClaimMail(ctx, s.Clock.Now(), s.Lease)
		if errors.Is(err, fluxauth.ErrNotFound) {
			break
		}
		if err != nil {
			if ctx.Err() == nil {
				s.Logger.WarnContext(ctx, "mail: claiming from the outbox failed; retrying at the next poll", "err", err)
			}
			break
		}
		if s.settle(ctx, m, s.attempt(ctx, m)) {
			n++
		}
	}
	return n
}

// attempt makes one attempt at m and says how it ended.
func (s *Sender) attempt(ctx context.Context, m *fluxauth.OutboxMail) fluxauth.MailOutcome {
	nothing := func(class string) fluxauth.MailOutcome {
		return fluxauth.MailOutcome{AbandonedAt: s.Clock.Now(), ErrorClass: class}
	}
	if m.UserID == "" {
		return nothing("no_account")
	}
	u, err := s.Store.UserByID(ctx, m.UserID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nothing("no_account")
	} else if err != nil {
		return s.failed(ctx, m, "database", err)
	}
	if m.Kind == fluxauth.MailVerifyEmail && u.EmailVerified() {
		return nothing("already_verified")
	}
	if fluxauth.MailIsNotice(m.Kind) {
		return s.sendNotice(ctx, m, u)
	}
	template, ttl := s.Links.of(m.Kind)
	raw, hash, err := token.NewLinkToken(s.Rand)
	if err != nil {
		return s.failed(ctx, m, "failed", err)
	}
	now := s.Clock.Now()
	id, err := uuid.NewV7FromReader(s.Rand)
	if err != nil {
		return s.failed(ctx, m, "failed", err)
	}
	lt := &fluxauth.LinkToken{ID: id.String(), UserID: u.ID, Purpose: m.Kind, TokenHash: hash, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	msg, err := Render(m.Kind, u, Link(template, raw), ttl)
	if err != nil {
		return s.failed(ctx, m, "failed", err)
	}
	if err := s.Store.InsertLinkToken(ctx, lt); err != nil {
		return s.failed(ctx, m, "database", err)
	}
	if err := s.Transport.Send(ctx, msg); err != nil {
		// The token was never delivered: it goes, so that no usable token is left that nobody has.
		if err := s.Store.DeleteLinkToken(context.WithoutCancel(ctx), lt.ID); err != nil {
			s.Logger.WarnContext(ctx, "mail: deleting the token of an undelivered mail failed; it expires unused", "mail_id", m.ID, "err", err)
		}
		return s.failed(ctx, m, ErrorClass(err), err)
	}
	// The mail is out: its token is the one that works now.
	if _, err := s.Store.RetireLinkTokens(context.WithoutCancel(ctx), u.ID, m.Kind, lt, now); err != nil {
		s.Logger.WarnContext(ctx, "mail: retiring older link tokens failed; they still expire", "mail_id", m.ID, "err", err)
	}
	s.Logger.InfoContext(ctx, "mail sent", "mail_id", m.ID, "kind", m.Kind, "user_id", u.ID, "attempt", m.Attempts)
	return fluxauth.MailOutcome{SentAt: s.Clock.Now()}
}

// sendNotice sends a notice, which carries no link token and so mints none.
func (s *Sender) sendNotice(ctx context.Context, m *fluxauth.OutboxMail, u *fluxauth.User) fluxauth.MailOutcome {
	msg, err := Render(m.Kind, u, "", 0)
	if err != nil {
		return s.failed(ctx, m, "failed", err)
	}
	if err := s.Transport.Send(ctx, msg); err != nil {
		return s.failed(ctx, m, ErrorClass(err), err)
	}
	s.Logger.InfoContext(ctx, "mail sent", "mail_id", m.ID, "kind", m.Kind, "user_id", u.ID, "attempt", m.Attempts)
	return fluxauth.MailOutcome{SentAt: s.Clock.Now()}
}

// failed logs a failed attempt (its class and the error, which carries no token) and returns the
// retry, or the abandonment once MaxAttempts attempts have failed. A shutdown's interruption is
// retried at once by whichever sender runs next.
func (s *Sender) failed(ctx context.Context, m *fluxauth.OutboxMail, class string, err error) fluxauth.MailOutcome {
	now := s.Clock.Now()
	if class == "interrupted" {
		return fluxauth.MailOutcome{RetryAt: now, ErrorClass: class}
	}
	if m.Attempts >= s.MaxAttempts {
		s.Logger.ErrorContext(ctx, "mail: giving up", "mail_id", m.ID, "kind", m.Kind, "attempts", m.Attempts, "error_class", class, "err", err)
		return fluxauth.MailOutcome{AbandonedAt: now, ErrorClass: class}
	}
	retry := now.Add(backoff(s.Backoff, m.Attempts))
	s.Logger.WarnContext(ctx, "mail: delivery failed; will retry", "mail_id", m.ID, "kind", m.Kind, "attempt", m.Attempts,
		"error_class", class, "retry_at", retry, "err", err)
	return fluxauth.MailOutcome{RetryAt: retry, ErrorClass: class}
}

// backoff is the wait after the attempt-th failure: base, doubled each time, at most maxBackoff.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// settle records o for m's claim, even while shutting down, and reports whether it was recorded.
func (s *Sender) settle(ctx context.Context, m *fluxauth.OutboxMail, o fluxauth.MailOutcome) bool {
	ok, err := s.Store.SettleMail(context.WithoutCancel(ctx), m.ID, m.Attempts, o)
	if err != nil {
		s.Logger.WarnContext(ctx, "mail: recording an attempt failed; the mail is tried again when its lease ends", "mail_id", m.ID, "err", err)
		return false
	}
	if !ok {
		s.Logger.WarnContext(ctx, "mail: the lease ran out before the attempt was recorded; another sender has the mail", "mail_id", m.ID)
	}
	return ok
}
