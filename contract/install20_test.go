package contract

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
	"github.com/pncpki/pncpki/testcerts/openssltest"
	"github.com/pncpki/pncpki/testcerts/zlinttest"
)

// install20Env is a pncpki with the -2 and both -20 hierarchies, an eMSP
// with three contracts for the test vehicle (the second its default), and
// the vehicle of the ISO 15118-20 test PKI of one variant.
type install20Env struct {
	in       *Installer
	d        *datadir.Dir
	ev       *EV20
	emaids   []string // in the order the vehicle gets them
	moRoot   *x509.Certificate
	v2gRoot  *x509.Certificate
	dataDir  string
	contract string // the contract profile of the variant
	moSub2   string // the CA that issues the variant's contracts
	generate func(uint64, time.Time) (*testcerts.PKI, error)
}

// variants20 are ISO 15118-20's security variants as the tests play them.
var variants20 = []struct {
	name string
	ed   bool
}{{"secp521r1", false}, {"Ed448", true}}

func newInstall20Env(t testing.TB, ed bool) *install20Env {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{PublicURL: "http://pki.stadtwerke-musterstadt.example"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE", ISO20: true}); err != nil {
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
	generate, suffix, contractProfile := testcerts.Generate20, "20", policies.ISO20Contract
	if ed {
		generate, suffix, contractProfile = testcerts.Generate20Ed448, "20ed", policies.ISO20EdContract
	}
	oem, err := generate(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := &Pool{Store: d.Store, CA: d.CA}
	var emaids []string
	for i, raw := range []string{"DE8AAC2000000A", "DE8AAC2000000B", "DE8AAC2000000C"} {
		c, err := pool.Put(ctx, "emsp1", store.Contract{EMAID: raw, PCID: testcerts.PCID, Default: i == 1})
		if err != nil {
			t.Fatal(err)
		}
		emaids = append(emaids, c.EMAID)
	}
	emaids[0], emaids[1] = emaids[1], emaids[0] // the default first
	var cps []CPS                               // -2, then -20
	for _, f := range append([]struct{ Key, Cert string }{{datadir.CPSLeafKey, "cps-leaf.pem"}}, datadir.CPS20Leaves...) {
		c, err := LoadCPS(ctx, d.CA, "softkms:path="+f.Key, filepath.Join(d.Path, f.Cert))
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, c)
	}
	in := &Installer{Pool: pool, CPS: cps[:1], CPS20: cps[1:],
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return []*x509.Certificate{oem.Get("oem-root").Cert}, nil, nil
		}}
	v2g, _ := d.CA.Authority("v2g" + suffix + "-root")
	mo, _ := d.CA.Authority("mo" + suffix + "-root")
	ev := &EV20{
		ProvisioningChain: []*x509.Certificate{oem.Get("oem-prov").Cert, oem.Get("oem-sub2").Cert, oem.Get("oem-sub1").Cert},
		ProvisioningKey:   oem.Get("oem-prov").Signer(),
		X448Key:           oem.Get("oem-prov").X448Key,
		Roots:             []*x509.Certificate{v2g.Cert, mo.Cert},
		MaxContracts:      3,
	}
	return &install20Env{in: in, d: d, ev: ev, emaids: emaids, moRoot: mo.Cert, v2gRoot: v2g.Cert, dataDir: d.Path,
		contract: contractProfile, moSub2: "mo" + suffix + "-sub2", generate: generate}
}

// TestInstall20 plays an ISO 15118-20 vehicle (secp521r1): it signs a
// CertificateInstallationReq with its OEM provisioning key and asks until
// no contract remains; each answer's CPS signature and chains verify, each
// contract key decrypts and belongs to its certificate, each certificate
// is stored, lints clean (ours and zlint) and openssl verifies its chain.
// A retry gets the same answer; a fourth request gets none; a second
// session with PrioritizedEMAIDs gets the one it names.
func TestInstall20(t *testing.T) {
	for _, v := range variants20 {
		t.Run(v.name, func(t *testing.T) { testInstall20(t, newInstall20Env(t, v.ed)) })
	}
}

