// Package pgtest gives tests a PostgreSQL schema of their own on the server
// named by PNCPKI_TEST_POSTGRES, or skips them when it is not set.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var n atomic.Int64

// URL creates a fresh schema, drops it when t ends, and returns the
// server's URL with that schema as search_path.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("PNCPKI_TEST_POSTGRES")
	if base == "" {
		t.Skip("PNCPKI_TEST_POSTGRES not set: skipping PostgreSQL tests (.ci/run sets it)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v", base, err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("pncpki_test_%d_%d", time.Now().UnixNano(), n.Add(1))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
