package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/est"
	"github.com/pncpki/pncpki/api/oauth"
	"github.com/pncpki/pncpki/api/opnc"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
	"github.com/pncpki/pncpki/upstream"
)

// pki is a pncpki with its data directory, contract service and anchors.
type pki struct {
	d         *datadir.Dir
	installer *contract.Installer
	anchors   ocppsec.Anchors
}

func newPKI(t *testing.T, org string, oem *testcerts.PKI) *pki {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{Organization: org}); err != nil {
		t.Fatal(err)
	}
	anchors, err := ocppsec.AnchorsFrom(ctx, d.CA, d.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := anchors.Add(ocppsec.UseOEM, oem.Get("oem-root").Cert); err != nil {
		t.Fatal(err)
	}
	cps, err := contract.LoadCPS(ctx, d.CA, "softkms:path="+datadir.CPSLeafKey, filepath.Join(d.Path, "cps-leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	in := &contract.Installer{Pool: &contract.Pool{Store: d.Store, CA: d.CA}, CPS: []contract.CPS{cps},
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return anchors[ocppsec.UseOEM], oem.Chain("oem-prov")[:2], nil
		}}
	return &pki{d: d, installer: in, anchors: anchors}
}

// ecosystem is a pncpki playing the upstream on loopback over TLS: the
// routes mount adds, its token endpoint, and the OAuth client
// "local-pncpki" of tenant with role.
type ecosystem struct {
	ts     *httptest.Server
	secret string
}

