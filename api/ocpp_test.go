package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/api/gen/pncpki/v1/pncpkiv1connect"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts"
)

// TestOCPPService drives the bridge as a CSMS would: register a station,
// pass on its SignCertificate (REST and gRPC), send the CertificateSigned
// it gets back, report the station's answer; and the refusals.
func TestOCPPService(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		station := map[string]any{"serialNumber": "SN-1", "evseIds": []string{"DE*ABC*E1"}, "ocppVersion": "2.0.1"}
		status, body := e.rest(t, "PUT", "/v1/stations/CS-1", e.tokens["cpo1"], station)
		if status != 200 || body["station"].(map[string]any)["tenant"] != "cpo1" || body["station"].(map[string]any)["evseIds"].([]any)[0] != "DEABCE1" {
			t.Fatalf("PutStation: %d %v", status, body)
		}
		// Another CPO neither sees nor takes the station.
		if status, body := e.rest(t, "GET", "/v1/stations/CS-1", e.tokens["cpo2"], nil); status != 404 {
			t.Errorf("cpo2 GetStation: %d %v", status, body)
		}
		// Taking it with cpo2's own identifiers is answered as GET is, as
		// if the ID were free: a 409 told cpo2 it exists.
		if status, body := e.rest(t, "PUT", "/v1/stations/CS-1", e.tokens["cpo2"], map[string]any{"evseIds": []string{"DE*XYZ*E1"}, "ocppVersion": "2.0.1"}); status != 404 {
			t.Errorf("cpo2 PutStation of cpo1's ID: %d %v", status, body)
		}
		// Registering another operator's EVSEID is refused, as issuing
		// an SECC certificate for it is.
		if status, body := e.rest(t, "PUT", "/v1/stations/CS-9", e.tokens["cpo2"], station); status != 403 {
			t.Errorf("cpo2 registering cpo1's EVSEID: %d %v", status, body)
		}
		if status, body := e.rest(t, "PUT", "/v1/stations/CS-2", e.tokens["cpo1"], map[string]any{"ocppVersion": "3.0"}); status != 400 {
			t.Errorf("bad version: %d %v", status, body)
		}
		if status, body := e.rest(t, "GET", "/v1/stations", e.tokens["cpo2"], nil); status != 200 || len(body) != 0 {
			t.Errorf("cpo2 ListStations: %d %v", status, body)
		}

		csr := opensslCSR(t, e.dir, "DE*ABC*E1")
		payload, _ := json.Marshal(ocppsec.SignCertificateRequest{CSR: csr, CertificateType: "V2GCertificate"})
		status, body = e.rest(t, "POST", "/v1/ocpp/CS-1/requests", e.tokens["cpo1"], map[string]any{
			"ocppVersion": "2.0.1", "action": "SignCertificate", "payload": string(payload)})
		if status != 200 || body["payload"] != `{"status":"Accepted"}` {
			t.Fatalf("SignCertificate: %d %v", status, body)
		}
		call := body["calls"].([]any)[0].(map[string]any)
		var signed ocppsec.CertificateSignedRequest
		if err := ocppsec.Decode(ocppsec.OCPP201, []byte(call["payload"].(string)), &signed); err != nil || call["action"] != "CertificateSigned" {
			t.Fatalf("call %v: %v", call, err)
		}
		chain, err := ocppsec.ParsePEMChain([]byte(signed.CertificateChain))
		if err != nil || len(chain) != 3 || chain[0].Subject.CommonName != "DE*ABC*E1" {
			t.Fatalf("chain: %v", err)
		}
		status, body = e.rest(t, "POST", "/v1/ocpp/CS-1/results", e.tokens["cpo1"], map[string]any{
			"ocppVersion": "2.0.1", "sent": call, "payload": `{"status":"Rejected","statusInfo":{"reasonCode":"InvalidCertificate"}}`})
		if status != 200 {
			t.Fatalf("HandleResult: %d %v", status, body)
		}
		log, _ := e.d.Store.AuditLog(context.Background(), 0, 1000)
		if last := log[len(log)-1]; last.Action != ocppsec.AuditCertificateRefused || last.Object != "CS-1" {
			t.Errorf("last audit entry %+v", last)
		}

		// The same over gRPC.
		client := pncpkiv1connect.NewOCPPServiceClient(e.srv.Client(), e.srv.URL, connect.WithGRPC())
		req := connect.NewRequest(&pncpkiv1.HandleRequestRequest{StationId: "CS-1", OcppVersion: "2.0.1", Action: "SignCertificate", Payload: string(payload)})
		req.Header().Set("Authorization", "Bearer "+e.tokens["cpo1"])
		resp, err := client.HandleRequest(context.Background(), req)
		if err != nil || len(resp.Msg.Calls) != 1 {
			t.Fatalf("gRPC HandleRequest: %v", err)
		}
		accepted := map[string]any{"action": resp.Msg.Calls[0].Action, "payload": resp.Msg.Calls[0].Payload}
		if status, body := e.rest(t, "POST", "/v1/ocpp/CS-1/results", e.tokens["cpo1"], map[string]any{
			"ocppVersion": "2.0.1", "sent": accepted, "payload": `{"status":"Accepted"}`}); status != 200 {
			t.Fatalf("HandleResult Accepted: %d %v", status, body)
		}

		// Authorize: the verdict merged into the CSMS's own answer.
		authz, _ := json.Marshal(ocppsec.AuthorizeRequest{IDToken: ocppsec.IdToken{IDToken: "DE8AAC123456789", Type: "eMAID"}, Certificate: "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"})
		status, body = e.rest(t, "POST", "/v1/ocpp/CS-1/requests", e.tokens["cpo1"], map[string]any{
			"ocppVersion": "2.0.1", "action": "Authorize", "payload": string(authz),
			"csmsResponse": `{"idTokenInfo":{"status":"Accepted","language1":"de"}}`})
		if status != 200 || body["certificateStatus"] != "CertChainError" || !strings.Contains(body["payload"].(string), `"language1":"de"`) {
			t.Errorf("Authorize: %d %v", status, body)
		}

		for _, tc := range []struct {
			name, token, station, version, action, payload string
			status                                         int
			code                                           string
		}{
			{"schema violation", "cpo1", "CS-1", "2.0.1", "SignCertificate", `{"csr":"` + strings.Repeat("A", 5501) + `"}`, 400, "ocpp.PropertyConstraintViolation"},
			{"invalid JSON", "cpo1", "CS-1", "2.0.1", "SignCertificate", `{"csr":`, 400, "ocpp.FormatViolation"},
			{"1.6 spelling", "cpo1", "CS-1", "1.6", "SignCertificate", `[]`, 400, "ocpp.TypeConstraintViolation"},
			{"unknown action", "cpo1", "CS-1", "2.0.1", "BootNotification", `{}`, 501, "ocpp.NotImplemented"},
			{"bad version", "cpo1", "CS-1", "1.5", "SignCertificate", `{}`, 400, "ocpp.version"},
			{"another CPO's station", "cpo2", "CS-1", "2.0.1", "SignCertificate", string(payload), 404, "station.not_found"},
		} {
			status, body := e.rest(t, "POST", "/v1/ocpp/"+tc.station+"/requests", e.tokens[tc.token], map[string]any{
				"ocppVersion": tc.version, "action": tc.action, "payload": tc.payload})
			if status != tc.status || !strings.HasPrefix(body["message"].(string), tc.code) {
				t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
			}
		}
		// Root sync: StationCalls starts it, HandleResult gives the
		// installs; the station is also asked for its exiResponse limit.
		status, body = e.rest(t, "POST", "/v1/ocpp/CS-1/calls", e.tokens["cpo1"], map[string]any{})
		if status != 200 || len(body["calls"].([]any)) != 2 {
			t.Fatalf("StationCalls: %d %v", status, body)
		}
		sync := body["calls"].([]any)[0].(map[string]any)
		if sync["action"] != "GetInstalledCertificateIds" {
			t.Fatalf("StationCalls: %v", sync)
		}
		if fieldLength := body["calls"].([]any)[1].(map[string]any); fieldLength["action"] != "GetVariables" {
			t.Fatalf("StationCalls: %v", fieldLength)
		} else {
			status, body = e.rest(t, "POST", "/v1/ocpp/CS-1/results", e.tokens["cpo1"], map[string]any{"ocppVersion": "2.0.1", "sent": fieldLength,
				"payload": `{"getVariableResult":[{"attributeStatus":"Accepted","attributeValue":"7500","component":{"name":"OCPPCommCtrlr"},` +
					`"variable":{"name":"FieldLength","instance":"Get15118EVCertificateResponse.exiResponse"}}]}`})
			if status != 200 {
				t.Fatalf("GetVariables result: %d %v", status, body)
			}
			status, body = e.rest(t, "GET", "/v1/stations/CS-1", e.tokens["cpo1"], nil)
			if st, _ := body["station"].(map[string]any); status != 200 || st["exiResponseLimit"] != float64(7500) {
				t.Fatalf("the reported limit is not in the registry: %d %v", status, body)
			}
		}
		status, body = e.rest(t, "POST", "/v1/ocpp/CS-1/results", e.tokens["cpo1"], map[string]any{
			"ocppVersion": "2.0.1", "sent": sync, "payload": `{"status":"NotFound"}`})
		if status != 200 || len(body["calls"].([]any)) != 3 {
			t.Fatalf("root sync result: %d %v", status, body)
		}
		for _, c := range body["calls"].([]any) {
			var install ocppsec.InstallCertificateRequest
			if err := ocppsec.Decode(ocppsec.OCPP201, []byte(c.(map[string]any)["payload"].(string)), &install); err != nil {
				t.Errorf("install: %v", err)
			}
		}
		// The registry knows the SECC certificate the station accepted.
		status, body = e.rest(t, "GET", "/v1/stations/CS-1", e.tokens["cpo1"], nil)
		if installed, _ := body["installed"].([]any); status != 200 || len(installed) != 1 || installed[0].(map[string]any)["type"] != "V2GCertificateChain" {
			t.Errorf("GetStation: %d %v", status, body)
		}
		if status, _ := e.rest(t, "POST", "/v1/ocpp/CS-1/calls", e.tokens["cpo2"], map[string]any{}); status != 404 {
			t.Errorf("cpo2 StationCalls: %d", status)
		}

		if status, _ := e.rest(t, "DELETE", "/v1/stations/CS-1", e.tokens["cpo2"], nil); status != 404 {
			t.Errorf("cpo2 DeleteStation: %d", status)
		}
		if status, _ := e.rest(t, "DELETE", "/v1/stations/CS-1", e.tokens["cpo1"], nil); status != 200 {
			t.Errorf("DeleteStation: %d", status)
		}
	})
}

