package sqlq

import (
	"context"
	"strings"

	"github.com/fluxstudio/fluxauth"
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
	a := &args{d: s.d}
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
