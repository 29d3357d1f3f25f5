// Package storetest is the conformance suite every store.Store
// implementation runs: the same behaviour for SQLite and PostgreSQL.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Run runs the suite. open returns a fresh, empty store for each subtest;
// reopen, if not nil, closes a store and opens the same database again (to
// check that state survives a restart).
func Run(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Tenants", testTenants},
		{"CAs", testCAs},
		{"CertificatesRoundTrip", testCertificates},
		{"DuplicateSerial", testDuplicateSerial},
		{"UnknownIssuer", testUnknownIssuer},
		{"ConcurrentPuts", testConcurrentPuts},
		{"BatchedPuts", testBatchedPuts},
		{"FilterAndPaging", testFilter},
		{"Revoke", testRevoke},
		{"CRLNumbers", testCRLNumbers},
		{"ImportedCRLs", testImportedCRLs},
		{"LivePaging", testLive},
		{"RevocationFeed", testRevocationFeed},
		{"AuditLog", testAudit},
		{"Stations", testStations},
		{"StationCallsAndCertificates", testStationCalls},
		{"TokenRevocations", testTokenRevocations},
		{"Contracts", testContracts},
		{"ProvisioningCertificates", testProvisioning},
		{"OEMSubCAs", testOEMSubCAs},
		{"ContractDeposits", testDeposits},
		{"Installations", testInstallations},
		{"OAuthClients", testOAuthClients},
		{"TrustAnchors", testTrustAnchors},
		{"EventEndpoints", testEventEndpoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
	if reopen != nil {
		t.Run("SurvivesRestart", func(t *testing.T) { testRestart(t, open(t), reopen) })
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func mustCA(t *testing.T, s store.Store, name string) {
	t.Helper()
	err := s.CreateCA(context.Background(), &store.CA{Name: name, Profile: policies.ISO2CPOSub2, CertDER: []byte{0x30, 0x00}, KeyURI: "softkms:path=" + name + ".key", CreatedAt: t0})
	if err != nil {
		t.Fatalf("CreateCA(%s): %v", name, err)
	}
}

func cert(issuer, serial string) *store.Certificate {
	return &store.Certificate{
		Issuer: issuer, Serial: serial, Profile: policies.ISO2SECC, Tenant: "cpo1",
		CommonName: "DE*ABC*E" + serial, NotBefore: t0, NotAfter: t0.Add(60 * 24 * time.Hour),
		DER: []byte("der-" + serial), CreatedAt: t0,
	}
}

func testTenants(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := &policies.Tenant{Name: "cpo1", Kind: policies.TenantCPO, Organization: "Example CPO", OperatorIDs: []string{"DEABC", "DEXYZ"}, DNSDomains: []string{"csms.example.com"}}
	if err := s.CreateTenant(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, in); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateTenant: %v, want ErrExists", err)
	}
	got, err := s.Tenant(ctx, "cpo1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(in) {
		t.Errorf("Tenant = %+v, want %+v", got, in)
	}
	if _, err := s.Tenant(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Tenant(nobody) = %v, want ErrNotFound", err)
	}
	if err := s.CreateTenant(ctx, &policies.Tenant{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Tenants(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "cpo1" || all[1].ProviderIDs[0] != "DE8AA" {
		t.Errorf("Tenants = %v, %v", all, err)
	}
}

func testCAs(t *testing.T, s store.Store) {
	ctx := context.Background()
	pending := &store.CA{Name: "cpo-sub1", Profile: policies.ISO2CPOSub1, KeyURI: "pkcs11:token=x;object=y", CreatedAt: t0}
	if err := s.CreateCA(ctx, pending); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCA(ctx, pending); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate CreateCA: %v", err)
	}
	got, err := s.CA(ctx, "cpo-sub1")
	if err != nil || !got.Pending() || got.KeyURI != pending.KeyURI || !got.CreatedAt.Equal(t0) {
		t.Fatalf("CA = %+v, %v", got, err)
	}
	if err := s.SetCACertificate(ctx, "cpo-sub1", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCAKey(ctx, "cpo-sub1", store.OfflineKeyURI); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CA(ctx, "cpo-sub1"); err != nil || got.KeyURI != store.OfflineKeyURI {
		t.Errorf("after SetCAKey: %+v, %v", got, err)
	}
	if err := s.SetCAKey(ctx, "missing", store.OfflineKeyURI); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetCAKey(missing) = %v", err)
	}
	if err := s.SetCACertificate(ctx, "missing", []byte{1}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetCACertificate(missing) = %v", err)
	}
	if !got.IssueFrom.IsZero() {
		t.Errorf("CA without a switch time: IssueFrom %v", got.IssueFrom)
	}
	next := &store.CA{Name: "cpo-sub1-b", Profile: policies.ISO2CPOSub1, KeyURI: "pkcs11:token=x;object=z", CreatedAt: t0, IssueFrom: t0.Add(48 * time.Hour)}
	if err := s.CreateCA(ctx, next); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CA(ctx, next.Name); err != nil || !got.IssueFrom.Equal(next.IssueFrom) {
		t.Errorf("IssueFrom = %v, %v; want %v", got.IssueFrom, err, next.IssueFrom)
	}
	got, _ = s.CA(ctx, "cpo-sub1")
	if got.Pending() || string(got.CertDER) != "\x01\x02\x03" {
		t.Errorf("after SetCACertificate: %+v", got)
	}
	mustCA(t, s, "cpo-sub2")
	cas, err := s.CAs(ctx)
	if err != nil || len(cas) != 3 {
		t.Errorf("CAs = %v, %v", cas, err)
	}
	if _, err := s.CA(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CA(nope) = %v", err)
	}
}

func testCertificates(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "cpo-sub2")
	in := cert("cpo-sub2", "1a2b")
	if err := s.PutCertificate(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Certificate(ctx, "cpo-sub2", "1a2b")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*got) != fmt.Sprint(*in) {
		t.Errorf("Certificate = %+v\nwant %+v", got, in)
	}
	if got.Revoked() || got.Status(t0) != "valid" || got.Status(t0.Add(90*24*time.Hour)) != "expired" {
		t.Errorf("status of fresh certificate wrong")
	}
	if _, err := s.Certificate(ctx, "cpo-sub2", "ffff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing certificate: %v", err)
	}
}

func testDuplicateSerial(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	mustCA(t, s, "b")
	if err := s.PutCertificate(ctx, cert("a", "01")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCertificate(ctx, cert("a", "01")); !errors.Is(err, store.ErrDuplicateSerial) {
		t.Fatalf("duplicate serial: %v, want ErrDuplicateSerial", err)
	}
	// The same serial under another issuer is a different certificate.
	if err := s.PutCertificate(ctx, cert("b", "01")); err != nil {
		t.Fatalf("same serial, other issuer: %v", err)
	}
}

func testUnknownIssuer(t *testing.T, s store.Store) {
	if err := s.PutCertificate(context.Background(), cert("ghost", "01")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown issuer: %v, want ErrNotFound", err)
	}
}

func testConcurrentPuts(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// every tenth is a duplicate of its predecessor group's serial
			errs <- s.PutCertificate(ctx, cert("a", fmt.Sprintf("%x", i/2*2+1)))
		}()
	}
	wg.Wait()
	close(errs)
	var ok, dup int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrDuplicateSerial):
			dup++
		default:
			t.Errorf("PutCertificate: %v", err)
		}
	}
	if ok != n/2 || dup != n/2 {
		t.Errorf("stored %d, duplicates %d; want %d each", ok, dup, n/2)
	}
	all, err := s.Certificates(ctx, store.Filter{Issuer: "a"})
	if err != nil || len(all) != n/2 {
		t.Errorf("Certificates = %d, %v; want %d", len(all), err, n/2)
	}
}

