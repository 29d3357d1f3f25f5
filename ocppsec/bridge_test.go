package ocppsec

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"github.com/cloudflare/circl/sign/ed448"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ca"
	contractpool "github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts/openssltest"
)

type bridgeEnv struct {
	d      *datadir.Dir
	b      *Bridge
	resp   *ocsp.Responder
	schema func(t *testing.T, d Dialect, action string, response bool, payload any)
}

func newBridgeEnv(t *testing.T) *bridgeEnv {
	return newBridgeEnvWith(t, datadir.InitConfig{Organization: "Test"}, "")
}

// newBridgeEnvWith is newBridgeEnv with the hierarchy named by cfg under
// publicURL ("" pncd's default).
func newBridgeEnvWith(t *testing.T, cfg datadir.InitConfig, publicURL string) *bridgeEnv {
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
		{Name: "cpo1", Kind: policies.TenantCPO, Organization: "Example CPO", OperatorIDs: []string{"DEABC"}},
		{Name: "cpo2", Kind: policies.TenantCPO, Organization: "Other CPO", OperatorIDs: []string{"DEXYZ"}},
	} {
		if err := d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for _, st := range []*store.Station{
		{ID: "CS-1", Tenant: "cpo1", SerialNumber: "SN-0001", EVSEIDs: []string{"DEABCE0001", "DEABCE0002"}, SECCIDs: []string{"DEABCS0123456789ABCDEF0123456789ABCDEFX"}, OCPPVersion: "2.0.1", CreatedAt: now, UpdatedAt: now},
		{ID: "CS-2", Tenant: "cpo2", SerialNumber: "SN-0002", EVSEIDs: []string{"DEXYZE0001"}, OCPPVersion: "1.6", CreatedAt: now, UpdatedAt: now},
	} {
		if err := d.Store.PutStation(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	r, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path})
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := AnchorsFrom(ctx, d.CA, d.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &bridgeEnv{d: d, resp: r, b: &Bridge{CA: d.CA, Store: d.Store, OCSP: &ocsp.Client{Local: r}, Anchors: anchors}}
	dir := specDir(t)
	e.schema = func(t *testing.T, d Dialect, action string, response bool, payload any) {
		t.Helper()
		_, sch := loadSchema(t, filepath.Join(dir, schemaFile(d, action, response)))
		data, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(reparse(t, data)); err != nil {
			t.Errorf("%s %s does not validate against the official schema: %v\n%s", d, action, err, data)
		}
	}
	return e
}

func csrPEM(t testing.TB, cn, org string) string {
	t.Helper()
	return csrPEMOn(t, elliptic.P256(), cn, org)
}

// csrPEMOn is csrPEM for a key on curve (P-521 for ISO 15118-20).
func csrPEMOn(t testing.TB, curve elliptic.Curve, cn, org string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subj := pkix.Name{CommonName: cn}
	if org != "" {
		subj.Organization = []string{org}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (e *bridgeEnv) count(t *testing.T) int {
	t.Helper()
	certs, err := e.d.Store.Certificates(context.Background(), store.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(certs)
}

func TestSignCertificate(t *testing.T) {
	e := newBridgeEnvWith(t, datadir.InitConfig{Organization: "Test", ISO20: true}, "")
	ctx := context.Background()
	tests := []struct {
		name, station string
		d             Dialect
		use, cn, org  string
		profile       string
	}{
		{"2.0.1 V2G EVSEID", "CS-1", OCPP201, "V2GCertificate", "DE*ABC*E0001", "Example CPO", policies.ISO2SECC},
		{"2.0.1 V2G SECC ID", "CS-1", OCPP201, "V2GCertificate", "DEABCS0123456789ABCDEF0123456789ABCDEFX", "Example CPO", policies.ISO2SECC},
		{"2.1 V2G", "CS-1", OCPP21, "V2GCertificate", "DEABCE0002", "Example CPO", policies.ISO2SECC},
		{"2.1 V2G20", "CS-1", OCPP21, "V2G20Certificate", "DE*ABC*E0001", "Example CPO", policies.ISO20SECC},
		{"2.1 V2G20 Ed448", "CS-1", OCPP21, "V2G20Certificate", "DE*ABC*E0001", "Example CPO", policies.ISO20EdSECC},
		{"2.0.1 station", "CS-1", OCPP201, "ChargingStationCertificate", "SN-0001", "Example CPO", policies.OCPPChargingStation},
		{"1.6 charge point", "CS-2", OCPP16, "", "SN-0002", "Other CPO", policies.OCPPChargingStation},
		{"has2be V2G", "CS-2", Has2be, "V2GCertificate", "DEXYZE0001", "Other CPO", policies.ISO2SECC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var payload any
			switch tt.d {
			case OCPP16:
				payload = SignCertificate16{CSR: csrPEM(t, tt.cn, tt.org)}
			case Has2be:
				// has.to.be limits the CSR to 800 characters: a P-256 CSR fits.
				payload = Has2beSignCertificateRequest{CSR: csrPEM(t, tt.cn, tt.org), TypeOfCertificate: tt.use}
			case OCPP21:
				curve := elliptic.P256()
				if tt.profile == policies.ISO20SECC {
					curve = elliptic.P521()
				}
				csr := csrPEMOn(t, curve, tt.cn, tt.org)
				if tt.profile == policies.ISO20EdSECC { // Go makes no Ed448 CSR: openssl does
					csr = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: openssltest.CSR(t, "ed448", "/CN="+tt.cn+"/O="+tt.org)}))
				}
				payload = SignCertificateRequest{CSR: csr, CertificateType: tt.use}
			default:
				payload = SignCertificateRequest{CSR: csrPEM(t, tt.cn, tt.org), CertificateType: tt.use}
			}
			res, err := e.b.Handle(ctx, tt.station, tt.d, "SignCertificate", mustJSON(t, payload))
			if err != nil {
				t.Fatal(err)
			}
			e.schema(t, tt.d, "SignCertificate", true, res.Response)
			if s := reflect.ValueOf(res.Response).Elem().FieldByName("Status").String(); s != "Accepted" {
				t.Fatalf("status %s: %+v", s, res.Response)
			}
			if len(res.Calls) != 1 || res.Calls[0].Action != "CertificateSigned" {
				t.Fatalf("calls %+v", res.Calls)
			}
			e.schema(t, tt.d, "CertificateSigned", false, res.Calls[0].Payload)
			var chainPEM string
			switch p := res.Calls[0].Payload.(type) {
			case *CertificateSignedRequest:
				chainPEM = p.CertificateChain
				if p.CertificateType != tt.use {
					t.Errorf("certificateType %q, want %q", p.CertificateType, tt.use)
				}
			case *CertificateSigned16:
				chainPEM = p.CertificateChain
			case *Has2beCertificateSignedRequest:
				chainPEM = p.Cert
			}
			chain, err := ParsePEMChain([]byte(chainPEM))
			if err != nil {
				t.Fatal(err)
			}
			// Leaf first, then the sub-CAs; the root is not sent.
			wantLen := map[string]int{policies.ISO2SECC: 3, policies.ISO20SECC: 3, policies.ISO20EdSECC: 3, policies.OCPPChargingStation: 1}[tt.profile]
			if len(chain) != wantLen {
				t.Fatalf("chain of %d, want %d", len(chain), wantLen)
			}
			p, _ := policies.Lookup(tt.profile)
			if vs := p.Check(chain[0], policies.SECCBoth); len(vs) > 0 {
				t.Errorf("lint: %v", vs)
			}
			verifyOpenSSL(t, e, chain, tt.profile)
			// Bookkeeping of the station's answer.
			resp := any(&CertificateSignedResponse{Status: "Rejected", StatusInfo: &StatusInfo{ReasonCode: "InvalidChain"}})
			if tt.d == OCPP16 || tt.d == Has2be {
				resp = &CertificateSigned16Response{Status: "Rejected"}
			}
			if _, err := e.b.HandleResult(ctx, tt.station, tt.d, res.Calls[0], "", mustJSON(t, resp)); err != nil {
				t.Fatal(err)
			}
			log, _ := e.d.Store.AuditLog(ctx, 0, 1000)
			if last := log[len(log)-1]; last.Action != AuditCertificateRefused || last.Object != tt.station {
				t.Errorf("last audit entry %+v, want the rejection", last)
			}
		})
	}
}

