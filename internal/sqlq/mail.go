package sqlq

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// outboxColumns are mail_outbox's columns in the order scanOutboxMail reads them.
const outboxColumns = `id, kind, user_id, address, attempts, next_attempt_at, claimed_until, sent_at, abandoned_at, last_error, created_at`

func scanOutboxMail(row Scanner) (*fluxauth.OutboxMail, error) {
	var m fluxauth.OutboxMail
	if err := row.Scan(scanText(&m.ID), &m.Kind, scanText(&m.UserID), &m.Address, &m.Attempts, scanTime(&m.NextAttemptAt),
		scanTime(&m.ClaimedUntil), scanTime(&m.SentAt), scanTime(&m.AbandonedAt), scanText(&m.LastError), scanTime(&m.CreatedAt)); err != nil {
		return nil, err
	}
	return &m, nil
}

// EnqueueMail inserts m as it is.
func (t Tx) EnqueueMail(ctx context.Context, m *fluxauth.OutboxMail) error {
	_, err := t.q.Exec(ctx, t.d.rebind(`INSERT INTO mail_outbox (`+outboxColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`),
		m.ID, m.Kind, nullString(m.UserID), m.Address, m.Attempts, t.d.Time(m.NextAttemptAt), t.d.nullTime(m.ClaimedUntil),
		t.d.nullTime(m.SentAt), t.d.nullTime(m.AbandonedAt), nullString(m.LastError), t.d.Time(m.CreatedAt))
	return err
}

// dueMail is the condition on mail_outbox, with now as $1, that selects the mails a sender may claim.
const dueMail = `sent_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)`

// ClaimMail leases the oldest due mail in one statement. On PostgreSQL the row is chosen FOR UPDATE
// SKIP LOCKED, so concurrent claimers pass over a row another is taking, and a row claimed and
// committed meanwhile is re-checked against the condition and left out; SQLite runs one write at a
// time.
func (s Store) ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (*fluxauth.OutboxMail, error) {
	return scanOutboxMail(s.write.QueryRow(ctx, s.d.rebind(`UPDATE mail_outbox SET attempts = attempts + 1, claimed_until = $2
		WHERE id = (SELECT id FROM mail_outbox WHERE `+dueMail+` ORDER BY next_attempt_at, id LIMIT 1`+s.d.SkipLocked+`)
		RETURNING `+outboxColumns), s.d.Time(now), s.d.Time(now.Add(lease))))
}

// SettleMail records an attempt's outcome, fenced by the attempt's number: a sender whose lease ran
// out and whose mail another sender claimed since settles nothing.
func (s Store) SettleMail(ctx context.Context, id string, attempt int, o fluxauth.MailOutcome) (bool, error) {
	if s.d.badID(id) {
		return false, nil
	}
	var next any
	if !o.RetryAt.IsZero() {
		next = s.d.Time(o.RetryAt)
	}
	n, err := s.write.Exec(ctx, s.d.rebind(`UPDATE mail_outbox SET claimed_until = NULL, sent_at = $1, abandoned_at = $2,
		next_attempt_at = COALESCE($3, next_attempt_at), last_error = $4
		WHERE id = $5 AND attempts = $6 AND sent_at IS NULL AND abandoned_at IS NULL`),
		s.d.nullTime(o.SentAt), s.d.nullTime(o.AbandonedAt), next, nullString(o.ErrorClass), id, attempt)
	return n == 1, err
}

// settledMail is the condition on mail_outbox, with the cutoff as $1, that selects what retention
// no longer needs: mails sent or abandoned before the cutoff.
const settledMail = `sent_at < $1 OR abandoned_at < $1`

// DeleteSettledMail deletes, in one short statement, up to limit mails settled before cutoff.
func (s Store) DeleteSettledMail(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := s.write.Exec(ctx, s.d.rebind(`DELETE FROM mail_outbox WHERE id IN (
		SELECT id FROM mail_outbox WHERE `+settledMail+` LIMIT $2`+s.d.SkipLocked+`)`), s.d.Time(cutoff), limit)
	return int(n), err
}

// CountSettledMail counts what DeleteSettledMail would delete.
func (s Store) CountSettledMail(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT COUNT(*) FROM mail_outbox WHERE `+settledMail), s.d.Time(cutoff)).Scan(&n)
	return n, err
}

// linkTokenColumns are link_tokens' columns in the order scanLinkToken reads them.
const linkTokenColumns = `id, user_id, purpose, token_hash, created_at, expires_at, used_at`

