package sqlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
)

// UsersAfter returns up to limit users whose ID sorts after after ("" for the first page), in ID
// order, each with its identities: a page of `fluxauth users export`. Each page is two statements
// (the users, then their identities), so an export holds no transaction and no lock between pages.
func (s Store) UsersAfter(ctx context.Context, after string, limit int) ([]fluxauth.ExportedUser, error) {
	var out []fluxauth.ExportedUser
	err := s.read.Query(ctx, s.d.rebind(`SELECT `+UserColumns+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`), []any{after, limit},
		func(row Scanner) error {
			u, err := ScanUser(row)
			if err != nil {
				return err
			}
			out = append(out, fluxauth.ExportedUser{User: u})
			return nil
		})
	if err != nil || len(out) == 0 {
		return out, err
	}
	a := &args{d: s.d, seq: true}
	in := make([]string, len(out))
	at := make(map[string]int, len(out))
	for i, e := range out {
		in[i] = a.add(e.User.ID)
		at[e.User.ID] = i
	}
	err = s.read.Query(ctx, `SELECT `+IdentityColumns+` FROM identities WHERE user_id IN (`+strings.Join(in, ", ")+`) ORDER BY user_id, provider, subject`,
		a.list, func(row Scanner) error {
			id, err := scanIdentity(row)
			if err != nil {
				return err
			}
			if i, ok := at[id.UserID]; ok {
				out[i].Identities = append(out[i].Identities, id)
			}
			return nil
		})
	return out, err
}

// importRounds bounds how often a batch's lines are classified again because concurrent writers
// took what the last round meant to insert; a line still overtaken after that is ImportRaced.
const importRounds = 3

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// sharedTx is every store's transaction: each embeds Tx.
type sharedTx interface{ shared() Tx }

func (t Tx) shared() Tx { return t }

// ImportUsers is fluxauth.UserImporter for a store whose Update is update: the batch in one of its
// transactions, rolled back in a dry run.
func ImportUsers(ctx context.Context, update func(context.Context, func(fluxauth.Tx) error) error, batch []fluxauth.ImportedUser, opt fluxauth.ImportOptions) ([]fluxauth.ImportResult, error) {
	var res []fluxauth.ImportResult
	err := update(ctx, func(tx fluxauth.Tx) error {
		var err error
		if res, err = tx.(sharedTx).shared().ImportUsers(ctx, batch, opt); err != nil {
			return err
		}
		if opt.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ImportUsers classifies and applies a batch of `fluxauth users import` inside the transaction
// (fluxauth.UserImporter): the accounts it reads by ID, canonical email and identity, then one
// multi-row insert of the new accounts and one of their identities, each ON CONFLICT DO NOTHING so
// that a row a concurrent writer committed first makes its line classified again rather than fail
// the batch. Updates (opt.Update) are a statement per account, the rows held from the first read.
func (t Tx) ImportUsers(ctx context.Context, batch []fluxauth.ImportedUser, opt fluxauth.ImportOptions) ([]fluxauth.ImportResult, error) {
	res := make([]fluxauth.ImportResult, len(batch))
	pending := make([]int, len(batch))
	for i := range batch {
		pending[i] = i
	}
	for round := 0; round < importRounds && len(pending) > 0; round++ {
		creates, updates, existing, err := t.classifyImport(ctx, batch, pending, res, opt, round > 0)
		if err != nil {
			return nil, err
		}
		overtaken, err := t.createImported(ctx, batch, creates, res)
		if err != nil {
			return nil, err
		}
		if err := t.updateImported(ctx, batch, updates, existing, res, opt); err != nil {
			return nil, err
		}
		pending = overtaken
	}
	for _, i := range pending {
		res[i] = fluxauth.ImportResult{Outcome: fluxauth.ImportRaced}
	}
	return res, nil
}

// classifyImport reads what the lines at idx find in the store and sets each one's result (again:
// they come back from an earlier round, overtaken); it
// returns the lines to create, those to update and the accounts that exist, by ID (held until the
// transaction ends when opt.Update).
func (t Tx) classifyImport(ctx context.Context, batch []fluxauth.ImportedUser, idx []int, res []fluxauth.ImportResult, opt fluxauth.ImportOptions, again bool) (creates, updates []int, byID map[string]*fluxauth.User, err error) {
	a := &args{d: t.d, seq: true}
	ids := make([]string, len(idx))
	keys := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = a.add(batch[i].User.ID)
	}
	lock := ""
	if opt.Update && !opt.DryRun {
		lock = t.d.ForUpdate
	}
	byID = map[string]*fluxauth.User{}
	if err := t.q.Query(ctx, `SELECT `+UserColumns+` FROM users WHERE id IN (`+strings.Join(ids, ", ")+`)`+lock, a.list,
		func(row Scanner) error {
			u, err := ScanUser(row)
			if err == nil {
				byID[u.ID] = u
			}
			return err
		}); err != nil {
		return nil, nil, nil, err
	}
	a = &args{d: t.d, seq: true}
	for k, i := range idx {
		keys[k] = a.add(emailaddr.Canonical(batch[i].User.Email))
	}
	byKey := map[string]string{}
	if err := t.q.Query(ctx, `SELECT id, email_key FROM users WHERE email_key IN (`+strings.Join(keys, ", ")+`)`, a.list,
		func(row Scanner) error {
			var id, key string
			if err := row.Scan(scanText(&id), &key); err != nil {
				return err
			}
			byKey[key] = id
			return nil
		}); err != nil {
		return nil, nil, nil, err
	}
	// The identities of the accounts that exist, and who holds those the lines name. A new
	// account's identities are looked up only when its line comes back for another round: on the
	// first, their insert (ON CONFLICT DO NOTHING) finds a taken one, and the line returns. Reading
	// them all first would cost a batch more than its writes: PostgreSQL plans a list of (provider,
	// subject) pairs as a scan of the provider's whole index range, seconds a batch once identities
	// number in the hundreds of thousands.
	owner := map[[2]string]string{}
	identities := map[string][]*fluxauth.Identity{}
	keep := func(row Scanner) error {
		id, err := scanIdentity(row)
		if err != nil {
			return err
		}
		if _, seen := owner[[2]string{id.Provider, id.Subject}]; !seen {
			identities[id.UserID] = append(identities[id.UserID], id)
		}
		owner[[2]string{id.Provider, id.Subject}] = id.UserID
		return nil
	}
	if len(byID) > 0 {
		a = &args{d: t.d, seq: true}
		var held []string
		for id := range byID {
			held = append(held, a.add(id))
		}
		if err := t.q.Query(ctx, `SELECT `+IdentityColumns+` FROM identities WHERE user_id IN (`+strings.Join(held, ", ")+`)`, a.list, keep); err != nil {
			return nil, nil, nil, err
		}
	}
	a = &args{d: t.d, seq: true}
	var named []string
	for _, i := range idx {
		u := byID[batch[i].User.ID]
		if u == nil && !again {
			continue
		}
		for _, id := range batch[i].Identities {
			if u == nil || owner[[2]string{id.Provider, id.Subject}] != u.ID {
				named = append(named, "("+a.add(id.Provider)+", "+a.add(id.Subject)+")")
			}
		}
	}
	if len(named) > 0 {
		if err := t.q.Query(ctx, `SELECT `+IdentityColumns+` FROM identities WHERE (provider, subject) IN (`+strings.Join(named, ", ")+`)`, a.list, keep); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, i := range idx {
		in := &batch[i]
		r := fluxauth.ImportResult{}
		u := byID[in.User.ID]
		if u != nil {
			r.Fields = in.Differences(u, identities[u.ID])
			switch {
			case len(r.Fields) == 0:
				r.Outcome = fluxauth.ImportUnchanged
			case !opt.Update:
				r.Outcome = fluxauth.ImportDiffers
			}
		}
		if r.Outcome == 0 {
			if other, ok := byKey[emailaddr.Canonical(in.User.Email)]; ok && other != in.User.ID {
				r = fluxauth.ImportResult{Outcome: fluxauth.ImportEmailTaken, OtherUserID: other}
			}
		}
		if r.Outcome == 0 {
			for _, id := range in.Identities {
				if other, ok := owner[[2]string{id.Provider, id.Subject}]; ok && other != in.User.ID {
					r = fluxauth.ImportResult{Outcome: fluxauth.ImportIdentityTaken, OtherUserID: other, Provider: id.Provider}
					break
				}
			}
		}
		if r.Outcome == 0 {
			if u != nil {
				r.Outcome = fluxauth.ImportUpdated
				updates = append(updates, i)
			} else {
				r.Outcome = fluxauth.ImportCreated
				creates = append(creates, i)
			}
		}
		res[i] = r
	}
	return creates, updates, byID, nil
}

// createImported inserts the accounts of the lines at idx and their identities, and returns the
// lines a concurrent writer overtook: their account's ID or email, or one of their identities, was
// taken between the read and the insert. Those lines leave nothing behind.
func (t Tx) createImported(ctx context.Context, batch []fluxauth.ImportedUser, idx []int, res []fluxauth.ImportResult) ([]int, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	a := &args{d: t.d, list: make([]any, 0, 9*len(idx)), seq: true}
	var b strings.Builder
	b.WriteString(`INSERT INTO users (` + UserColumns + `, email_key) VALUES `)
	for k, i := range idx {
		u := &batch[i].User
		if k > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s, %s, %s, %s)", a.add(u.ID), a.add(u.Email), a.add(u.PasswordHash), a.add(u.Name),
			a.add(u.UserType), a.add(t.d.nullTime(u.EmailVerifiedAt)), a.add(t.d.Time(u.CreatedAt)), a.add(t.d.Time(u.UpdatedAt)),
			a.add(emailaddr.Canonical(u.Email)))
	}
	b.WriteString(` ON CONFLICT DO NOTHING RETURNING id`)
	made := map[string]bool{}
	if err := t.q.Query(ctx, b.String(), a.list, func(row Scanner) error {
		var id string
		if err := row.Scan(scanText(&id)); err != nil {
			return err
		}
		made[id] = true
		return nil
	}); err != nil {
		return nil, err
	}
	var overtaken, linking []int
	for _, i := range idx {
		if !made[batch[i].User.ID] {
			overtaken = append(overtaken, i)
		} else if len(batch[i].Identities) > 0 {
			linking = append(linking, i)
		}
	}
	lost, err := t.linkImported(ctx, batch, linking)
	if err != nil {
		return nil, err
	}
	if len(lost) > 0 {
		a := &args{d: t.d, seq: true}
		var in []string
		for _, i := range lost {
			in = append(in, a.add(batch[i].User.ID))
		}
		list := strings.Join(in, ", ")
		if _, err := t.q.Exec(ctx, `DELETE FROM identities WHERE user_id IN (`+list+`)`, a.list...); err != nil {
			return nil, err
		}
		if _, err := t.q.Exec(ctx, `DELETE FROM users WHERE id IN (`+list+`)`, a.list...); err != nil {
			return nil, err
		}
		overtaken = append(overtaken, lost...)
	}
	return overtaken, nil
}

// linkImported inserts the identities the lines at idx name for their accounts and returns the
// lines one of whose identities a concurrent writer linked first.
func (t Tx) linkImported(ctx context.Context, batch []fluxauth.ImportedUser, idx []int) ([]int, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	a := &args{d: t.d, seq: true}
	var b strings.Builder
	b.WriteString(`INSERT INTO identities (` + IdentityColumns + `) VALUES `)
	n := 0
	for _, i := range idx {
		for _, id := range batch[i].Identities {
			if n > 0 {
				b.WriteString(", ")
			}
			n++
			fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s)", a.add(id.Provider), a.add(id.Subject), a.add(batch[i].User.ID),
				a.add(id.Email), a.add(id.EmailVerified), a.add(t.d.Time(id.CreatedAt)))
		}
	}
	b.WriteString(` ON CONFLICT DO NOTHING RETURNING provider, subject, user_id`)
	linked := map[[2]string]string{}
	if err := t.q.Query(ctx, b.String(), a.list, func(row Scanner) error {
		var p, s, u string
		if err := row.Scan(&p, &s, scanText(&u)); err != nil {
			return err
		}
		linked[[2]string{p, s}] = u
		return nil
	}); err != nil {
		return nil, err
	}
	var lost []int
	for _, i := range idx {
		for _, id := range batch[i].Identities {
			if linked[[2]string{id.Provider, id.Subject}] != batch[i].User.ID {
				lost = append(lost, i)
				break
			}
		}
	}
	return lost, nil
}

// updateImported makes the accounts of the lines at idx what their lines give, a statement each
// (updates are the rare re-import of changed accounts), with the events of what changed.
func (t Tx) updateImported(ctx context.Context, batch []fluxauth.ImportedUser, idx []int, existing map[string]*fluxauth.User, res []fluxauth.ImportResult, opt fluxauth.ImportOptions) error {
	var events []*fluxauth.SecurityEvent
	for _, i := range idx {
		in := &batch[i]
		r := &res[i]
		var missing []fluxauth.Identity
		for _, f := range r.Fields {
			for _, id := range in.Identities {
				if id.Provider == f {
					missing = append(missing, id)
				}
			}
		}
		if len(missing) > 0 {
			one := []fluxauth.ImportedUser{{User: in.User, Identities: missing}}
			lost, err := t.linkImported(ctx, one, []int{0})
			if err != nil {
				return err
			}
			if len(lost) > 0 {
				owner, err := t.IdentityBySubject(ctx, missing[0].Provider, missing[0].Subject)
				if err != nil {
					return err
				}
				*r = fluxauth.ImportResult{Outcome: fluxauth.ImportIdentityTaken, OtherUserID: owner.UserID, Provider: owner.Provider}
				continue
			}
		}
		set := []string{`email = $1`, `email_key = $2`, `updated_at = $3`}
		a := &args{d: t.d, list: []any{in.User.Email, emailaddr.Canonical(in.User.Email), t.d.Time(opt.Now)}}
		credentials := slices.Contains(r.Fields, "email")
		for _, f := range r.Fields {
			switch f {
			case "name":
				set = append(set, `name = `+a.add(in.User.Name))
			case "userType":
				set = append(set, `user_type = `+a.add(in.User.UserType))
			case "passwordHash":
				set = append(set, `password_hash = `+a.add(in.User.PasswordHash))
				credentials = true
			case "emailVerified":
				if in.User.EmailVerified() {
					set = append(set, `email_verified_at = `+a.add(t.d.Time(opt.Now)))
				} else {
					set = append(set, `email_verified_at = NULL`)
				}
			case "createdAt":
				set = append(set, `created_at = `+a.add(t.d.Time(in.User.CreatedAt)))
			}
		}
		if err := AffectedOne(t.q.Exec(ctx, t.d.rebind(`UPDATE users SET `+strings.Join(set, ", ")+` WHERE id = `+a.add(in.User.ID)), a.list...)); err != nil {
			return err
		}
		if from := existing[in.User.ID].UserType; slices.Contains(r.Fields, "userType") {
			events = append(events, &fluxauth.SecurityEvent{Type: fluxauth.EventUserTypeChanged, Severity: fluxauth.SeverityInfo,
				UserID: in.User.ID, Metadata: map[string]any{"by": opt.By, "from": from, "to": in.User.UserType}, CreatedAt: opt.Now})
		}
		if credentials {
			sessions, err := t.revokeUserSessions(ctx, in.User.ID, opt.Now, "import_update")
			if err != nil {
				return err
			}
			r.SessionsRevoked = len(sessions)
			for _, sid := range sessions {
				events = append(events, &fluxauth.SecurityEvent{Type: fluxauth.EventTokenRevoked, Severity: fluxauth.SeverityInfo,
					UserID: in.User.ID, Metadata: map[string]any{"reason": "import_update", "by": opt.By, "sessionId": sid}, CreatedAt: opt.Now})
			}
		}
	}
	return t.InsertEvents(ctx, events...)
}

// revokeUserSessions revokes every live refresh token of the user and returns the sessions it
// ended, each once.
func (t Tx) revokeUserSessions(ctx context.Context, userID string, at time.Time, reason string) ([]string, error) {
	var sessions []string
	err := t.q.Query(ctx, t.d.rebind(`UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2
		WHERE user_id = $3 AND revoked_at IS NULL RETURNING session_id`), []any{t.d.Time(at), reason, userID},
		func(row Scanner) error {
			var sid string
			if err := row.Scan(scanText(&sid)); err != nil {
				return err
			}
			if !slices.Contains(sessions, sid) {
				sessions = append(sessions, sid)
			}
			return nil
		})
	return sessions, err
}
