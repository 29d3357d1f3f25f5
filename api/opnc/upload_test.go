package opnc

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

// emspOwnDir is the data directory of an eMSP that runs its own CPS,
// with its tenant emsp-own (provider ID DEPNC).
func emspOwnDir(t *testing.T) *datadir.Dir {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{Organization: "eMSP own"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp-own", Kind: policies.TenantEMSP, ProviderIDs: []string{"DEPNC"}}); err != nil {
		t.Fatal(err)
	}
	return d
}

// externalResponse is a CertificateInstallationRes that an eMSP with its
// own MO PKI and CPS (testcerts' hierarchies) signed for the vehicle.
func externalResponse(t *testing.T, e *env) []byte {
	t.Helper()
	ctx := context.Background()
	d := emspOwnDir(t)
	p := e.pki
	in := &contract.Installer{Pool: &contract.Pool{Store: d.Store, CA: d.CA},
		CPS: []contract.CPS{{Signer: p.Get("cps-leaf").Key, Chain: append([]*x509.Certificate{p.Get("cps-leaf").Cert}, p.Chain("cps-leaf")...)}},
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return []*x509.Certificate{p.Get("oem-root").Cert}, p.Chain("oem-prov")[:2], nil
		}}
	c := p.Get("contract")
	enc, dh, err := contract.EncryptPrivateKey(rand.Reader, c.Key, e.ev.ProvisioningCert.PublicKey.(*ecdsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Pool.PutDeposit(ctx, "emsp-own", "", testcerts.PCID, append([]*x509.Certificate{c.Cert}, p.Chain("contract")[:2]...), enc, dh, nil); err != nil {
		t.Fatal(err)
	}
	ev := *e.ev
	ev.Roots = []*x509.Certificate{p.Get("v2g-root").Cert, p.Get("mo-root").Cert}
	req, _ := ev.InstallationRequest()
	res, err := in.Handle(ctx, contract.ActionInstall, req, 5600)
	if err != nil {
		t.Fatal(err)
	}
	return res.EXI
}

// TestSignedContractDataUpload: an eMSP whose CPS signed a vehicle's
// contract data uploads it; pncpki checks it and answers the vehicle's
// request with it, signed by its own CPS. A CPO, another eMSP, a foreign
// V2G root, a wrong EMAID and a broken signature are refused and store
// nothing.
func TestSignedContractDataUpload(t *testing.T) {
	e := newEnv(t)
	ctx := store.WithActor(context.Background(), "test")
	signed := externalResponse(t, e)
	if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp-own", Kind: policies.TenantEMSP, ProviderIDs: []string{"DEPNC"}}); err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateKey(e.d.Path)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := key.Mint("emsp-own-backend", "emsp-own", auth.RoleOperator, time.Hour, time.Now())
	body := func(res []byte, emaid string) []byte {
		b, _ := json.Marshal(map[string]string{"certificateInstallationRes": base64.StdEncoding.EncodeToString(res), "emaid": emaid,
			"pcid": testcerts.PCID, "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
		return b
	}
	good := body(signed, testcerts.EMAID)
	validate(t, schema(t, "ccp.api.consolidated.v1.json", "/components/schemas/signedContractData.v1"), good)
	path := "/opnc/v1/ccp/signedcontractdata"
	// The eMSP's V2G root is not in the pool yet.
	if status, out := e.do(t, "PUT", path, "application/json", good, own); status != 400 {
		t.Errorf("CPS under an unknown V2G root: %d %s", status, out)
	}
	for _, u := range []struct {
		use  ocppsec.Use
		name string
	}{{ocppsec.UseV2G, "v2g-root"}, {ocppsec.UseMO, "mo-root"}} {
		if err := e.bridge.AddTrustAnchor(ctx, u.use, e.pki.Get(u.name).Cert, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	tampered := append([]byte(nil), signed...)
	tampered[len(tampered)/2] ^= 0x01
	refusals := []struct {
		name, token string
		body        []byte
		status      int
	}{
		{"a CPO", e.token, good, 403},
		{"an administrator", e.admin, good, 403},
		{"another eMSP", e.emsp, good, 403},
		{"another EMAID", own, body(signed, "DEPNC000000002"), 400},
		{"tampered", own, body(tampered, testcerts.EMAID), 400},
		{"not EXI", own, body([]byte("nope"), testcerts.EMAID), 400},
		{"ISO 15118-20 that is not EXI", own, []byte(`{"certificateInstallationRes":"gA==","emaid":"x","pcid":"y","xsdMsgDefNamespace":"urn:iso:15118:20:2022:MsgDef"}`), 400},
		{"an unknown namespace", own, []byte(`{"certificateInstallationRes":"gA==","emaid":"x","pcid":"y","xsdMsgDefNamespace":"urn:iso:15118:21:2030:MsgDef"}`), 400},
	}
	for _, tt := range refusals {
		if status, out := e.do(t, "PUT", path, "application/json", tt.body, tt.token); status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, status, out, tt.status)
		}
	}
	if list, _ := e.d.Store.ListContractDeposits(ctx, ""); len(list) != 0 {
		t.Fatalf("%d deposits after refusals", len(list))
	}
	if status, out := e.do(t, "PUT", path, "application/json", good, own); status != 201 {
		t.Fatalf("upload: %d %s", status, out)
	}

	// The vehicle (trusting pncpki's V2G root and the eMSP's MO root) gets
	// the uploaded contract, signed by pncpki's CPS.
	v2g, _ := e.d.CA.Authority("v2g-root")
	ev := *e.ev
	ev.Roots = []*x509.Certificate{v2g.Cert, e.pki.Get("mo-root").Cert}
	exiReq, _ := ev.InstallationRequest()
	req, _ := json.Marshal(map[string]string{"certificateInstallationReq": base64.StdEncoding.EncodeToString(exiReq), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	status, out := e.do(t, "POST", path, "application/json", req, e.token)
	if status != 200 {
		t.Fatalf("install: %d %s", status, out)
	}
	var res struct {
		Collection []struct {
			Res string `json:"certificateInstallationRes"`
		} `json:"signedContractDataCollection"`
	}
	json.Unmarshal(out, &res)
	exiRes, _ := base64.StdEncoding.DecodeString(res.Collection[0].Res)
	got, err := ev.ReadResponse(exiRes, ev.ProvisioningKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.EMAID != testcerts.EMAID || !got.ContractKey.Equal(e.pki.Get("contract").Key) || !got.CPSChain[0].Equal(mustCPS(t, e)) {
		t.Errorf("installed %s from CPS %s", got.EMAID, got.CPSChain[0].Subject)
	}
}

func mustCPS(t *testing.T, e *env) *x509.Certificate {
	t.Helper()
	recs, err := e.d.Store.Certificates(context.Background(), store.Filter{Profile: policies.ISO2CPSLeaf})
	if err != nil || len(recs) == 0 {
		t.Fatalf("no CPS leaf: %v", err)
	}
	c, _ := x509.ParseCertificate(recs[0].DER)
	return c
}

// externalResponse20 is an ISO 15118-20 CertificateInstallationRes that an
// eMSP with its own MO PKI and CPS (testcerts' -20 hierarchies of one
// variant) signed for that PKI's vehicle, and the PKI.
func externalResponse20(t *testing.T, ed bool) ([]byte, *testcerts.PKI) {
	t.Helper()
	ctx := context.Background()
	d := emspOwnDir(t)
	generate := testcerts.Generate20
	if ed {
		generate = testcerts.Generate20Ed448
	}
	p, err := generate(3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in := &contract.Installer{Pool: &contract.Pool{Store: d.Store, CA: d.CA},
		CPS20: []contract.CPS{{Signer: p.Get("cps-leaf").Signer(), Chain: append([]*x509.Certificate{p.Get("cps-leaf").Cert}, p.Chain("cps-leaf")...)}},
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return []*x509.Certificate{p.Get("oem-root").Cert}, nil, nil
		}}
	c, prov := p.Get("contract"), p.Get("oem-prov")
	var enc, dh []byte
	if ed {
		var vehicle x448.Key
		x448.KeyGen(&vehicle, prov.X448Key)
		enc, dh, err = contract.EncryptPrivateKeyX448(rand.Reader, c.Ed448Key, &vehicle, testcerts.PCID, c.Cert.SubjectKeyId)
	} else {
		enc, dh, err = contract.EncryptPrivateKey20(rand.Reader, c.Key, prov.Key.Public().(*ecdsa.PublicKey), testcerts.PCID, c.Cert.SubjectKeyId)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Pool.PutDeposit(ctx, "emsp-own", "", testcerts.PCID, append([]*x509.Certificate{c.Cert}, p.Chain("contract")[:2]...), enc, dh, nil); err != nil {
		t.Fatal(err)
	}
	ev := &contract.EV20{ProvisioningChain: append([]*x509.Certificate{prov.Cert}, p.Chain("oem-prov")[:2]...), ProvisioningKey: prov.Signer(),
		X448Key: prov.X448Key, Roots: []*x509.Certificate{p.Get("v2g-root").Cert, p.Get("mo-root").Cert}}
	req, err := ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	res, err := in.Handle20(ctx, req, contract.LimitOCPP21, contract.Options20{})
	if err != nil {
		t.Fatal(err)
	}
	return res.EXI, p
}

// TestSignedContractDataUpload20: an eMSP whose CPS signed a vehicle's ISO
// 15118-20 contract data (either variant) uploads it in OPNC's shape
// (xsdMsgDefNamespace urn:iso:15118:20:2020:MsgDef) or OPCP's
// (urn:iso:15118:20:2022:MsgDef); pncpki checks the CPS chain and
// signature and keeps it as the vehicle's -20 deposit. A broken signature
// is refused and stores nothing.
func TestSignedContractDataUpload20(t *testing.T) {
	for _, v := range []struct {
		name, ns, path, field string
		ed                    bool
	}{
		{"OPNC secp521r1", "urn:iso:15118:20:2020:MsgDef", "/opnc/v1/ccp/signedcontractdata", "certificateInstallationRes", false},
		{"OPCP Ed448", "urn:iso:15118:20:2022:MsgDef", "/opcp/v1/ccp/signedContractData", "signedContractDataXML", true},
	} {
		t.Run(v.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := store.WithActor(context.Background(), "test")
			signed, p := externalResponse20(t, v.ed)
			if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp-own", Kind: policies.TenantEMSP, ProviderIDs: []string{"DEPNC"}}); err != nil {
				t.Fatal(err)
			}
			for _, u := range []struct {
				use  ocppsec.Use
				name string
			}{{ocppsec.UseV2G, "v2g-root"}, {ocppsec.UseMO, "mo-root"}} {
				if err := e.bridge.AddTrustAnchor(ctx, u.use, p.Get(u.name).Cert, "admin"); err != nil {
					t.Fatal(err)
				}
			}
			key, err := auth.LoadOrCreateKey(e.d.Path)
			if err != nil {
				t.Fatal(err)
			}
			own, _ := key.Mint("emsp-own-backend", "emsp-own", auth.RoleOperator, time.Hour, time.Now())
			body := func(res []byte) []byte {
				b, _ := json.Marshal(map[string]string{v.field: base64.StdEncoding.EncodeToString(res), "emaid": testcerts.EMAID,
					"pcid": testcerts.PCID, "xsdMsgDefNamespace": v.ns})
				return b
			}
			if v.field == "signedContractDataXML" {
				validate(t, opcpSchema(t, "ccp.v1.json", "/components/schemas/SignedContractDataRequest"), body(signed))
			} else {
				validate(t, schema(t, "ccp.api.consolidated.v1.json", "/components/schemas/signedContractData.v1"), body(signed))
			}
			tampered := append([]byte(nil), signed...)
			tampered[len(tampered)-40] ^= 0x01
			if status, out := e.do(t, "PUT", v.path, "application/json", body(tampered), own); status != 400 {
				t.Errorf("tampered: %d %s", status, out)
			}
			if list, _ := e.d.Store.ListContractDeposits(ctx, ""); len(list) != 0 {
				t.Fatalf("%d deposits after a refusal", len(list))
			}
			if status, out := e.do(t, "PUT", v.path, "application/json", body(signed), own); status != 201 {
				t.Fatalf("upload: %d %s", status, out)
			}
			d, err := e.d.Store.ContractDeposit(ctx, testcerts.PCID)
			if err != nil || d.EMAID != testcerts.EMAID {
				t.Fatalf("deposit %+v %v", d, err)
			}
			if c, _ := x509.ParseCertificates(d.Chain); len(c) != 3 || !c[0].Equal(p.Get("contract").Cert) {
				t.Errorf("the deposit's chain is not the uploaded one")
			}
		})
	}
}
