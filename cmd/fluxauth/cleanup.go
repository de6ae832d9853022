package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
)

func cmdCleanup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var dryRun bool
	cfg, _, err := parseConfig("cleanup", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")
	})
	if err != nil {
		return err
	}
	db, err := openCurrentDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := app.CleanupJob(cfg, db, fluxauth.SystemClock{}, app.NewLogger(cfg, stderr, nil)).Run(ctx, dryRun)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	return nil
}
