package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"

	"github.com/fluxstudio/fluxauth/emailaddr"
)

// EmailKeyDDL is a dialect's SQL for migration 008 (EmailKeys), run in this order: Before, SetKey
// once per user, After. Down undoes it all.
type EmailKeyDDL struct {
	// Before adds users.email_key (NOT NULL DEFAULT ''), users.email_verified_at and
	// identities.email_verified, and drops the old case-insensitive index idx_users_email.
	Before []string
	// SetKey sets the email_key of the user with an id: arguments key, id.
	SetKey string
	// After recreates idx_users_email, unique, on email_key.
	After []string
	Down  []string
}

// EmailKeys returns migration 008. Emails become compared in their canonical form (package
// emailaddr), which neither SQLite nor PostgreSQL can compute (SQLite has no Unicode normalization;
// PostgreSQL's lower() depends on the locale): so it is a Go migration, the same for both stores,
// that stores each user's canonical form in users.email_key and makes that the unique index. It also
// adds users.email_verified_at and identities.email_verified, both unknown (NULL, false) for the
// rows already there.
//
// When two accounts' addresses have one canonical form ("kate@x" and "\u212Aate@x" were two
// accounts before), it changes nothing and fails, naming every such account: which account keeps
// the address is for an operator to decide (change or delete the others), before migrating again.
// Everything runs in one transaction, so a failed run leaves the schema as it was.
func EmailKeys(ddl EmailKeyDDL) *goose.Migration {
	m := goose.NewGoMigration(8,
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return emailKeysUp(ctx, tx, ddl) }},
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return execAll(ctx, tx, ddl.Down) }})
	m.Source = emailKeysSource
	return m
}

// emailKeysSource names migration 008 after this file, as goose names SQL migrations after theirs.
const emailKeysSource = "008_users_email_key.go"

// maxCollisionsNamed bounds the error's length; the count of the rest is given.
const maxCollisionsNamed = 50

type legacyUser struct{ id, email string }

func emailKeysUp(ctx context.Context, tx *sql.Tx, ddl EmailKeyDDL) error {
	if err := execAll(ctx, tx, ddl.Before); err != nil {
		return err
	}
	// Read everything first: a driver may not run a statement while a result is open.
	rows, err := tx.QueryContext(ctx, `SELECT id, email FROM users ORDER BY created_at, id`)
	if err != nil {
		return err
	}
	var users []legacyUser
	for rows.Next() {
		var u legacyUser
		if err := rows.Scan(&u.id, &u.email); err != nil {
			rows.Close()
			return err
		}
		users = append(users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	byKey := make(map[string][]legacyUser, len(users))
	var keys []string // in the order of their first account, so the error lists oldest first
	for _, u := range users {
		k := emailaddr.Canonical(u.email)
		if len(byKey[k]) == 0 {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], u)
	}
	var collisions []string
	for _, k := range keys {
		if same := byKey[k]; len(same) > 1 {
			named := make([]string, len(same))
			for i, u := range same {
				// %+q shows non-ASCII letters as escapes: the lookalikes are told apart.
				named[i] = fmt.Sprintf("user %s (%+q)", u.id, u.email)
			}
			collisions = append(collisions, fmt.Sprintf("%+q: %s", k, strings.Join(named, ", ")))
		}
	}
	if n := len(collisions); n > 0 {
		if n > maxCollisionsNamed {
			collisions = append(collisions[:maxCollisionsNamed], fmt.Sprintf("and %d more", n-maxCollisionsNamed))
		}
		return fmt.Errorf("%d email addresses are each held by several accounts once compared in canonical form; "+
			"nothing was changed. Decide which account keeps each address, change the email of (or delete) the others, "+
			"then migrate again:\n  %s", n, strings.Join(collisions, "\n  "))
	}

	for _, k := range keys {
		u := byKey[k][0]
		if _, err := tx.ExecContext(ctx, ddl.SetKey, k, u.id); err != nil {
			return err
		}
	}
	return execAll(ctx, tx, ddl.After)
}

func execAll(ctx context.Context, tx *sql.Tx, statements []string) error {
	for _, q := range statements {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
