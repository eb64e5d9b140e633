// Command ferretdb runs FerretDB v1 (pinned in go.mod) on its SQLite backend.
//
// A plain `go install` of FerretDB builds a binary that panics at start-up because its
// build/version/version.txt is not part of the module; embedding the library from our own
// main module avoids that check. Telemetry is disabled by the embeddable package.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", ".data/ferretdb", "SQLite data directory (created if missing)")
	flag.Parse()

	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		log.Fatal(err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  "sqlite",
		// Immediate transactions: a deferred one that reads, then writes, fails at
		// once with SQLITE_BUSY when another writer got there first (busy_timeout
		// cannot help an upgrade); seen under the on-sale storm.
		SQLiteURL: "file:" + abs + "/?_txlock=immediate",
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log.Printf("ferretdb listening on %s, data in %s", *listen, abs)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
