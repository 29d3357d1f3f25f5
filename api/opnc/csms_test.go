package opnc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/est"
	"github.com/pncpki/pncpki/api/oauth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
)

// TestCSMSClient plays a CSMS that knows only a base URL and its client
// credentials: it fetches a token from the OAuth2 endpoint and calls
// pncpki the way MaEVe's OPCP providers call a hosted ecosystem:
// EST for the SECC certificate and the CPO chain, the OPCP root pool, and
// OPCP signed contract data for a vehicle's request, which the vehicle
// then verifies and decrypts.
func TestCSMSClient(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
	e := newEnv(t)
	// pncd's router: EST and the OPCP pools beside the OPNC ones.
	key, err := auth.LoadOrCreateKey(e.d.Path)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) (*auth.Claims, error) { return key.Verify(tok, time.Now()) }
	r := chi.NewRouter()
	(&est.Server{CA: e.d.CA, Store: e.d.Store, Verify: verify}).Mount(r, est.DefaultPrefix)
	e.server.MountOPCP(r, DefaultOPCPPrefix)
	r.Handle(oauth.Path, &oauth.Server{Store: e.d.Store, Key: key})
	e.srv.Config.Handler = r

	// The CSMS's only settings: the base URL and its client credentials.
	secret, err := oauth.CreateClient(context.Background(), e.d.Store, "csms", "cpo1", auth.RoleOperator, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := json.Marshal(map[string]string{"client_id": "csms", "client_secret": secret, "audience": e.srv.URL, "grant_type": "client_credentials"})
	status, out := e.do(t, "POST", oauth.Path, "application/json", creds, "")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if status != 200 || json.Unmarshal(out, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %s", status, out)
	}
	e.token = tok.AccessToken

	// EST: simpleenroll and cacerts with the ISO 15118 version segment.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("DE*ABC*E1", "", "", "CPO")}, k)
	status, out = e.do(t, "POST", "/.well-known/est/cpo/simpleenroll/ISO15118-2", "application/pkcs10", []byte(base64.StdEncoding.EncodeToString(der)), e.token)
	if status != 200 {
		t.Fatalf("simpleenroll: %d %s", status, out)
	}
	leaf := pkcs7Certs(t, out)
	if len(leaf) != 1 || leaf[0].Subject.CommonName != "DE*ABC*E1" {
		t.Fatalf("enrolled %v", leaf)
	}
	status, out = e.do(t, "GET", "/.well-known/est/cpo/cacerts/ISO15118-2", "", nil, e.token)
	if status != 200 {
		t.Fatalf("cacerts: %d %s", status, out)
	}
	if chain := pkcs7Certs(t, out); len(chain) < 2 || leaf[0].CheckSignatureFrom(chain[0]) != nil && leaf[0].CheckSignatureFrom(chain[1]) != nil {
		t.Fatalf("cacerts holds no issuer of the SECC certificate")
	}

	// OPCP root pool, read as MaEVe reads it.
	status, out = e.do(t, "GET", "/opcp/v1/root/rootCerts", "", nil, e.token)
	if status != 200 {
		t.Fatalf("rootCerts: %d %s", status, out)
	}
	var roots struct {
		Collection struct {
			Roots []map[string]any `json:"rootCertificates"`
		} `json:"RootCertificateCollection"`
	}
	if err := json.Unmarshal(out, &roots); err != nil || len(roots.Collection.Roots) != 3 {
		t.Fatalf("%v %s", err, out)
	}
	// rootType filters, in either case; an unknown one is refused.
	for _, tc := range []struct{ query, want string }{{"V2G", "V2G"}, {"mo", "MO"}, {"OEM", "OEM"}} {
		status, out := e.do(t, "GET", "/opcp/v1/root/rootCerts?rootType="+tc.query, "", nil, e.token)
		var got struct {
			Collection struct {
				Roots []map[string]any `json:"rootCertificates"`
			} `json:"RootCertificateCollection"`
		}
		if err := json.Unmarshal(out, &got); status != 200 || err != nil || len(got.Collection.Roots) != 1 || got.Collection.Roots[0]["rootType"] != tc.want {
			t.Errorf("rootType=%s: %d %s", tc.query, status, out)
		}
	}
	if status, out := e.do(t, "GET", "/opcp/v1/root/rootCerts?rootType=CSMS", "", nil, e.token); status != 400 {
		t.Errorf("rootType=CSMS: %d %s", status, out)
	}
	for _, root := range roots.Collection.Roots {
		b, _ := base64.StdEncoding.DecodeString(root["caCertificate"].(string))
		if _, err := x509.ParseCertificate(b); err != nil {
			t.Errorf("caCertificate: %v", err)
		}
		// RootCertV2 allows at most one property as published: each
		// property is checked against its schema.
		for k, v := range root {
			b, _ := json.Marshal(v)
			validate(t, opcpSchema(t, "rcp.v1.json", "/components/schemas/RootCertV2/properties/"+k), b)
		}
	}
	id := roots.Collection.Roots[0]["rootCertificateId"].(string)
	if status, out := e.do(t, "GET", "/opcp/v1/root/rootCerts/"+id, "", nil, e.token); status != 200 || !strings.Contains(string(out), `"RootResponse"`) {
		t.Errorf("rootCerts/{id}: %d %s", status, out)
	}

	// OPCP signed contract data.
	exiReq, _ := e.ev.InstallationRequest()
	body, _ := json.Marshal(map[string]string{"certificateInstallationReq": base64.StdEncoding.EncodeToString(exiReq), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	validate(t, opcpSchema(t, "ccp.v1.json", "/components/schemas/GetSignedContractDataRequest"), body)
	status, out = e.do(t, "POST", "/opcp/v1/ccp/signedContractData", "application/json", body, e.token)
	if status != 200 {
		t.Fatalf("signedContractData: %d %s", status, out)
	}
	validate(t, opcpSchema(t, "ccp.v1.json", "/components/schemas/GetSignedContractDataResponse"), out)
	var ccp struct {
		CCPResponse struct {
			EmaidContent []struct {
				MessageDef struct {
					Res   string `json:"certificateInstallationRes"`
					EMAID string `json:"emaid"`
				} `json:"messageDef"`
			} `json:"emaidContent"`
		} `json:"CCPResponse"`
	}
	if err := json.Unmarshal(out, &ccp); err != nil || len(ccp.CCPResponse.EmaidContent) != 1 {
		t.Fatalf("%v %s", err, out)
	}
	exiRes, _ := base64.StdEncoding.DecodeString(ccp.CCPResponse.EmaidContent[0].MessageDef.Res)
	got, err := e.ev.ReadResponse(exiRes, e.ev.ProvisioningKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.EMAID != ccp.CCPResponse.EmaidContent[0].MessageDef.EMAID {
		t.Errorf("eMAID %s vs %s", got.EMAID, ccp.CCPResponse.EmaidContent[0].MessageDef.EMAID)
	}
}

// pkcs7Certs parses a base64 certs-only PKCS#7 with openssl, as a client
// would.
func pkcs7Certs(t *testing.T, b64 []byte) []*x509.Certificate {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "p7.der")
	os.WriteFile(f, der, 0o644)
	out, err := exec.Command("openssl", "pkcs7", "-inform", "DER", "-in", f, "-print_certs").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs7: %v\n%s", err, out)
	}
	certs, err := datadir.ParseCertificates(out)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// opcpSchema compiles a component of an OPCP OpenAPI document.
func opcpSchema(t *testing.T, file, ref string) *jsonschemaSchema {
	return specSchema(t, filepath.Join("opcp", "OPCP-1.0.0", "reference"), file, ref)
}

// TestCitrineOSClient plays CitrineOS's Hubject client, which takes one
// base URL for everything (pncd with --est-prefixes including
// /opcp/.well-known): a form-encoded client-credentials token request with
// the base URL as audience, the station's PEM CSR to
// {base}/.well-known/cpo/simpleenroll, the chain from .../cacerts, the
// root pool from {base}/v1/root/rootCerts and signed contract data from
// {base}/v1/ccp/signedContractData.
func TestCitrineOSClient(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
	e := newEnv(t)
	key, err := auth.LoadOrCreateKey(e.d.Path)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) (*auth.Claims, error) { return key.Verify(tok, time.Now()) }
	r := chi.NewRouter()
	estServer := &est.Server{CA: e.d.CA, Store: e.d.Store, Verify: verify}
	estServer.Mount(r, est.DefaultPrefix)
	estServer.Mount(r, "/opcp/.well-known")
	e.server.MountOPCP(r, DefaultOPCPPrefix)
	r.Handle(oauth.Path, &oauth.Server{Store: e.d.Store, Key: key})
	e.srv.Config.Handler = r
	base := e.srv.URL + "/opcp"

	secret, err := oauth.CreateClient(context.Background(), e.d.Store, "citrineos", "cpo1", auth.RoleOperator, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"citrineos"}, "client_secret": {secret}, "audience": {base}}
	status, out := e.do(t, "POST", oauth.Path, "application/x-www-form-urlencoded", []byte(form.Encode()), "")
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if status != 200 || json.Unmarshal(out, &tok) != nil || tok.AccessToken == "" || tok.ExpiresIn <= 60 {
		t.Fatalf("token: %d %s", status, out)
	}

	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name("DE*ABC*E2", "", "", "CPO")}, k)
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	status, out = e.do(t, "POST", "/opcp/.well-known/cpo/simpleenroll", "application/pkcs10", csrPEM, tok.AccessToken)
	if status != 200 {
		t.Fatalf("simpleenroll: %d %s", status, out)
	}
	if leaf := pkcs7Certs(t, out); len(leaf) != 1 || leaf[0].Subject.CommonName != "DE*ABC*E2" {
		t.Fatalf("enrolled %v", leaf)
	}
	if status, out := e.do(t, "GET", "/opcp/.well-known/cpo/cacerts", "", nil, tok.AccessToken); status != 200 || len(pkcs7Certs(t, out)) < 2 {
		t.Fatalf("cacerts: %d %s", status, out)
	}
	for _, bad := range [][]byte{[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), append(csrPEM, csrPEM...)} {
		if status, out := e.do(t, "POST", "/opcp/.well-known/cpo/simpleenroll", "application/pkcs10", bad, tok.AccessToken); status != 400 {
			t.Errorf("bad PEM body: %d %s", status, out)
		}
	}

	status, out = e.do(t, "GET", "/opcp/v1/root/rootCerts", "", nil, tok.AccessToken)
	var roots struct {
		Collection struct {
			Roots []struct {
				CACertificate string `json:"caCertificate"`
			} `json:"rootCertificates"`
		} `json:"RootCertificateCollection"`
	}
	if status != 200 || json.Unmarshal(out, &roots) != nil || len(roots.Collection.Roots) == 0 {
		t.Fatalf("rootCerts: %d %s", status, out)
	}

	exiReq, _ := e.ev.InstallationRequest()
	body, _ := json.Marshal(map[string]string{"certificateInstallationReq": base64.StdEncoding.EncodeToString(exiReq), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	status, out = e.do(t, "POST", "/opcp/v1/ccp/signedContractData", "application/json", body, tok.AccessToken)
	var ccp struct {
		CCPResponse struct {
			EmaidContent []struct {
				MessageDef struct {
					Res string `json:"certificateInstallationRes"`
				} `json:"messageDef"`
			} `json:"emaidContent"`
		} `json:"CCPResponse"`
	}
	if status != 200 || json.Unmarshal(out, &ccp) != nil || len(ccp.CCPResponse.EmaidContent) != 1 {
		t.Fatalf("signedContractData: %d %s", status, out)
	}
	exiRes, _ := base64.StdEncoding.DecodeString(ccp.CCPResponse.EmaidContent[0].MessageDef.Res)
	if _, err := e.ev.ReadResponse(exiRes, e.ev.ProvisioningKey); err != nil {
		t.Fatal(err)
	}
}