func TestChainCRLAndTrustAnchors(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": "iso15118-2/secc", "csr": opensslCSR(t, e.dir, "DE*ABC*E7")})
		if status != 200 {
			t.Fatalf("SignCSR: %d %v", status, body)
		}
		serial := body["certificate"].(map[string]any)["serial"].(string)
		status, body = e.rest(t, "GET", "/v1/certificates/"+serial+"/chain", e.tokens["cpo1"], nil)
		if chain, _ := body["chain"].([]any); status != 200 || len(chain) != 4 {
			t.Fatalf("GetChain: %d %v", status, body)
		}
		var pemText string
		for _, c := range body["chain"].([]any) {
			pemText += c.(string)
		}
		certs, err := ocppsec.ParsePEMChain([]byte(pemText))
		if err != nil || certs[0].Subject.CommonName != "DE*ABC*E7" || ocppsec.IsRoot(certs[3]) != nil {
			t.Errorf("chain: %v", err)
		}
		if status, _ := e.rest(t, "GET", "/v1/certificates/"+serial+"/chain", e.tokens["cpo2"], nil); status != 404 {
			t.Errorf("another tenant's chain: %d", status)
		}
		status, body = e.rest(t, "GET", "/v1/crls/cpo-sub2", e.tokens["cpo2"], nil)
		der, _ := base64.StdEncoding.DecodeString(fmt.Sprint(body["der"]))
		if crl, err := x509.ParseRevocationList(der); status != 200 || err != nil || crl.CheckSignatureFrom(certs[1]) != nil {
			t.Errorf("GetCRL: %d %v", status, err)
		}
		if status, _ := e.rest(t, "GET", "/v1/crls/nosuch", e.tokens["cpo1"], nil); status != 404 {
			t.Errorf("CRL of an unknown CA: %d", status)
		}
		status, body = e.rest(t, "GET", "/v1/trust-anchors?use=MORootCertificate", e.tokens["cpo1"], nil)
		if anchors, _ := body["anchors"].([]any); status != 200 || len(anchors) != 1 || anchors[0].(map[string]any)["use"] != "MORootCertificate" || len(anchors[0].(map[string]any)["sha256"].(string)) != 64 {
			t.Errorf("trust anchors: %d %v", status, body)
		}
	})
}