// serveEcosystem starts it; tlsConf (nil: httptest's) configures the
// server side, e.g. for client certificates.
func serveEcosystem(t *testing.T, p *pki, tenant, role string, tlsConf *tls.Config, mount func(r chi.Router, verify func(string) (*auth.Claims, error))) *ecosystem {
	t.Helper()
	key, err := auth.LoadOrCreateKey(p.d.Path)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := oauth.CreateClient(store.WithActor(context.Background(), "test"), p.d.Store, "local-pncpki", tenant, role, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	mount(r, func(tok string) (*auth.Claims, error) { return key.Verify(tok, time.Now()) })
	r.Handle(oauth.Path, &oauth.Server{Store: p.d.Store, Key: key})
	ts := httptest.NewUnstartedServer(r)
	ts.TLS = tlsConf
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &ecosystem{ts: ts, secret: secret}
}

// client is an upstream client of the ecosystem's routes under path.
func (e *ecosystem) client(protocol, path string) *upstream.Client {
	return &upstream.Client{BaseURL: e.ts.URL + path, Protocol: protocol, TokenURL: e.ts.URL + oauth.Path,
		ClientID: "local-pncpki", ClientSecret: e.secret, HTTP: e.ts.Client()}
}

// TestEcosystemFallback: a pncpki that holds no contract for a vehicle
// gets the signed contract data from an ecosystem (a second pncpki on
// loopback, over OPNC and over OPCP, logged in with client credentials)
// and passes it on; the vehicle verifies and decrypts it. The
// ecosystem's root pool comes along.
func TestEcosystemFallback(t *testing.T) {
	ctx := context.Background()
	oem, err := testcerts.Generate(11, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eco := newPKI(t, "Eco", oem)
	if err := eco.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
		t.Fatal(err)
	}
	if err := eco.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "cpo-x", Kind: policies.TenantCPO, OperatorIDs: []string{"DEXYZ"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := eco.installer.Pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC12345678", PCID: testcerts.PCID, Default: true}); err != nil {
		t.Fatal(err)
	}
	es := serveEcosystem(t, eco, "cpo-x", auth.RoleOperator, nil, func(r chi.Router, verify func(string) (*auth.Claims, error)) {
		srv := &opnc.Server{Verify: verify, Installer: eco.installer, Anchors: func() ocppsec.Anchors { return eco.anchors }}
		srv.Mount(r, opnc.DefaultPrefix)
		srv.MountOPCP(r, opnc.DefaultOPCPPrefix)
	})

	local := newPKI(t, "Local", oem)
	v2g, _ := eco.d.CA.Authority("v2g-root")
	mo, _ := eco.d.CA.Authority("mo-root")
	ev := &contract.EV{ProvisioningCert: oem.Get("oem-prov").Cert, ProvisioningKey: oem.Get("oem-prov").Key, Roots: []*x509.Certificate{v2g.Cert, mo.Cert}}
	for _, tt := range []struct{ protocol, path string }{{upstream.OPNC, opnc.DefaultPrefix}, {upstream.OPCP, opnc.DefaultOPCPPrefix}} {
		t.Run(tt.protocol, func(t *testing.T) {
			c := es.client(tt.protocol, tt.path)
			local.installer.Upstream = c.SignedContractData
			req, _ := ev.InstallationRequest()
			res, err := local.installer.Handle(ctx, contract.ActionInstall, req, 5600)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Upstream || res.PCID != testcerts.PCID {
				t.Errorf("upstream %v, PCID %q", res.Upstream, res.PCID)
			}
			got, err := ev.ReadResponse(res.EXI, ev.ProvisioningKey)
			if err != nil {
				t.Fatal(err)
			}
			if got.EMAID != res.EMAID {
				t.Errorf("eMAID %s, answer says %s", got.EMAID, res.EMAID)
			}
			// Nothing was issued locally.
			if recs, _ := local.d.Store.Certificates(ctx, store.Filter{Profile: policies.ISO2Contract}); len(recs) != 0 {
				t.Errorf("%d local contract certificates", len(recs))
			}
			// The ecosystem's root pool.
			roots, err := c.Roots(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(roots[ocppsec.UseV2G]) != 1 || !roots[ocppsec.UseV2G][0].Equal(v2g.Cert) || len(roots[ocppsec.UseMO]) != 1 || len(roots[ocppsec.UseOEM]) != 1 {
				t.Errorf("roots: %d V2G, %d MO, %d OEM", len(roots[ocppsec.UseV2G]), len(roots[ocppsec.UseMO]), len(roots[ocppsec.UseOEM]))
			}
		})
	}

	// A vehicle whose contract the ecosystem ended: the local refusal.
	if _, _, err := eco.installer.Pool.Cancel(ctx, "emsp1", "DE8AAC12345678"); err != nil {
		t.Fatal(err)
	}
	req, _ := ev.InstallationRequest()
	_, err = local.installer.Handle(ctx, contract.ActionInstall, req, 5600)
	var ie *contract.InstallError
	if !errors.As(err, &ie) || ie.Reason != contract.ReasonUnknownPCID {
		t.Fatalf("a vehicle the ecosystem has no contract for: %v", err)
	}
	// An ecosystem that does not answer.
	local.installer.Upstream = (&upstream.Client{BaseURL: "https://127.0.0.1:1", Protocol: upstream.OPNC}).SignedContractData
	_, err = local.installer.Handle(ctx, contract.ActionInstall, req, 5600)
	if !errors.As(err, &ie) || ie.Reason != contract.ReasonUpstream {
		t.Fatalf("an unreachable ecosystem: %v", err)
	}
}

// TestRootSync: the local trust anchors follow an ecosystem's root pool:
// a root its operator adds arrives with the next sync, one it removes
// leaves; the local administrator's own additions stay.
func TestRootSync(t *testing.T) {
	ctx := store.WithActor(context.Background(), "test")
	oem, err := testcerts.Generate(11, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eco := newPKI(t, "Eco", oem)
	ecoBridge := &ocppsec.Bridge{Store: eco.d.Store, Anchors: eco.anchors}
	if err := ecoBridge.RefreshAnchors(ctx); err != nil {
		t.Fatal(err)
	}
	es := serveEcosystem(t, eco, "", auth.RoleAdmin, nil, func(r chi.Router, verify func(string) (*auth.Claims, error)) {
		(&opnc.Server{Verify: verify, Anchors: ecoBridge.TrustAnchors, Roots: ecoBridge}).Mount(r, opnc.DefaultPrefix)
	})
	c := es.client(upstream.OPNC, opnc.DefaultPrefix)

	local := newPKI(t, "Local", oem)
	b := &ocppsec.Bridge{Store: local.d.Store, Anchors: local.anchors}
	if err := b.RefreshAnchors(ctx); err != nil {
		t.Fatal(err)
	}
	// Every change is announced, whoever made it (root pool events).
	var heard []string
	b.AnchorChanged = func(_ context.Context, u ocppsec.Use, c *x509.Certificate, added bool) {
		heard = append(heard, fmt.Sprintf("%s %s %v", u, c.Subject.CommonName, added))
	}
	mine, err := testcerts.Generate(12, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddTrustAnchor(ctx, ocppsec.UseMO, mine.Get("mo-root").Cert, "admin"); err != nil {
		t.Fatal(err)
	}
	sync := func() (int, int) {
		t.Helper()
		roots, err := c.Roots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		added, removed, err := b.SyncAnchors(ctx, c.BaseURL, roots)
		if err != nil {
			t.Fatal(err)
		}
		return added, removed
	}
	// The ecosystem's V2G and MO roots; its OEM root is configured here
	// already.
	if added, removed := sync(); added != 2 || removed != 0 {
		t.Errorf("first sync: +%d -%d, want +2", added, removed)
	}
	if added, removed := sync(); added != 0 || removed != 0 {
		t.Errorf("unchanged pool: +%d -%d", added, removed)
	}
	extra := mine.Get("v2g-root").Cert
	if err := ecoBridge.AddTrustAnchor(ctx, ocppsec.UseV2G, extra, "admin"); err != nil {
		t.Fatal(err)
	}
	if added, _ := sync(); added != 1 || !slicesContain(b.TrustAnchors()[ocppsec.UseV2G], extra) {
		t.Errorf("added root: +%d", added)
	}
	if err := ecoBridge.RemoveTrustAnchor(ctx, ocppsec.UseV2G, ca.Fingerprint(extra)); err != nil {
		t.Fatal(err)
	}
	if _, removed := sync(); removed != 1 || slicesContain(b.TrustAnchors()[ocppsec.UseV2G], extra) {
		t.Errorf("removed root: -%d", removed)
	}
	if !slicesContain(b.TrustAnchors()[ocppsec.UseMO], mine.Get("mo-root").Cert) {
		t.Error("the local administrator's root went with the sync")
	}
	name := func(p *testcerts.PKI, n string) string { return p.Get(n).Cert.Subject.CommonName }
	want := []string{
		"MORootCertificate " + name(mine, "mo-root") + " true",
		"V2GRootCertificate " + eco.anchors[ocppsec.UseV2G][0].Subject.CommonName + " true",
		"MORootCertificate " + eco.anchors[ocppsec.UseMO][0].Subject.CommonName + " true",
		"V2GRootCertificate " + name(mine, "v2g-root") + " true",
		"V2GRootCertificate " + name(mine, "v2g-root") + " false",
	}
	if !slices.Equal(heard, want) {
		t.Errorf("announced:\n%s\nwant:\n%s", strings.Join(heard, "\n"), strings.Join(want, "\n"))
	}
}

func slicesContain(cs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range cs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// TestEnrollThroughEcosystem: with an upstream EST configured, a CPO's
// SECC CSR is checked against the local tenant policy, signed by the
// ecosystem's CPO CA and recorded locally under the upstream's CA; the
// local CA cannot revoke it, and a refusal of the ecosystem stores
// nothing.
func TestEnrollThroughEcosystem(t *testing.T) {
	ctx := store.WithActor(context.Background(), "test")
	oem, err := testcerts.Generate(11, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eco := newPKI(t, "Eco", oem)
	if err := eco.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "local-cpo", Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}}); err != nil {
		t.Fatal(err)
	}
	es := serveEcosystem(t, eco, "local-cpo", auth.RoleOperator, nil, func(r chi.Router, verify func(string) (*auth.Claims, error)) {
		(&est.Server{CA: eco.d.CA, Store: eco.d.Store, Verify: verify}).Mount(r, est.DefaultPrefix)
	})

	local := newPKI(t, "Local", oem)
	for _, tn := range []*policies.Tenant{
		{Name: "cpo1", Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}},
		{Name: "cpo2", Kind: policies.TenantCPO, OperatorIDs: []string{"DEXYZ"}},
	} {
		if err := local.d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	c := es.client(upstream.OPCP, "")
	c.ESTURL = es.ts.URL + est.DefaultPrefix
	local.d.CA.SetExternal(policies.ISO2SECC, &ca.External{Name: "upstream-cpo", URI: c.ESTURL, Enroll: c.Enroll, CACerts: c.CACerts})
	csr := func(cn string) []byte {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name(cn, "", "", "CPO")}, k)
		return der
	}
	iss, err := local.d.CA.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: csr("DE*ABC*E1"), Tenant: "cpo1"})
	if err != nil {
		t.Fatal(err)
	}
	v2g, _ := eco.d.CA.Authority("v2g-root")
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(v2g.Cert)
	for _, x := range iss.Chain {
		inter.AddCert(x)
	}
	if _, err := iss.Cert().Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the certificate does not lead to the ecosystem's V2G root: %v", err)
	}
	// EST cacerts of pncpki answers with the ecosystem's chain.
	chain, ok, err := local.d.CA.ExternalCACerts(ctx, policies.ISO2SECC)
	if !ok || err != nil || len(chain) < 2 || iss.Cert().CheckSignatureFrom(chain[0]) != nil {
		t.Errorf("upstream CA chain: %d certificates, %v %v", len(chain), ok, err)
	}
	if _, ok, _ := local.d.CA.ExternalCACerts(ctx, policies.ISO2Contract); ok {
		t.Error("a local profile reported as external")
	}
	if iss.Record.Issuer != "upstream-cpo" || iss.Record.Tenant != "cpo1" {
		t.Errorf("recorded as %s/%s for %q", iss.Record.Issuer, iss.Record.Serial, iss.Record.Tenant)
	}
	if recs, _ := local.d.Store.Certificates(ctx, store.Filter{Issuer: "upstream-cpo"}); len(recs) != 1 {
		t.Errorf("%d local records", len(recs))
	}
	if rec, err := local.d.Store.CA(ctx, "upstream-cpo"); err != nil || !rec.External() {
		t.Errorf("upstream CA record %+v %v", rec, err)
	}
	if err := local.d.CA.Reload(ctx); err != nil {
		t.Errorf("reload with the upstream's CA recorded: %v", err)
	}
	if _, err := local.d.CA.Revoke(ctx, iss.Record.Issuer, iss.Record.Serial, 0); ca.CodeOf(err) != ca.CodeExternalRevoke {
		t.Errorf("local revocation of the ecosystem's certificate: %v", err)
	}
	ecoCount := func() int {
		recs, _ := eco.d.Store.Certificates(ctx, store.Filter{Profile: policies.ISO2SECC})
		return len(recs)
	}
	before := ecoCount()
	// The local policy refuses before anything is forwarded.
	if _, err := local.d.CA.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: csr("DE*XYZ*E1"), Tenant: "cpo1"}); ca.CodeOf(err) != ca.CodePolicyDenied {
		t.Errorf("another operator's EVSE: %v", err)
	}
	// The ecosystem refuses what its client may not have.
	if _, err := local.d.CA.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: csr("DE*XYZ*E1"), Tenant: "cpo2"}); ca.CodeOf(err) != ca.CodeUpstream {
		t.Errorf("refused by the ecosystem: %v", err)
	}
	if ecoCount() != before {
		t.Error("the ecosystem issued for a refused request")
	}
	if recs, _ := local.d.Store.Certificates(ctx, store.Filter{Issuer: "upstream-cpo"}); len(recs) != 1 {
		t.Errorf("%d local records after refusals", len(recs))
	}
	// Other profiles stay local.
	if _, err := local.d.CA.IssueForKey(ctx, policies.ISO2CPSLeaf, "cps-sub2", iss.Cert().PublicKey, policies.Subject{CommonName: "Local CPS 2"}, policies.Period{}); err != nil {
		t.Errorf("local issuance: %v", err)
	}
}

