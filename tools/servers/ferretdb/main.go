// Command ferretdb runs FerretDB v1 (pinned in go.mod) on its PostgreSQL backend.
//
// A plain `go install` of FerretDB builds a binary that panics at start-up because its
// build/version/version.txt is not part of the module; embedding the library from our own
// main module avoids that check. Telemetry is disabled by the embeddable package.
//
// The PostgreSQL URL comes from FERRETDB_POSTGRESQL_URL (so its password never shows in a
// process listing); scripts/servers.sh sets it, with pool_max_conns chosen on purpose.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	flag.Parse()

	url := os.Getenv("FERRETDB_POSTGRESQL_URL")
	if url == "" {
		log.Fatal("FERRETDB_POSTGRESQL_URL is not set (postgres://user:password@127.0.0.1:port/db?pool_max_conns=N)")
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: url,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log.Printf("ferretdb listening on %s (PostgreSQL backend)", *listen)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
