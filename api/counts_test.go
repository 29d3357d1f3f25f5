package api

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/sqlite"
)

// TestProfileCountsKept: a count is answered as it is for countsTTL, then
// answered once more while a new one is made, which the next answer has.
func TestProfileCountsKept(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	if err := st.CreateCA(ctx, &store.CA{Name: "cpo-sub2", Profile: policies.ISO2CPOSub2, CertDER: []byte{0x30, 0}, KeyURI: "softkms:path=k", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, serial := range []string{"01", "02"} {
		if err := st.PutCertificate(ctx, &store.Certificate{Issuer: "cpo-sub2", Serial: serial, Profile: policies.ISO2SECC, Tenant: "cpo1",
			CommonName: "DE*SWM*E" + serial, NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), DER: []byte{0x30, 0}, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var pc profileCounts
	want := func(asOf time.Time, c store.ProfileCount) {
		t.Helper()
		got, at, err := pc.get(ctx, st, "", clock)
		if err != nil || !at.Equal(asOf) || !slices.Equal(got, []store.ProfileCount{c}) {
			t.Fatalf("got %v as of %s (%v), want %v as of %s", got, at, err, c, asOf)
		}
	}
	want(t0, store.ProfileCount{Profile: policies.ISO2SECC, Valid: 2})
	if _, err := st.Revoke(ctx, "cpo-sub2", "01", 1, t0); err != nil {
		t.Fatal(err)
	}
	advance(countsTTL / 2)
	want(t0, store.ProfileCount{Profile: policies.ISO2SECC, Valid: 2}) // kept
	advance(countsTTL)
	t1 := clock()
	want(t0, store.ProfileCount{Profile: policies.ISO2SECC, Valid: 2}) // answered while counting anew
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, at, _ := pc.get(ctx, st, "", clock); at.Equal(t1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new count within a minute")
		}
	}
	want(t1, store.ProfileCount{Profile: policies.ISO2SECC, Valid: 1, Revoked: 1})

	// A scope is counted apart.
	if got, _, err := pc.get(ctx, st, "cpo2", clock); err != nil || got != nil {
		t.Errorf("cpo2: %v %v", got, err)
	}
}
