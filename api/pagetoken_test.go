package api

import (
	"testing"
	"time"

	"github.com/pncpki/pncpki/store"
)

// FuzzParsePageToken: any token parses or is refused without a panic,
// and what parses encodes back to a token that names the same place.
func FuzzParsePageToken(f *testing.F) {
	t0 := time.Date(2026, 12, 7, 1, 2, 3, 4000, time.UTC)
	last := &store.Certificate{Issuer: "cpo-sub2", Serial: "7F01", CreatedAt: t0, NotAfter: t0.AddDate(1, 0, 0)}
	f.Add(pageToken(last, false))
	f.Add(pageToken(last, true))
	f.Add("Zm9vL2Jhcg")
	f.Fuzz(func(t *testing.T, s string) {
		c, byExpiry, err := parsePageToken(s)
		if err != nil {
			return
		}
		again := pageToken(&store.Certificate{Issuer: c.Issuer, Serial: c.Serial, CreatedAt: c.Time, NotAfter: c.Time}, byExpiry)
		c2, byExpiry2, err := parsePageToken(again)
		if err != nil || *c2 != *c || byExpiry2 != byExpiry {
			t.Fatalf("%q parsed to %+v %v, encoded %q, parsed again to %+v %v %v", s, c, byExpiry, again, c2, byExpiry2, err)
		}
	})
}
