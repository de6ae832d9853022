package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/cleanup"
	"github.com/fluxstudio/fluxauth/internal/config"
)

func newCleanupJob(cfg *config.Config, db database, logger *slog.Logger) *cleanup.Job {
	return &cleanup.Job{
		Store: db, TokenRetention: cfg.TokenRetention, EventRetention: cfg.EventRetention,
		Batch: cfg.CleanupBatch, Clock: fluxauth.SystemClock{}, Logger: logger,
	}
}

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
	rep, err := newCleanupJob(cfg, db, newLogger(cfg, stderr, nil)).Run(ctx, dryRun)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	return nil
}