func testInstall20(t *testing.T, e *install20Env) {
	ctx := context.Background()
	var got []string
	for i := range 3 {
		req, err := e.ev.InstallationRequest()
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.in.Handle20(ctx, req, LimitOCPP21, Options20{})
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		inst, err := e.ev.ReadResponse20(res.EXI, testcerts.PCID)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if inst.Remaining != 2-i || res.Remaining != inst.Remaining {
			t.Errorf("request %d: %d remaining, want %d", i+1, inst.Remaining, 2-i)
		}
		got = append(got, inst.EMAID)
		rec, err := e.d.Store.Certificate(ctx, res.Contract.Issuer, res.Contract.Serial)
		if err != nil || rec.Profile != e.contract || rec.Tenant != "emsp1" || rec.Issuer != e.moSub2 {
			t.Fatalf("stored: %+v %v", rec, err)
		}
		p, _ := policies.Lookup(e.contract)
		if vs := p.Check(inst.ContractChain[0], 0); len(vs) > 0 {
			t.Errorf("contract certificate: %v", vs)
		}
		zlinttest.Check(t, "contract20", inst.ContractChain[0].Raw)
		openssltest.Verify(t, e.moRoot, inst.ContractChain)
		openssltest.Verify(t, e.v2gRoot, inst.CPSChain)
		if i == 0 {
			// The same request again: the same answer, no second certificate.
			again, err := e.in.Handle20(ctx, req, LimitOCPP21, Options20{})
			if err != nil || !again.Repeated || string(again.EXI) != string(res.EXI) {
				t.Fatalf("retry: %v", err)
			}
		}
	}
	if !slices.Equal(got, e.emaids) {
		t.Errorf("contracts %v, want %v (the default first)", got, e.emaids)
	}
	req, _ := e.ev.InstallationRequest()
	_, err := e.in.Handle20(ctx, req, LimitOCPP21, Options20{})
	var ie *InstallError
	if !errors.As(err, &ie) || ie.ResponseCode != "WARNING_NoCertificateAvailable" || ie.Answer == nil {
		t.Fatalf("a fourth request: %v", err)
	}
	if _, err := e.ev.ReadResponse20(ie.Answer, testcerts.PCID); err == nil || !strings.Contains(err.Error(), "WARNING_NoCertificateAvailable") {
		t.Errorf("the failure answer reads as %v", err)
	}

	// Another session names its contract.
	e.ev.SessionID, e.ev.PrioritizedEMAIDs, e.ev.MaxContracts = []byte("SESSION2"), []string{e.emaids[2]}, 1
	req, _ = e.ev.InstallationRequest()
	res, err := e.in.Handle20(ctx, req, LimitOCPP21, Options20{})
	if err != nil {
		t.Fatal(err)
	}
	if inst, err := e.ev.ReadResponse20(res.EXI, testcerts.PCID); err != nil || inst.EMAID != e.emaids[2] || inst.Remaining != 0 {
		t.Errorf("prioritized: %+v %v", inst, err)
	}

	// The installation log has every answer.
	log, err := e.d.Store.ListInstallations(ctx, store.InstallationFilter{PCID: testcerts.PCID, Limit: 10})
	if err != nil || len(log) != 6 || log[1].ResponseCode != "WARNING_NoCertificateAvailable" || log[0].Size == 0 {
		t.Errorf("installation log: %d %v", len(log), err)
	}
}

