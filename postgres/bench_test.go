package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/google/uuid"
)

// BenchmarkRefresh measures the database side of one refresh: lock the session, read the presented
// token by hash, spend it, insert its successor, commit. Goroutines rotate disjoint sessions, as
// distinct clients do.
func BenchmarkRefresh(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.MustOpenDB(b)
	now := time.Now().UTC()
	const sessions = 1000
	tips := make([]*fluxauth.RefreshToken, sessions)
	seedUsers(b, db, 200)
	if err := db.Update(ctx, func(tx fluxauth.Tx) error {
		for i := range tips {
			tips[i] = token(now)
			tips[i].TokenHash = hash(tips[i].ID)
			tips[i].DeviceName, tips[i].IPAddress, tips[i].UserAgent = "Pixel 9", "203.0.113.9", "FluxStudio/3.1"
			if err := tx.InsertRefreshToken(ctx, tips[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	// A server has many refreshes in flight; 8 per core (the pool's default size) lets commits share
	// their WAL flushes.
	const parallelism = 8
	b.SetParallelism(parallelism)
	perGoroutine := sessions / (parallelism * runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine owns a slice of the sessions of its own, so no two goroutines rotate the
		// same chain: one would otherwise present a tip the other had just spent.
		k := int(next.Add(1) - 1)
		own := tips[k*perGoroutine : (k+1)*perGoroutine]
		for i := 0; pb.Next(); i++ {
			slot := i % len(own)
			presented := own[slot]
			var child *fluxauth.RefreshToken
			err := db.Update(ctx, func(tx fluxauth.Tx) error {
				if err := tx.LockSession(ctx, presented.SessionID); err != nil {
					return err
				}
				cur, err := tx.RefreshTokenByHash(ctx, presented.TokenHash)
				if err != nil {
					return err
				}
				at := time.Now()
				c := *cur
				c.ID = uuid.Must(uuid.NewV7()).String()
				c.ParentID, c.TokenHash = cur.ID, hash(c.ID)
				c.CreatedAt, c.LastUsedAt, c.ExpiresAt = at, at, at.Add(30*24*time.Hour)
				c.SpentAt = time.Time{}
				child = &c
				ok, err := tx.RotateRefreshToken(ctx, cur.ID, child, at)
				if err == nil && !ok {
					err = errors.New("the presented tip was no longer live")
				}
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
			own[slot] = child
		}
	})
}

// BenchmarkUserByID measures the primary-key read behind GET /api/auth/me.
func BenchmarkUserByID(b *testing.B) {
	db := postgrestest.MustOpenDB(b)
	ids := seedUsers(b, db, 1000)
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%int64(len(ids))]
			if _, err := db.UserByID(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func seedUsers(b *testing.B, db *postgres.DB, n int) []string {
	b.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	now := time.Now().UTC()
	for i := range ids {
		u := &fluxauth.User{ID: uuid.NewString(), Name: "Bench", UserType: fluxauth.UserTypeClient, CreatedAt: now, UpdatedAt: now}
		u.Email = u.ID + "@example.com"
		if err := db.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		ids[i] = u.ID
	}
	return ids
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// BenchmarkActiveSessions lists the sessions of a user who has five live sessions, each refreshed
// 1,000 times (a chain of spent links kept until cleanup), and two revoked ones: what the sessions
// page costs a long-lived, busy account.
func BenchmarkActiveSessions(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.MustOpenDB(b)
	now := time.Now().UTC()
	user := uuid.NewString()
	const sessions, chain = 7, 1000
	if err := db.Update(ctx, func(tx fluxauth.Tx) error {
		for s := range sessions {
			sid := uuid.NewString()
			for i := range chain {
				t := token(now.Add(time.Duration(i) * time.Second))
				t.SessionID, t.UserID = sid, user
				if i < chain-1 {
					t.SpentAt = t.CreatedAt.Add(time.Second)
				}
				if s >= 5 {
					t.RevokedAt = now
				}
				if err := tx.InsertRefreshToken(ctx, t); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	// Other users' sessions, so that the table's statistics are those of a service with many users.
	if _, err := db.Pool().Exec(ctx, `INSERT INTO refresh_tokens (session_id, user_id, token_hash, expires_at)
		SELECT gen_random_uuid(), gen_random_uuid()::text, md5(g::text), now() + interval '7 days'
		FROM generate_series(1, 50000) g`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE refresh_tokens`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := db.ActiveSessions(ctx, user, now)
		if err != nil || len(got) != 5 {
			b.Fatalf("ActiveSessions = %d sessions, %v; want 5", len(got), err)
		}
	}
}
