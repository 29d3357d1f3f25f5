package opnc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

// TestOPCPPools: the provisioning and contract pools in OPCP's shapes,
// bodies checked against OPCP's documents: an OEM uploads and reads its
// vehicle's chain, the eMSP looks up, defaults and deletes its contract,
// and an eMSP with its own CPS uploads signed contract data.
func TestOPCPPools(t *testing.T) {
	e := newEnv(t)
	ctx := store.WithActor(context.Background(), "test")
	b64 := func(name string) string { return base64.StdEncoding.EncodeToString(e.pki.Get(name).Cert.Raw) }

	// Provisioning certificate pool.
	body, _ := json.Marshal(map[string]any{"vehicleCertificate": b64("oem-prov"), "subCA2Certificate": b64("oem-sub2"), "subCA1Certificate": b64("oem-sub1"),
		"xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	validate(t, opcpSchema(t, "pcp.v1.json", "/components/schemas/ProvisioningCertificate"), body)
	if status, out := e.do(t, "PUT", "/opcp/v1/oem/provCerts", "application/json", body, e.token); status != 403 {
		t.Errorf("a CPO uploads: %d %s", status, out)
	}
	if status, out := e.do(t, "PUT", "/opcp/v1/oem/provCerts", "application/json", []byte(`{"vehicleCertificate":"`+b64("oem-prov")+`","xsdMsgDefNamespace":"urn:iso:15118:2:2013:MsgDef"}`), e.oem); status != 400 {
		t.Errorf("no subCA1Certificate: %d %s", status, out)
	}
	status, out := e.do(t, "PUT", "/opcp/v1/oem/provCerts", "application/json", body, e.oem)
	if status != 200 {
		t.Fatalf("upload: %d %s", status, out)
	}
	validate(t, opcpSchema(t, "pcp.v1.json", "/components/schemas/ProvisioningCertificateData"), out)
	status, out = e.do(t, "GET", "/opcp/v1/oem/provCerts/"+testcerts.PCID, "", nil, e.oem)
	if status != 200 || !strings.Contains(string(out), b64("oem-sub1")) {
		t.Fatalf("get: %d %s", status, out)
	}
	validate(t, opcpSchema(t, "pcp.v1.json", "/components/schemas/GetProvisioningCertificateResponse"), out)
	if status, _ := e.do(t, "GET", "/opcp/v1/oem/provCerts/lookupVehicle/"+testcerts.PCID, "", nil, e.token); status != 200 {
		t.Errorf("lookupVehicle: %d", status)
	}

	// Contract pool lookups, default and delete.
	for _, path := range []string{"/opcp/v1/ccp/lookupContract/DE8AAC12345678", "/opcp/v1/ccp/signedContractData/" + testcerts.PCID} {
		status, out := e.do(t, "GET", path, "", nil, e.emsp)
		if status != 200 || !strings.Contains(string(out), `"XMLContracts"`) {
			t.Fatalf("%s: %d %s", path, status, out)
		}
		validate(t, opcpSchema(t, "ccp.v1.json", "/components/schemas/LookupContractResponse"), out)
		if status, _ := e.do(t, "GET", path, "", nil, e.token); status != 404 {
			t.Errorf("a CPO reads %s: %d", path, status)
		}
	}
	c, _ := e.pool.Get(ctx, "", "DE8AAC12345678")
	if status, out := e.do(t, "POST", "/opcp/v1/ccp/signedContractData/"+testcerts.PCID+"/"+c.EMAID+"/default", "", nil, e.emsp); status != 200 {
		t.Errorf("default: %d %s", status, out)
	}
	if status, _ := e.do(t, "DELETE", "/opcp/v1/ccp/signedContractData/"+c.EMAID, "", nil, e.oem); status != 404 {
		t.Errorf("an OEM deletes a contract: %d", status)
	}
	if status, out := e.do(t, "DELETE", "/opcp/v1/ccp/signedContractData/"+c.EMAID, "", nil, e.emsp); status != 200 {
		t.Errorf("delete: %d %s", status, out)
	}
	if cancelled, _ := e.pool.Cancelled(ctx, c.EMAID); !cancelled {
		t.Error("the contract is not cancelled")
	}

	// Upload in OPCP's shape.
	signed := externalResponse(t, e)
	if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp-own", Kind: policies.TenantEMSP, ProviderIDs: []string{"DEPNC"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"v2g-root", "mo-root"} {
		u := ocppsec.UseV2G
		if name == "mo-root" {
			u = ocppsec.UseMO
		}
		if err := e.bridge.AddTrustAnchor(ctx, u, e.pki.Get(name).Cert, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := auth.LoadOrCreateKey(e.d.Path)
	own, _ := key.Mint("emsp-own-backend", "emsp-own", auth.RoleOperator, time.Hour, time.Now())
	body, _ = json.Marshal(map[string]string{"xsdMsgDefNamespace": ocppsec.ISO15118v2Schema, "emaid": testcerts.EMAID, "pcid": testcerts.PCID,
		"signedContractDataXML": base64.StdEncoding.EncodeToString(signed)})
	validate(t, opcpSchema(t, "ccp.v1.json", "/components/schemas/SignedContractDataRequest"), body)
	if status, out := e.do(t, "PUT", "/opcp/v1/ccp/signedContractData", "application/json", body, e.token); status != 403 {
		t.Errorf("a CPO uploads: %d %s", status, out)
	}
	if status, out := e.do(t, "PUT", "/opcp/v1/ccp/signedContractData", "application/json", body, own); status != 201 {
		t.Fatalf("upload: %d %s", status, out)
	}
	if d, err := e.d.Store.ContractDeposit(ctx, testcerts.PCID); err != nil || d.EMAID != testcerts.EMAID {
		t.Errorf("deposit %v %v", d, err)
	}
}
