package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/storetest"
)

func TestConformance(t *testing.T) {
	paths := map[store.Store]string{}
	open := func(t *testing.T) store.Store {
		p := filepath.Join(t.TempDir(), "pncpki.db")
		db, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		paths[db] = p
		return db
	}
	reopen := func(t *testing.T, s store.Store) store.Store {
		p := paths[s]
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	storetest.Run(t, open, reopen)
}
