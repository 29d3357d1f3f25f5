package ocppsec

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
	"github.com/pncpki/pncpki/testcerts/zlinttest"
)

const evEMAID = "DE8AAC12345678D"

// withInstaller gives the bridge a contract service with the datadir's CPS,
// an eMSP contract for the testcerts vehicle, and the testcerts OEM roots.
func withInstaller(t *testing.T, e *bridgeEnv) *contract.EV {
	t.Helper()
	ctx := context.Background()
	if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
		t.Fatal(err)
	}
	pool := &contract.Pool{Store: e.d.Store, CA: e.d.CA}
	if _, err := pool.Put(ctx, "emsp1", store.Contract{EMAID: evEMAID, PCID: testcerts.PCID, Default: true}); err != nil {
		t.Fatal(err)
	}
	oem, err := testcerts.Generate(7, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cps, err := contract.LoadCPS(ctx, e.d.CA, "softkms:path="+datadir.CPSLeafKey, filepath.Join(e.d.Path, "cps-leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e.b.Contracts = pool
	e.b.Installer = &contract.Installer{Pool: pool, CPS: []contract.CPS{cps},
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return []*x509.Certificate{oem.Get("oem-root").Cert}, oem.Chain("oem-prov")[:2], nil
		}}
	v2g, _ := e.d.CA.Authority("v2g-root")
	mo, _ := e.d.CA.Authority("mo-root")
	return &contract.EV{ProvisioningCert: oem.Get("oem-prov").Cert, ProvisioningKey: oem.Get("oem-prov").Key,
		Roots: []*x509.Certificate{v2g.Cert, mo.Cert}}
}

// TestGet15118EVCertificate plays the vehicle through the bridge in every
// OCPP flavour: 2.0.1 Install and Update, 2.1, the OCPP 1.6 Plug and Charge
// DataTransfer and has.to.be's variant; each answer validates against its
// official schema and the vehicle can use it.
func TestGet15118EVCertificate(t *testing.T) {
	e := newBridgeEnv(t)
	ev := withInstaller(t, e)
	ctx := context.Background()
	install, err := ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	exiReq := base64.StdEncoding.EncodeToString(install)

	// OCPP 2.0.1 and 2.1.
	var installed *contract.Installed
	for _, d := range []Dialect{OCPP201, OCPP21} {
		req := Get15118EVCertificateRequest{ISO15118SchemaVersion: ISO15118v2Schema, Action: "Install", EXIRequest: exiReq}
		res, err := e.b.Handle(ctx, "CS-1", d, "Get15118EVCertificate", mustJSON(t, req))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, d, "Get15118EVCertificate", true, res.Response)
		r := res.Response.(*Get15118EVCertificateResponse)
		if r.Status != "Accepted" {
			t.Fatalf("%s: %+v %+v", d, r, r.StatusInfo)
		}
		if installed, err = readEXI(ev, r.EXIResponse, ev.ProvisioningKey); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	checkContractChain(t, e, installed.ContractChain)

	// Update with the installed contract.
	upd, err := ev.UpdateRequest(installed.ContractChain, installed.ContractKey, installed.EMAID)
	if err != nil {
		t.Fatal(err)
	}
	req := Get15118EVCertificateRequest{ISO15118SchemaVersion: ISO15118v2Schema, Action: "Update", EXIRequest: base64.StdEncoding.EncodeToString(upd)}
	res, err := e.b.Handle(ctx, "CS-1", OCPP201, "Get15118EVCertificate", mustJSON(t, req))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Response.(*Get15118EVCertificateResponse)
	if r.Status != "Accepted" {
		t.Fatalf("update: %+v %+v", r, r.StatusInfo)
	}
	updated, err := readEXI(ev, r.EXIResponse, installed.ContractKey)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	checkContractChain(t, e, updated.ContractChain)

	// OCPP 1.6: the OCA DataTransfer (2.0.1 payload) and has.to.be's.
	for _, tt := range []struct {
		vendor string
		inner  any
	}{
		{VendorOCA, Get15118EVCertificateRequest{ISO15118SchemaVersion: ISO15118v2Schema, Action: "Install", EXIRequest: exiReq}},
		{VendorHas2be, Has2beGet15118EVCertificateRequest{SchemaVersion: ISO15118v2Schema, EXIRequest: exiReq}},
	} {
		dt := DataTransfer16{VendorID: tt.vendor, MessageID: "Get15118EVCertificate", Data: string(mustJSON(t, tt.inner))}
		res, err := e.b.Handle(ctx, "CS-2", OCPP16, "DataTransfer", mustJSON(t, dt))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, OCPP16, "DataTransfer", true, res.Response)
		out := res.Response.(*DataTransfer16Response)
		var inner struct {
			Status      string `json:"status"`
			EXIResponse string `json:"exiResponse"`
		}
		if err := json.Unmarshal([]byte(out.Data), &inner); err != nil || out.Status != "Accepted" || inner.Status != "Accepted" {
			t.Fatalf("%s: %+v (%v)", tt.vendor, out, err)
		}
		d := OCPP201
		if tt.vendor == VendorHas2be {
			d = Has2be
		}
		m, _ := Lookup(d, "Get15118EVCertificate")
		v := newValue(m.Response)
		json.Unmarshal([]byte(out.Data), v)
		e.schema(t, d, "Get15118EVCertificate", true, v)
		if _, err := readEXI(ev, inner.EXIResponse, ev.ProvisioningKey); err != nil {
			t.Fatalf("%s: %v", tt.vendor, err)
		}
	}

	// A cancelled contract: Failed with its own reason and the vehicle's
	// ResponseCode in additionalInfo; Authorize says ContractCancelled.
	if _, _, err := e.b.Contracts.(*contract.Pool).Cancel(ctx, "emsp1", evEMAID); err != nil {
		t.Fatal(err)
	}
	again, _ := ev.InstallationRequest() // ECDSA signs anew: not the cached answer
	req = Get15118EVCertificateRequest{ISO15118SchemaVersion: ISO15118v2Schema, Action: "Install", EXIRequest: base64.StdEncoding.EncodeToString(again)}
	res, err = e.b.Handle(ctx, "CS-1", OCPP201, "Get15118EVCertificate", mustJSON(t, req))
	if err != nil {
		t.Fatal(err)
	}
	e.schema(t, OCPP201, "Get15118EVCertificate", true, res.Response)
	r = res.Response.(*Get15118EVCertificateResponse)
	if r.Status != "Failed" || r.StatusInfo.ReasonCode != contract.ReasonCancelled || !strings.Contains(r.StatusInfo.AdditionalInfo, contract.ResponseContractCanceled) {
		t.Fatalf("cancelled: %+v %+v", r, r.StatusInfo)
	}
}

