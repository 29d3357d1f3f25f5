package opnc

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/testcerts"
)

// TestProvisioningPool: an OEM uploads, reads and removes a provisioning
// certificate chain in OPNC's shape; a CPO cannot upload; lookupvehicle
// says whether pncpki knows a PCID.
func TestProvisioningPool(t *testing.T) {
	e := newEnv(t)
	b64 := func(name string) string { return base64.StdEncoding.EncodeToString(e.pki.Get(name).Cert.Raw) }
	body, _ := json.Marshal(map[string]any{
		"provisioningCertificateChain": map[string]string{"certificate": b64("oem-prov"), "subCa2Certificate": b64("oem-sub2"), "subCa1Certificate": b64("oem-sub1")},
		"xsdMsgDefNamespace":           ocppsec.ISO15118v2Schema,
		"rootIssuerSerialNumber":       strings.ToLower(e.pki.Get("oem-root").Cert.SerialNumber.Text(16)),
	})
	validate(t, schema(t, "pcp.api.consolidated.v1.json", "/components/requestBodies/putProvisioningCertificateReq.v1/content/application~1json/schema"), body)
	path := "/opnc/v1/pcp/provisioningcertificates"
	if status, out := e.do(t, "PUT", path, "application/json", body, e.token); status != 403 {
		t.Errorf("a CPO uploads a provisioning certificate: %d %s", status, out)
	}
	if status, out := e.do(t, "GET", "/opnc/v1/pcp/lookupvehicle/"+"WMIPNCTEST0000099", "", nil, e.token); status != 404 {
		t.Errorf("unknown vehicle: %d %s", status, out)
	}
	if status, out := e.do(t, "PUT", path, "application/json", body, e.oem); status != 200 {
		t.Fatalf("upload: %d %s", status, out)
	}
	status, out := e.do(t, "GET", path+"/"+testcerts.PCID, "", nil, e.oem)
	if status != 200 {
		t.Fatalf("get: %d %s", status, out)
	}
	validate(t, schema(t, "pcp.api.consolidated.v1.json", "/components/schemas/getProvisioningCertificateRes.v1"), out)
	if !strings.Contains(string(out), b64("oem-prov")) || !strings.Contains(string(out), b64("oem-sub1")) {
		t.Errorf("get: %s", out)
	}
	if status, _ := e.do(t, "GET", path+"/"+testcerts.PCID, "", nil, e.token); status != 404 {
		t.Errorf("a CPO reads the OEM's certificate: %d", status)
	}
	// eMSPs read it: they encrypt contract keys for the vehicle.
	if status, out := e.do(t, "GET", path+"/"+testcerts.PCID, "", nil, e.emsp); status != 200 || !strings.Contains(string(out), b64("oem-prov")) {
		t.Errorf("an eMSP reads the vehicle's certificate: %d %s", status, out)
	}
	if status, _ := e.do(t, "GET", "/opnc/v1/pcp/lookupvehicle/"+testcerts.PCID, "", nil, e.token); status != 200 {
		t.Errorf("lookupvehicle: %d", status)
	}
	for _, bad := range []string{`{"provisioningCertificateChain":{"certificate":"!!"},"xsdMsgDefNamespace":"urn:iso:15118:2:2013:MsgDef","fingerprint":"x"}`,
		`{"provisioningCertificateChain":{"certificate":"` + b64("oem-sub2") + `"},"xsdMsgDefNamespace":"urn:iso:15118:2:2013:MsgDef","fingerprint":"x"}`} {
		if status, out := e.do(t, "PUT", path, "application/json", []byte(bad), e.oem); status != 400 {
			t.Errorf("bad upload: %d %s", status, out)
		}
	}
	if status, _ := e.do(t, "DELETE", path+"/"+testcerts.PCID, "", nil, e.token); status != 404 {
		t.Errorf("a CPO deletes: %d", status)
	}
	if status, out := e.do(t, "DELETE", path+"/"+testcerts.PCID, "", nil, e.oem); status != 200 {
		t.Errorf("delete: %d %s", status, out)
	}
}
