package testcerts

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/testcerts/openssltest"
	"github.com/pncpki/pncpki/testcerts/zlinttest"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// generators are the test PKIs: ISO 15118-2 with OCPP, and ISO 15118-20.
var generators = []struct {
	name     string
	generate func(uint64, time.Time) (*PKI, error)
}{{"iso15118-2", Generate}, {"iso15118-20", Generate20}, {"iso15118-20-ed448", Generate20Ed448}}

func TestGenerate(t *testing.T) {
	for _, g := range generators {
		t.Run(g.name, func(t *testing.T) { testGenerate(t, g.generate) })
	}
}

func testGenerate(t *testing.T, generate func(uint64, time.Time) (*PKI, error)) {
	pki, err := generate(1, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(pki.Entries) < 15 {
		t.Fatalf("%d entries, want at least 15", len(pki.Entries))
	}
	for _, e := range pki.Entries {
		if vs := e.Profile.Check(e.Cert, 0); len(vs) > 0 {
			t.Errorf("%s does not lint clean as %s: %v", e.Name, e.Profile.Name, vs)
		}
		zlinttest.Check(t, e.Name, e.Cert.Raw)
		if e.Parent == "" {
			continue
		}
		root, chain := pki.Root(e.Name).Cert, pki.Chain(e.Name)
		if e.Ed448Key != nil {
			if _, err := ed448x509.Verify(e.Cert, []*x509.Certificate{root}, chain, now); err != nil {
				t.Errorf("%s does not verify: %v", e.Name, err)
			}
			openssltest.Verify(t, root, append([]*x509.Certificate{e.Cert}, chain[:len(chain)-1]...))
			continue
		}
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(root)
		for _, c := range chain {
			inter.AddCert(c)
		}
		if _, err := e.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s does not verify: %v", e.Name, err)
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, g := range generators {
		t.Run(g.name, func(t *testing.T) { testDeterministic(t, g.generate) })
	}
}

func testDeterministic(t *testing.T, generate func(uint64, time.Time) (*PKI, error)) {
	a, err := generate(7, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := generate(7, now.Add(time.Hour)) // same day
	c, _ := generate(8, now)
	for i := range a.Entries {
		if !bytes.Equal(a.Entries[i].Cert.Raw, b.Entries[i].Cert.Raw) {
			t.Errorf("%s differs between two runs with the same seed", a.Entries[i].Name)
		}
		if bytes.Equal(a.Entries[i].Cert.Raw, c.Entries[i].Cert.Raw) {
			t.Errorf("%s is the same for seeds 7 and 8", a.Entries[i].Name)
		}
	}
}
