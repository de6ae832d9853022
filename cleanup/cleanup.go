// Package cleanup deletes refresh tokens, device tokens, link tokens, settled mails and security
// events that retention no longer needs, and the records of ID tokens used once their tokens have expired: daily inside serve, or
// on demand with "fluxauth cleanup". It deletes in batches so it never holds a long lock, never
// touches a live session, and runs on one instance at a time.
package cleanup

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// lockName is the advisory lock that keeps two instances from cleaning at once.
const lockName = "cleanup"

// idTokenUseMargin is how long the use of an ID token is kept past the token's exp. The verifier
// refuses an expired token by its own instance's clock, and an instance whose clock runs behind the
// cleaner's must not accept a token whose use is already forgotten.
const idTokenUseMargin = time.Hour

// Job is one configured cleanup.
type Job struct {
	Store          fluxauth.CleanupStore
	TokenRetention time.Duration // keep expired or revoked refresh, device and link tokens, and settled mails, this long (forensics)
	EventRetention time.Duration // keep security events this long
	Batch          int           // rows per DELETE statement
	Clock          fluxauth.Clock
	Logger         *slog.Logger
}

// Report is what one run did, or would do with DryRun.
type Report struct {
	Tokens      int
	Events      int
	IDTokenUses int
	// DeviceTokens counts device tokens that died or expired more than TokenRetention ago.
	DeviceTokens int
	// LinkTokens counts link tokens used or expired, and Mails outbox mails sent or abandoned, more
	// than TokenRetention ago.
	LinkTokens int
	Mails      int
	DryRun     bool
	Skipped    bool // another instance was running it
	Duration   time.Duration
}

func (r Report) String() string {
	if r.Skipped {
		return "cleanup skipped: another instance is running it"
	}
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
	}
	return fmt.Sprintf("refresh_tokens: %s %d\nsecurity_events: %s %d\nid_token_uses: %s %d\ndevice_tokens: %s %d\nlink_tokens: %s %d\nmail_outbox: %s %d",
		verb, r.Tokens, verb, r.Events, verb, r.IDTokenUses, verb, r.DeviceTokens, verb, r.LinkTokens, verb, r.Mails)
}

// Run cleans once. With dryRun it only counts.
func (j *Job) Run(ctx context.Context, dryRun bool) (Report, error) {
	start := time.Now()
	now := j.Clock.Now()
	tokenCutoff, eventCutoff := now.Add(-j.TokenRetention), now.Add(-j.EventRetention)
	idTokenCutoff := now.Add(-idTokenUseMargin)
	rep := Report{DryRun: dryRun}
	ran, err := j.Store.TryExclusive(ctx, lockName, func(ctx context.Context) error {
		var err error
		if dryRun {
			if rep.Tokens, err = j.Store.CountDeadTokens(ctx, tokenCutoff); err != nil {
				return err
			}
			if rep.Events, err = j.Store.CountEventsBefore(ctx, eventCutoff); err != nil {
				return err
			}
			if rep.IDTokenUses, err = j.Store.CountIDTokenUsesBefore(ctx, idTokenCutoff); err != nil {
				return err
			}
			if rep.DeviceTokens, err = j.Store.CountDeadDeviceTokens(ctx, tokenCutoff); err != nil {
				return err
			}
			if rep.LinkTokens, err = j.Store.CountDeadLinkTokens(ctx, tokenCutoff); err != nil {
				return err
			}
			rep.Mails, err = j.Store.CountSettledMail(ctx, tokenCutoff)
			return err
		}
		if rep.Tokens, err = drain(ctx, j.Batch, func(n int) (int, error) { return j.Store.DeleteDeadTokens(ctx, tokenCutoff, n) }); err != nil {
			return err
		}
		if rep.Events, err = drain(ctx, j.Batch, func(n int) (int, error) { return j.Store.DeleteEventsBefore(ctx, eventCutoff, n) }); err != nil {
			return err
		}
		if rep.IDTokenUses, err = drain(ctx, j.Batch, func(n int) (int, error) { return j.Store.DeleteIDTokenUsesBefore(ctx, idTokenCutoff, n) }); err != nil {
			return err
		}
		if rep.DeviceTokens, err = drain(ctx, j.Batch, func(n int) (int, error) { return j.Store.DeleteDeadDeviceTokens(ctx, tokenCutoff, n) }); err != nil {
			return err
		}
		if rep.LinkTokens, err = drain(ctx, j.Batch, func(n int) (int, error) { return j.Store.DeleteDeadLinkTokens(ctx, tokenCutoff, n) }); err != nil {
			return err
		}
		rep.Mails, err = drain(ctx, j.Batch, func(n int) (int, error) { return j.Store.DeleteSettledMail(ctx, tokenCutoff, n) })
		return err
	})
	rep.Skipped = !ran && err == nil
	rep.Duration = time.Since(start)
	if err != nil {
		j.Logger.ErrorContext(ctx, "cleanup failed", "refresh_tokens", rep.Tokens, "security_events", rep.Events,
			"id_token_uses", rep.IDTokenUses, "device_tokens", rep.DeviceTokens, "link_tokens", rep.LinkTokens, "mail_outbox", rep.Mails, "err", err)
		return rep, err
	}
	j.Logger.InfoContext(ctx, "cleanup", "refresh_tokens", rep.Tokens, "security_events", rep.Events,
		"id_token_uses", rep.IDTokenUses, "device_tokens", rep.DeviceTokens, "link_tokens", rep.LinkTokens, "mail_outbox", rep.Mails, "dry_run", dryRun, "skipped", rep.Skipped, "duration", rep.Duration)
	return rep, nil
}

// drain deletes batch after batch until a batch comes back short.
func drain(ctx context.Context, batch int, del func(n int) (int, error)) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := del(batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// NextRun returns the first time at or after now whose UTC clock reads at ("HH:MM").
func NextRun(now time.Time, at string) (time.Time, error) {
	t, err := time.Parse("15:04", at)
	if err != nil {
		return time.Time{}, fmt.Errorf("cleanup time %q: want HH:MM", at)
	}
	now = now.UTC()
	next := time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
	if next.Before(now) {
		next = next.Add(24 * time.Hour)
	}
	return next, nil
}

// Daily runs the job every day at at (UTC), on the job's clock, until ctx ends.
func (j *Job) Daily(ctx context.Context, at string) error {
	from := j.Clock.Now()
	for {
		next, err := NextRun(from, at)
		if err != nil {
			return err
		}
		timer, fired := j.Clock.NewTimer(next.Sub(j.Clock.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-fired:
		}
		// A failed run is logged by Run; tomorrow's run tries again.
		_, _ = j.Run(ctx, false)
		// Tomorrow's, even when the run took no time on the clock: NextRun counts now itself as due.
		from = j.Clock.Now()
		if !from.After(next) {
			from = next.Add(time.Nanosecond)
		}
	}
}
