package ocsp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// TestRollover: CPO Sub-CA 2 is renewed with its key (taking over at T1)
// and then rekeyed (at T2). Issuance follows the switch times; the
// certificates of all three CAs verify and get OCSP answers during the
// overlap, including the old and the renewed CA, which a CertID cannot
// tell apart; a revocation under one does not touch the other; every
// one of them publishes its CRL.
func TestRollover(t *testing.T) {
	ctx := store.WithActor(context.Background(), "test")
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(to time.Time) { mu.Lock(); now = to; mu.Unlock() }

	d, err := datadir.Open(ctx, filepath.Join(t.TempDir(), "data"), ca.Options{Now: clock, PublicURL: "http://pki.stadtwerke-musterstadt.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler("/ocsp"))
	defer srv.Close()

	issue := func(cn string) *ca.Issued {
		t.Helper()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name(cn, "", "", "")}, key)
		iss, err := d.CA.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})})
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	old, _ := d.CA.Authority("cpo-sub2")
	rec, err := d.Store.CA(ctx, "cpo-sub2")
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := now.Add(24*time.Hour), now.Add(48*time.Hour)
	subj := old.Cert.Subject
	for _, cfg := range []ca.CAConfig{
		{Name: "cpo-sub2-renewed", KeyURI: rec.KeyURI, IssueFrom: t1},
		{Name: "cpo-sub2-rekeyed", IssueFrom: t2},
	} {
		cfg.Profile, cfg.Parent = policies.ISO2CPOSub2, "cpo-sub1"
		cfg.CommonName, cfg.Organization, cfg.Country = subj.CommonName, subj.Organization[0], subj.Country[0]
		if _, err := d.CA.CreateCA(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}

	var leaves []*ca.Issued
	for i, step := range []struct {
		at   time.Time
		want string
	}{{now, "cpo-sub2"}, {t1.Add(time.Minute), "cpo-sub2-renewed"}, {t2.Add(time.Minute), "cpo-sub2-rekeyed"}} {
		advance(step.at)
		iss := issue(fmt.Sprintf("DE*SWM*E1*%d", i+1))
		if iss.Record.Issuer != step.want {
			t.Fatalf("at %s issued by %s, want %s", step.at, iss.Record.Issuer, step.want)
		}
		leaves = append(leaves, iss)
	}

	root, _ := d.CA.Authority("v2g-root")
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	status := func(iss *ca.Issued) int {
		t.Helper()
		// A client of its own each time: its cache would keep the answer
		// from before a revocation.
		r, err := (&ocsp.Client{Now: clock}).Check(ctx, iss.Cert(), iss.Chain[0], srv.URL+"/ocsp")
		if err != nil {
			t.Fatalf("%s: %v", iss.Record.Issuer, err)
		}
		return r.Status
	}
	for _, iss := range leaves {
		inter := x509.NewCertPool()
		for _, c := range iss.Chain[:len(iss.Chain)-1] {
			inter.AddCert(c)
		}
		if _, err := iss.Cert().Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: clock(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("certificate of %s does not verify: %v", iss.Record.Issuer, err)
		}
		if got := status(iss); got != ocsp.Good {
			t.Errorf("certificate of %s: OCSP status %d, want good", iss.Record.Issuer, got)
		}
		if _, err := d.CA.CurrentCRL(ctx, iss.Record.Issuer); err != nil {
			t.Errorf("CRL of %s: %v", iss.Record.Issuer, err)
		}
	}
	// The renewed CA shares the old one's CertID: its revocation shows,
	// and the old CA's certificate stays good.
	if _, err := d.CA.Revoke(ctx, "cpo-sub2-renewed", leaves[1].Record.Serial, 1); err != nil {
		t.Fatal(err)
	}
	r.Invalidate("cpo-sub2", leaves[1].Record.Serial)
	if got := status(leaves[1]); got != ocsp.Revoked {
		t.Errorf("revoked certificate of the renewed CA: OCSP status %d", got)
	}
	if got := status(leaves[0]); got != ocsp.Good {
		t.Errorf("certificate of the old CA after a revocation under the renewed one: OCSP status %d", got)
	}
}
