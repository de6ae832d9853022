package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// userLine is one user of the JSON Lines that `users export` writes (and the legacy server's
// export gives): the fields the legacy users table has, hashes as stored, and the Google and Apple
// subjects the account is linked to.
type userLine struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name,omitempty"`
	UserType      string    `json:"userType"`
	PasswordHash  string    `json:"passwordHash,omitempty"`
	EmailVerified bool      `json:"emailVerified"`
	CreatedAt     time.Time `json:"createdAt"`
	Google        string    `json:"google,omitempty"`
	Apple         string    `json:"apple,omitempty"`
}

// exportPage is how many users one read of an export takes: a bounded slice of memory, whatever the
// number of users.
const exportPage = 1000

// cmdUsersExport writes every user, in ID order, one JSON object a line, to stdout or --output; a
// summary goes to stderr. The export is in the audit log (users_exported): it carries every
// password hash.
func cmdUsersExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var output string
	cfg, rest, err := parseConfig("users export", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&output, "output", "", "write to `FILE` (created with mode 0600) instead of standard output")
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New(usersUsage)
	}
	db, err := openCurrentDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	out := stdout
	if output != "" {
		f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	w := bufio.NewWriterSize(out, 64<<10)
	n, multi, err := exportUsers(ctx, db, w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return fmt.Errorf("export stopped after %d users: %w", n, err)
	}
	if f, ok := out.(*os.File); ok && output != "" {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	now := fluxauth.SystemClock{}.Now()
	if err := db.Update(ctx, func(tx fluxauth.Tx) error {
		return tx.InsertEvents(ctx, &fluxauth.SecurityEvent{
			ID: uuid.Must(uuid.NewV7()).String(), Type: fluxauth.EventUsersExported, Severity: fluxauth.SeverityInfo,
			Metadata: map[string]any{"by": cliActor(), "users": n}, CreatedAt: now,
		})
	}); err != nil {
		return fmt.Errorf("exported %d users, but the users_exported event was not recorded: %w", n, err)
	}
	for _, m := range multi {
		fmt.Fprintf(stderr, "user %s has more than one %s identity; the line names the first (%d left out)\n", m.user, m.provider, m.left)
	}
	fmt.Fprintf(stderr, "exported %d users\n", n)
	return nil
}

type multiIdentity struct {
	user, provider string
	left           int
}

func exportUsers(ctx context.Context, db fluxauth.UserExporter, w io.Writer) (int, []multiIdentity, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n, after := 0, ""
	var multi []multiIdentity
	for {
		page, err := db.UsersAfter(ctx, after, exportPage)
		if err != nil {
			return n, multi, err
		}
		for _, e := range page {
			u := e.User
			line := userLine{ID: u.ID, Email: u.Email, Name: u.Name, UserType: u.UserType, PasswordHash: u.PasswordHash,
				EmailVerified: u.EmailVerified(), CreatedAt: u.CreatedAt.UTC()}
			extra := map[string]int{}
			for _, id := range e.Identities {
				var slot *string
				switch id.Provider {
				case "google":
					slot = &line.Google
				case "apple":
					slot = &line.Apple
				default:
					continue
				}
				if *slot == "" {
					*slot = id.Subject
				} else {
					extra[id.Provider]++
				}
			}
			for p, k := range extra {
				multi = append(multi, multiIdentity{u.ID, p, k})
			}
			if err := enc.Encode(line); err != nil {
				return n, multi, err
			}
			n++
		}
		if len(page) < exportPage {
			return n, multi, nil
		}
		after = page[len(page)-1].User.ID
	}
}
