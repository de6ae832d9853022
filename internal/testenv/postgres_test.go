package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

func TestAPrivatePostgresKeepsItsDataAcrossARestartAndIsUnreachableWhileStopped(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(`CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	pg.Restart()
	if err := exec(`SELECT 1/count(*) FROM kept`); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	pg.Stop()
	if err := exec(`SELECT 1`); err == nil {
		t.Fatal("a stopped server answered")
	}
	pg.Start()
	if err := exec(`SELECT 1/count(*) FROM kept`); err != nil {
		t.Fatalf("after stop and start: %v", err)
	}
}
