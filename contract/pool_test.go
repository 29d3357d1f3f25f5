package contract

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

func newPool(t *testing.T) (*Pool, *datadir.Dir) {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Test"}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*policies.Tenant{
		{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}},
		{Name: "emsp2", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8BB"}},
		{Name: "cpo1", Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}},
	} {
		if err := d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	return &Pool{Store: d.Store, CA: d.CA}, d
}

func issueContract(t *testing.T, d *datadir.Dir, emaid string) *ca.Issued {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: emaid}}, k)
	iss, err := d.CA.Issue(context.Background(), ca.Request{Profile: policies.ISO2Contract, Tenant: "emsp1",
		CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// emaidA is DE8AAC12345678 with its check digit.
const emaidA = "DE8AAC12345678D"

func TestPool(t *testing.T) {
	p, d := newPool(t)
	ctx := context.Background()
	c, err := p.Put(ctx, "emsp1", store.Contract{EMAID: "de-8aa-c12345678", PCID: "wmi00000000000001", Default: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.EMAID != emaidA || c.PCID != "WMI00000000000001" || c.Tenant != "emsp1" {
		t.Errorf("normalised contract %+v", c)
	}
	for _, tc := range []struct {
		tenant string
		c      store.Contract
		code   string
	}{
		{"emsp1", store.Contract{EMAID: "DE8AAC123456789", PCID: "WMI00000000000001"}, CodeInvalid},  // wrong check digit
		{"emsp1", store.Contract{EMAID: emaidA, PCID: "short"}, CodeInvalid},                         // bad PCID
		{"emsp2", store.Contract{EMAID: "DE8AAC00000001", PCID: "WMI00000000000001"}, CodeForbidden}, // not its provider ID
		{"cpo1", store.Contract{EMAID: "DE8AAC00000001", PCID: "WMI00000000000001"}, CodeForbidden},  // a CPO
		{"emsp2", store.Contract{EMAID: "DE8BBC00000001", Tenant: "emsp1", PCID: "WMI1234567890123X"}, CodeForbidden},
		{"", store.Contract{EMAID: "DE8AAC00000001", PCID: "WMI00000000000001"}, CodeInvalid}, // admin without an owner
	} {
		_, err := p.Put(ctx, tc.tenant, tc.c)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%s %+v: %v, want %s", tc.tenant, tc.c, err, tc.code)
		}
	}
	if _, err := p.Get(ctx, "emsp2", emaidA); err == nil {
		t.Error("emsp2 sees emsp1's contract")
	}
	iss := issueContract(t, d, emaidA)
	other := issueContract(t, d, "DE8AAC00000001B")
	if _, err := p.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC00000001", PCID: "WMI00000000000001"}); err != nil {
		t.Fatal(err)
	}
	if cancelled, _ := p.Cancelled(ctx, "DE-8AA-C12345678-D"); cancelled {
		t.Error("active contract reported cancelled")
	}
	if _, _, err := p.Cancel(ctx, "emsp2", emaidA); err == nil {
		t.Error("emsp2 cancelled emsp1's contract")
	}
	c, revoked, err := p.Cancel(ctx, "emsp1", emaidA)
	if err != nil || !c.Cancelled() || len(revoked) != 1 || revoked[0].Serial != iss.Record.Serial || revoked[0].Reason != reasonCessationOfOperation {
		t.Fatalf("Cancel: %+v %v %+v", c, err, revoked)
	}
	if rec, _ := d.Store.Certificate(ctx, other.Record.Issuer, other.Record.Serial); rec.Revoked() {
		t.Error("another contract's certificate was revoked")
	}
	if cancelled, _ := p.Cancelled(ctx, emaidA); !cancelled {
		t.Error("cancelled contract reported active")
	}
	// Past its validity a contract counts as cancelled too.
	if _, err := p.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC00000002", PCID: "WMI00000000000001", ValidUntil: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if cancelled, _ := p.Cancelled(ctx, "DE8AAC00000002"); !cancelled {
		t.Error("expired contract reported active")
	}
	if cancelled, err := p.Cancelled(ctx, "NLXYZC00000001"); cancelled || err != nil {
		t.Errorf("foreign EMAID: %v %v", cancelled, err)
	}
}

func TestProvisioningPool(t *testing.T) {
	p, d := newPool(t)
	ctx := context.Background()
	for _, name := range []string{"oem1", "oem2"} {
		if err := d.Store.CreateTenant(ctx, &policies.Tenant{Name: name, Kind: policies.TenantOEM}); err != nil {
			t.Fatal(err)
		}
	}
	pki, err := testcerts.Generate(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	prov := pki.Get("oem-prov").Cert
	chain := append([]*x509.Certificate{prov}, pki.Chain("oem-prov")[:2]...)
	roots := []*x509.Certificate{pki.Root("oem-prov").Cert}
	rec, err := p.PutProvisioning(ctx, "oem1", "", chain, roots)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PCID != testcerts.PCID || rec.Tenant != "oem1" {
		t.Errorf("registered %+v", rec)
	}
	if got, err := p.GetProvisioning(ctx, "oem1", strings.ToLower(testcerts.PCID)); err != nil || !bytes.Equal(got.DER, prov.Raw) {
		t.Errorf("Get: %v", err)
	}
	other := []*x509.Certificate{pki.Get("v2g-root").Cert}
	for _, tc := range []struct {
		tenant string
		certs  []*x509.Certificate
		roots  []*x509.Certificate
		code   string
	}{
		{"oem2", chain, roots, CodeForbidden},                                        // another OEM's PCID
		{"emsp1", chain, roots, CodeForbidden},                                       // not an OEM
		{"oem1", []*x509.Certificate{pki.Get("secc").Cert}, nil, CodeInvalid},        // not a provisioning certificate
		{"oem1", chain, other, CodeInvalid},                                          // not under an OEM root
		{"oem1", nil, nil, CodeInvalid},                                              // nothing
		{"oem1", append(chain, pki.Root("oem-prov").Cert, prov), roots, CodeInvalid}, // too long a chain
	} {
		_, err := p.PutProvisioning(ctx, tc.tenant, "", tc.certs, tc.roots)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%s with %d certificates: %v, want %s", tc.tenant, len(tc.certs), err, tc.code)
		}
	}
	if err := p.DeleteProvisioning(ctx, "oem2", testcerts.PCID); err == nil {
		t.Error("oem2 deleted oem1's certificate")
	}
	if err := p.DeleteProvisioning(ctx, "oem1", testcerts.PCID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetProvisioning(ctx, "", testcerts.PCID); err == nil {
		t.Error("deleted certificate still there")
	}
}
