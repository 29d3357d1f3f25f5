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
	"time"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
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
		{"ISO 15118-20 for a -2 vehicle", path + "?xsdMsgDefNamespace=urn:iso:15118:20:2022:MsgDef", e.oem, 400},
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

// TestProvideSignedContractData20: for a vehicle registered with an ISO
// 15118-20 provisioning certificate (either variant), an OEM back end gets
// -20 signed contract data without a vehicle request, in OPNC's and
// OPCP's shapes with their -20 namespace; the vehicle verifies and
// decrypts it. Asking for -2 data is refused before anything is issued.
func TestProvideSignedContractData20(t *testing.T) {
	for _, v := range []struct {
		name     string
		generate func(uint64, time.Time) (*testcerts.PKI, error)
		root     string
	}{{"secp521r1", testcerts.Generate20, "v2g20-root"}, {"Ed448", testcerts.Generate20Ed448, "v2g20ed-root"}} {
		t.Run(v.name, func(t *testing.T) {
			e := newEnvWith(t, true)
			ctx := store.WithActor(context.Background(), "test")
			pki, err := v.generate(4, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			prov := pki.Get("oem-prov")
			if err := e.bridge.AddTrustAnchor(ctx, ocppsec.UseOEM, pki.Get("oem-root").Cert, "admin"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.pool.PutProvisioning(ctx, "oem1", "", append([]*x509.Certificate{prov.Cert}, pki.Chain("oem-prov")[:2]...),
				[]*x509.Certificate{pki.Get("oem-root").Cert}); err != nil {
				t.Fatal(err)
			}
			emaid, _ := policies.ParseEMAID("DE8AAC12345678")
			v2g, _ := e.d.CA.Authority(v.root)
			mo, _ := e.d.CA.Authority(strings.Replace(v.root, "v2g", "mo", 1))
			ev := &contract.EV20{ProvisioningChain: []*x509.Certificate{prov.Cert}, ProvisioningKey: prov.Signer(), X448Key: prov.X448Key,
				Roots: []*x509.Certificate{v2g.Cert, mo.Cert}, SessionID: []byte{0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78}}
			before, _ := e.d.Store.CountCertificates(ctx, store.Filter{})
			path := "/opnc/v1/ccp/signedcontractdata/" + emaid.String() + "/" + testcerts.PCID
			if status, out := e.do(t, "GET", path+"?xsdMsgDefNamespace="+ocppsec.ISO15118v2Schema, "", nil, e.oem); status != 400 {
				t.Errorf("-2 data for a -20 vehicle: %d %s", status, out)
			}
			if after, _ := e.d.Store.CountCertificates(ctx, store.Filter{}); after != before {
				t.Errorf("a refused request issued %d certificates", after-before)
			}
			status, out := e.do(t, "GET", path+"?sessionID=12345678&xsdMsgDefNamespace=urn:iso:15118:20:2020:MsgDef", "", nil, e.oem)
			if status != 200 {
				t.Fatalf("provide: %d %s", status, out)
			}
			validate(t, schema(t, "ccp.api.consolidated.v1.json", "/components/schemas/getSignedContractDataRes.v1"), out)
			var res struct {
				Collection []struct {
					Res string `json:"certificateInstallationRes"`
					NS  string `json:"xsdMsgDefNamespace"`
				} `json:"signedContractDataCollection"`
			}
			json.Unmarshal(out, &res)
			if res.Collection[0].NS != "urn:iso:15118:20:2020:MsgDef" {
				t.Errorf("namespace %q", res.Collection[0].NS)
			}
			exiRes, _ := base64.StdEncoding.DecodeString(res.Collection[0].Res)
			got, err := ev.ReadResponse20(exiRes, testcerts.PCID)
			if err != nil {
				t.Fatal(err)
			}
			if got.EMAID != emaid.String() || got.Remaining != 0 {
				t.Errorf("eMAID %s, %d remaining", got.EMAID, got.Remaining)
			}
			status, out = e.do(t, "GET", "/opcp/v1/ccp/provideSignedContractData/"+emaid.String()+"/"+testcerts.PCID+"?sessionID=12345678", "", nil, e.emsp)
			if status != 200 || !strings.Contains(string(out), "urn:iso:15118:20:2022:MsgDef") {
				t.Fatalf("OPCP provide: %d %s", status, out)
			}
			validate(t, opcpSchema(t, "ccp.v1.json", "/components/schemas/ProvideContractDataResponse"), out)
		})
	}
}