// TestJWKSTokens: an external identity provider's EdDSA token works like
// pncd's own; its tenant claim still scopes what it sees.
func TestJWKSTokens(t *testing.T) {
	e := newEnv(t, "")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":%q}]}`, base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	}))
	t.Cleanup(jwks.Close)
	// A server of its own, configured before it serves.
	server := &api.Server{CA: e.d.CA, Store: e.d.Store, Key: e.key, OCSP: e.r,
		JWKS: &auth.JWKS{URL: jwks.URL, Issuer: "https://idp.example", Audience: "pncpki"}}
	h, err := server.Handler()
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewTLSServer(h)
	t.Cleanup(e.srv.Close)
	mint := func(iss, tenant string) string {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, auth.Claims{Tenant: tenant, Role: auth.RoleOperator, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: iss, Subject: "csms-backend", Audience: jwt.ClaimStrings{"pncpki"}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	status, body := e.rest(t, "POST", "/v1/certificates", mint("https://idp.example", "cpo1"), map[string]any{"profile": "iso15118-2/secc", "csr": opensslCSR(t, e.dir, "DE*ABC*E8")})
	if status != 200 || body["certificate"].(map[string]any)["tenant"] != "cpo1" {
		t.Fatalf("SignCSR with an IdP token: %d %v", status, body)
	}
	if status, body := e.rest(t, "POST", "/v1/certificates", mint("https://idp.example", "cpo2"), map[string]any{"profile": "iso15118-2/secc", "csr": opensslCSR(t, e.dir, "DE*ABC*E9")}); status != 403 {
		t.Errorf("IdP token of cpo2 for cpo1's operator ID: %d %v", status, body)
	}
	if status, _ := e.rest(t, "GET", "/v1/certificates", mint("https://other.example", "cpo1"), nil); status != 401 {
		t.Errorf("token of an unknown issuer signed with the IdP key: %d", status)
	}
}

// TestRevokeToken: a revoked token is refused at once where it was revoked
// and by another replica on the same store.
func TestRevokeToken(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		status, body := e.rest(t, "POST", "/v1/tokens", e.tokens["admin"], map[string]any{"subject": "csms", "tenant": "cpo1", "role": "operator", "ttlSeconds": 3600})
		if status != 200 || body["id"] == "" {
			t.Fatalf("CreateToken: %d %v", status, body)
		}
		tok, id := body["token"].(string), body["id"].(string)
		if status, _ := e.rest(t, "GET", "/v1/certificates", tok, nil); status != 200 {
			t.Fatalf("fresh token: %d", status)
		}
		if status, _ := e.rest(t, "POST", "/v1/tokens/"+id+":revoke", e.tokens["cpo1"], map[string]any{}); status != 403 {
			t.Errorf("an operator revoking a token: %d", status)
		}
		if status, body := e.rest(t, "POST", "/v1/tokens/"+id+":revoke", e.tokens["admin"], map[string]any{}); status != 200 {
			t.Fatalf("RevokeToken: %d %v", status, body)
		}
		if status, _ := e.rest(t, "GET", "/v1/certificates", tok, nil); status != 401 {
			t.Errorf("revoked token here: %d, want 401", status)
		}
		other := &api.Server{CA: e.d.CA, Store: e.d.Store, Key: e.key}
		h, err := other.Handler()
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewTLSServer(h)
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/certificates", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("revoked token at another replica: %d, want 401", resp.StatusCode)
		}
	})
}