// checkContractChain lints an installed contract chain (ours and zlint)
// and verifies it with openssl to the MO root.
func checkContractChain(t *testing.T, e *bridgeEnv, chain []*x509.Certificate) {
	t.Helper()
	p, _ := policies.Lookup(policies.ISO2Contract)
	if vs := p.Check(chain[0], policies.SECCBoth); len(vs) > 0 {
		t.Errorf("contract certificate: %v", vs)
	}
	for _, c := range chain {
		zlinttest.Check(t, c.Subject.CommonName, c.Raw)
	}
	verifyOpenSSL(t, e, chain, policies.ISO2Contract)
}

func readEXI(ev *contract.EV, b64 string, key *ecdsa.PrivateKey) (*contract.Installed, error) {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	return ev.ReadResponse(b, key)
}

// withInstaller20 gives a bridge whose data directory has the ISO 15118-20
// hierarchies a contract service with all CPS identities, two contracts
// of an eMSP for the vehicle of the -20 test PKI of one variant (the
// first its default), and that PKI's OEM root; it returns the vehicle.
func withInstaller20(t *testing.T, e *bridgeEnv, ed bool) (*contract.EV20, *testcerts.PKI) {
	t.Helper()
	ctx := context.Background()
	if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}}); err != nil {
		t.Fatal(err)
	}
	pool := &contract.Pool{Store: e.d.Store, CA: e.d.CA}
	for i, emaid := range []string{"DE8AAC2000000A", "DE8AAC2000000B"} {
		if _, err := pool.Put(ctx, "emsp1", store.Contract{EMAID: emaid, PCID: testcerts.PCID, Default: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	generate, suffix := testcerts.Generate20, "20"
	if ed {
		generate, suffix = testcerts.Generate20Ed448, "20ed"
	}
	oem, err := generate(7, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var cps []contract.CPS // -2, then -20
	for _, f := range append([]struct{ Key, Cert string }{{datadir.CPSLeafKey, "cps-leaf.pem"}}, datadir.CPS20Leaves...) {
		c, err := contract.LoadCPS(ctx, e.d.CA, "softkms:path="+f.Key, filepath.Join(e.d.Path, f.Cert))
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, c)
	}
	e.b.Contracts = pool
	e.b.Installer = &contract.Installer{Pool: pool, CPS: cps[:1], CPS20: cps[1:],
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return []*x509.Certificate{oem.Get("oem-root").Cert}, nil, nil
		}}
	v2g, _ := e.d.CA.Authority("v2g" + suffix + "-root")
	mo, _ := e.d.CA.Authority("mo" + suffix + "-root")
	return &contract.EV20{ProvisioningChain: []*x509.Certificate{oem.Get("oem-prov").Cert, oem.Get("oem-sub2").Cert, oem.Get("oem-sub1").Cert},
		ProvisioningKey: oem.Get("oem-prov").Signer(), X448Key: oem.Get("oem-prov").X448Key,
		Roots: []*x509.Certificate{v2g.Cert, mo.Cert}, MaxContracts: 1}, oem
}

// TestGet15118EVCertificate20 plays an ISO 15118-20 vehicle of each
// variant (secp521r1, Ed448/X448) through the bridge over OCPP 2.1: the
// station passes its maximumContractCertificateChains, each answer
// validates against the official 2.1 schema and carries
// remainingContracts, the vehicle reads and decrypts every contract, and
// asks until none remains. Over 2.0.1 the -20 schema is refused with an
// answer the vehicle can read.
func TestGet15118EVCertificate20(t *testing.T) {
	for _, v := range []struct {
		name string
		ed   bool
	}{{"secp521r1", false}, {"Ed448", true}} {
		t.Run(v.name, func(t *testing.T) { testGet15118EVCertificate20(t, v.ed) })
	}
}

func testGet15118EVCertificate20(t *testing.T, ed bool) {
	e := newBridgeEnvWith(t, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE", ISO20: true}, "")
	ctx := context.Background()
	ev, _ := withInstaller20(t, e, ed)
	maxChains := int32(5) // the station's copy overrides the request's 1
	var got []string
	for i := 0; ; i++ {
		exiReq, err := ev.InstallationRequest()
		if err != nil {
			t.Fatal(err)
		}
		req := Get15118EVCertificateRequest{ISO15118SchemaVersion: contract.ISO15118v20Schema, Action: "Install",
			EXIRequest: base64.StdEncoding.EncodeToString(exiReq), MaximumContractCertificateChains: &maxChains}
		res, err := e.b.Handle(ctx, "CS-1", OCPP21, "Get15118EVCertificate", mustJSON(t, req))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, OCPP21, "Get15118EVCertificate", true, res.Response)
		r := res.Response.(*Get15118EVCertificateResponse)
		if r.Status != "Accepted" || r.RemainingContracts == nil {
			t.Fatalf("request %d: %+v %+v", i+1, r, r.StatusInfo)
		}
		answer, _ := base64.StdEncoding.DecodeString(r.EXIResponse)
		inst, err := ev.ReadResponse20(answer, testcerts.PCID)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if int(*r.RemainingContracts) != inst.Remaining {
			t.Errorf("remainingContracts %d, the answer says %d", *r.RemainingContracts, inst.Remaining)
		}
		got = append(got, inst.EMAID)
		if inst.Remaining == 0 {
			break
		}
		if i > 3 {
			t.Fatal("contracts do not run out")
		}
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "DE8AAC2000000A") || !strings.HasPrefix(got[1], "DE8AAC2000000B") {
		t.Errorf("contracts %v", got)
	}
	// ISO 15118-20 over 2.0.1: refused, with a -20 answer.
	exiReq, _ := ev.InstallationRequest()
	req := Get15118EVCertificateRequest{ISO15118SchemaVersion: contract.ISO15118v20Schema, Action: "Install", EXIRequest: base64.StdEncoding.EncodeToString(exiReq)}
	res, err := e.b.Handle(ctx, "CS-1", OCPP201, "Get15118EVCertificate", mustJSON(t, req))
	if err != nil {
		t.Fatal(err)
	}
	e.schema(t, OCPP201, "Get15118EVCertificate", true, res.Response)
	r := res.Response.(*Get15118EVCertificateResponse)
	answer, _ := base64.StdEncoding.DecodeString(r.EXIResponse)
	if _, err := ev.ReadResponse20(answer, testcerts.PCID); r.Status != "Failed" || r.StatusInfo.ReasonCode != ReasonUnsupportedSchema || err == nil || !strings.Contains(err.Error(), "ResponseCode FAILED") {
		t.Errorf("2.0.1: %+v %+v; the answer reads as %v", r, r.StatusInfo, err)
	}
}