// TestPushContracts: pncpki's eMSP contracts appear in the ecosystem's
// contract pool (over OPNC and OPCP): a new contract is packaged for the
// provisioning certificate the ecosystem holds and uploaded, and the
// ecosystem then answers the vehicle with it; a cancelled contract is
// deleted there.
func TestPushContracts(t *testing.T) {
	ctx := store.WithActor(context.Background(), "test")
	oem, err := testcerts.Generate(11, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eco := newPKI(t, "Eco", oem)
	local := newPKI(t, "Local", oem)
	for _, tn := range []*policies.Tenant{
		{Name: "local-emsp", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}},
		{Name: "oem-eco", Kind: policies.TenantOEM},
	} {
		if err := eco.d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eco.installer.Pool.PutProvisioning(ctx, "oem-eco", "", []*x509.Certificate{oem.Get("oem-prov").Cert}, nil); err != nil {
		t.Fatal(err)
	}
	// The ecosystem's operator admitted pncpki's V2G and MO roots.
	ecoBridge := &ocppsec.Bridge{Store: eco.d.Store, Anchors: eco.anchors}
	for _, name := range []string{"v2g-root", "mo-root"} {
		a, _ := local.d.CA.Authority(name)
		u := ocppsec.UseV2G
		if name == "mo-root" {
			u = ocppsec.UseMO
		}
		if err := ecoBridge.AddTrustAnchor(ctx, u, a.Cert, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	es := serveEcosystem(t, eco, "local-emsp", auth.RoleOperator, nil, func(r chi.Router, verify func(string) (*auth.Claims, error)) {
		srv := &opnc.Server{Verify: verify, Installer: eco.installer, Pool: eco.installer.Pool, Anchors: ecoBridge.TrustAnchors, Roots: ecoBridge}
		srv.Mount(r, opnc.DefaultPrefix)
		srv.MountOPCP(r, opnc.DefaultOPCPPrefix)
	})

	if err := local.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
		t.Fatal(err)
	}
	ecoV2G, _ := eco.d.CA.Authority("v2g-root")
	localMO, _ := local.d.CA.Authority("mo-root")
	ev := &contract.EV{ProvisioningCert: oem.Get("oem-prov").Cert, ProvisioningKey: oem.Get("oem-prov").Key, Roots: []*x509.Certificate{ecoV2G.Cert, localMO.Cert}}
	for _, tt := range []struct{ protocol, path, emaid string }{
		{upstream.OPNC, opnc.DefaultPrefix, "DE8AAC00000001"},
		{upstream.OPCP, opnc.DefaultOPCPPrefix, "DE8AAC00000002"},
	} {
		t.Run(tt.protocol, func(t *testing.T) {
			c := es.client(tt.protocol, tt.path)
			pusher := upstream.NewPusher(c, local.installer, nil, nil)
			pusher.Backoff = 10 * time.Millisecond
			local.installer.Pool.Changed = pusher.Changed
			created, err := local.installer.Pool.Put(ctx, "emsp1", store.Contract{EMAID: tt.emaid, PCID: testcerts.PCID, Default: true})
			if err != nil {
				t.Fatal(err)
			}
			pusher.Wait()
			d, err := eco.d.Store.ContractDeposit(ctx, testcerts.PCID)
			if err != nil || d.EMAID != created.EMAID || d.Tenant != "local-emsp" {
				t.Fatalf("ecosystem deposit %+v %v", d, err)
			}
			req, _ := ev.InstallationRequest()
			res, err := eco.installer.Handle(ctx, contract.ActionInstall, req, 5600)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ev.ReadResponse(res.EXI, ev.ProvisioningKey)
			if err != nil {
				t.Fatal(err)
			}
			if got.EMAID != created.EMAID {
				t.Errorf("the vehicle got %s", got.EMAID)
			}
			if recs, _ := local.d.Store.Certificates(ctx, store.Filter{Profile: policies.ISO2Contract, CommonName: created.EMAID}); len(recs) != 1 {
				t.Errorf("%d local contract certificates for %s", len(recs), created.EMAID)
			}
			if _, _, err := local.installer.Pool.Cancel(ctx, "emsp1", created.EMAID); err != nil {
				t.Fatal(err)
			}
			pusher.Wait()
			if _, err := eco.d.Store.ContractDeposit(ctx, testcerts.PCID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the cancelled contract is still in the ecosystem: %v", err)
			}
		})
	}

	// A provisioning certificate of an OEM pncpki does not trust gets no
	// contract key encrypted for it.
	foreign, err := testcerts.Generate(12, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := eco.installer.Pool.DeleteProvisioning(ctx, "", testcerts.PCID); err != nil {
		t.Fatal(err)
	}
	if _, err := eco.installer.Pool.PutProvisioning(ctx, "oem-eco", "", []*x509.Certificate{foreign.Get("oem-prov").Cert}, nil); err != nil {
		t.Fatal(err)
	}
	pusher := upstream.NewPusher(es.client(upstream.OPNC, opnc.DefaultPrefix), local.installer, nil, nil)
	local.installer.Pool.Changed = pusher.Changed
	if _, err := local.installer.Pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC00000003", PCID: testcerts.PCID, Default: true}); err != nil {
		t.Fatal(err)
	}
	pusher.Wait()
	if d, err := eco.d.Store.ContractDeposit(ctx, testcerts.PCID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pushed for an untrusted provisioning certificate: %+v %v", d, err)
	}
}

// TestClientCertificate: an ecosystem that authenticates its clients by
// TLS certificate (mTLS) is reached with --upstream-client-cert/-key; the
// key file must be private.
func TestClientCertificate(t *testing.T) {
	ctx := context.Background()
	oem, err := testcerts.Generate(11, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eco := newPKI(t, "Eco", oem)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(oem.Get("csms-root").Cert)
	es := serveEcosystem(t, eco, "", auth.RoleAdmin, &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs},
		func(r chi.Router, verify func(string) (*auth.Claims, error)) {
			(&opnc.Server{Verify: verify, Anchors: func() ocppsec.Anchors { return eco.anchors }}).Mount(r, opnc.DefaultPrefix)
		})
	ts := es.ts

	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("eco-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644)
	station := oem.Get("charging-station")
	keyDER, _ := x509.MarshalPKCS8PrivateKey(station.Key)
	certFile := write("client.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: station.Cert.Raw}), 0o644)
	keyFile := write("client.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	client := func(cert, key string) (*upstream.Client, error) {
		conf, err := upstream.TLSConfig(caFile, cert, key)
		if err != nil {
			return nil, err
		}
		c := es.client(upstream.OPNC, opnc.DefaultPrefix)
		c.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
		return c, nil
	}
	c, err := client(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if roots, err := c.Roots(ctx); err != nil || len(roots[ocppsec.UseV2G]) != 1 {
		t.Errorf("with the client certificate: %d V2G roots, %v", len(roots[ocppsec.UseV2G]), err)
	}
	c, _ = client("", "")
	if _, err := c.Roots(ctx); err == nil {
		t.Error("the ecosystem answered a client without a certificate")
	}
	if _, err := client(certFile, ""); err == nil {
		t.Error("a certificate without its key was accepted")
	}
	open := write("open.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o644)
	if _, err := client(certFile, open); err == nil {
		t.Error("a world-readable key was accepted")
	}
}
