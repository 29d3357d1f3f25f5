package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/pncpki/pncpki/store"
)

// TestMigrateFromV1: a database made by the first schema opens, keeps its
// rows, and its new revocations enter the feed.
func TestMigrateFromV1(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v1.db")
	raw, err := sql.Open("sqlite", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := raw.Begin()
	for _, s := range migrations[0] {
		if _, err := tx.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	tx.Exec(`PRAGMA user_version = 1`)
	tx.Exec(`INSERT INTO cas(name, profile, key_uri, created_at) VALUES('a', 'iso15118-2/cpo-sub2', 'softkms:path=a.key', 0)`)
	tx.Exec(`INSERT INTO certificates(issuer, serial, profile, not_before, not_after, der, created_at) VALUES('a', '01', 'iso15118-2/secc', 0, 99999999999999, x'00', 0)`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.Certificate(ctx, "a", "01"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Revoke(ctx, "a", "01", 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	feed, err := db.Revocations(ctx, 0, 10)
	if err != nil || len(feed) != 1 || feed[0] != (store.Revocation{Seq: 1, Issuer: "a", Serial: "01"}) {
		t.Errorf("feed after migration: %v, %v", feed, err)
	}
}
