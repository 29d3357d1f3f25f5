package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/storetest"
)

var schemas atomic.Int64

// testURL returns PNCPKI_TEST_POSTGRES with a fresh schema as search_path,
// dropped when the test ends, or skips.
func testURL(t *testing.T) string {
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
	schema := fmt.Sprintf("pncpki_test_%d_%d", time.Now().UnixNano(), schemas.Add(1))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
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

func TestConformance(t *testing.T) {
	urls := map[store.Store]string{}
	open := func(t *testing.T) store.Store {
		u := testURL(t)
		db, err := Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		urls[db] = u
		return db
	}
	reopen := func(t *testing.T, s store.Store) store.Store {
		u := urls[s]
		s.Close()
		db, err := Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	storetest.Run(t, open, reopen)
}

// TestConcurrentOpen: replicas starting together migrate once.
func TestConcurrentOpen(t *testing.T) {
	u := testURL(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := Open(context.Background(), u)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