// TestInstall20Refusals: requests that must get no contract.
func TestInstall20Refusals(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		mutate func(t *testing.T, e *install20Env) []byte
		code   string
	}{
		{"garbage", func(*testing.T, *install20Env) []byte { return []byte("not exi") }, ResponseFailed},
		{"signed by another key", func(t *testing.T, e *install20Env) []byte {
			other, _ := e.generate(9, time.Now())
			e.ev.ProvisioningKey = other.Get("oem-prov").Signer()
			r, _ := e.ev.InstallationRequest()
			return r
		}, ResponseSignatureError},
		{"an OEM root unknown here", func(t *testing.T, e *install20Env) []byte {
			other, _ := e.generate(9, time.Now())
			e.ev.ProvisioningChain = []*x509.Certificate{other.Get("oem-prov").Cert, other.Get("oem-sub2").Cert, other.Get("oem-sub1").Cert}
			e.ev.ProvisioningKey, e.ev.X448Key = other.Get("oem-prov").Signer(), other.Get("oem-prov").X448Key
			r, _ := e.ev.InstallationRequest()
			return r
		}, "WARNING_CertificateValidationError"},
		{"no root the vehicle lists", func(t *testing.T, e *install20Env) []byte {
			v2g2, _ := e.d.CA.Authority("v2g-root") // an ISO 15118-2 root only
			e.ev.Roots = []*x509.Certificate{v2g2.Cert}
			r, _ := e.ev.InstallationRequest()
			return r
		}, "WARNING_NoCertificateAvailable"},
		{"roots of the other variant only", func(t *testing.T, e *install20Env) []byte {
			var roots []*x509.Certificate
			for _, n := range []string{"v2g20-root", "mo20-root", "v2g20ed-root", "mo20ed-root"} {
				if a, _ := e.d.CA.Authority(n); !slices.ContainsFunc(e.ev.Roots, a.Cert.Equal) {
					roots = append(roots, a.Cert)
				}
			}
			e.ev.Roots = roots
			r, _ := e.ev.InstallationRequest()
			return r
		}, "WARNING_NoCertificateAvailable"},
		{"a -2 request", func(t *testing.T, e *install20Env) []byte {
			pki2, _ := testcerts.Generate(1, time.Now())
			r, _ := (&EV{ProvisioningCert: pki2.Get("oem-prov").Cert, ProvisioningKey: pki2.Get("oem-prov").Key}).InstallationRequest()
			return r
		}, ResponseFailed},
	} {
		for _, v := range variants20 {
			t.Run(v.name+"/"+tt.name, func(t *testing.T) {
				e := newInstall20Env(t, v.ed)
				before, _ := e.d.Store.CountCertificates(ctx, store.Filter{Profile: e.contract})
				_, err := e.in.Handle20(ctx, tt.mutate(t, e), LimitOCPP21, Options20{})
				var ie *InstallError
				if !errors.As(err, &ie) || ie.ResponseCode != tt.code || ie.Answer == nil {
					t.Fatalf("got %v, want %s", err, tt.code)
				}
				if after, _ := e.d.Store.CountCertificates(ctx, store.Filter{Profile: e.contract}); after != before {
					t.Errorf("a refusal stored %d certificates", after-before)
				}
			})
		}
	}
}