// TestClientCertificates: mutual TLS with a pncpki api/client certificate
// as the second way in.
func TestClientCertificates(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	issue := func(profile, tenant, cn, org string) tls.Certificate {
		t.Helper()
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		subj := pkix.Name{CommonName: cn}
		if org != "" {
			subj.Organization = []string{org}
		}
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, k)
		iss, err := e.d.CA.Issue(ctx, ca.Request{Profile: profile, Tenant: tenant, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{iss.Record.DER}, PrivateKey: k, Leaf: iss.Cert()}
	}
	cpo1 := issue(policies.APIClient, "cpo1", "csms-backend", "")
	station := issue(policies.OCPPChargingStation, "cpo1", "SN1", "Example CPO")
	root, _ := e.d.CA.Authority("csms-root")
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	if d := cpo1.Leaf.NotAfter.Sub(cpo1.Leaf.NotBefore); d > 31*24*time.Hour {
		t.Errorf("api/client certificate valid %v, want at most 30 days", d)
	}
	s := &api.Server{CA: e.d.CA, Store: e.d.Store, Key: e.key}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, VerifyConnection: s.VerifyConnection}
	srv.StartTLS()
	defer srv.Close()
	get := func(cert *tls.Certificate, path string) int {
		t.Helper()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL + path)
		if err != nil {
			return -1 // refused by the TLS layer
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(&cpo1, "/v1/certificates"); got != 200 {
		t.Errorf("api/client certificate: %d", got)
	}
	if got := get(&cpo1, "/v1/tenants"); got != 403 {
		t.Errorf("api/client certificate of cpo1 on an admin route: %d", got)
	}
	if got := get(&station, "/v1/certificates"); got != 401 {
		t.Errorf("a station certificate: %d, want 401", got)
	}
	if got := get(nil, "/v1/certificates"); got != 401 {
		t.Errorf("no certificate, no token: %d", got)
	}
	if _, err := e.d.CA.Revoke(ctx, "csms-root", ca.SerialHex(cpo1.Leaf.SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	if got := get(&cpo1, "/v1/certificates"); got != -1 {
		t.Errorf("revoked api/client certificate: %d, want refused in the TLS handshake", got)
	}
	// Only administrators issue api/client: an operator's own request is
	// refused, and a certificate longer than the bound too.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "minted"}}, k)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	for _, tok := range []string{"cpo1", "emsp1", "oem1"} {
		if status, body := e.rest(t, "POST", "/v1/certificates", e.tokens[tok], map[string]any{"profile": policies.APIClient, "csr": csr}); status != 403 {
			t.Errorf("%s minting an api/client certificate: %d %v", tok, status, body)
		}
	}
	if status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["admin"], map[string]any{"profile": policies.APIClient, "csr": csr, "tenant": "cpo1", "validityDays": 365}); status != 400 {
		t.Errorf("api/client for a year: %d %v", status, body)
	}
}

