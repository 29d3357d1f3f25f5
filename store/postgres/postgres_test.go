package postgres

import (
	"context"
	"testing"

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