// TestInstall20SizeBound: a station whose own exiResponse limit is below
// an answer's size is refused before anything is issued (no certificate
// stored, none revoked); at the answer's size plus the room for the
// longest contract certificate, it gets its contract.
func TestInstall20SizeBound(t *testing.T) {
	for _, v := range variants20 {
		t.Run(v.name, func(t *testing.T) {
			e := newInstall20Env(t, v.ed)
			ctx := context.Background()
			e.ev.MaxContracts = 1
			req, _ := e.ev.InstallationRequest()
			res, err := e.in.Handle20(ctx, req, LimitOCPP21, Options20{})
			if err != nil {
				t.Fatal(err)
			}
			size := base64.StdEncoding.EncodedLen(len(res.EXI))
			count := func() int64 {
				n, _ := e.d.Store.CountCertificates(ctx, store.Filter{Profile: e.contract})
				return n
			}
			before := count()
			e.ev.SessionID = []byte("SESSION2")
			req, _ = e.ev.InstallationRequest()
			_, err = e.in.Handle20(ctx, req, size-8, Options20{})
			var ie *InstallError
			if !errors.As(err, &ie) || ie.Reason != ReasonTooLarge || ie.ResponseCode != ResponseFailed {
				t.Fatalf("limit %d for an answer of %d: %v", size-8, size, err)
			}
			if count() != before {
				t.Errorf("a refused answer issued %d certificates", count()-before)
			}
			// A P-521 signature in a certificate varies by a few bytes; the
			// bound takes its longest.
			res, err = e.in.Handle20(ctx, req, size+8, Options20{})
			if err != nil || base64.StdEncoding.EncodedLen(len(res.EXI)) > size+8 {
				t.Fatalf("limit %d: %v", size+8, err)
			}
			if count() != before+1 {
				t.Errorf("%d certificates issued, want 1", count()-before)
			}
		})
	}
}

// TestInstall20Deposit: an eMSP with its own -20 MO PKI deposits signed
// contract data for the vehicle (its contract certificate, the key
// encrypted for the vehicle as -20 has it); the vehicle's first answer
// carries it as it is, signed by pncpki's CPS, and decrypts; nothing is
// issued. A deposit whose parts do not fit its variant is refused.
func TestInstall20Deposit(t *testing.T) {
	for _, v := range variants20 {
		t.Run(v.name, func(t *testing.T) {
			e := newInstall20Env(t, v.ed)
			ctx := context.Background()
			if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp2", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8BB"}}); err != nil {
				t.Fatal(err)
			}
			own, err := e.generate(5, time.Now()) // the eMSP's own MO PKI
			if err != nil {
				t.Fatal(err)
			}
			sub2 := own.Get("mo-sub2")
			emaid, _ := policies.ParseEMAID("DE8BBC12345678")
			b := &ca.Builder{Now: time.Now, Rand: rand.Reader, PublicURL: "https://pki.emsp2.example"}
			issuer := &ca.Authority{Name: "emsp2-mo-sub2", Profile: sub2.Profile, Cert: sub2.Cert, Signer: sub2.Signer()}
			profile, _ := policies.Lookup(e.contract)
			var field, dh []byte
			var cert *x509.Certificate
			if v.ed {
				pub, key, _ := ed448.GenerateKey(rand.Reader)
				if cert, err = b.Certify(profile, issuer, nil, pub, policies.Subject{CommonName: emaid.String()}, policies.Period{}); err != nil {
					t.Fatal(err)
				}
				var vehicle x448.Key
				x448.KeyGen(&vehicle, e.ev.X448Key)
				field, dh, err = EncryptPrivateKeyX448(rand.Reader, key, &vehicle, testcerts.PCID, cert.SubjectKeyId)
			} else {
				key, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
				if cert, err = b.Certify(profile, issuer, nil, &key.PublicKey, policies.Subject{CommonName: emaid.String()}, policies.Period{}); err != nil {
					t.Fatal(err)
				}
				field, dh, err = EncryptPrivateKey20(rand.Reader, key, e.ev.ProvisioningChain[0].PublicKey.(*ecdsa.PublicKey), testcerts.PCID, cert.SubjectKeyId)
			}
			if err != nil {
				t.Fatal(err)
			}
			chain := []*x509.Certificate{cert, sub2.Cert, own.Get("mo-sub1").Cert}
			moRoots := []*x509.Certificate{own.Get("mo-root").Cert}
			if _, err := e.in.Pool.PutDeposit(ctx, "emsp2", "", testcerts.PCID, chain, field[1:], dh, moRoots); err == nil {
				t.Error("a short encrypted key was taken")
			}
			if _, err := e.in.Pool.PutDeposit(ctx, "emsp2", "", testcerts.PCID, chain, field, dh, []*x509.Certificate{e.moRoot}); err == nil {
				t.Error("a chain to another MO root was taken")
			}
			if _, err := e.in.Pool.PutDeposit(ctx, "emsp2", "", testcerts.PCID, chain, field, dh, moRoots); err != nil {
				t.Fatal(err)
			}

			before, _ := e.d.Store.CountCertificates(ctx, store.Filter{Profile: e.contract})
			e.ev.Roots = append(e.ev.Roots, moRoots...)
			req, _ := e.ev.InstallationRequest()
			res, err := e.in.Handle20(ctx, req, LimitOCPP21, Options20{})
			if err != nil {
				t.Fatal(err)
			}
			inst, err := e.ev.ReadResponse20(res.EXI, testcerts.PCID)
			if err != nil {
				t.Fatal(err)
			}
			if inst.EMAID != emaid.String() || !inst.ContractChain[0].Equal(cert) || inst.Remaining != 2 {
				t.Errorf("first contract %s (remaining %d), want the deposit's %s", inst.EMAID, inst.Remaining, emaid)
			}
			openssltest.Verify(t, moRoots[0], inst.ContractChain)
			if after, _ := e.d.Store.CountCertificates(ctx, store.Filter{Profile: e.contract}); after != before {
				t.Errorf("a deposit's answer issued %d certificates", after-before)
			}
			log, err := e.d.Store.ListInstallations(ctx, store.InstallationFilter{PCID: testcerts.PCID, Limit: 1})
			if err != nil || len(log) != 1 || log[0].Source != "deposit" || log[0].EMSP != "emsp2" {
				t.Errorf("installation log: %+v %v", log, err)
			}
			// The next request of the session gets a contract of the pool.
			req, _ = e.ev.InstallationRequest()
			res, err = e.in.Handle20(ctx, req, LimitOCPP21, Options20{})
			if err != nil {
				t.Fatal(err)
			}
			if inst, err := e.ev.ReadResponse20(res.EXI, testcerts.PCID); err != nil || inst.EMAID != e.emaids[0] {
				t.Errorf("second contract %+v %v, want %s", inst, err, e.emaids[0])
			}
		})
	}
}

