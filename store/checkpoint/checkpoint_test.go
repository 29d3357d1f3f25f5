package checkpoint_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/checkpoint"
)

// newEnv is a data directory with a hierarchy and its SQLite database
// opened raw, as someone who can write it has it.
func newEnv(t *testing.T) (*datadir.Dir, *sql.DB) {
	t.Helper()
	ctx := store.WithActor(context.Background(), "test")
	dir := t.TempDir()
	d, err := datadir.Open(ctx, dir, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Test"}); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", filepath.Join(dir, "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return d, raw
}

// revokeOne issues and revokes an SECC certificate; it returns its serial.
func revokeOne(t *testing.T, d *datadir.Dir, cn string) string {
	t.Helper()
	ctx := store.WithActor(context.Background(), "test")
	signer, _ := ca.GenerateKeyFile(filepath.Join(t.TempDir(), "k.key"))
	iss, err := d.CA.IssueForKey(ctx, policies.ISO2SECC, "cpo-sub2", signer.Public(), policies.Subject{CommonName: cn}, policies.Period{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CA.Revoke(ctx, "cpo-sub2", iss.Record.Serial, 1); err != nil {
		t.Fatal(err)
	}
	return iss.Record.Serial
}

// rehash recomputes every hash from entry from on, as someone who changed
// an entry would, so that the plain chain verifies again.
func rehash(t *testing.T, d *datadir.Dir, raw *sql.DB, from int64) {
	t.Helper()
	ctx := context.Background()
	var prev []byte
	if from > 1 {
		if err := raw.QueryRow(`SELECT hash FROM audit WHERE seq = ?`, from-1).Scan(&prev); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := d.Store.AuditLog(ctx, from-1, store.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var detail string
		raw.QueryRow(`SELECT detail FROM audit WHERE seq = ?`, e.Seq).Scan(&detail)
		e.Detail, e.PrevHash = detail, prev
		e.Hash = store.AuditHash(prev, e)
		if _, err := raw.Exec(`UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`, e.PrevHash, e.Hash, e.Seq); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
}

// TestCheckpoints: a chain rewritten with every hash recomputed, a chain
// cut at its end, and a certificate un-revoked in its table all pass the
// plain hash chain, and checkpoints catch each.
func TestCheckpoints(t *testing.T) {
	ctx := store.WithActor(context.Background(), "test")
	t.Run("intact", func(t *testing.T) {
		d, _ := newEnv(t)
		key, err := d.AuditSigner(ctx)
		if err != nil {
			t.Fatal(err)
		}
		revokeOne(t, d, "DE*ABC*E1")
		if _, err := checkpoint.Take(ctx, d.Store, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		revokeOne(t, d, "DE*ABC*E2")
		r, err := checkpoint.Verify(ctx, d.Store, key.Public(), nil)
		if err != nil || r.Checkpoints != 1 || r.Revocations != 2 || r.Covered >= r.Entries {
			t.Fatalf("%+v %v", r, err)
		}
	})
	t.Run("rewritten", func(t *testing.T) {
		d, raw := newEnv(t)
		key, _ := d.AuditSigner(ctx)
		revokeOne(t, d, "DE*ABC*E1")
		if _, err := checkpoint.Take(ctx, d.Store, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`UPDATE audit SET actor = 'nobody' WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		rehash(t, d, raw, 2)
		if _, _, err := store.WalkAudit(ctx, d.Store, store.MaxPage, nil); err != nil {
			t.Fatalf("the rewrite does not even pass the plain chain: %v", err)
		}
		if _, err := checkpoint.Verify(ctx, d.Store, key.Public(), nil); err == nil || !strings.Contains(err.Error(), "rewritten") {
			t.Fatalf("rewrite not found: %v", err)
		}
	})
	t.Run("cut", func(t *testing.T) {
		d, raw := newEnv(t)
		key, _ := d.AuditSigner(ctx)
		kept, err := checkpoint.Take(ctx, d.Store, key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		revokeOne(t, d, "DE*ABC*E1")
		if _, err := checkpoint.Take(ctx, d.Store, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		// Cut everything from the first checkpoint on.
		if _, err := raw.Exec(`DELETE FROM audit WHERE seq >= ?`, kept.Seq); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`UPDATE certificates SET revoked_at = NULL, reason = 0`); err != nil {
			t.Fatal(err)
		}
		if r, err := checkpoint.Verify(ctx, d.Store, key.Public(), nil); err != nil || r.Checkpoints != 0 {
			t.Fatalf("without the kept checkpoint the cut chain looks whole: %+v %v", r, err)
		}
		if _, err := checkpoint.Verify(ctx, d.Store, key.Public(), kept); err == nil || !strings.Contains(err.Error(), "cut") {
			t.Fatalf("cut not found with the kept checkpoint: %v", err)
		}
	})
	t.Run("un-revoked", func(t *testing.T) {
		d, raw := newEnv(t)
		key, _ := d.AuditSigner(ctx)
		serial := revokeOne(t, d, "DE*ABC*E1")
		if _, err := raw.Exec(`UPDATE certificates SET revoked_at = NULL, reason = 0 WHERE serial = ?`, serial); err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Verify(ctx, d.Store, key.Public(), nil); err == nil || !strings.Contains(err.Error(), "un-revoked") {
			t.Fatalf("un-revocation not found: %v", err)
		}
	})
	t.Run("forged", func(t *testing.T) {
		d, _ := newEnv(t)
		key, _ := d.AuditSigner(ctx)
		other, _ := ca.GenerateKeyFile(filepath.Join(t.TempDir(), "other.key"))
		if _, err := checkpoint.Take(ctx, d.Store, other, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Verify(ctx, d.Store, key.Public(), nil); err == nil {
			t.Fatal("a checkpoint signed by another key passed")
		}
	})
}
