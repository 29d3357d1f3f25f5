package opnc

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

// TestProvideSignedContractData: an OEM back end gets signed contract
// data for its vehicle without a vehicle request (OPNC and OPCP); the
// vehicle verifies and decrypts it. Others, a wrong PCID, a bad session
// ID, an unknown CPS root and an unregistered vehicle are refused.
func TestProvideSignedContractData(t *testing.T) {
	e := newEnv(t)
	ctx := store.WithActor(context.Background(), "test")
	emaid, _ := policies.ParseEMAID("DE8AAC12345678")
	path := "/opnc/v1/ccp/signedcontractdata/" + emaid.String() + "/" + testcerts.PCID
	if status, out := e.do(t, "GET", path, "", nil, e.emsp); status != 404 || !strings.Contains(string(out), "provisioning certificate") {
		t.Errorf("unregistered vehicle: %d %s", status, out)
	}
	if _, err := e.pool.PutProvisioning(ctx, "oem1", "", []*x509.Certificate{e.pki.Get("oem-prov").Cert}, nil); err != nil {
		t.Fatal(err)
	}
	session := hex.EncodeToString(contract.SessionID)
	v2g, _ := e.d.CA.Authority("v2g-root")
	fp := sha256.Sum256(v2g.Cert.Raw)
	status, out := e.do(t, "GET", path+"?sessionID="+session+"&cpsV2GRootCertificateFingerprint="+hex.EncodeToString(fp[:]), "", nil, e.oem)
	if status != 200 {
		t.Fatalf("provide: %d %s", status, out)
	}
	validate(t, schema(t, "ccp.api.consolidated.v1.json", "/components/schemas/getSignedContractDataRes.v1"), out)
	var res struct {
		Collection []struct {
			Res string `json:"certificateInstallationRes"`
		} `json:"signedContractDataCollection"`
	}
	json.Unmarshal(out, &res)
	exiRes, _ := base64.StdEncoding.DecodeString(res.Collection[0].Res)
	got, err := e.ev.ReadResponse(exiRes, e.ev.ProvisioningKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.EMAID != emaid.String() {
		t.Errorf("eMAID %s", got.EMAID)
	}

	// OPCP's shape, as the contract's eMSP.
	status, out = e.do(t, "GET", "/opcp/v1/ccp/provideSignedContractData/"+emaid.String()+"/"+testcerts.PCID+"?sessionID="+session, "", nil, e.emsp)
	if status != 200 {
		t.Fatalf("OPCP provide: %d %s", status, out)
	}
	validate(t, opcpSchema(t, "ccp.v1.json", "/components/schemas/ProvideContractDataResponse"), out)

	before, _ := e.d.Store.Certificates(ctx, store.Filter{Profile: policies.ISO2Contract})
	for _, tt := range []struct {
		name, path, token string
		status            int
	}{
		{"a CPO", path, e.token, 404},
		{"another PCID", "/opnc/v1/ccp/signedcontractdata/" + emaid.String() + "/WMIPNCTEST0000099", e.oem, 404},
		{"bad session ID", path + "?sessionID=XYZ", e.oem, 400},
		{"long session ID", path + "?sessionID=" + strings.Repeat("00", 9), e.oem, 400},
		{"unknown CPS root", path + "?cpsV2GRootCertificateFingerprint=" + strings.Repeat("ab", 32), e.oem, 404},
		{"ISO 15118-20", path + "?xsdMsgDefNamespace=urn:iso:15118:20:2022:MsgDef", e.oem, 400},
		{"bad EMAID", "/opnc/v1/ccp/signedcontractdata/DE8/" + testcerts.PCID, e.oem, 400},
	} {
		if status, out := e.do(t, "GET", tt.path, "", nil, tt.token); status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, status, out, tt.status)
		}
	}
	if after, _ := e.d.Store.Certificates(ctx, store.Filter{Profile: policies.ISO2Contract}); len(after) != len(before) {
		t.Errorf("refusals issued %d contract certificates", len(after)-len(before))
	}
}