func testFilter(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	mustCA(t, s, "b")
	for i := range 10 {
		c := cert("a", fmt.Sprintf("a%02d", i))
		c.CreatedAt = t0.Add(time.Duration(i) * time.Second)
		c.NotAfter = t0.Add(time.Duration(i+1) * 24 * time.Hour)
		if i%2 == 1 {
			c.Tenant = "cpo2"
			c.Profile = policies.OCPPChargingStation
		}
		if err := s.PutCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutCertificate(ctx, cert("b", "a00")); err != nil {
		t.Fatal(err)
	}
	count := func(f store.Filter) int {
		t.Helper()
		cs, err := s.Certificates(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	yes := true
	if _, err := s.Revoke(ctx, "a", "a03", 1, t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    store.Filter
		want int
	}{
		{"all", store.Filter{}, 11},
		{"issuer", store.Filter{Issuer: "a"}, 10},
		{"serial across issuers", store.Filter{Serial: "a00"}, 2},
		{"tenant", store.Filter{Tenant: "cpo2"}, 5},
		{"profile", store.Filter{Profile: policies.OCPPChargingStation}, 5},
		{"common name", store.Filter{CommonName: "DE*ABC*Ea04"}, 1},
		{"common names", store.Filter{CommonNames: []string{"DE*ABC*Ea04", "DE*ABC*Ea05", "DE*ABC*Ea99"}}, 2},
		{"revoked", store.Filter{Revoked: &yes}, 1},
		{"expiring", store.Filter{Issuer: "a", ExpiringBefore: t0.Add(3*24*time.Hour + time.Second)}, 3},
		{"limit", store.Filter{Limit: 4}, 4},
		{"offset", store.Filter{Issuer: "a", Offset: 8}, 2},
		{"common name prefix", store.Filter{CommonNamePrefix: "DE*ABC*Ea0"}, 11},
		{"common name prefix, narrower", store.Filter{CommonNamePrefix: "DE*ABC*Ea04"}, 1},
		{"common name prefix of none", store.Filter{CommonNamePrefix: "DE*ABD"}, 0},
		{"expiry window", store.Filter{Issuer: "a", ExpiringAfter: t0.Add(3 * 24 * time.Hour), ExpiringBefore: t0.Add(5*24*time.Hour + time.Second)}, 3},
	} {
		if got := count(tt.f); got != tt.want {
			t.Errorf("%s: %d certificates, want %d", tt.name, got, tt.want)
		}
		if tt.f.Limit != 0 || tt.f.Offset != 0 {
			continue // pages; counts ignore them
		}
		if n, err := s.CountCertificates(ctx, tt.f); err != nil || int(n) != tt.want {
			t.Errorf("%s: counted %d, %v; want %d", tt.name, n, err, tt.want)
		}
	}
	// By profile and status three days in: a00-a02 have expired, a03 is
	// revoked.
	at := t0.Add(3*24*time.Hour + time.Second)
	secc := store.ProfileCount{Profile: policies.ISO2SECC, Valid: 4, Expired: 2}
	ocpp := store.ProfileCount{Profile: policies.OCPPChargingStation, Valid: 3, Expired: 1, Revoked: 1}
	for tenant, want := range map[string][]store.ProfileCount{"": {secc, ocpp}, "cpo2": {ocpp}, "nobody": nil} {
		got, err := s.ProfileCounts(ctx, tenant, at)
		slices.SortFunc(want, func(a, b store.ProfileCount) int { return strings.Compare(a.Profile, b.Profile) })
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ProfileCounts(%q) = %v %v, want %v", tenant, got, err, want)
		}
	}
	page, _ := s.Certificates(ctx, store.Filter{Issuer: "a", Limit: 3, Offset: 3})
	if len(page) != 3 || page[0].Serial != "a06" || page[2].Serial != "a04" {
		t.Errorf("page 2 = %v, want a06..a04 (newest first)", page)
	}
	// Histograms: the unrevoked by expiry in two-day buckets (a03 is
	// revoked, a09 past the last bucket, b/a00 expires later), and all by
	// issuance in five-second ones.
	no := false
	h, err := s.Histogram(ctx, store.Filter{Revoked: &no}, store.HistogramExpiry, t0, 48*time.Hour, 5)
	if err != nil || fmt.Sprint(h) != "map[a:[1 2 1 2 2]]" {
		t.Errorf("expiry histogram %v, %v", h, err)
	}
	// cpo2 holds the odd ones: a01 (day 2), a05, a07 (days 6, 8); a09 is past the end.
	if h, err := s.Histogram(ctx, store.Filter{Revoked: &no, Tenant: "cpo2"}, store.HistogramExpiry, t0, 48*time.Hour, 5); err != nil || fmt.Sprint(h) != "map[a:[0 1 0 1 1]]" {
		t.Errorf("one tenant's expiry histogram %v, %v", h, err)
	}
	h, err = s.Histogram(ctx, store.Filter{}, store.HistogramIssuance, t0, 5*time.Second, 2)
	if err != nil || fmt.Sprint(h) != "map[a:[5 5] b:[1 0]]" {
		t.Errorf("issuance histogram %v, %v", h, err)
	}
	if h, err = s.Histogram(ctx, store.Filter{Tenant: "cpo2"}, store.HistogramIssuance, t0, 5*time.Second, 2); err != nil || fmt.Sprint(h) != "map[a:[2 3]]" {
		t.Errorf("one tenant's issuance histogram %v, %v", h, err)
	}
	if _, err := s.Histogram(ctx, store.Filter{}, "der", t0, time.Second, 1); err == nil {
		t.Error("a histogram of another column was made")
	}

	// Keyset pages walk the same order as one listing, ties on created_at
	// (or not_after) broken by issuer and serial (a/a00 and b/a00 share t0).
	for _, byExpiry := range []bool{false, true} {
		var walked []string
		f := store.Filter{Limit: 4, ByExpiry: byExpiry}
		for {
			page, err := s.Certificates(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				walked = append(walked, c.Issuer+"/"+c.Serial)
			}
			if len(page) < 4 {
				break
			}
			last := page[len(page)-1]
			f.After = &store.Cursor{Time: last.CreatedAt, Issuer: last.Issuer, Serial: last.Serial}
			if byExpiry {
				f.After.Time = last.NotAfter
			}
		}
		all, _ := s.Certificates(ctx, store.Filter{ByExpiry: byExpiry})
		var want []string
		for i, c := range all {
			want = append(want, c.Issuer+"/"+c.Serial)
			if byExpiry && i > 0 && c.NotAfter.Before(all[i-1].NotAfter) {
				t.Errorf("by expiry: %s expires before %s", want[i], want[i-1])
			}
		}
		if fmt.Sprint(walked) != fmt.Sprint(want) {
			t.Errorf("keyset pages (by expiry %v) %v, want %v", byExpiry, walked, want)
		}
	}
}

func testRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	live, old := cert("a", "01"), cert("a", "02")
	old.NotAfter = t0.Add(-time.Hour)
	for _, c := range []*store.Certificate{live, old, cert("a", "03")} {
		if err := s.PutCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(time.Minute)
	got, err := s.Revoke(ctx, "a", "01", 1, at)
	if err != nil || !got.Revoked() || !got.RevokedAt.Equal(at) || got.Reason != 1 {
		t.Fatalf("Revoke = %+v, %v", got, err)
	}
	if _, err := s.Revoke(ctx, "a", "01", 4, at); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("second Revoke = %v, want ErrAlreadyRevoked", err)
	}
	if _, err := s.Revoke(ctx, "a", "99", 1, at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Revoke(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Revoke(ctx, "a", "02", 0, at); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Revoked(ctx, "a", t0)
	if err != nil || len(rev) != 1 || rev[0].Serial != "01" {
		t.Errorf("Revoked = %v, %v; want only 01 (02 has expired)", rev, err)
	}
	again, _ := s.Certificate(ctx, "a", "01")
	if again.Reason != 1 {
		t.Errorf("reason changed by the refused second revocation: %d", again.Reason)
	}
}

func testCRLNumbers(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	mustCA(t, s, "b")
	for want := int64(1); want <= 3; want++ {
		if n, err := s.NextCRLNumber(ctx, "a"); err != nil || n != want {
			t.Fatalf("NextCRLNumber(a) = %d, %v; want %d", n, err, want)
		}
	}
	if n, _ := s.NextCRLNumber(ctx, "b"); n != 1 {
		t.Errorf("NextCRLNumber(b) = %d, want 1: numbers are per issuer", n)
	}
	if _, err := s.NextCRLNumber(ctx, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("NextCRLNumber(zz) = %v", err)
	}
}

func testRestart(t *testing.T, s store.Store, reopen func(*testing.T, store.Store) store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	if err := s.PutCertificate(ctx, cert("a", "01")); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.NextCRLNumber(ctx, "a"); n != 1 {
		t.Fatal("first CRL number not 1")
	}
	if _, err := s.Revoke(ctx, "a", "01", 1, t0); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	c, err := s.Certificate(ctx, "a", "01")
	if err != nil || !c.Revoked() {
		t.Fatalf("after restart: %+v, %v", c, err)
	}
	if n, _ := s.NextCRLNumber(ctx, "a"); n != 2 {
		t.Errorf("CRL number after restart = %d, want 2", n)
	}
}

func testLive(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	mustCA(t, s, "b")
	for i := range 25 {
		c := cert("a", fmt.Sprintf("%02x", i+1))
		if i%5 == 0 {
			c.NotAfter = t0.Add(-time.Hour) // expired
		}
		if err := s.PutCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutCertificate(ctx, cert("b", "01")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, "a", "02", 1, t0); err != nil {
		t.Fatal(err)
	}
	var all []store.CertStatus
	for after := ""; ; {
		page, err := s.Live(ctx, "a", t0, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("page of %d", len(page))
		}
		all = append(all, page...)
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1].Serial
	}
	if len(all) != 20 {
		t.Fatalf("%d live certificates, want 20 (25 minus 5 expired)", len(all))
	}
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.Serial] {
			t.Fatalf("serial %s twice", c.Serial)
		}
		seen[c.Serial] = true
		if c.Profile != policies.ISO2SECC {
			t.Errorf("%s: profile %q", c.Serial, c.Profile)
		}
		if (c.Serial == "02") != !c.RevokedAt.IsZero() || (c.Serial == "02" && c.Reason != 1) {
			t.Errorf("%s: revoked %v reason %d", c.Serial, c.RevokedAt, c.Reason)
		}
	}
}

func testRevocationFeed(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	mustCA(t, s, "b")
	if n, err := s.RevocationCursor(ctx); err != nil || n != 0 {
		t.Fatalf("cursor of an empty store = %d, %v", n, err)
	}
	for i := range 5 {
		for _, issuer := range []string{"a", "b"} {
			if err := s.PutCertificate(ctx, cert(issuer, fmt.Sprintf("%02x", i+1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	order := [][2]string{{"b", "03"}, {"a", "01"}, {"a", "05"}}
	for _, r := range order {
		if _, err := s.Revoke(ctx, r[0], r[1], 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	// A refused second revocation does not enter the feed.
	s.Revoke(ctx, "a", "01", 4, t0)
	cursor, err := s.RevocationCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	feed, err := s.Revocations(ctx, 0, 2)
	if err != nil || len(feed) != 2 {
		t.Fatalf("first page %v, %v", feed, err)
	}
	more, err := s.Revocations(ctx, feed[1].Seq, 10)
	if err != nil {
		t.Fatal(err)
	}
	feed = append(feed, more...)
	if len(feed) != 3 || feed[2].Seq != cursor {
		t.Fatalf("feed %v, cursor %d", feed, cursor)
	}
	for i, r := range feed {
		if r.Issuer != order[i][0] || r.Serial != order[i][1] || (i > 0 && r.Seq <= feed[i-1].Seq) {
			t.Errorf("feed[%d] = %+v, want %v in increasing order", i, r, order[i])
		}
	}
	if rest, _ := s.Revocations(ctx, cursor, 10); len(rest) != 0 {
		t.Errorf("after the cursor: %v", rest)
	}
}

// testBatchedPuts issues in rounds of concurrent distinct certificates, so
// that batches form (the stores then insert several rows per statement),
// with an unknown issuer and a duplicate among the later rounds: every
// good certificate is stored and audited once, in an unbroken chain.
func testBatchedPuts(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "a")
	const rounds, each = 4, 40
	var stored int
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, each)
		for i := range each {
			wg.Go(func() {
				c := cert("a", fmt.Sprintf("%02x%02x", round, i))
				switch {
				case round >= 2 && i == each/2:
					c.Issuer = "ghost"
				case round == 3 && i == each/2+1:
					c.Serial = "0000" // round 0 stored it
				}
				errs[i] = s.PutCertificate(ctx, c)
			})
		}
		wg.Wait()
		for i, err := range errs {
			switch {
			case round >= 2 && i == each/2:
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("round %d: unknown issuer: %v, want ErrNotFound", round, err)
				}
			case round == 3 && i == each/2+1:
				if !errors.Is(err, store.ErrDuplicateSerial) {
					t.Errorf("round %d: duplicate: %v, want ErrDuplicateSerial", round, err)
				}
			case err != nil:
				t.Errorf("round %d, certificate %d: %v", round, i, err)
			default:
				stored++
			}
		}
	}
	all, err := s.Certificates(ctx, store.Filter{Issuer: "a", Limit: 1000})
	if err != nil || len(all) != stored {
		t.Errorf("Certificates = %d, %v; want %d", len(all), err, stored)
	}
	var issued int
	_, _, err = store.WalkAudit(ctx, s, 50, func(e *store.AuditEntry) {
		if e.Action == store.AuditCertificateIssue {
			issued++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if issued != stored {
		t.Errorf("%d issuances audited, %d stored", issued, stored)
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "tester")
	if err := s.CreateTenant(ctx, &policies.Tenant{Name: "cpo1", Kind: policies.TenantCPO}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCA(ctx, &store.CA{Name: "a", Profile: policies.ISO2CPOSub2, KeyURI: "pkcs11:token=t;object=a?pin-value=1234", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCACertificate(ctx, "a", []byte{0x30, 0}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.PutCertificate(ctx, cert("a", fmt.Sprintf("%02x", i%10+1))) // 10 duplicates
		}()
	}
	wg.Wait()
	if _, err := s.Revoke(ctx, "a", "01", 1, t0); err != nil {
		t.Fatal(err)
	}
	s.Revoke(ctx, "a", "01", 4, t0)                                               // refused: not audited
	s.CreateTenant(ctx, &policies.Tenant{Name: "cpo1", Kind: policies.TenantCPO}) // refused
	if err := s.AppendAudit(ctx, &store.AuditEntry{Actor: "pncd", Action: "token.create", Object: "cpo1", Detail: `{"role":"operator"}`}); err != nil {
		t.Fatal(err)
	}

	// Pages of 4: the chain is checked across page boundaries too.
	var all []*store.AuditEntry
	if _, _, err := store.WalkAudit(ctx, s, 4, func(e *store.AuditEntry) { all = append(all, e) }); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range all {
		count[e.Action]++
		if e.Actor != "tester" && e.Action != "token.create" {
			t.Errorf("entry %d actor %q", e.Seq, e.Actor)
		}
		if strings.Contains(e.Detail, "1234") {
			t.Errorf("entry %d leaks a PIN: %s", e.Seq, e.Detail)
		}
	}
	want := map[string]int{store.AuditTenantCreate: 1, store.AuditCACreate: 1, store.AuditCACertificate: 1,
		store.AuditCertificateIssue: 10, store.AuditCertificateRevoke: 1, "token.create": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("audit actions %v, want %v", count, want)
	}
	if len(all) != 15 || all[len(all)-1].Seq != 15 {
		t.Errorf("%d entries, last seq %d", len(all), all[len(all)-1].Seq)
	}

	// By action, in pages of 2: the same entries as the whole log's.
	var seqs, want2 []int64
	for _, e := range all {
		if e.Action == "token.create" || e.Action == store.AuditCertificateRevoke || e.Action == store.AuditTenantCreate {
			want2 = append(want2, e.Seq)
		}
	}
	for after := int64(0); ; {
		page, err := s.AuditActions(ctx, []string{"token.create", store.AuditCertificateRevoke, store.AuditTenantCreate}, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seqs = append(seqs, e.Seq)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Seq
	}
	if fmt.Sprint(seqs) != fmt.Sprint(want2) {
		t.Errorf("AuditActions: seqs %v, want %v", seqs, want2)
	}
	if es, err := s.AuditActions(ctx, nil, 0, 10); err != nil || len(es) != 0 {
		t.Errorf("AuditActions(nil) = %d entries, %v", len(es), err)
	}
}

func testStations(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "test")
	for _, name := range []string{"cpo1", "cpo2"} {
		if err := s.CreateTenant(ctx, &policies.Tenant{Name: name, Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}}); err != nil {
			t.Fatal(err)
		}
	}
	in := &store.Station{ID: "CS-0001", Tenant: "cpo1", SerialNumber: "SN0001", EVSEIDs: []string{"DEABCE0001", "DEABCE0002"},
		SECCIDs: []string{"DEABCS0001A"}, OCPPVersion: "2.0.1", EXIResponseLimit: 7500, CreatedAt: t0, UpdatedAt: t0}
	if err := s.PutStation(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Station(ctx, "CS-0001")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(in) {
		t.Errorf("Station = %+v, want %+v", got, in)
	}
	// Last seen: only ever later, and an unknown station is no error.
	for _, at := range []time.Time{t0.Add(time.Hour), t0} {
		if err := s.TouchStation(ctx, "CS-0001", at); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TouchStation(ctx, "CS-none", t0); err != nil {
		t.Errorf("touching an unknown station: %v", err)
	}
	if got, _ := s.Station(ctx, "CS-0001"); !got.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("last seen %v, want %v", got.LastSeen, t0.Add(time.Hour))
	}
	// Updating keeps the creation time; moving to another tenant is refused.
	up := *in
	up.EVSEIDs, up.OCPPVersion, up.EXIResponseLimit, up.CreatedAt, up.UpdatedAt = nil, "2.1", 0, t0.Add(time.Hour), t0.Add(time.Hour)
	if err := s.PutStation(ctx, &up); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Station(ctx, "CS-0001")
	if got.EVSEIDs != nil || got.OCPPVersion != "2.1" || got.EXIResponseLimit != 0 || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after update: %+v", got)
	}
	moved := up
	moved.Tenant = "cpo2"
	if err := s.PutStation(ctx, &moved); !errors.Is(err, store.ErrExists) {
		t.Errorf("move to cpo2: %v, want ErrExists", err)
	}
	if err := s.PutStation(ctx, &store.Station{ID: "CS-X", Tenant: "nobody", OCPPVersion: "1.6", CreatedAt: t0, UpdatedAt: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown tenant: %v, want ErrNotFound", err)
	}
	if err := s.PutStation(ctx, &store.Station{ID: "CS-0002", Tenant: "cpo2", OCPPVersion: "1.6", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for tenant, want := range map[string]int{"": 2, "cpo1": 1, "cpo2": 1, "cpo3": 0} {
		list, err := s.ListStations(ctx, tenant)
		if err != nil || len(list) != want {
			t.Errorf("ListStations(%q) = %d, %v; want %d", tenant, len(list), err, want)
		}
	}
	if err := s.DeleteStation(ctx, "CS-0001"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Station(ctx, "CS-0001"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.DeleteStation(ctx, "CS-0001"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	log, err := s.AuditLog(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		if e.Action == store.AuditStationPut || e.Action == store.AuditStationDelete {
			actions = append(actions, e.Action+" "+e.Object)
		}
	}
	if want := "[station.put CS-0001 station.put CS-0001 station.put CS-0002 station.delete CS-0001]"; fmt.Sprint(actions) != want {
		t.Errorf("audit %v, want %s", actions, want)
	}
}

func testStationCalls(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateTenant(ctx, &policies.Tenant{Name: "cpo1", Kind: policies.TenantCPO}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStation(ctx, &store.Station{ID: "CS-1", Tenant: "cpo1", OCPPVersion: "2.0.1", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStationCall(ctx, &store.StationCall{Station: "CS-9", ID: "x", Action: "A", Dialect: "2.0.1", Payload: []byte("{}"), Created: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("call for an unknown station: %v", err)
	}
	for i := range store.MaxStationCalls + 3 {
		c := &store.StationCall{Station: "CS-1", ID: fmt.Sprintf("id-%02d", i), Action: "CertificateSigned", Dialect: "2.0.1",
			Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), Created: t0.Add(time.Duration(i) * time.Second)}
		if err := s.PutStationCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	calls, err := s.StationCalls(ctx, "CS-1")
	if err != nil || len(calls) != store.MaxStationCalls || calls[0].ID != "id-03" || string(calls[0].Payload) != `{"n":3}` || !calls[0].Created.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("StationCalls: %v, %d calls, first %+v", err, len(calls), calls[0])
	}
	c, err := s.StationCall(ctx, "CS-1", "id-05")
	if err != nil || c.Action != "CertificateSigned" || c.Dialect != "2.0.1" {
		t.Fatalf("StationCall: %v %+v", err, c)
	}

	actx := store.WithActor(ctx, "station:CS-1")
	root := store.InstalledCertificate{Type: "V2GRootCertificate", HashAlgorithm: "SHA256", IssuerNameHash: "aa", IssuerKeyHash: "bb", SerialNumber: "1", SeenAt: t0}
	mo := store.InstalledCertificate{Type: "MORootCertificate", HashAlgorithm: "SHA256", IssuerNameHash: "cc", IssuerKeyHash: "dd", SerialNumber: "2", SeenAt: t0}
	if err := s.FinishStationCall(actx, "CS-1", "id-05", store.StationCallResult{ReplaceTypes: []string{"V2GRootCertificate", "MORootCertificate"},
		Installed: []store.InstalledCertificate{root, mo}, Audit: []*store.AuditEntry{{Actor: "station:CS-1", Action: "station.test", Object: "CS-1", Detail: "{}"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StationCall(ctx, "CS-1", "id-05"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finished call still pending: %v", err)
	}
	other := root
	other.SerialNumber, other.SeenAt = "3", t0.Add(time.Hour)
	if err := s.FinishStationCall(actx, "CS-1", "", store.StationCallResult{Installed: []store.InstalledCertificate{other}}); err != nil {
		t.Fatal(err)
	}
	// Replacing a type with nothing, and removing one certificate.
	if err := s.FinishStationCall(actx, "CS-1", "id-06", store.StationCallResult{ReplaceTypes: []string{"MORootCertificate"},
		Removed: []store.InstalledCertificate{{IssuerKeyHash: "bb", SerialNumber: "1"}}}); err != nil {
		t.Fatal(err)
	}
	if log, _ := s.AuditLog(ctx, 0, 1000); log[len(log)-1].Action != "station.test" {
		t.Errorf("audit entry of a finished call missing: %+v", log[len(log)-1])
	}
	if err := s.FinishStationCall(actx, "CS-9", "", store.StationCallResult{Installed: []store.InstalledCertificate{other}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("certificates of an unknown station: %v", err)
	}
	got, err := s.InstalledCertificates(ctx, "CS-1")
	if err != nil || len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(other) {
		t.Errorf("InstalledCertificates: %v %+v, want [%+v]", err, got, other)
	}
	// Deleting the station takes its calls and certificates along.
	if err := s.DeleteStation(ctx, "CS-1"); err != nil {
		t.Fatal(err)
	}
	calls, _ = s.StationCalls(ctx, "CS-1")
	got, _ = s.InstalledCertificates(ctx, "CS-1")
	if len(calls)+len(got) != 0 {
		t.Errorf("after delete: %d calls, %d certificates", len(calls), len(got))
	}
}

func testTokenRevocations(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "admin")
	now := time.Now().UTC().Truncate(time.Millisecond)
	for id, exp := range map[string]time.Time{"a": now.Add(time.Hour), "b": now.Add(2 * time.Hour), "old": now.Add(-time.Hour)} {
		if err := s.RevokeToken(ctx, id, exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeToken(ctx, "a", now.Add(time.Hour)); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	ids, err := s.RevokedTokens(ctx, now)
	slices.Sort(ids)
	if err != nil || fmt.Sprint(ids) != "[a b]" {
		t.Errorf("RevokedTokens(now) = %v, %v", ids, err)
	}
	ids, _ = s.RevokedTokens(ctx, now.Add(90*time.Minute))
	if fmt.Sprint(ids) != "[b]" {
		t.Errorf("RevokedTokens(+90m) = %v", ids)
	}
	log, _ := s.AuditLog(ctx, 0, 100)
	n := 0
	for _, e := range log {
		if e.Action == store.AuditTokenRevoke {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d token.revoke audit entries, want 4", n)
	}
}

func testContracts(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "emsp")
	for _, name := range []string{"emsp1", "emsp2"} {
		if err := s.CreateTenant(ctx, &policies.Tenant{Name: name, Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
			t.Fatal(err)
		}
	}
	a := &store.Contract{EMAID: "DE8AAC000000001", Tenant: "emsp1", PCID: "WMI00000000000001", Default: true, CreatedAt: t0}
	b := &store.Contract{EMAID: "DE8AAC000000002", Tenant: "emsp1", PCID: "WMI00000000000001", ValidUntil: t0.Add(365 * 24 * time.Hour), CreatedAt: t0}
	for _, c := range []*store.Contract{a, b} {
		if err := s.PutContract(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Contract(ctx, b.EMAID)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(b) {
		t.Errorf("Contract = %+v %v, want %+v", got, err, b)
	}
	// Making b the default takes it from a.
	b2 := *b
	b2.Default, b2.CreatedAt = true, t0.Add(time.Hour)
	if err := s.PutContract(ctx, &b2); err != nil {
		t.Fatal(err)
	}
	list, _ := s.ListContracts(ctx, "", "WMI00000000000001")
	if len(list) != 2 || list[0].Default || !list[1].Default || !list[1].CreatedAt.Equal(t0) {
		t.Errorf("after the default moved: %+v %+v", list[0], list[1])
	}
	moved := *a
	moved.Tenant = "emsp2"
	if err := s.PutContract(ctx, &moved); !errors.Is(err, store.ErrExists) {
		t.Errorf("another tenant's contract: %v", err)
	}
	if err := s.PutContract(ctx, &store.Contract{EMAID: "DE8AAC000000003", Tenant: "nobody", PCID: "X", CreatedAt: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
	c, err := s.CancelContract(ctx, b.EMAID, t0.Add(2*time.Hour))
	if err != nil || !c.Cancelled() || c.Default {
		t.Fatalf("CancelContract: %+v %v", c, err)
	}
	if c, err := s.CancelContract(ctx, b.EMAID, t0.Add(3*time.Hour)); err != nil || !c.CancelledAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("second cancel: %+v %v", c, err)
	}
	if err := s.PutContract(ctx, b); !errors.Is(err, store.ErrExists) {
		t.Errorf("reviving a cancelled contract: %v", err)
	}
	if _, err := s.CancelContract(ctx, "DE8AAC000000009", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancel unknown: %v", err)
	}
	for tenant, want := range map[string]int{"emsp1": 2, "emsp2": 0, "": 2} {
		if list, err := s.ListContracts(ctx, tenant, ""); err != nil || len(list) != want {
			t.Errorf("ListContracts(%q) = %d %v, want %d", tenant, len(list), err, want)
		}
	}
}

func testProvisioning(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "oem")
	for _, name := range []string{"oem1", "oem2"} {
		if err := s.CreateTenant(ctx, &policies.Tenant{Name: name, Kind: policies.TenantOEM}); err != nil {
			t.Fatal(err)
		}
	}
	p := &store.ProvisioningCertificate{PCID: "WMI00000000000001", Tenant: "oem1", DER: []byte("leaf"), Chain: []byte("subs"), CreatedAt: t0}
	if err := s.PutProvisioningCertificate(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.ProvisioningCertificate(ctx, p.PCID)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(p) {
		t.Errorf("ProvisioningCertificate = %+v %v, want %+v", got, err, p)
	}
	p2 := *p
	p2.DER, p2.CreatedAt = []byte("renewed"), t0.Add(time.Hour)
	if err := s.PutProvisioningCertificate(ctx, &p2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ProvisioningCertificate(ctx, p.PCID); string(got.DER) != "renewed" {
		t.Errorf("after replace: %s", got.DER)
	}
	other := p2
	other.Tenant = "oem2"
	if err := s.PutProvisioningCertificate(ctx, &other); !errors.Is(err, store.ErrExists) {
		t.Errorf("another OEM's PCID: %v", err)
	}
	if err := s.PutProvisioningCertificate(ctx, &store.ProvisioningCertificate{PCID: "X", Tenant: "nobody", DER: []byte("x"), CreatedAt: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
	for tenant, want := range map[string]int{"": 1, "oem1": 1, "oem2": 0} {
		if list, err := s.ListProvisioningCertificates(ctx, tenant); err != nil || len(list) != want {
			t.Errorf("List(%q) = %d %v", tenant, len(list), err)
		}
	}
	if err := s.DeleteProvisioningCertificate(ctx, p.PCID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProvisioningCertificate(ctx, p.PCID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	log, _ := s.AuditLog(ctx, 0, 1000)
	n := 0
	for _, e := range log {
		if e.Action == store.AuditProvisioningPut || e.Action == store.AuditProvisioningDelete {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d provisioning audit entries, want 3", n)
	}
}

func testOEMSubCAs(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "oem")
	for _, name := range []string{"oem1", "oem2"} {
		if err := s.CreateTenant(ctx, &policies.Tenant{Name: name, Kind: policies.TenantOEM}); err != nil {
			t.Fatal(err)
		}
	}
	c := &store.OEMSubCA{SHA256: "ab01", Tenant: "oem1", DER: []byte("sub-ca"), CreatedAt: t0}
	if err := s.PutOEMSubCA(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOEMSubCA(ctx, c); err != nil { // again: nothing changes
		t.Fatal(err)
	}
	other := *c
	other.Tenant = "oem2"
	if err := s.PutOEMSubCA(ctx, &other); !errors.Is(err, store.ErrExists) {
		t.Errorf("another OEM's sub-CA: %v", err)
	}
	if err := s.PutOEMSubCA(ctx, &store.OEMSubCA{SHA256: "cd02", Tenant: "nobody", DER: []byte("x"), CreatedAt: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
	list, err := s.OEMSubCAs(ctx, "")
	if err != nil || len(list) != 1 || fmt.Sprint(list[0]) != fmt.Sprint(c) {
		t.Errorf("OEMSubCAs = %+v %v, want %+v", list, err, c)
	}
	if list, _ := s.OEMSubCAs(ctx, "oem2"); len(list) != 0 {
		t.Errorf("oem2 sees %d", len(list))
	}
	if err := s.DeleteOEMSubCA(ctx, c.SHA256); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOEMSubCA(ctx, c.SHA256); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	log, _ := s.AuditLog(ctx, 0, 1000)
	n := 0
	for _, e := range log {
		if e.Action == store.AuditOEMSubCAPut || e.Action == store.AuditOEMSubCADelete {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d sub-CA audit entries, want 2", n)
	}
}

func testDeposits(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "emsp")
	for _, name := range []string{"emsp1", "emsp2"} {
		if err := s.CreateTenant(ctx, &policies.Tenant{Name: name, Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
			t.Fatal(err)
		}
	}
	d := &store.ContractDeposit{PCID: "WMI00000000000001", Tenant: "emsp1", EMAID: "DE8AAC12345678D", Chain: []byte("chain"),
		EncryptedKey: []byte("key"), DHPublicKey: []byte("dh"), CreatedAt: t0}
	if err := s.PutContractDeposit(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.ContractDeposit(ctx, d.PCID)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(d) {
		t.Errorf("ContractDeposit = %+v %v, want %+v", got, err, d)
	}
	d2 := *d
	d2.EncryptedKey = []byte("new key")
	if err := s.PutContractDeposit(ctx, &d2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ContractDeposit(ctx, d.PCID); string(got.EncryptedKey) != "new key" {
		t.Errorf("after replace: %s", got.EncryptedKey)
	}
	other := d2
	other.Tenant = "emsp2"
	if err := s.PutContractDeposit(ctx, &other); !errors.Is(err, store.ErrExists) {
		t.Errorf("another eMSP's deposit: %v", err)
	}
	for tenant, want := range map[string]int{"": 1, "emsp1": 1, "emsp2": 0} {
		if list, err := s.ListContractDeposits(ctx, tenant); err != nil || len(list) != want {
			t.Errorf("List(%q) = %d %v", tenant, len(list), err)
		}
	}
	if err := s.DeleteContractDeposit(ctx, d.PCID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ContractDeposit(ctx, d.PCID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.DeleteContractDeposit(ctx, d.PCID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func testOAuthClients(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "admin")
	if err := s.CreateTenant(ctx, &policies.Tenant{Name: "cpo1", Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}}); err != nil {
		t.Fatal(err)
	}
	c := &store.OAuthClient{ID: "csms-1", Tenant: "cpo1", Role: "operator", SecretSHA256: []byte("hash"), CreatedAt: t0}
	if err := s.CreateOAuthClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthClient(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Errorf("same ID again: %v", err)
	}
	got, err := s.OAuthClient(ctx, c.ID)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(c) {
		t.Errorf("OAuthClient = %+v %v, want %+v", got, err, c)
	}
	if _, err := s.OAuthClient(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if list, err := s.ListOAuthClients(ctx, "cpo1"); err != nil || len(list) != 1 {
		t.Errorf("list: %d %v", len(list), err)
	}
	if err := s.RevokeOAuthClient(ctx, c.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.OAuthClient(ctx, c.ID); !got.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("revoked at %v", got.RevokedAt)
	}
	if err := s.RevokeOAuthClient(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
}

func testTrustAnchors(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "admin")
	a := &store.TrustAnchor{Use: "V2GRootCertificate", SHA256: "ab12", DER: []byte{0x30, 1, 2}, Source: "admin", AddedAt: t0}
	if err := s.AddTrustAnchor(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTrustAnchor(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Errorf("same anchor again: %v", err)
	}
	b := *a
	b.Use = "MORootCertificate" // the same root for another use is another anchor
	if err := s.AddTrustAnchor(ctx, &b); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListTrustAnchors(ctx)
	if err != nil || len(list) != 2 || fmt.Sprint(list[1]) != fmt.Sprint(a) {
		t.Fatalf("list = %v %v", list, err)
	}
	if err := s.RemoveTrustAnchor(ctx, a.Use, a.SHA256); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveTrustAnchor(ctx, a.Use, a.SHA256); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if list, _ := s.ListTrustAnchors(ctx); len(list) != 1 || list[0].Use != b.Use {
		t.Errorf("after remove: %v", list)
	}
}

func testEventEndpoints(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "admin")
	e := &store.EventEndpoint{ID: "ep-1", Tenant: "oem1", URL: "https://oem.example/hook", Description: "d",
		Events: []string{"oem.contract.created", "oem.contract.deleted"}, WMIs: []string{"WP0"}, Secret: "s3cret", Enabled: true, CreatedAt: t0, UpdatedAt: t0}
	if err := s.PutEventEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.EventEndpoint(ctx, e.ID)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(e) {
		t.Errorf("EventEndpoint = %+v %v, want %+v", got, err, e)
	}
	e.URL, e.WMIs, e.Enabled, e.UpdatedAt = "https://oem.example/hook2", nil, false, t0.Add(time.Hour)
	if err := s.PutEventEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.EventEndpoint(ctx, e.ID); fmt.Sprint(got) != fmt.Sprint(e) {
		t.Errorf("after update = %+v, want %+v", got, e)
	}
	other := *e
	other.Tenant = "oem2"
	if err := s.PutEventEndpoint(ctx, &other); !errors.Is(err, store.ErrExists) {
		t.Errorf("another tenant's ID: %v", err)
	}
	for tenant, want := range map[string]int{"": 1, "oem1": 1, "oem2": 0} {
		if list, err := s.ListEventEndpoints(ctx, tenant); err != nil || len(list) != want {
			t.Errorf("List(%q) = %d %v", tenant, len(list), err)
		}
	}
	if err := s.DeleteEventEndpoint(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EventEndpoint(ctx, e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.DeleteEventEndpoint(ctx, e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// testImportedCRLs: an imported CRL replaces the one before, is audited
// in the same transaction, and belongs to a CA of the store.
func testImportedCRLs(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCA(t, s, "v2g-root")
	if _, err := s.ImportedCRL(ctx, "v2g-root"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ImportedCRL before an import: %v", err)
	}
	for i, der := range [][]byte{{0x30, 0x01}, {0x30, 0x02}} {
		audit := &store.AuditEntry{Actor: "tester", Action: "crl.import", Object: "v2g-root", Detail: fmt.Sprintf(`{"n":%d}`, i)}
		if err := s.PutImportedCRL(ctx, "v2g-root", der, audit); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ImportedCRL(ctx, "v2g-root"); err != nil || !bytes.Equal(got, der) {
			t.Errorf("ImportedCRL = %x, %v; want %x", got, err, der)
		}
	}
	if err := s.PutImportedCRL(ctx, "no-such-ca", []byte{0x30}, &store.AuditEntry{Actor: "tester", Action: "crl.import"}); err == nil {
		t.Error("a CRL of an unknown CA was kept")
	}
	entries, err := s.AuditLog(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	imports := 0
	for _, e := range entries {
		if e.Action == "crl.import" {
			imports++
		}
	}
	if imports != 2 {
		t.Errorf("%d crl.import audit entries, want 2", imports)
	}
}

func testInstallations(t *testing.T, s store.Store) {
	ctx := context.Background()
	recs := []*store.InstallationRecord{
		{At: t0, Station: "CS-1", Action: "Install", PCID: "WMI00000000000001", EMAID: "DE8AAC12345678D", EMSP: "emsp1", OEM: "oem1",
			ResponseCode: "OK", Source: "issued", Size: 7412, Limit: 7500},
		{At: t0.Add(time.Second), Station: "CS-1", Action: "Install", PCID: "WMI00000000000002", EMSP: "emsp2",
			ResponseCode: "FAILED", Reason: "too_large", Limit: 5600},
		{At: t0.Add(2 * time.Second), Action: "Install", ResponseCode: "FAILED_CertChainError", Reason: "cert_chain"},
		{At: t0.Add(3 * time.Second), Station: "CS-2", Action: "Update", PCID: "WMI00000000000001", EMAID: "DE8AAC12345678D", EMSP: "emsp1",
			ResponseCode: "OK", Source: "repeated", Size: 7412},
	}
	for _, r := range recs {
		if err := s.PutInstallation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("Seq %d after %d", recs[i].Seq, recs[i-1].Seq)
		}
	}
	got, err := s.ListInstallations(ctx, store.InstallationFilter{Limit: 10})
	if err != nil || len(got) != 4 || fmt.Sprint(got[3]) != fmt.Sprint(recs[0]) || got[0].Seq != recs[3].Seq {
		t.Fatalf("all = %v %v", got, err)
	}
	for _, tt := range []struct {
		f    store.InstallationFilter
		want []int // indexes of recs, newest first
	}{
		{store.InstallationFilter{Tenant: "emsp1", Limit: 10}, []int{3, 0}},
		{store.InstallationFilter{Tenant: "oem1", Limit: 10}, []int{0}},
		{store.InstallationFilter{Tenant: "emsp2", Limit: 10}, []int{1}},
		{store.InstallationFilter{Tenant: "nobody", Limit: 10}, nil},
		{store.InstallationFilter{PCID: "WMI00000000000001", Limit: 10}, []int{3, 0}},
		{store.InstallationFilter{EMAID: "DE8AAC12345678D", Tenant: "emsp1", Limit: 1}, []int{3}},
		{store.InstallationFilter{Before: recs[3].Seq, Limit: 2}, []int{2, 1}},
	} {
		got, err := s.ListInstallations(ctx, tt.f)
		var seqs, want []int64
		for _, r := range got {
			seqs = append(seqs, r.Seq)
		}
		for _, i := range tt.want {
			want = append(want, recs[i].Seq)
		}
		if err != nil || !slices.Equal(seqs, want) {
			t.Errorf("%+v: %v %v, want %v", tt.f, seqs, err, want)
		}
	}
}