// TestContractService: an eMSP manages its contracts; cancelling one
// revokes its certificates.
func TestContractService(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		status, body := e.rest(t, "PUT", "/v1/contracts/de-8aa-c12345678", e.tokens["emsp1"], map[string]any{"pcid": "wmi00000000000001", "default": true})
		if status != 200 || body["contract"].(map[string]any)["emaid"] != "DE8AAC12345678D" || body["contract"].(map[string]any)["tenant"] != "emsp1" {
			t.Fatalf("PutContract: %d %v", status, body)
		}
		for _, tc := range []struct {
			token, path string
			body        map[string]any
			status      int
		}{
			{"cpo1", "/v1/contracts/DE8AAC00000001", map[string]any{"pcid": "WMI00000000000001"}, 403},
			{"emsp1", "/v1/contracts/NLXYZC00000001", map[string]any{"pcid": "WMI00000000000001"}, 403},
			{"emsp1", "/v1/contracts/DE8AAC123456789", map[string]any{"pcid": "WMI00000000000001"}, 400},
			{"emsp1", "/v1/contracts/DE8AAC00000001", map[string]any{"pcid": "x"}, 400},
		} {
			if status, body := e.rest(t, "PUT", tc.path, e.tokens[tc.token], tc.body); status != tc.status {
				t.Errorf("%s PUT %s: %d %v, want %d", tc.token, tc.path, status, body, tc.status)
			}
		}
		if status, _ := e.rest(t, "GET", "/v1/contracts/DE8AAC12345678D", e.tokens["cpo1"], nil); status != 404 {
			t.Errorf("another tenant's contract: %d", status)
		}
		csr := opensslCSRSubject(t, e.dir, "/CN=DE8AAC12345678D/DC=MO")
		status, body = e.rest(t, "POST", "/v1/certificates", e.tokens["emsp1"], map[string]any{"profile": "iso15118-2/contract", "csr": csr})
		if status != 200 {
			t.Fatalf("contract certificate: %d %v", status, body)
		}
		serial := body["certificate"].(map[string]any)["serial"].(string)
		status, body = e.rest(t, "POST", "/v1/contracts/DE8AAC12345678D:cancel", e.tokens["emsp1"], map[string]any{})
		if revoked, _ := body["revoked"].([]any); status != 200 || len(revoked) != 1 || revoked[0].(map[string]any)["serial"] != serial {
			t.Fatalf("CancelContract: %d %v", status, body)
		}
		status, body = e.rest(t, "GET", "/v1/contracts?pcid=WMI00000000000001", e.tokens["emsp1"], nil)
		if list, _ := body["contracts"].([]any); status != 200 || len(list) != 1 || list[0].(map[string]any)["cancelledAt"] == nil {
			t.Errorf("ListContracts: %d %v", status, body)
		}
	})
}