// FuzzHandle20 feeds Handle20 anything: it refuses with an *InstallError
// carrying a -20 answer, or answers with a CertificateInstallationRes whose
// CPS signature verifies; ParseSignedResponse20 takes the same inputs and
// either refuses with an *Error or returns chains.
func FuzzHandle20(f *testing.F) {
	e := newInstall20Env(f, true)
	req, err := e.ev.InstallationRequest()
	if err != nil {
		f.Fatal(err)
	}
	res, err := e.in.Handle20(context.Background(), req, LimitOCPP21, Options20{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req)
	f.Add(req[:len(req)-3])
	f.Add(res.EXI)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := e.in.Handle20(context.Background(), in, LimitOCPP21, Options20{})
		var ie *InstallError
		switch {
		case errors.As(err, &ie):
			if _, derr := exi.ISO20.Decode(ie.Answer); derr != nil {
				t.Fatalf("a refusal's answer does not decode: %v", derr)
			}
		case err != nil:
			t.Fatalf("not an InstallError: %v", err)
		default:
			msg, err := exi.ISO20.Decode(res.EXI)
			if err != nil {
				t.Fatalf("accepted request, undecodable answer: %v", err)
			}
			if _, err := VerifyMessage20(msg); err != nil {
				t.Fatalf("the answer's signature: %v", err)
			}
		}
		data, err := ParseSignedResponse20(in, e.ev.Roots, time.Now())
		var ce *Error
		switch {
		case errors.As(err, &ce):
		case err != nil:
			t.Fatalf("not a contract error: %v", err)
		case len(data.ContractChain) == 0 || len(data.CPSChain) == 0:
			t.Fatalf("accepted without chains: %+v", data)
		}
	})
}
