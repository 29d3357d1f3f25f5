package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/postgres/pgtest"
	"github.com/pncpki/pncpki/store/storetest"
)

func TestConformance(t *testing.T) {
	urls := map[store.Store]string{}
	open := func(t *testing.T) store.Store {
		u := pgtest.URL(t)
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
	u := pgtest.URL(t)
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

// TestPipelinedPuts: a batch goes out in one round trip while the
// committer's copy of the audit head holds. When another replica or a
// revocation moved the head, or a serial is taken, the batch falls back to
// the careful path, and the audit chain still verifies.
func TestPipelinedPuts(t *testing.T) {
	u := pgtest.URL(t)
	ctx := store.WithActor(context.Background(), "tester")
	open := func() *DB {
		db, err := Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if err := a.CreateCA(ctx, &store.CA{Name: "a", Profile: policies.ISO2CPOSub2, CertDER: []byte{0x30, 0}, KeyURI: "softkms:path=a.key", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var n int
	put := func(db *DB) error {
		n++
		now := time.Now()
		return db.PutCertificate(ctx, &store.Certificate{
			Issuer: "a", Serial: fmt.Sprintf("%04x", n), Profile: policies.ISO2SECC, Tenant: "cpo1",
			CommonName: "DE*ABC*E1", NotBefore: now, NotAfter: now.Add(time.Hour), DER: []byte{0x30, byte(n)}, CreatedAt: now,
		})
	}
	step := func(name string, db *DB, wantFallbacks int64, do func() error) {
		t.Helper()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := db.fallbacks.Load(); got != wantFallbacks {
			t.Fatalf("%s: %d fallbacks, want %d", name, got, wantFallbacks)
		}
	}
	for range 3 {
		step("puts on a", a, 0, func() error { return put(a) })
	}
	step("put on b", b, 0, func() error { return put(b) })
	step("a's head moved", a, 1, func() error { return put(a) })
	step("a pipelined again", a, 1, func() error { return put(a) })
	step("a revocation", a, 1, func() error { _, err := a.Revoke(ctx, "a", "0001", 1, time.Now()); return err })
	step("a's head moved by itself", a, 2, func() error { return put(a) })
	step("a duplicate serial", a, 3, func() error {
		n--
		if err := put(a); !errors.Is(err, store.ErrDuplicateSerial) {
			return fmt.Errorf("got %v, want ErrDuplicateSerial", err)
		}
		return nil
	})

	// Two replicas issuing at once: every certificate stored once and the
	// chain unbroken, however often they invalidate each other's head.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 8 {
		db := []*DB{a, b}[i%2]
		wg.Go(func() {
			for range 25 {
				mu.Lock()
				n++
				serial := fmt.Sprintf("%04x", n)
				mu.Unlock()
				now := time.Now()
				err := db.PutCertificate(ctx, &store.Certificate{Issuer: "a", Serial: serial, Profile: policies.ISO2SECC,
					NotBefore: now, NotAfter: now.Add(time.Hour), DER: []byte{0x30}, CreatedAt: now})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var issued int64
	_, _, err := store.WalkAudit(ctx, a, 100, func(e *store.AuditEntry) {
		if e.Action == store.AuditCertificateIssue {
			issued++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(7 + 8*25); issued != want {
		t.Errorf("%d issuances audited, want %d", issued, want)
	}
	all, err := a.Certificates(ctx, store.Filter{Issuer: "a", Limit: 1000})
	if err != nil || len(all) != 7+8*25 {
		t.Errorf("%d certificates stored (%v), want %d", len(all), err, 7+8*25)
	}
}