// provisioningPEM is testcerts' OEM provisioning certificate with its
// sub-CAs, PEM, and its PCID.
func provisioningPEM(t *testing.T) (string, string) {
	t.Helper()
	pki, err := testcerts.Generate(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ocppsec.EncodePEMChain(append([]*x509.Certificate{pki.Get("oem-prov").Cert}, pki.Chain("oem-prov")[:2]...)...), testcerts.PCID
}

func TestProvisioningService(t *testing.T) {
	e := newEnv(t, "")
	provPEM, pcid := provisioningPEM(t)
	for _, tc := range []struct {
		token, path string
		body        map[string]any
		status      int
	}{
		{"emsp1", "/v1/provisioning-certificates/" + pcid, map[string]any{"pem": provPEM}, 403}, // not an OEM
		{"oem1", "/v1/provisioning-certificates/WMI00000000000009", map[string]any{"pem": provPEM}, 400},
		{"oem1", "/v1/provisioning-certificates/" + pcid, map[string]any{"pem": "garbage"}, 400},
		{"oem1", "/v1/provisioning-certificates/" + pcid, map[string]any{"pem": provPEM}, 200},
	} {
		if status, body := e.rest(t, "PUT", tc.path, e.tokens[tc.token], tc.body); status != tc.status {
			t.Errorf("%s PUT %s: %d %v, want %d", tc.token, tc.path, status, body, tc.status)
		}
	}
	status, body := e.rest(t, "GET", "/v1/provisioning-certificates/"+pcid, e.tokens["oem1"], nil)
	if status != 200 || !strings.Contains(body["certificate"].(map[string]any)["pem"].(string), "BEGIN CERTIFICATE") {
		t.Errorf("Get: %d %v", status, body)
	}
	if status, _ := e.rest(t, "GET", "/v1/provisioning-certificates/"+pcid, e.tokens["cpo1"], nil); status != 404 {
		t.Errorf("another tenant: %d", status)
	}
	// eMSPs encrypt contract keys for vehicles: they read every one, as
	// over OPNC and OPCP, but change none.
	if status, body := e.rest(t, "GET", "/v1/provisioning-certificates/"+pcid, e.tokens["emsp1"], nil); status != 200 {
		t.Errorf("an eMSP reads a provisioning certificate: %d %v", status, body)
	}
	if status, _ := e.rest(t, "DELETE", "/v1/provisioning-certificates/"+pcid, e.tokens["emsp1"], nil); status != 403 && status != 404 {
		t.Errorf("an eMSP deletes a provisioning certificate: %d", status)
	}
	if status, body := e.rest(t, "GET", "/v1/provisioning-certificates", e.tokens["admin"], nil); status != 200 || len(body["certificates"].([]any)) != 1 {
		t.Errorf("List: %d %v", status, body)
	}
	if status, _ := e.rest(t, "DELETE", "/v1/provisioning-certificates/"+pcid, e.tokens["oem1"], nil); status != 200 {
		t.Errorf("Delete: %d", status)
	}
}

// OEM sub-CAs: an OEM registers, lists and removes its own; other tenants
// cannot.
func TestOEMSubCAs(t *testing.T) {
	e := newEnv(t, "")
	subCA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.oem.Get("oem-sub1").Cert.Raw}))
	if status, body := e.rest(t, "POST", "/v1/oem-sub-cas", e.tokens["cpo1"], map[string]any{"pem": subCA}); status != 403 {
		t.Errorf("a CPO registers an OEM sub-CA: %d %v", status, body)
	}
	leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.oem.Get("oem-prov").Cert.Raw}))
	if status, body := e.rest(t, "POST", "/v1/oem-sub-cas", e.tokens["oem1"], map[string]any{"pem": leaf}); status != 400 {
		t.Errorf("a leaf as a sub-CA: %d %v", status, body)
	}
	status, body := e.rest(t, "POST", "/v1/oem-sub-cas", e.tokens["oem1"], map[string]any{"pem": subCA})
	if status != 200 {
		t.Fatalf("register: %d %v", status, body)
	}
	fp := body["subCa"].(map[string]any)["sha256"].(string)
	if status, body := e.rest(t, "GET", "/v1/oem-sub-cas", e.tokens["oem1"], nil); status != 200 || len(body["subCas"].([]any)) != 1 {
		t.Errorf("list: %d %v", status, body)
	}
	if status, body := e.rest(t, "GET", "/v1/oem-sub-cas", e.tokens["emsp1"], nil); status != 200 || body["subCas"] != nil {
		t.Errorf("another tenant's list: %d %v", status, body)
	}
	if status, _ := e.rest(t, "DELETE", "/v1/oem-sub-cas/"+fp, e.tokens["emsp1"], nil); status != 404 {
		t.Errorf("another tenant deletes: %d", status)
	}
	if status, body := e.rest(t, "DELETE", "/v1/oem-sub-cas/"+fp, e.tokens["oem1"], nil); status != 200 {
		t.Errorf("delete: %d %v", status, body)
	}
}

