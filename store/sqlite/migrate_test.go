package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/store"
)

// openAt makes a database as the first version migrations left it, with
// the rows that inserts add, and opens it, which migrates the rest.
func openAt(t *testing.T, version int, inserts ...string) *DB {
	t.Helper()
	p := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for _, m := range migrations[:version] {
		stmts = append(stmts, m...)
	}
	stmts = append(stmts, fmt.Sprintf(`PRAGMA user_version = %d`, version))
	for _, q := range append(stmts, inserts...) {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

const (
	insertOldCA   = `INSERT INTO cas(name, profile, key_uri, created_at) VALUES('a', 'iso15118-2/cpo-sub2', 'softkms:path=a.key', 0)`
	insertOldCert = `INSERT INTO certificates(issuer, serial, profile, not_before, not_after, der, created_at) VALUES('a', '01', 'iso15118-2/secc', 0, 99999999999999, x'00', 0)`
)

// TestMigrateFromV1: a database made by the first schema opens, keeps its
// rows, and its new revocations enter the feed.
func TestMigrateFromV1(t *testing.T) {
	db := openAt(t, 1, insertOldCA, insertOldCert)
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

// TestMigrateCertificatesKey: rebuilding the certificates table on its
// (serial, issuer) key keeps every row and revocation, and a lookup by
// serial alone still uses an index.
func TestMigrateCertificatesKey(t *testing.T) {
	db := openAt(t, len(migrations)-1, insertOldCA, insertOldCert,
		`INSERT INTO certificates(issuer, serial, profile, not_before, not_after, der, created_at, revoked_at, reason, revocation_seq) VALUES('a', '02', 'iso15118-2/secc', 0, 99999999999999, x'00', 0, 5, 1, 1)`)
	ctx := context.Background()
	if c, err := db.Certificate(ctx, "a", "01"); err != nil || !c.RevokedAt.IsZero() {
		t.Fatalf("01 after migration: %+v, %v", c, err)
	}
	if c, err := db.Certificate(ctx, "a", "02"); err != nil || c.RevokedAt.IsZero() || c.Reason != 1 {
		t.Fatalf("02 after migration: %+v, %v", c, err)
	}
	if feed, err := db.Revocations(ctx, 0, 10); err != nil || len(feed) != 1 || feed[0].Serial != "02" {
		t.Errorf("feed after migration: %v, %v", feed, err)
	}
	if err := db.PutCertificate(ctx, &store.Certificate{Issuer: "a", Serial: "01", Profile: "iso15118-2/secc", DER: []byte{0}, NotAfter: time.Now()}); !errors.Is(err, store.ErrDuplicateSerial) {
		t.Errorf("duplicate serial after migration: %v", err)
	}
	var plan string
	rows, err := db.r.Query(`EXPLAIN QUERY PLAN SELECT der FROM certificates WHERE serial = ?`, "01")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		plan += detail
	}
	rows.Close()
	if !strings.Contains(plan, "USING INDEX") {
		t.Errorf("lookup by serial: %q, want an index", plan)
	}
}
