package sqlq

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// UseIDToken records u unless (provider, key) is there, and reports whether it wrote. On
// PostgreSQL the insert waits on the primary key for a transaction that inserted the same key and
// is still running, then writes nothing if that one committed, or the row if it rolled back; on
// SQLite write transactions run one at a time, so none can be in flight. Either way, of concurrent
// sign-ins with one token exactly one gets true.
func (t Tx) UseIDToken(ctx context.Context, u *fluxauth.IDTokenUse) (bool, error) {
	n, err := t.q.Exec(ctx, t.d.rebind(`INSERT INTO id_token_uses (provider, token_key, used_at, expires_at, session_id)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, token_key) DO NOTHING`),
		u.Provider, u.Key, t.d.Time(u.UsedAt), t.d.Time(u.ExpiresAt), nullString(u.SessionID))
	return n == 1, err
}

// IDTokenUse returns the recorded use of (provider, key), or fluxauth.ErrNotFound. Read after a
// UseIDToken that found the use recorded, it sees the use a concurrent transaction committed.
func (t Tx) IDTokenUse(ctx context.Context, provider, key string) (*fluxauth.IDTokenUse, error) {
	u := fluxauth.IDTokenUse{Provider: provider, Key: key}
	err := t.q.QueryRow(ctx, t.d.rebind(`SELECT used_at, expires_at, session_id FROM id_token_uses
		WHERE provider = $1 AND token_key = $2`), provider, key).Scan(scanTime(&u.UsedAt), scanTime(&u.ExpiresAt), scanText(&u.SessionID))
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// DeleteIDTokenUsesBefore deletes, in one short statement, up to limit uses of ID tokens that
// expired before cutoff; it returns how many.
func (s Store) DeleteIDTokenUsesBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := s.write.Exec(ctx, s.d.rebind(`DELETE FROM id_token_uses WHERE (provider, token_key) IN (
		SELECT provider, token_key FROM id_token_uses WHERE expires_at < $1 LIMIT $2`+s.d.SkipLocked+`)`), s.d.Time(cutoff), limit)
	return int(n), err
}

// CountIDTokenUsesBefore counts what DeleteIDTokenUsesBefore would delete.
func (s Store) CountIDTokenUsesBefore(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT COUNT(*) FROM id_token_uses WHERE expires_at < $1`), s.d.Time(cutoff)).Scan(&n)
	return n, err
}
