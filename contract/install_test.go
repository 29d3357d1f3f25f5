package contract

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
	"github.com/pncpki/pncpki/testcerts/zlinttest"
)

// installEnv is a pncpki with its demo hierarchy and CPS, an eMSP with a
// contract for the test vehicle, and the vehicle from testcerts.
type installEnv struct {
	in  *Installer
	d   *datadir.Dir
	oem *testcerts.PKI
	ev  *EV
}

func newInstallEnv(t testing.TB) *installEnv { return newInstallEnvOrg(t, "Test") }

func newInstallEnvOrg(t testing.TB, org string) *installEnv {
	return newInstallEnvWith(t, datadir.InitConfig{Organization: org}, "")
}

// newInstallEnvWith is newInstallEnv for a hierarchy named by cfg whose
// certificates point to publicURL ("" pncd's default).
func newInstallEnvWith(t testing.TB, cfg datadir.InitConfig, publicURL string) *installEnv {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*policies.Tenant{
		{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}},
		{Name: "oem1", Kind: policies.TenantOEM},
	} {
		if err := d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	oem, err := testcerts.Generate(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := &Pool{Store: d.Store, CA: d.CA}
	if _, err := pool.Put(ctx, "emsp1", store.Contract{EMAID: emaidA, PCID: testcerts.PCID, Default: true}); err != nil {
		t.Fatal(err)
	}
	cps, err := LoadCPS(ctx, d.CA, "softkms:path="+datadir.CPSLeafKey, filepath.Join(d.Path, "cps-leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	in := &Installer{
		Pool: pool,
		CPS:  []CPS{cps},
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return []*x509.Certificate{oem.Get("oem-root").Cert}, []*x509.Certificate{oem.Get("oem-sub1").Cert, oem.Get("oem-sub2").Cert}, nil
		},
	}
	v2g, _ := d.CA.Authority("v2g-root")
	mo, _ := d.CA.Authority("mo-root")
	ev := &EV{
		ProvisioningCert: oem.Get("oem-prov").Cert,
		ProvisioningKey:  oem.Get("oem-prov").Key,
		Roots:            []*x509.Certificate{v2g.Cert, mo.Cert},
	}
	return &installEnv{in: in, d: d, oem: oem, ev: ev}
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
}

// checkContractChain lints the contract chain (ours and zlint) and has
// openssl verify it to the MO root.
func checkContractChain(t *testing.T, d *datadir.Dir, got *Installed) {
	t.Helper()
	leaf := got.ContractChain[0]
	p, _ := policies.Lookup(policies.ISO2Contract)
	if vs := p.Check(leaf, policies.SECCBoth); len(vs) > 0 {
		t.Errorf("contract certificate: %v", vs)
	}
	for _, c := range got.ContractChain {
		zlinttest.Check(t, c.Subject.CommonName, c.Raw)
	}
	needOpenSSL(t)
	dir := t.TempDir()
	mo, _ := d.CA.Authority("mo-root")
	write := func(name string, certs ...*x509.Certificate) string {
		var b strings.Builder
		for _, c := range certs {
			b.WriteString(pemCert(c))
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	out, err := exec.Command("openssl", "verify", "-x509_strict", "-CAfile", write("root.pem", mo.Cert),
		"-untrusted", write("sub.pem", got.ContractChain[1:]...), write("leaf.pem", leaf)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
}

func TestInstallAndUpdate(t *testing.T) {
	e := newInstallEnv(t)
	ctx := context.Background()
	req, err := e.ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.in.Handle(ctx, ActionInstall, req, 5600)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.ev.ReadResponse(res.EXI, e.ev.ProvisioningKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.EMAID != emaidA || res.EMAID != emaidA {
		t.Errorf("eMAID %s", got.EMAID)
	}
	// Stored before it was returned, owned by the eMSP.
	rec, err := e.d.Store.Certificate(ctx, res.Contract.Issuer, res.Contract.Serial)
	if err != nil || rec.Tenant != "emsp1" || rec.Profile != policies.ISO2Contract {
		t.Fatalf("stored contract certificate: %+v, %v", rec, err)
	}
	checkContractChain(t, e.d, got)

	// A retry of the same request gets the same answer, not a second
	// certificate.
	again, err := e.in.Handle(ctx, ActionInstall, req, 5600)
	if err != nil || !again.Repeated || string(again.EXI) != string(res.EXI) {
		t.Fatalf("retry: repeated=%v err=%v", again != nil && again.Repeated, err)
	}
	if again.Contract == nil || again.Contract.Serial != res.Contract.Serial || len(again.ContractChain) != len(res.ContractChain) {
		t.Fatalf("retry: contract %+v, chain of %d, want %d", again.Contract, len(again.ContractChain), len(res.ContractChain))
	}
	for i, c := range again.ContractChain {
		if !bytes.Equal(c, res.ContractChain[i]) {
			t.Errorf("retry: chain certificate %d differs", i)
		}
	}
	if n := countContracts(t, e.d); n != 1 {
		t.Fatalf("%d contract certificates after a retry", n)
	}

	// Update: signed with the installed contract key, the new key
	// encrypted for it.
	upd, err := e.ev.UpdateRequest(got.ContractChain, got.ContractKey, got.EMAID)
	if err != nil {
		t.Fatal(err)
	}
	ures, err := e.in.Handle(ctx, ActionUpdate, upd, 5600)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := exi.ISO2.Decode(ures.EXI)
	if doc.Child("Body").Child("CertificateUpdateRes") == nil {
		t.Fatal("no CertificateUpdateRes")
	}
	got2, err := e.ev.ReadResponse(ures.EXI, got.ContractKey)
	if err != nil {
		t.Fatal(err)
	}
	if got2.ContractChain[0].SerialNumber.Cmp(got.ContractChain[0].SerialNumber) == 0 {
		t.Fatal("update returned the old certificate")
	}
	checkContractChain(t, e.d, got2)
	if n := countContracts(t, e.d); n != 2 {
		t.Fatalf("%d contract certificates after the update", n)
	}

	// The installation log has all three answers, newest first, for the
	// eMSP and the vehicle's OEM.
	log := installations(t, e)
	want := []struct {
		action, source string
		size           int
	}{
		{"Update", "issued", len(ures.EXI)},
		{"Install", "repeated", len(res.EXI)},
		{"Install", "issued", len(res.EXI)},
	}
	if len(log) != len(want) {
		t.Fatalf("installation log has %d records, want %d", len(log), len(want))
	}
	for i, w := range want {
		r := log[i]
		if r.Action != w.action || r.Source != w.source || r.ResponseCode != ResponseOK || r.Size != base64.StdEncoding.EncodedLen(w.size) ||
			r.Limit != 5600 || r.PCID != testcerts.PCID || r.EMAID != emaidA || r.EMSP != "emsp1" {
			t.Errorf("record %d: %+v, want %s %s of %d bytes", i, r, w.action, w.source, w.size)
		}
	}
}

func countContracts(t *testing.T, d *datadir.Dir) int {
	recs, err := d.Store.Certificates(context.Background(), store.Filter{Profile: policies.ISO2Contract})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestInstallRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(t *testing.T, e *installEnv) []byte
		code   string
		reason string
	}{
		{"garbage", func(*testing.T, *installEnv) []byte { return []byte("not exi") }, ResponseFailed, ReasonInvalidEXI},
		{"truncated", func(t *testing.T, e *installEnv) []byte {
			r, _ := e.ev.InstallationRequest()
			return r[:len(r)/2]
		}, ResponseFailed, ReasonInvalidEXI},
		{"tampered signature", func(t *testing.T, e *installEnv) []byte {
			r, _ := e.ev.InstallationRequest()
			doc, _ := exi.ISO2.Decode(r)
			sv := doc.Child("Header").Child("Signature").Child("SignatureValue")
			// Another first character, always: "A" over an "A" left the
			// signature intact about once in 64 runs.
			first := "A"
			if sv.Value[0] == 'A' {
				first = "B"
			}
			sv.Value = first + sv.Value[1:]
			out, _ := exi.ISO2.Encode(doc)
			return out
		}, ResponseSignatureError, ReasonSignature},
		{"signed by another key", func(t *testing.T, e *installEnv) []byte {
			e.ev.ProvisioningKey = e.oem.Get("oem-sub2").Key
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseSignatureError, ReasonSignature},
		{"unknown PCID", func(t *testing.T, e *installEnv) []byte {
			// A vehicle of another PCID: a provisioning certificate of the
			// same OEM for another CN.
			other := issueProv(t, e, "WMIPNCTEST0000099")
			e.ev.ProvisioningCert, e.ev.ProvisioningKey = other.Cert, other.Key
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseNoCertificate, ReasonUnknownPCID},
		{"cancelled contract", func(t *testing.T, e *installEnv) []byte {
			if _, _, err := e.in.Pool.Cancel(ctx, "emsp1", emaidA); err != nil {
				t.Fatal(err)
			}
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseContractCanceled, ReasonCancelled},
		{"expired contract", func(t *testing.T, e *installEnv) []byte {
			e.in.Now = func() time.Time { return time.Now() } // contract below ends in the past
			if _, err := e.in.Pool.Put(ctx, "emsp1", store.Contract{EMAID: emaidA, PCID: testcerts.PCID, Default: true, ValidUntil: time.Now().Add(-time.Hour)}); err != nil {
				t.Fatal(err)
			}
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseNoCertificate, ReasonNoContract},
		{"unknown OEM root", func(t *testing.T, e *installEnv) []byte {
			e.in.OEMRoots = nil
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseCertChainError, ReasonCertChain},
		{"expired OEM certificate", func(t *testing.T, e *installEnv) []byte {
			e.in.Now = func() time.Time { return time.Now().AddDate(50, 0, 0) }
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseCertificateExpired, ReasonExpired},
		{"revoked OEM certificate", func(t *testing.T, e *installEnv) []byte {
			e.in.CheckOEM = func(_ context.Context, leaf, issuer *x509.Certificate) error {
				if leaf.CheckSignatureFrom(issuer) != nil {
					t.Error("CheckOEM got the wrong issuer")
				}
				return ErrRevoked
			}
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseCertificateRevoked, ReasonRevoked},
		{"no acceptable root", func(t *testing.T, e *installEnv) []byte {
			e.ev.Roots = []*x509.Certificate{e.oem.Get("v2g-root").Cert}
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseNoCertificate, ReasonNoRoot},
		{"update body for install", func(t *testing.T, e *installEnv) []byte {
			r, _ := e.ev.UpdateRequest([]*x509.Certificate{e.oem.Get("contract").Cert}, e.oem.Get("contract").Key, "DE8AAC12345678D")
			return r
		}, ResponseFailed, ReasonWrongMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newInstallEnv(t)
			in := tt.mutate(t, e)
			before := countContracts(t, e.d)
			res, err := e.in.Handle(ctx, ActionInstall, in, 5600)
			var ie *InstallError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, %v; want an InstallError", res, err)
			}
			if ie.ResponseCode != tt.code || ie.Reason != tt.reason {
				t.Fatalf("got %s/%s (%v), want %s/%s", ie.ResponseCode, ie.Reason, err, tt.code, tt.reason)
			}
			if n := countContracts(t, e.d); n != before {
				t.Fatalf("a refusal stored %d certificates", n-before)
			}
			// The installation log says why, with the failure answer's size.
			log := installations(t, e)
			if len(log) != 1 || log[0].ResponseCode != tt.code || log[0].Reason != tt.reason || log[0].Source != "" ||
				log[0].Size != base64.StdEncoding.EncodedLen(len(ie.Answer)) || log[0].Limit != 5600 {
				t.Errorf("installation log %+v", log)
			}
		})
	}
}

// installations returns the installation log, newest first.
func installations(t *testing.T, e *installEnv) []*store.InstallationRecord {
	t.Helper()
	log, err := e.d.Store.ListInstallations(context.Background(), store.InstallationFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// issueProv makes another provisioning certificate under the test OEM.
func issueProv(t *testing.T, e *installEnv, pcid string) *testcerts.Entry {
	t.Helper()
	sub := e.oem.Get("oem-sub2")
	key := testcerts.Key(99, pcid)
	tmpl := *e.oem.Get("oem-prov").Cert
	tmpl.Subject.CommonName = pcid
	tmpl.Subject.ExtraNames = nil
	tmpl.RawSubject = nil
	tmpl.SerialNumber = big.NewInt(0).Lsh(big.NewInt(1), 70)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, sub.Cert, &key.PublicKey, sub.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testcerts.Entry{Cert: c, Key: key}
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// A response over the limit is refused before anything is signed: no
// contract certificate is issued, stored or revoked.
func TestResponseTooLarge(t *testing.T) {
	e := newInstallEnv(t)
	req, _ := e.ev.InstallationRequest()
	before := countCertificates(t, e.d)
	_, err := e.in.Handle(context.Background(), ActionInstall, req, 4000)
	var ie *InstallError
	if !errors.As(err, &ie) || ie.Reason != ReasonTooLarge {
		t.Fatalf("got %v, want %s", err, ReasonTooLarge)
	}
	if after := countCertificates(t, e.d); after != before {
		t.Fatalf("%d certificates stored by a refused installation", after-before)
	}
	recs, _ := e.d.Store.Certificates(context.Background(), store.Filter{Profile: policies.ISO2Contract})
	if len(recs) != 0 {
		t.Fatalf("contract certificates after a size refusal: %+v", recs)
	}
}

func TestUpdateRefusals(t *testing.T) {
	ctx := context.Background()
	// installed returns an installed contract to update from.
	installed := func(t *testing.T, e *installEnv) *Installed {
		req, _ := e.ev.InstallationRequest()
		res, err := e.in.Handle(ctx, ActionInstall, req, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.ev.ReadResponse(res.EXI, e.ev.ProvisioningKey)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, e *installEnv, got *Installed) []byte
		code   string
		reason string
	}{
		{"install body for update", func(t *testing.T, e *installEnv, got *Installed) []byte {
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseFailed, ReasonWrongMessage},
		{"wrong namespace", func(t *testing.T, e *installEnv, got *Installed) []byte {
			r, _ := exi.XMLDSig.EncodeFragment(exi.New("SignedInfo",
				exi.New("CanonicalizationMethod").WithAttr("Algorithm", algCanonicalEXI),
				exi.New("SignatureMethod").WithAttr("Algorithm", algECDSASHA256)))
			return r
		}, ResponseFailed, ReasonInvalidEXI},
		{"signed with the provisioning key", func(t *testing.T, e *installEnv, got *Installed) []byte {
			r, _ := e.ev.UpdateRequest(got.ContractChain, e.ev.ProvisioningKey, got.EMAID)
			return r
		}, ResponseSignatureError, ReasonSignature},
		{"contract of another eMSP", func(t *testing.T, e *installEnv, got *Installed) []byte {
			if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp2", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8BB"}}); err != nil {
				t.Fatal(err)
			}
			other, err := e.in.Pool.Put(ctx, "emsp2", store.Contract{EMAID: "DE8BBC12345678", PCID: "WMIPNCTEST0000002"})
			if err != nil {
				t.Fatal(err)
			}
			r, _ := e.ev.UpdateRequest(got.ContractChain, got.ContractKey, other.EMAID)
			return r
		}, ResponseCertChainError, ReasonCertChain},
		{"contract certificate of another PKI", func(t *testing.T, e *installEnv, got *Installed) []byte {
			c := e.oem.Get("contract")
			r, _ := e.ev.UpdateRequest(append([]*x509.Certificate{c.Cert}, e.oem.Chain("contract")...), c.Key, c.Cert.Subject.CommonName)
			return r
		}, ResponseCertChainError, ReasonCertChain},
		{"revoked contract certificate", func(t *testing.T, e *installEnv, got *Installed) []byte {
			leaf := got.ContractChain[0]
			for _, a := range e.d.CA.Authorities() {
				if leaf.CheckSignatureFrom(a.Cert) == nil {
					if _, err := e.d.CA.Revoke(ctx, a.Name, ca.SerialHex(leaf.SerialNumber), 1); err != nil {
						t.Fatal(err)
					}
				}
			}
			r, _ := e.ev.UpdateRequest(got.ContractChain, got.ContractKey, got.EMAID)
			return r
		}, ResponseCertificateRevoked, ReasonRevoked},
		{"cancelled contract", func(t *testing.T, e *installEnv, got *Installed) []byte {
			if _, _, err := e.in.Pool.Cancel(ctx, "emsp1", got.EMAID); err != nil {
				t.Fatal(err)
			}
			r, _ := e.ev.UpdateRequest(got.ContractChain, got.ContractKey, got.EMAID)
			return r
		}, ResponseContractCanceled, ReasonCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newInstallEnv(t)
			got := installed(t, e)
			in := tt.mutate(t, e, got)
			before := countContracts(t, e.d)
			res, err := e.in.Handle(ctx, ActionUpdate, in, 5600)
			var ie *InstallError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, %v; want an InstallError", res, err)
			}
			if ie.ResponseCode != tt.code || ie.Reason != tt.reason {
				t.Fatalf("got %s/%s (%v), want %s/%s", ie.ResponseCode, ie.Reason, err, tt.code, tt.reason)
			}
			if n := countContracts(t, e.d); n != before {
				t.Fatalf("a refusal stored %d certificates", n-before)
			}
		})
	}
}

// FuzzHandle feeds the installer arbitrary requests: nothing may panic,
// and whatever it accepts must be a response the vehicle can use.
func FuzzHandle(f *testing.F) {
	e := newInstallEnv(f)
	req, err := e.ev.InstallationRequest()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req)
	f.Add(req[:len(req)-3])
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := e.in.Handle(context.Background(), "", in, 5600)
		if err != nil {
			var ie *InstallError
			if !errors.As(err, &ie) {
				t.Fatalf("not an InstallError: %v", err)
			}
			return
		}
		// The SessionID is not signed and may be anything: check the
		// answer's CPS signature rather than the whole vehicle view.
		doc, err := exi.ISO2.Decode(res.EXI)
		if err != nil {
			t.Fatalf("accepted request, undecodable answer: %v", err)
		}
		pub := e.in.CPS[0].Chain[0].PublicKey.(*ecdsa.PublicKey)
		if err := verifySignature(doc.Child("Header").Child("Signature"), doc.Child("Body"), pub, "id1", "id2", "id3", "id4"); err != nil {
			t.Fatalf("accepted request, bad answer signature: %v", err)
		}
	})
}

// The verified-chain cache never outlives the trust: a root removed from
// the anchors refuses the next request of a vehicle whose sub-CAs were
// verified a moment ago.
func TestChainCacheFollowsAnchors(t *testing.T) {
	e := newInstallEnv(t)
	ctx := context.Background()
	req, _ := e.ev.InstallationRequest()
	if _, err := e.in.Handle(ctx, ActionInstall, req, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(e.in.chains.m); n != 1 {
		t.Fatalf("%d cached chains, want 1", n)
	}
	other, err := testcerts.Generate(2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.in.OEMRoots = func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
		return []*x509.Certificate{other.Get("oem-root").Cert}, e.oem.Chain("oem-prov")[:2], nil
	}
	req, _ = e.ev.InstallationRequest()
	_, err = e.in.Handle(ctx, ActionInstall, req, 0)
	var ie *InstallError
	if !errors.As(err, &ie) || ie.Reason != ReasonCertChain {
		t.Fatalf("after the root left the anchors: %v", err)
	}
}

// An OEM that registered its sub-CAs needs no provisioning certificate
// per vehicle: the request's leaf chains through them.
func TestInstallWithRegisteredSubCAs(t *testing.T) {
	e := newInstallEnv(t)
	ctx := context.Background()
	root := e.oem.Get("oem-root").Cert
	e.in.OEMRoots = func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
		return []*x509.Certificate{root}, nil, nil
	}
	req, _ := e.ev.InstallationRequest()
	var ie *InstallError
	if _, err := e.in.Handle(ctx, ActionInstall, req, 0); !errors.As(err, &ie) || ie.Reason != ReasonCertChain {
		t.Fatalf("without sub-CAs: %v", err)
	}
	roots := []*x509.Certificate{root}
	// Sub-CA 2 before Sub-CA 1 does not chain yet.
	if _, err := e.in.Pool.PutOEMSubCA(ctx, "oem1", "", e.oem.Get("oem-sub2").Cert, roots); err == nil {
		t.Fatal("Sub-CA 2 registered before its issuer")
	}
	for _, n := range []string{"oem-sub1", "oem-sub2"} {
		if _, err := e.in.Pool.PutOEMSubCA(ctx, "oem1", "", e.oem.Get(n).Cert, roots); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if _, err := e.in.Pool.PutOEMSubCA(ctx, "emsp1", "", e.oem.Get("oem-sub1").Cert, roots); err == nil {
		t.Error("an eMSP registered an OEM sub-CA")
	}
	if _, err := e.in.Pool.PutOEMSubCA(ctx, "oem1", "", e.oem.Get("cps-leaf").Cert, roots); err == nil {
		t.Error("a CPS leaf registered as an OEM sub-CA")
	}
	e.in.subCAs = nil // read the registry now, not after its TTL
	req, _ = e.ev.InstallationRequest()
	res, err := e.in.Handle(ctx, ActionInstall, req, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ev.ReadResponse(res.EXI, e.ev.ProvisioningKey); err != nil {
		t.Fatal(err)
	}
}

// An eMSP with its own MO PKI deposits signed contract data for a vehicle;
// pncpki only signs and packages it, and the vehicle decrypts the key the
// eMSP made for it.
func TestInstallFromDeposit(t *testing.T) {
	e := newInstallEnv(t)
	ctx := context.Background()
	if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp-own", Kind: policies.TenantEMSP, ProviderIDs: []string{"DEPNC"}}); err != nil {
		t.Fatal(err)
	}
	// The eMSP's own PKI is testcerts' MO hierarchy.
	c := e.oem.Get("contract")
	chain := append([]*x509.Certificate{c.Cert}, e.oem.Chain("contract")[:2]...)
	enc, dh, err := EncryptPrivateKey(rand.Reader, c.Key, e.ev.ProvisioningCert.PublicKey.(*ecdsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	moRoots := []*x509.Certificate{e.oem.Get("mo-root").Cert}
	// Refusals: not the eMSP's EMAID, a CPO, bad sizes, a foreign MO root.
	if _, err := e.in.Pool.PutDeposit(ctx, "emsp1", "", testcerts.PCID, chain, enc, dh, moRoots); err == nil {
		t.Error("emsp1 deposited a contract under another provider ID")
	}
	if _, err := e.in.Pool.PutDeposit(ctx, "emsp-own", "", testcerts.PCID, chain, enc[:40], dh, moRoots); err == nil {
		t.Error("a 40-byte encrypted key was accepted")
	}
	if _, err := e.in.Pool.PutDeposit(ctx, "emsp-own", "", testcerts.PCID, chain, enc, dh[:33], moRoots); err == nil {
		t.Error("a compressed DH key was accepted")
	}
	if _, err := e.in.Pool.PutDeposit(ctx, "emsp-own", "", testcerts.PCID, chain, enc, dh, []*x509.Certificate{e.oem.Get("v2g-root").Cert}); err == nil {
		t.Error("a chain to another root was accepted")
	}
	if _, err := e.in.Pool.PutDeposit(ctx, "emsp-own", "", testcerts.PCID, chain, enc, dh, moRoots); err != nil {
		t.Fatal(err)
	}
	before := countContracts(t, e.d)
	req, _ := e.ev.InstallationRequest()
	res, err := e.in.Handle(ctx, ActionInstall, req, 5600)
	if err != nil {
		t.Fatal(err)
	}
	if res.Contract != nil || countContracts(t, e.d) != before {
		t.Error("a contract certificate was issued for a deposit")
	}
	got, err := e.ev.ReadResponse(res.EXI, e.ev.ProvisioningKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.EMAID != testcerts.EMAID || !got.ContractKey.Equal(c.Key) {
		t.Errorf("installed %s, key matches %v", got.EMAID, got.ContractKey.Equal(c.Key))
	}
	if err := e.in.Pool.DeleteDeposit(ctx, "emsp1", testcerts.PCID); err == nil {
		t.Error("another eMSP deleted the deposit")
	}
	if err := e.in.Pool.DeleteDeposit(ctx, "emsp-own", testcerts.PCID); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseSignedResponse: an uploaded CertificateInstallationRes is
// either refused with a contract error or carries contract data whose CPS
// signature checked out.
func FuzzParseSignedResponse(f *testing.F) {
	e := newInstallEnv(f)
	req, err := e.ev.InstallationRequest()
	if err != nil {
		f.Fatal(err)
	}
	res, err := e.in.Handle(context.Background(), ActionInstall, req, 5600)
	if err != nil {
		f.Fatal(err)
	}
	roots := e.ev.Roots
	f.Add(res.EXI)
	f.Add(res.EXI[:len(res.EXI)/2])
	f.Add(req)
	f.Fuzz(func(t *testing.T, in []byte) {
		data, err := ParseSignedResponse(in, roots, time.Now())
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("not a contract error: %v", err)
			}
			return
		}
		if len(data.ContractChain) == 0 || len(data.CPSChain) == 0 {
			t.Fatalf("accepted without chains: %+v", data)
		}
	})
}
