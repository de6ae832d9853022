// Command fluxauth is FluxStudio's authentication service: one binary that serves the API, migrates
// its database and manages users and signing keys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `fluxauth — FluxStudio's authentication service

Usage:
  fluxauth serve [flags]                 run the HTTP API (migrates first unless --no-migrate)
  fluxauth migrate up|down|status        apply, roll back one, or list migrations
  fluxauth users set-type EMAIL TYPE     set a user's userType (e.g. admin)
  fluxauth users export [--output FILE]  write every user as JSON Lines (hashes and identities included)
  fluxauth users import [--dry-run] [--update] FILE|-
                                         create the users of a JSON Lines file (the legacy server's or an export)
  fluxauth keys rotate                   add a new signing key; older keys keep verifying
  fluxauth cleanup [--dry-run]           delete expired/revoked tokens and old events now
  fluxauth version                       print the version

Every flag has an environment variable (FLUXAUTH_…); flags win. Run "fluxauth serve -h" for the list.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it with their own arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(ctx, rest, getenv, stderr)
	case "migrate":
		err = cmdMigrate(ctx, rest, getenv, stdout, stderr)
	case "users":
		err = cmdUsers(ctx, rest, getenv, stdout, stderr)
	case "keys":
		err = cmdKeys(ctx, rest, getenv, stdout, stderr)
	case "cleanup":
		err = cmdCleanup(ctx, rest, getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "fluxauth", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fluxauth: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "fluxauth:", err)
		return 1
	}
	return 0
}

// parseConfig parses a subcommand's flags and the environment into a validated Config: a flag wins
// over its variable, and an empty variable counts as not set. extra may register subcommand-only
// flags.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, []string, error) {
	fs := flag.NewFlagSet("fluxauth "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	given := map[string]string{}
	for _, s := range config.Settings() {
		fs.Func(s.Flag(), s.Usage(), func(v string) error {
			given[s.Env] = v
			return nil
		})
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	cfg, err := config.Load(func(env string) (string, bool) {
		if v, ok := given[env]; ok {
			return v, true
		}
		v := getenv(env)
		return v, v != ""
	})
	if err != nil {
		return nil, nil, err
	}
	return cfg, fs.Args(), nil
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("migrate needs up, down or status")
	}
	action := args[0]
	cfg, _, err := parseConfig("migrate "+action, args[1:], getenv, stderr, nil)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	switch action {
	case "up":
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "already up to date")
		}
		for _, n := range applied {
			fmt.Fprintln(stdout, "applied", n)
		}
	case "down":
		name, err := db.MigrateDown(ctx)
		if err != nil {
			return err
		}
		if name == "" {
			fmt.Fprintln(stdout, "nothing to roll back")
		} else {
			fmt.Fprintln(stdout, "rolled back", name)
		}
	case "status":
		list, err := db.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
		for _, m := range list {
			state, at := "pending", ""
			if m.Applied {
				state, at = "applied", m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(tw, "%03d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown migrate action %q: use up, down or status", action)
	}
	return nil
}

const usersUsage = "usage: fluxauth users set-type EMAIL TYPE | fluxauth users export [--output FILE] | fluxauth users import [--dry-run] [--update] FILE|-"

func cmdUsers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "export" {
		return cmdUsersExport(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "import" {
		return cmdUsersImport(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "set-type" {
		return errors.New(usersUsage)
	}
	cfg, rest, err := parseConfig("users set-type", args[1:], getenv, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) != 2 || strings.TrimSpace(rest[0]) == "" || strings.TrimSpace(rest[1]) == "" {
		return errors.New("usage: fluxauth users set-type EMAIL TYPE")
	}
	email, userType := strings.TrimSpace(rest[0]), strings.TrimSpace(rest[1])
	valid := append([]string{fluxauth.UserTypeAdmin}, cfg.Account.SignupUserTypes...)
	if !slices.Contains(valid, userType) {
		return fmt.Errorf("unknown user type %q: use one of %s (admin, or one of FLUXAUTH_SIGNUP_USER_TYPES)", userType, strings.Join(valid, ", "))
	}
	db, err := openCurrentDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.UserByEmail(ctx, email)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return fmt.Errorf("no user with email %s", email)
	}
	if err != nil {
		return err
	}
	// The change and its event commit together: every change of type is in the audit log, with who
	// made it, like an admin's actions through the API.
	now := fluxauth.SystemClock{}.Now()
	var from string
	err = db.Update(ctx, func(tx fluxauth.Tx) error {
		cur, err := tx.LockUser(ctx, u.ID)
		if err != nil {
			return err
		}
		if from = cur.UserType; from == userType {
			return nil
		}
		if err := tx.SetUserType(ctx, u.ID, userType, now); err != nil {
			return err
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		return tx.InsertEvents(ctx, &fluxauth.SecurityEvent{
			ID: id.String(), Type: fluxauth.EventUserTypeChanged, Severity: fluxauth.SeverityInfo, UserID: u.ID,
			Metadata: map[string]any{"by": cliActor(), "from": from, "to": userType}, CreatedAt: now,
		})
	})
	if errors.Is(err, fluxauth.ErrNotFound) {
		return fmt.Errorf("no user with email %s", email)
	}
	if err != nil {
		return err
	}
	if from == userType {
		fmt.Fprintf(stdout, "%s is already %s\n", email, userType)
		return nil
	}
	fmt.Fprintf(stdout, "%s is now %s\n", email, userType)
	return nil
}

// cliActor names the operator of a command-line change in the audit log: "cli:" and the OS user
// who ran it.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return "cli:" + name
	}
	return "cli"
}