// verifyOpenSSL checks the chain the station receives with openssl, as a
// station would, against the root it holds.
func verifyOpenSSL(t *testing.T, e *bridgeEnv, chain []*x509.Certificate, profile string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed (.ci/run installs it)")
	}
	root := "v2g-root"
	switch profile {
	case policies.OCPPChargingStation:
		root = "csms-root"
	case policies.ISO2Contract:
		root = "mo-root"
	case policies.ISO20SECC:
		root = "v2g20-root"
	case policies.ISO20EdSECC:
		root = "v2g20ed-root"
	}
	a, err := e.d.CA.Authority(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(EncodePEMChain(certs...)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"verify", "-x509_strict", "-CAfile", write("root.pem", a.Cert)}
	if len(chain) > 1 {
		args = append(args, "-untrusted", write("sub.pem", chain[1:]...))
	}
	out, err := exec.Command("openssl", append(args, write("leaf.pem", chain[0]))...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("openssl verify: %v\n%s", err, out)
	}
}

func TestSignCertificateRejected(t *testing.T) {
	e := newBridgeEnv(t)
	ctx := context.Background()
	before := e.count(t)
	tests := []struct {
		name, station string
		d             Dialect
		payload       any
		reason        string
	}{
		{"unknown station", "CS-9", OCPP201, SignCertificateRequest{CSR: csrPEM(t, "DEABCE0001", "Example CPO"), CertificateType: "V2GCertificate"}, ReasonUnknownStation},
		{"EVSEID of another station", "CS-1", OCPP201, SignCertificateRequest{CSR: csrPEM(t, "DEXYZE0001", "Example CPO"), CertificateType: "V2GCertificate"}, ReasonWrongStation},
		{"unregistered EVSEID", "CS-1", OCPP201, SignCertificateRequest{CSR: csrPEM(t, "DEABCE0009", "Example CPO"), CertificateType: "V2GCertificate"}, ReasonWrongStation},
		{"station CN not its serial", "CS-1", OCPP201, SignCertificateRequest{CSR: csrPEM(t, "SN-0002", "Example CPO"), CertificateType: "ChargingStationCertificate"}, ReasonWrongStation},
		{"identity CN by default", "CS-1", OCPP201, SignCertificateRequest{CSR: csrPEM(t, "CS-1", "Example CPO"), CertificateType: "ChargingStationCertificate"}, ReasonWrongStation},
		{"other organization", "CS-1", OCPP201, SignCertificateRequest{CSR: csrPEM(t, "SN-0001", "Other CPO"), CertificateType: "ChargingStationCertificate"}, ReasonPolicy},
		{"garbage CSR", "CS-1", OCPP201, SignCertificateRequest{CSR: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", CertificateType: "V2GCertificate"}, ReasonInvalidCSR},
		{"combined", "CS-1", OCPP201, SignCertificateRequest{CSR: csrPEM(t, "DEABCE0001", "Example CPO")}, ReasonCombinedRefused},
		{"ISO 15118-20 with a P-256 key", "CS-1", OCPP21, SignCertificateRequest{CSR: csrPEM(t, "DEABCE0001", "Example CPO"), CertificateType: "V2G20Certificate"}, ReasonInvalidCSR},
		{"1.6 wrong serial", "CS-2", OCPP16, SignCertificate16{CSR: csrPEM(t, "SN-0001", "Other CPO")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.b.Handle(ctx, tt.station, tt.d, "SignCertificate", mustJSON(t, tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			e.schema(t, tt.d, "SignCertificate", true, res.Response)
			if len(res.Calls) != 0 {
				t.Errorf("calls %+v after a rejection", res.Calls)
			}
			switch r := res.Response.(type) {
			case *SignCertificateResponse:
				if r.Status != "Rejected" || r.StatusInfo == nil || r.StatusInfo.ReasonCode != tt.reason {
					t.Errorf("response %+v %+v, want Rejected %s", r, r.StatusInfo, tt.reason)
				}
			case *SignCertificate16Response:
				if r.Status != "Rejected" {
					t.Errorf("response %+v", r)
				}
			}
		})
	}
	// OCPP 2.1 names the root: ours is accepted, another one refused.
	v2g := e.b.Anchors[UseV2G][0]
	ours, _ := HashDataOf(v2g, v2g, "SHA256")
	foreign := ours
	foreign.SerialNumber = "1"
	for _, tc := range []struct {
		root   CertificateHashData
		status string
	}{{ours, "Accepted"}, {foreign, "Rejected"}} {
		req := SignCertificateRequest{CSR: csrPEM(t, "DEABCE0001", "Example CPO"), CertificateType: "V2GCertificate", HashRootCertificate: &tc.root}
		res, err := e.b.Handle(ctx, "CS-1", OCPP21, "SignCertificate", mustJSON(t, req))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, OCPP21, "SignCertificate", false, req)
		if r := res.Response.(*SignCertificateResponse); r.Status != tc.status || tc.status == "Rejected" && r.StatusInfo.ReasonCode != ReasonUnknownRoot {
			t.Errorf("hashRootCertificate %s: %+v", tc.root.SerialNumber, r)
		}
	}
	before++ // the accepted one
	e.b.Policy.StationCNIdentity = true
	res, err := e.b.Handle(ctx, "CS-1", OCPP201, "SignCertificate", mustJSON(t, SignCertificateRequest{CSR: csrPEM(t, "CS-1", "Example CPO"), CertificateType: "ChargingStationCertificate"}))
	if err != nil || res.Response.(*SignCertificateResponse).Status != "Accepted" {
		t.Errorf("identity CN with StationCNIdentity: %v %+v", err, res)
	}
	if after := e.count(t); after != before+1 {
		t.Errorf("%d certificates stored by rejected requests", after-before-1)
	}
}

func TestHandleInvalidPayloads(t *testing.T) {
	e := newBridgeEnv(t)
	for _, tt := range []struct {
		d       Dialect
		action  string
		payload string
		code    string
	}{
		{OCPP201, "SignCertificate", `{"csr":5}`, CodeTypeConstraint},
		{OCPP201, "SignCertificate", `{"csr":"` + strings.Repeat("A", 5501) + `"}`, CodePropertyConstraint},
		{OCPP201, "GetCertificateStatus", `{}`, CodeOccurrenceViolation},
		{OCPP16, "SignCertificate", `{"csr":"x","certificateType":"V2GCertificate"}`, CodeOccurrenceViolation},
		{OCPP201, "Authorize", `{"idToken":{"idToken":"x","type":"eMAID"},"iso15118CertificateHashData":[]}`, CodeOccurrenceViolation},
		{OCPP201, "SignCertificate", `not json`, CodeFormatViolation},
	} {
		_, err := e.b.Handle(context.Background(), "CS-1", tt.d, tt.action, []byte(tt.payload))
		ve, ok := err.(*ValidationError)
		if !ok || ve.Code != tt.code {
			t.Errorf("%s %s: %v, want %s", tt.action, tt.payload[:min(40, len(tt.payload))], err, tt.code)
		}
	}
	if _, err := e.b.Handle(context.Background(), "CS-1", OCPP201, "BootNotification", []byte(`{}`)); err != ErrNotHandled {
		t.Errorf("BootNotification: %v, want ErrNotHandled", err)
	}
	if _, err := e.b.Handle(context.Background(), "CS-1", OCPP201, "CertificateSigned", []byte(`{}`)); err != ErrNotHandled {
		t.Errorf("a CSMS-to-station action from a station: %v, want ErrNotHandled", err)
	}
}

// issueContractChain issues a contract certificate under mo-sub2 and returns the
// chain leaf first, without the root.
func issueContractChain(t *testing.T, e *bridgeEnv) []*x509.Certificate {
	t.Helper()
	iss, err := e.d.CA.Issue(context.Background(), ca.Request{Profile: policies.ISO2Contract, CSR: []byte(csrPEM(t, "DEABCC123456788", ""))})
	if err != nil {
		t.Fatal(err)
	}
	return append([]*x509.Certificate{iss.Cert()}, withoutRoot(iss.Chain)...)
}

// TestAuthorize20: OCPP 2.1 Authorize with an ISO 15118-20 contract
// certificate (P-521, from the -20 MO Sub-CA 2), by chain and by hash
// data, is Accepted, and CertificateRevoked once it is revoked.
func TestAuthorize20(t *testing.T) {
	e := newBridgeEnvWith(t, datadir.InitConfig{Organization: "Test", ISO20: true}, "")
	ctx := context.Background()
	t.Run("secp521r1", func(t *testing.T) {
		iss, err := e.d.CA.Issue(ctx, ca.Request{Profile: policies.ISO20Contract, CSR: []byte(csrPEMOn(t, elliptic.P521(), "DEABCC123456788", ""))})
		if err != nil {
			t.Fatal(err)
		}
		testAuthorize20(t, e, iss)
	})
	t.Run("Ed448", func(t *testing.T) {
		pub, _, _ := ed448.GenerateKey(nil)
		iss, err := e.d.CA.IssueForKey(ctx, policies.ISO20EdContract, "mo20ed-sub2", pub, policies.Subject{CommonName: "DEABCC123456788"}, policies.Period{})
		if err != nil {
			t.Fatal(err)
		}
		testAuthorize20(t, e, iss)
	})
}

// testAuthorize20 authorizes a -20 contract by chain and by hash data,
// then revokes it and authorizes again.
func testAuthorize20(t *testing.T, e *bridgeEnv, iss *ca.Issued) {
	ctx := context.Background()
	chain := append([]*x509.Certificate{iss.Cert()}, withoutRoot(iss.Chain)...)
	h, err := HashDataOf(chain[0], chain[1], "SHA256")
	if err != nil {
		t.Fatal(err)
	}
	byHash := AuthorizeRequest{IDToken: IdToken{IDToken: "DEABCC123456788", Type: "eMAID"}, ISO15118CertificateHashData: []OCSPRequestData{{
		HashAlgorithm: h.HashAlgorithm, IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber, ResponderURL: "http://127.0.0.1:1/ocsp"}}}
	byChain := AuthorizeRequest{IDToken: IdToken{IDToken: "DEABCC123456788", Type: "eMAID"}, Certificate: EncodePEMChain(chain...)}
	authorize := func(payload any) string {
		t.Helper()
		res, err := e.b.Handle(ctx, "CS-1", OCPP21, "Authorize", mustJSON(t, payload))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, OCPP21, "Authorize", true, res.Response)
		return res.CertificateStatus
	}
	for name, p := range map[string]any{"chain": byChain, "hash": byHash} {
		if s := authorize(p); s != CertAccepted {
			t.Errorf("%s: %s, want Accepted", name, s)
		}
	}
	if _, err := e.d.CA.Revoke(ctx, iss.Record.Issuer, ca.SerialHex(chain[0].SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.resp.ApplyRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]any{"chain": byChain, "hash": byHash} {
		if s := authorize(p); s != CertRevoked {
			t.Errorf("%s after revocation: %s, want CertificateRevoked", name, s)
		}
	}
}

func TestAuthorizeAndCertificateStatus(t *testing.T) {
	e := newBridgeEnv(t)
	ctx := context.Background()
	chain := issueContractChain(t, e)
	hashData := func(c, issuer *x509.Certificate) OCSPRequestData {
		h, err := HashDataOf(c, issuer, "SHA256")
		if err != nil {
			t.Fatal(err)
		}
		return OCSPRequestData{HashAlgorithm: h.HashAlgorithm, IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash,
			SerialNumber: h.SerialNumber, ResponderURL: "http://127.0.0.1:1/ocsp"}
	}
	leafData := hashData(chain[0], chain[1])
	authorize := func(d Dialect, payload any) string {
		t.Helper()
		res, err := e.b.Handle(ctx, "CS-1", d, "Authorize", mustJSON(t, payload))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, d, "Authorize", true, res.Response)
		return res.CertificateStatus
	}
	byChain := AuthorizeRequest{IDToken: IdToken{IDToken: "DEABCC123456788", Type: "eMAID"}, Certificate: EncodePEMChain(chain...)}
	byHash := AuthorizeRequest{IDToken: IdToken{IDToken: "DEABCC123456788", Type: "eMAID"}, ISO15118CertificateHashData: []OCSPRequestData{leafData, hashData(chain[1], chain[2])}}
	has2be := Has2beAuthorizeRequest{IDToken: Has2beIdToken{IDToken: "DEABCC123456788", Type: "eMAID"},
		ISO15118CertificateHashData: []Has2beOCSPRequestData{{HashAlgorithm: "SHA256", IssuerNameHash: leafData.IssuerNameHash, IssuerKeyHash: leafData.IssuerKeyHash, SerialNumber: leafData.SerialNumber}}}
	for name, p := range map[string]any{"chain": byChain, "hash": byHash} {
		if s := authorize(OCPP201, p); s != CertAccepted {
			t.Errorf("%s: %s, want Accepted", name, s)
		}
	}
	if s := authorize(Has2be, has2be); s != CertAccepted {
		t.Errorf("has2be: %s", s)
	}
	// GetCertificateStatus returns the real OCSP response.
	res, err := e.b.Handle(ctx, "CS-1", OCPP201, "GetCertificateStatus", mustJSON(t, GetCertificateStatusRequest{OCSPRequestData: leafData}))
	if err != nil {
		t.Fatal(err)
	}
	e.schema(t, OCPP201, "GetCertificateStatus", true, res.Response)
	checkOCSP(t, res.Response.(*GetCertificateStatusResponse).OCSPResult, chain, xocsp.Good)

	if _, err := e.d.CA.Revoke(ctx, "mo-sub2", ca.SerialHex(chain[0].SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.resp.ApplyRevocations(ctx); err != nil { // what the store feed does every 500 ms
		t.Fatal(err)
	}
	for name, p := range map[string]any{"chain": byChain, "hash": byHash} {
		if s := authorize(OCPP201, p); s != CertRevoked {
			t.Errorf("%s after revocation: %s, want CertificateRevoked", name, s)
		}
	}
	if s := authorize(Has2be, has2be); s != CertRevoked {
		t.Errorf("has2be after revocation: %s", s)
	}
	res, _ = e.b.Handle(ctx, "CS-1", OCPP201, "GetCertificateStatus", mustJSON(t, GetCertificateStatusRequest{OCSPRequestData: leafData}))
	checkOCSP(t, res.Response.(*GetCertificateStatusResponse).OCSPResult, chain, xocsp.Revoked)

	// The other verdicts.
	fresh := issueContractChain(t, e)
	tamperedPEM := "-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(flipSignature(fresh[0].Raw)) + "\n-----END CERTIFICATE-----\n"
	cases := map[string]struct {
		chain string
		now   time.Time
		want  string
	}{
		"signature":    {tamperedPEM + EncodePEMChain(fresh[1:]...), time.Time{}, CertSignatureErr},
		"expired":      {EncodePEMChain(fresh...), time.Now().AddDate(3, 0, 0), CertExpired},
		"no chain":     {EncodePEMChain(fresh[0]), time.Time{}, CertChainErr},
		"not yet":      {EncodePEMChain(fresh...), time.Now().AddDate(-1, 0, 0), CertChainErr},
		"unknown root": {EncodePEMChain(chainFromOtherPKI(t)...), time.Time{}, CertChainErr},
	}
	for name, c := range cases {
		e.b.Now = nil
		if !c.now.IsZero() {
			now := c.now
			e.b.Now = func() time.Time { return now }
		}
		if s := authorize(OCPP201, AuthorizeRequest{IDToken: IdToken{IDToken: "x", Type: "eMAID"}, Certificate: c.chain}); s != c.want {
			t.Errorf("%s: %s, want %s", name, s, c.want)
		}
	}
	e.b.Now = nil
	// No certificate data: nothing to say.
	if s := authorize(OCPP201, AuthorizeRequest{IDToken: IdToken{IDToken: "04A1B2C3", Type: "ISO14443"}}); s != "" {
		t.Errorf("RFID token: %q", s)
	}
	// OCSP unreachable for a foreign issuer: fail closed by default.
	foreign := hashData(fresh[0], fresh[1])
	foreign.IssuerKeyHash = strings.Repeat("ab", 32)
	if s := authorize(OCPP201, AuthorizeRequest{IDToken: IdToken{IDToken: "x", Type: "eMAID"}, ISO15118CertificateHashData: []OCSPRequestData{foreign}}); s != CertChainErr {
		t.Errorf("unknown issuer, fail closed: %s", s)
	}
	e.b.Policy.AuthorizeFailOpen = true
	if s := authorize(OCPP201, AuthorizeRequest{IDToken: IdToken{IDToken: "x", Type: "eMAID"}, ISO15118CertificateHashData: []OCSPRequestData{foreign}}); s != CertAccepted {
		t.Errorf("unknown issuer, fail open: %s", s)
	}
	res, _ = e.b.Handle(ctx, "CS-1", OCPP201, "GetCertificateStatus", mustJSON(t, GetCertificateStatusRequest{OCSPRequestData: foreign}))
	if r := res.Response.(*GetCertificateStatusResponse); r.Status != "Failed" || r.StatusInfo.ReasonCode != ReasonUnknownIssuer {
		t.Errorf("unknown issuer status: %+v", r)
	}
}

func flipSignature(der []byte) []byte {
	out := append([]byte(nil), der...)
	out[len(out)-5] ^= 0x01 // inside the signature's s value
	return out
}

func chainFromOtherPKI(t *testing.T) []*x509.Certificate {
	t.Helper()
	other := newBridgeEnv(t)
	return issueContractChain(t, other)
}

func checkOCSP(t *testing.T, b64 string, chain []*x509.Certificate, want int) {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	r, err := xocsp.ParseResponseForCert(der, chain[0], chain[1])
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != want {
		t.Errorf("OCSP status %d, want %d", r.Status, want)
	}
}

func TestDataTransferVariants(t *testing.T) {
	e := newBridgeEnv(t)
	ctx := context.Background()
	for _, tt := range []struct {
		vendor string
		inner  any
		d      Dialect
	}{
		{VendorOCA, SignCertificateRequest{CSR: csrPEM(t, "DEXYZE0001", "Other CPO"), CertificateType: "V2GCertificate"}, OCPP201},
		{VendorHas2be, Has2beSignCertificateRequest{CSR: csrPEM(t, "DEXYZE0001", "Other CPO"), TypeOfCertificate: "V2GCertificate"}, Has2be},
	} {
		dt := DataTransfer16{VendorID: tt.vendor, MessageID: "SignCertificate", Data: string(mustJSON(t, tt.inner))}
		res, err := e.b.Handle(ctx, "CS-2", OCPP16, "DataTransfer", mustJSON(t, dt))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, OCPP16, "DataTransfer", true, res.Response)
		out := res.Response.(*DataTransfer16Response)
		if out.Status != "Accepted" || !strings.Contains(out.Data, `"Accepted"`) {
			t.Errorf("%s: %+v", tt.vendor, out)
		}
		if len(res.Calls) != 1 || res.Calls[0].Action != "DataTransfer" {
			t.Fatalf("%s: calls %+v", tt.vendor, res.Calls)
		}
		call := res.Calls[0].Payload.(*DataTransfer16)
		e.schema(t, OCPP16, "DataTransfer", false, call)
		if call.VendorID != tt.vendor || call.MessageID != "CertificateSigned" {
			t.Errorf("%s: call %+v", tt.vendor, call)
		}
		m, _ := Lookup(tt.d, "CertificateSigned")
		inner := newValue(m.Request)
		if err := Decode(tt.d, []byte(call.Data), inner); err != nil {
			t.Errorf("%s: inner CertificateSigned: %v", tt.vendor, err)
		}
		ans := DataTransfer16Response{Status: "Accepted", Data: `{"status":"Accepted"}`}
		if _, err := e.b.HandleResult(ctx, "CS-2", OCPP16, res.Calls[0], "", mustJSON(t, ans)); err != nil {
			t.Fatal(err)
		}
	}
	// Unknown message IDs of our vendors are answered; other vendors are not ours.
	res, err := e.b.Handle(ctx, "CS-2", OCPP16, "DataTransfer", mustJSON(t, DataTransfer16{VendorID: VendorOCA, MessageID: "Nope", Data: "{}"}))
	if err != nil || res.Response.(*DataTransfer16Response).Status != "UnknownMessageId" {
		t.Errorf("unknown messageId: %v %+v", err, res)
	}
	if _, err := e.b.Handle(ctx, "CS-2", OCPP16, "DataTransfer", mustJSON(t, DataTransfer16{VendorID: "com.example"})); err != ErrNotHandled {
		t.Errorf("foreign vendor: %v", err)
	}
}

func TestGet15118EVCertificateFails(t *testing.T) {
	e := newBridgeEnv(t)
	for _, tc := range []struct {
		schema, exi, reason string
	}{
		{ISO15118v2Schema, "gAI=", ReasonNoContractSvc},
		{"urn:iso:std:iso:15118:-20:CommonMessages", "gAI=", ReasonUnsupportedSchema}, // over 2.0.1
		{"urn:iso:15118:20:2022:MsgDef", "gAI=", ReasonUnsupportedSchema},
		{ISO15118v2Schema, "not base64!", ReasonInvalidEXI},
	} {
		req := Get15118EVCertificateRequest{ISO15118SchemaVersion: tc.schema, Action: "Install", EXIRequest: tc.exi}
		res, err := e.b.Handle(context.Background(), "CS-1", OCPP201, "Get15118EVCertificate", mustJSON(t, req))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, OCPP201, "Get15118EVCertificate", true, res.Response)
		if r := res.Response.(*Get15118EVCertificateResponse); r.Status != "Failed" || r.StatusInfo.ReasonCode != tc.reason {
			t.Errorf("%s %q: %+v %+v, want %s", tc.schema, tc.exi, r, r.StatusInfo, tc.reason)
		}
	}
	// Over the 2.0.1 limit the schema check refuses it before anything else.
	req := Get15118EVCertificateRequest{ISO15118SchemaVersion: ISO15118v2Schema, Action: "Install", EXIRequest: strings.Repeat("A", 5604)}
	if _, err := e.b.Handle(context.Background(), "CS-1", OCPP201, "Get15118EVCertificate", mustJSON(t, req)); err == nil {
		t.Error("an exiRequest over 5,600 characters was accepted in 2.0.1")
	}
}

func TestHashDataMatchesOCSPCertID(t *testing.T) {
	e := newBridgeEnv(t)
	chain := issueContractChain(t, e)
	for _, alg := range []string{"SHA256", "SHA384", "SHA512"} {
		h, _ := HashAlgorithmOf(alg)
		der, err := xocsp.CreateRequest(chain[0], chain[1], &xocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		req, err := xocsp.ParseRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		got, err := HashDataOf(chain[0], chain[1], alg)
		if err != nil {
			t.Fatal(err)
		}
		want := CertificateHashData{HashAlgorithm: alg, IssuerNameHash: hex.EncodeToString(req.IssuerNameHash), IssuerKeyHash: hex.EncodeToString(req.IssuerKeyHash), SerialNumber: req.SerialNumber.Text(16)}
		if got != want {
			t.Errorf("%s: %+v, want %+v", alg, got, want)
		}
		upper := want
		upper.IssuerKeyHash = strings.ToUpper(upper.IssuerKeyHash)
		upper.SerialNumber = "00" + upper.SerialNumber
		if !got.Same(upper) {
			t.Errorf("%s: Same ignores neither case nor leading zeros", alg)
		}
	}
}

// TestAuthorizeContractCancelled: cancelling a contract in the pool
// revokes its certificate and Authorize answers ContractCancelled.
func TestAuthorizeContractCancelled(t *testing.T) {
	e := newBridgeEnv(t)
	ctx := context.Background()
	if err := e.d.Store.CreateTenant(ctx, &policies.Tenant{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DEABC"}}); err != nil {
		t.Fatal(err)
	}
	pool := &contractpool.Pool{Store: e.d.Store, CA: e.d.CA}
	e.b.Contracts = pool
	if _, err := pool.Put(ctx, "emsp1", store.Contract{EMAID: "DEABCC123456788", PCID: "WMI00000000000001"}); err != nil {
		t.Fatal(err)
	}
	chain := issueContractChain(t, e)
	h, _ := HashDataOf(chain[0], chain[1], "SHA256")
	byHash := AuthorizeRequest{IDToken: IdToken{IDToken: "DEABCC123456788", Type: "eMAID"}, ISO15118CertificateHashData: []OCSPRequestData{{
		HashAlgorithm: "SHA256", IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber, ResponderURL: "http://127.0.0.1:1/"}}}
	byChain := AuthorizeRequest{IDToken: IdToken{IDToken: "x", Type: "ISO14443"}, Certificate: EncodePEMChain(chain...)}
	authorize := func(p AuthorizeRequest) string {
		res, err := e.b.Handle(ctx, "CS-1", OCPP201, "Authorize", mustJSON(t, p))
		if err != nil {
			t.Fatal(err)
		}
		e.schema(t, OCPP201, "Authorize", true, res.Response)
		return res.CertificateStatus
	}
	if s := authorize(byHash); s != CertAccepted {
		t.Fatalf("active contract: %s", s)
	}
	if _, revoked, err := pool.Cancel(ctx, "emsp1", "DEABCC123456788"); err != nil || len(revoked) != 1 {
		t.Fatalf("Cancel: %v %d", err, len(revoked))
	}
	if err := e.resp.ApplyRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]AuthorizeRequest{"hash data": byHash, "chain (EMAID from the certificate)": byChain} {
		if s := authorize(p); s != CertCancelled {
			t.Errorf("%s after cancellation: %s, want ContractCancelled", name, s)
		}
	}
}

func TestSignCertificateRateLimit(t *testing.T) {
	e := newBridgeEnv(t)
	e.b.Policy.SignLimit, e.b.Policy.SignWindow = 2, time.Hour
	now := time.Now()
	e.b.Now = func() time.Time { return now }
	sign := func(station, cn, org string) string {
		req := SignCertificateRequest{CSR: csrPEM(t, cn, org), CertificateType: "V2GCertificate"}
		res, err := e.b.Handle(context.Background(), station, OCPP201, "SignCertificate", mustJSON(t, req))
		if err != nil {
			t.Fatal(err)
		}
		r := res.Response.(*SignCertificateResponse)
		if r.StatusInfo != nil {
			return r.StatusInfo.ReasonCode
		}
		return r.Status
	}
	for i, want := range []string{"Accepted", "Accepted", ReasonRateLimited} {
		if got := sign("CS-1", "DEABCE0001", "Example CPO"); got != want {
			t.Errorf("request %d: %s, want %s", i+1, got, want)
		}
	}
	if got := sign("CS-2", "DEXYZE0001", "Other CPO"); got != "Accepted" {
		t.Errorf("another station: %s", got)
	}
	now = now.Add(time.Hour + time.Second)
	if got := sign("CS-1", "DEABCE0001", "Example CPO"); got != "Accepted" {
		t.Errorf("after the window: %s", got)
	}
}

// TestAuthorizeFollowsAnchorChanges: Authorize trusts an MO root as soon as
// it is added at run time, and no longer once it is removed.
func TestAuthorizeFollowsAnchorChanges(t *testing.T) {
	e := newBridgeEnv(t)
	ctx := store.WithActor(context.Background(), "test")
	chain := issueContractChain(t, e)
	mo, err := e.d.CA.Authority("mo-root")
	if err != nil {
		t.Fatal(err)
	}
	moRoot := mo.Cert
	e.b.Anchors = e.b.Anchors.Clone()
	e.b.Anchors[UseMO] = nil // pncpki's own MO root, configured no more
	if err := e.b.RefreshAnchors(ctx); err != nil {
		t.Fatal(err)
	}
	req := mustJSON(t, AuthorizeRequest{IDToken: IdToken{IDToken: "DEABCC123456788", Type: "eMAID"}, Certificate: EncodePEMChain(chain...)})
	authorize := func() string {
		t.Helper()
		res, err := e.b.Handle(ctx, "CS-1", OCPP201, "Authorize", req)
		if err != nil {
			t.Fatal(err)
		}
		return res.CertificateStatus
	}
	if s := authorize(); s != CertChainErr {
		t.Fatalf("without its MO root: %s, want %s", s, CertChainErr)
	}
	if err := e.b.AddTrustAnchor(ctx, UseMO, moRoot, "admin"); err != nil {
		t.Fatal(err)
	}
	if s := authorize(); s != CertAccepted {
		t.Fatalf("MO root added: %s, want Accepted", s)
	}
	if err := e.b.RemoveTrustAnchor(ctx, UseMO, ca.Fingerprint(moRoot)); err != nil {
		t.Fatal(err)
	}
	if s := authorize(); s != CertChainErr {
		t.Fatalf("MO root removed: %s, want %s", s, CertChainErr)
	}
}
