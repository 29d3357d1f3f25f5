package opnc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/est"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

// TestContractPool: after an installation, the eMSP finds its contract by
// EMAID and by PCID with the installed certificate, moves the default and
// ends the contract; a CPO sees nothing.
func TestContractPool(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exiReq, _ := e.ev.InstallationRequest()
	body, _ := json.Marshal(map[string]string{"certificateInstallationReq": base64.StdEncoding.EncodeToString(exiReq), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	if status, out := e.do(t, "POST", "/opnc/v1/ccp/signedcontractdata", "application/json", body, e.token); status != 200 {
		t.Fatalf("install: %d %s", status, out)
	}
	c, err := e.server.Pool.Get(ctx, "", "DE8AAC12345678")
	if err != nil {
		t.Fatal(err)
	}
	res := schema(t, "ccp.api.consolidated.v1.json", "/components/schemas/getContractDataRes.v1")
	for _, path := range []string{"/opnc/v1/ccp/contractData/emaid/" + c.EMAID, "/opnc/v1/ccp/contractData/pcid/" + testcerts.PCID} {
		status, out := e.do(t, "GET", path, "", nil, e.emsp)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, out)
		}
		validate(t, res, out)
		if !strings.Contains(string(out), `"contractCertificate"`) || !strings.Contains(string(out), `"defaultContract":true`) {
			t.Errorf("%s: %s", path, out)
		}
		if status, _ := e.do(t, "GET", path, "", nil, e.token); status != 404 {
			t.Errorf("%s as a CPO: %d", path, status)
		}
	}
	// A second contract for the vehicle takes the default.
	second, err := e.server.Pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC87654321", PCID: testcerts.PCID})
	if err != nil {
		t.Fatal(err)
	}
	if status, out := e.do(t, "POST", "/opnc/v1/ccp/signedcontractdata/"+second.EMAID+"/"+testcerts.PCID+"/setdefault", "", nil, e.emsp); status != 200 {
		t.Fatalf("setdefault: %d %s", status, out)
	}
	if got, _ := e.server.Pool.Get(ctx, "", c.EMAID); got.Default {
		t.Error("the first contract is still the default")
	}
	if status, _ := e.do(t, "POST", "/opnc/v1/ccp/signedcontractdata/"+c.EMAID+"/WMIOTHER000000001/setdefault", "", nil, e.emsp); status != 400 {
		t.Errorf("setdefault for another vehicle: %d", status)
	}
	if status, _ := e.do(t, "DELETE", "/opnc/v1/ccp/signedcontractdata/"+c.EMAID, "", nil, e.token); status != 404 {
		t.Errorf("a CPO deletes the eMSP's contract: %d", status)
	}
	if status, out := e.do(t, "DELETE", "/opnc/v1/ccp/signedcontractdata/"+c.EMAID, "", nil, e.emsp); status != 200 {
		t.Fatalf("delete: %d %s", status, out)
	}
	live := false
	recs, _ := e.d.Store.Certificates(ctx, store.Filter{CommonName: c.EMAID, Revoked: &live})
	if len(recs) != 0 {
		t.Errorf("%d live certificates of the ended contract", len(recs))
	}
	if status, _ := e.do(t, "GET", "/opnc/v1/ccp/contractData/emaid/"+c.EMAID, "", nil, e.emsp); status != 404 {
		t.Errorf("the ended contract is still found: %d", status)
	}
}

// TestAnotherEMSPsContract: an eMSP can neither end another eMSP's
// contract in the pool nor revoke its contract certificate through OPNC's
// revokeCertificate; the owner can.
func TestAnotherEMSPsContract(t *testing.T) {
	e := newEnv(t)
	ctx := store.WithActor(context.Background(), "test")
	exiReq, _ := e.ev.InstallationRequest()
	body, _ := json.Marshal(map[string]string{"certificateInstallationReq": base64.StdEncoding.EncodeToString(exiReq), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	if status, out := e.do(t, "POST", "/opnc/v1/ccp/signedcontractdata", "application/json", body, e.token); status != 200 {
		t.Fatalf("install: %d %s", status, out)
	}
	c, _ := e.pool.Get(ctx, "", "DE8AAC12345678")
	recs, err := e.d.Store.Certificates(ctx, store.Filter{Profile: policies.ISO2Contract, CommonName: c.EMAID})
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d contract certificates, %v", len(recs), err)
	}
	if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp2", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE9BB"}}); err != nil {
		t.Fatal(err)
	}
	key, _ := auth.LoadOrCreateKey(e.d.Path)
	other, _ := key.Mint("emsp2-backend", "emsp2", auth.RoleOperator, time.Hour, time.Now())
	r := chi.NewRouter()
	e.server.Mount(r, DefaultPrefix)
	(&est.Server{CA: e.d.CA, Store: e.d.Store, Verify: e.server.Verify}).MountOPNC(r, DefaultPrefix+"/pki")
	e.srv.Config.Handler = r

	if status, _ := e.do(t, "DELETE", "/opnc/v1/ccp/signedcontractdata/"+c.EMAID, "", nil, other); status != 404 {
		t.Errorf("another eMSP ends the contract: %d", status)
	}
	revoke, _ := json.Marshal(map[string]string{"certificate": base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: recs[0].DER})),
		"revocationReason": "privilegeWithdrawn"})
	if status, out := e.do(t, "POST", "/opnc/v1/pki/pki/revokeCertificate", "application/json", revoke, other); status != 403 {
		t.Errorf("another eMSP revokes the contract certificate: %d %s", status, out)
	}
	if cancelled, _ := e.pool.Cancelled(ctx, c.EMAID); cancelled {
		t.Fatal("the contract was ended")
	}
	if rec, _ := e.d.Store.Certificate(ctx, recs[0].Issuer, recs[0].Serial); rec.Revoked() {
		t.Fatal("the contract certificate was revoked")
	}
	if status, out := e.do(t, "POST", "/opnc/v1/pki/pki/revokeCertificate", "application/json", revoke, e.emsp); status != 200 {
		t.Errorf("the owner revokes: %d %s", status, out)
	}
}
