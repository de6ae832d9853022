package main

import (
	"context"
	"flag"
	"io"

	"github.com/fluxstudio/fluxauth/app"
)

// cmdServe runs the service: package app builds it from the configuration and runs it until ctx
// ends (SIGTERM), then stops it gracefully.
func cmdServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var noMigrate bool
	cfg, _, err := parseConfig("serve", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&noMigrate, "no-migrate", false, "do not apply pending migrations at start")
	})
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Deps{Version: version, LogOutput: stderr, NoMigrate: noMigrate})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