func scanLinkToken(row Scanner) (*fluxauth.LinkToken, error) {
	var t fluxauth.LinkToken
	if err := row.Scan(scanText(&t.ID), scanText(&t.UserID), &t.Purpose, &t.TokenHash,
		scanTime(&t.CreatedAt), scanTime(&t.ExpiresAt), scanTime(&t.UsedAt)); err != nil {
		return nil, err
	}
	return &t, nil
}

// InsertLinkToken inserts lt as it is.
func (s Store) InsertLinkToken(ctx context.Context, lt *fluxauth.LinkToken) error {
	_, err := s.write.Exec(ctx, s.d.rebind(`INSERT INTO link_tokens (`+linkTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
		lt.ID, lt.UserID, lt.Purpose, lt.TokenHash, s.d.Time(lt.CreatedAt), s.d.Time(lt.ExpiresAt), s.d.nullTime(lt.UsedAt))
	return err
}

// DeleteLinkToken deletes the token with id, if there is one.
func (s Store) DeleteLinkToken(ctx context.Context, id string) error {
	if s.d.badID(id) {
		return nil
	}
	_, err := s.write.Exec(ctx, s.d.rebind(`DELETE FROM link_tokens WHERE id = $1`), id)
	return err
}

// UseLinkToken spends a usable token in one statement: PostgreSQL re-checks used_at against the
// row as a concurrent spender left it, and SQLite writes one statement at a time, so one token is
// spent once.
func (t Tx) UseLinkToken(ctx context.Context, tokenHash, purpose string, now time.Time) (*fluxauth.LinkToken, error) {
	return scanLinkToken(t.q.QueryRow(ctx, t.d.rebind(`UPDATE link_tokens SET used_at = $1
		WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
		RETURNING `+linkTokenColumns), t.d.Time(now), tokenHash, purpose))
}

// LinkToken looks a usable token up.
func (s Store) LinkToken(ctx context.Context, tokenHash, purpose string, now time.Time) (*fluxauth.LinkToken, error) {
	return scanLinkToken(s.read.QueryRow(ctx, s.d.rebind(`SELECT `+linkTokenColumns+` FROM link_tokens
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`), tokenHash, purpose, s.d.Time(now)))
}

// AttemptLinkToken counts one try on a usable token within its tries. The check and the count are
// one UPDATE: PostgreSQL re-checks its WHERE against the row as the previous writer left it, and
// SQLite writes one statement at a time, so concurrent attempts never count past maxAttempts.
func (s Store) AttemptLinkToken(ctx context.Context, tokenHash, purpose string, maxAttempts int, now time.Time) (*fluxauth.LinkToken, error) {
	return scanLinkToken(s.write.QueryRow(ctx, s.d.rebind(`UPDATE link_tokens SET attempts = COALESCE(attempts, 0) + 1
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 AND COALESCE(attempts, 0) < $4
		RETURNING `+linkTokenColumns), tokenHash, purpose, s.d.Time(now), maxAttempts))
}

// RetireLinkTokens ends the user's unused tokens of purpose issued before keep, or all of them.
func (t Tx) RetireLinkTokens(ctx context.Context, userID, purpose string, keep *fluxauth.LinkToken, at time.Time) (int, error) {
	query, args := `UPDATE link_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL`,
		[]any{t.d.Time(at), userID, purpose}
	if keep != nil {
		query += ` AND (created_at < $4 OR (created_at = $4 AND id < $5))`
		args = append(args, t.d.Time(keep.CreatedAt), keep.ID)
	}
	n, err := t.q.Exec(ctx, t.d.rebind(query), args...)
	return int(n), err
}

// RetireLinkTokens ends the user's unused tokens of purpose issued before keep, or all of them.
func (s Store) RetireLinkTokens(ctx context.Context, userID, purpose string, keep *fluxauth.LinkToken, at time.Time) (int, error) {
	return s.writer().RetireLinkTokens(ctx, userID, purpose, keep, at)
}

// deadLinkTokens is the condition on link_tokens, with the cutoff as $1, that selects what
// retention no longer needs: tokens used, retired or expired before the cutoff.
const deadLinkTokens = `used_at < $1 OR expires_at < $1`

// DeleteDeadLinkTokens deletes, in one short statement, up to limit dead link tokens.
func (s Store) DeleteDeadLinkTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := s.write.Exec(ctx, s.d.rebind(`DELETE FROM link_tokens WHERE id IN (
		SELECT id FROM link_tokens WHERE `+deadLinkTokens+` LIMIT $2`+s.d.SkipLocked+`)`), s.d.Time(cutoff), limit)
	return int(n), err
}

// CountDeadLinkTokens counts what DeleteDeadLinkTokens would delete.
func (s Store) CountDeadLinkTokens(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT COUNT(*) FROM link_tokens WHERE `+deadLinkTokens), s.d.Time(cutoff)).Scan(&n)
	return n, err
}