// TestStationRenewalsDue: a station whose SECC certificate expires within
// the renewal window shows it due; a newer one for the same EVSEID clears
// it.
func TestStationRenewalsDue(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if status, body := e.rest(t, "PUT", "/v1/stations/CS-R", e.tokens["cpo1"], map[string]any{"ocppVersion": "2.0.1", "evseIds": []string{"DE*ABC*E9"}}); status != 200 {
			t.Fatalf("put station: %d %v", status, body)
		}
		due := func() []any {
			t.Helper()
			status, body := e.rest(t, "GET", "/v1/stations/CS-R", e.tokens["cpo1"], nil)
			if status != 200 {
				t.Fatalf("get station: %d %v", status, body)
			}
			r, _ := body["renewalsDue"].([]any)
			return r
		}
		if r := due(); len(r) != 0 {
			t.Errorf("without certificates: due %v", r)
		}
		issue := func(days int) {
			t.Helper()
			if status, body := e.rest(t, "POST", "/v1/certificates", e.tokens["cpo1"], map[string]any{"profile": policies.ISO2SECC,
				"csr": opensslCSR(t, e.dir, "DE*ABC*E9"), "validityDays": days}); status != 200 {
				t.Fatalf("issue: %d %v", status, body)
			}
		}
		issue(10)
		if r := due(); len(r) != 1 || r[0] != "V2GCertificate" {
			t.Errorf("a SECC certificate for 10 days: due %v", r)
		}
		issue(60)
		if r := due(); len(r) != 0 {
			t.Errorf("renewed for 60 days: due %v", r)
		}
	})
}
