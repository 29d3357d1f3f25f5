package ocppsec

import (
	"context"
	"crypto/ecdsa"
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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts"
)

// rawUpstream is a minimal CSMS that answers every CALL it gets with an
// empty CALLRESULT and records the actions; for frames ocpp-go cannot send.
type rawUpstream struct {
	mu      sync.Mutex
	actions []string
	closed  int // connections that ended
	auth    string
}

func (u *rawUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.auth = r.Header.Get("Authorization")
	u.mu.Unlock()
	c, err := (&websocket.Upgrader{Subprotocols: []string{"ocpp1.6", "ocpp2.0.1", "ocpp2.1"}}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer func() {
		c.Close()
		u.mu.Lock()
		u.closed++
		u.mu.Unlock()
	}()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var f []json.RawMessage
		if json.Unmarshal(data, &f) != nil || len(f) != 4 {
			continue
		}
		var action string
		json.Unmarshal(f[2], &action)
		u.mu.Lock()
		u.actions = append(u.actions, action)
		u.mu.Unlock()
		if action == "Stall" {
			continue // never answers: the station's CALL stays in flight
		}
		if action == "Bye" {
			return // the CSMS goes away
		}
		payload := `{}`
		if action == "BootNotification" {
			payload = fmt.Sprintf(`{"currentTime":%q,"interval":300,"status":"Accepted"}`, time.Now().UTC().Format(time.RFC3339))
		}
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`[3,%s,%s]`, f[1], payload)))
	}
}

func (u *rawUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.actions...)
}

type rawClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialRaw(t *testing.T, url, subprotocol string, tlsConf *tls.Config) (*rawClient, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{subprotocol}, TLSClientConfig: tlsConf}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c}, resp, nil
}

func (r *rawClient) send(s string) {
	r.t.Helper()
	if err := r.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawClient) read() *Frame {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := r.c.ReadMessage()
	if err != nil {
		r.t.Fatal(err)
	}
	f, err := ParseFrame(OCPP201, data)
	if err != nil {
		r.t.Fatalf("%s: %v", data, err)
	}
	return f
}

// TestProxyRawFrames covers what ocpp-go cannot send: the 1.6 security
// extension's SignCertificate, and the bad input table.
func TestProxyRawFrames(t *testing.T) {
	up := &rawUpstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	e := newBridgeEnv(t)
	e.b.Metrics = NewMetrics(prometheus.NewRegistry())
	p := &Proxy{Bridge: e.b, Upstream: "ws" + strings.TrimPrefix(upSrv.URL, "http") + "/ocpp"}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ocpp/"

	c, _, err := dialRaw(t, url+"CS-2", "ocpp1.6", nil)
	if err != nil {
		t.Fatal(err)
	}
	before := e.count(t)
	c.send(`[2,"a1","SignCertificate",` + string(mustJSON(t, SignCertificate16{CSR: csrPEM(t, "SN-0002", "Other CPO")})) + `]`)
	if f := c.read(); f.Type != TypeCallResult || f.ID != "a1" || string(f.Payload) != `{"status":"Accepted"}` {
		t.Fatalf("1.6 SignCertificate: %+v %s", f, f.Payload)
	}
	f := c.read()
	var signed CertificateSigned16
	if f.Type != TypeCall || f.Action != "CertificateSigned" || !strings.HasPrefix(f.ID, "pncpki-") || Decode(OCPP16, f.Payload, &signed) != nil {
		t.Fatalf("CertificateSigned: %+v", f)
	}
	chain, err := ParsePEMChain([]byte(signed.CertificateChain))
	if err != nil || chain[0].Subject.CommonName != "SN-0002" {
		t.Fatalf("chain: %v", err)
	}
	verifyOpenSSL(t, e, chain, policies.OCPPChargingStation)
	c.send(`[3,"` + f.ID + `",{"status":"Accepted"}]`)

	big := `[2,"b7","Heartbeat",{"x":"` + strings.Repeat("a", MaxFrame) + `"}]`
	tests := []struct {
		name, frame string
		id, code    string
	}{
		{"invalid JSON", `[2,"b1","SignCertificate",{"csr":`, "-1", "FormationViolation"},
		{"not an array", `{"id":"b2"}`, "-1", "FormationViolation"},
		{"schema violation", `[2,"b3","SignCertificate",{"csr":"` + strings.Repeat("A", 5501) + `"}]`, "b3", CodePropertyConstraint},
		{"missing property", `[2,"b4","SignCertificate",{}]`, "b4", CodeOccurrenceViolation},
		{"2.0.1 field in 1.6", `[2,"b5","SignCertificate",{"csr":"x","certificateType":"V2GCertificate"}]`, "b5", CodeOccurrenceViolation},
		{"unknown message type", `[7,"b6","SignCertificate",{}]`, "b6", "ProtocolError"},
		{"oversize frame", big, "b7", "FormationViolation"},
		{"CSR for another CPO's station", `[2,"b8","DataTransfer",` + string(mustJSON(t, DataTransfer16{VendorID: VendorOCA, MessageID: "SignCertificate",
			Data: string(mustJSON(t, SignCertificateRequest{CSR: csrPEM(t, "DEABCE0001", "Example CPO"), CertificateType: "V2GCertificate"}))})) + `]`, "b8", ""},
	}
	for _, tt := range tests {
		c.send(tt.frame)
		f := c.read()
		if tt.code == "" { // answered, with a rejection inside
			var dt DataTransfer16Response
			if f.Type != TypeCallResult || f.ID != tt.id || json.Unmarshal(f.Payload, &dt) != nil || !strings.Contains(dt.Data, `"Rejected"`) {
				t.Errorf("%s: %+v %s", tt.name, f, f.Payload)
			}
			continue
		}
		if f.Type != TypeCallError || f.ID != tt.id || f.ErrorCode != tt.code {
			t.Errorf("%s: %+v, want CALLERROR %s %s", tt.name, f, tt.id, tt.code)
		}
	}
	// Unknown actions belong to the CSMS; a duplicate ID of a CALL still
	// in flight is refused.
	c.send(`[2,"c1","Stall",{}]`)
	c.send(`[2,"c1","Heartbeat",{}]`)
	if f := c.read(); f.Type != TypeCallError || f.ID != "c1" || f.ErrorCode != "ProtocolError" {
		t.Errorf("duplicate message ID: %+v", f)
	}
	c.send(`[2,"c2","FancyVendorThing",{"a":1}]`)
	if f := c.read(); f.Type != TypeCallResult || f.ID != "c2" {
		t.Errorf("unknown action through the proxy: %+v", f)
	}
	if got := fmt.Sprint(up.seen()); got != "[Stall FancyVendorThing]" {
		t.Errorf("the CSMS saw %s", got)
	}
	if after := e.count(t); after != before+1 {
		t.Errorf("%d certificates stored by bad frames", after-before-1)
	}
	m := e.b.Metrics
	if got := testutil.ToFloat64(m.messages.WithLabelValues("SignCertificate", "answered")); got != 1 {
		t.Errorf("answered SignCertificate counted %v", got)
	}
	if got := testutil.ToFloat64(m.frames.WithLabelValues("upstream")); got != 2 {
		t.Errorf("frames forwarded upstream counted %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.connections); got != 1 {
		t.Errorf("connections %v", got)
	}
	// Closing the station's connection closes the upstream one.
	c.c.Close()
	waitFor(t, func() bool { up.mu.Lock(); defer up.mu.Unlock(); return up.closed == 1 })

	// A CertificateSigned the station did not answer is sent again, with
	// the same message ID, when it reconnects.
	c, _, err = dialRaw(t, url+"CS-2", "ocpp1.6", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(`[2,"d1","SignCertificate",` + string(mustJSON(t, SignCertificate16{CSR: csrPEM(t, "SN-0002", "Other CPO")})) + `]`)
	c.read()
	first := c.read()
	c.c.Close()
	waitFor(t, func() bool { up.mu.Lock(); defer up.mu.Unlock(); return up.closed == 2 })
	c, _, err = dialRaw(t, url+"CS-2", "ocpp1.6", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again := c.read(); again.ID != first.ID || again.Action != "CertificateSigned" || string(again.Payload) != string(first.Payload) {
		t.Errorf("after reconnect: %+v, want %+v", again, first)
	}
	c.send(`[3,"` + first.ID + `",{"status":"Accepted"}]`)
	waitFor(t, func() bool { return len(p.unanswered(context.Background(), "CS-2")) == 0 })

	// The CSMS going away closes the station's connection too.
	c.send(`[2,"e1","Bye",{}]`)
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("after the upstream closed: %v, want a going-away close", err)
	}
}

// stationCert issues an OCPP charging-station certificate for CS-1 and
// returns it as a TLS client certificate.
func stationCert(t *testing.T, e *bridgeEnv) (tls.Certificate, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "SN-0001", Organization: []string{"Example CPO"}}}, k)
	iss, err := e.d.CA.Issue(context.Background(), ca.Request{Profile: policies.OCPPChargingStation, Tenant: "cpo1",
		CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{iss.Record.DER}, PrivateKey: k}, iss.Record.Serial
}

// TestProxySecurityProfile3: mutual TLS with pncpki-issued charging
// station certificates.
func TestProxySecurityProfile3(t *testing.T) {
	up := &rawUpstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	e := newBridgeEnv(t)
	p := &Proxy{Bridge: e.b, Upstream: "ws" + strings.TrimPrefix(upSrv.URL, "http") + "/ocpp", SecurityProfile: 3, StationCAs: e.b.Anchors.Pool(UseCSMS)}
	srv := httptest.NewUnstartedServer(p)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: p.StationCAs}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/ocpp/CS-1"
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	good, serial := stationCert(t, e)
	other, _ := stationCert(t, e)
	dial := func(certs ...tls.Certificate) (int, error) {
		c, resp, err := dialRaw(t, url, "ocpp2.0.1", &tls.Config{RootCAs: roots, Certificates: certs})
		if err != nil {
			if resp != nil {
				return resp.StatusCode, err
			}
			return 0, err
		}
		c.send(`[2,"1","Heartbeat",{}]`)
		if f := c.read(); f.Type != TypeCallResult {
			return 0, fmt.Errorf("heartbeat: %+v", f)
		}
		return http.StatusSwitchingProtocols, nil
	}
	if status, err := dial(good); status != http.StatusSwitchingProtocols {
		t.Fatalf("valid certificate: %d %v", status, err)
	}
	if status, _ := dial(); status != http.StatusUnauthorized {
		t.Errorf("no certificate: %d, want 401", status)
	}
	if _, err := e.d.CA.Revoke(context.Background(), "csms-root", serial, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.resp.ApplyRevocations(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, _ := dial(good); status != http.StatusForbidden {
		t.Errorf("revoked certificate: %d, want 403", status)
	}
	e.b.Now = func() time.Time { return time.Now().AddDate(3, 0, 0) }
	if status, _ := dial(other); status != http.StatusForbidden {
		t.Errorf("expired certificate: %d, want 403", status)
	}
	e.b.Now = nil
	if status, err := dial(other); status != http.StatusSwitchingProtocols {
		t.Errorf("second valid certificate: %d %v", status, err)
	}
	// OCSP unreachable (no local responder; the AIA URL has no server).
	e.b.OCSP = &ocsp.Client{HTTP: &http.Client{Timeout: time.Second}}
	if status, _ := dial(other); status != http.StatusForbidden {
		t.Errorf("OCSP unreachable, fail closed: %d, want 403", status)
	}
	e.b.Policy.StationTLSFailOpen = true
	if status, err := dial(other); status != http.StatusSwitchingProtocols {
		t.Errorf("OCSP unreachable, fail open: %d %v", status, err)
	}
}

// TestProxySecurityProfile2: TLS and Basic auth; the password goes on to
// the CSMS, which knows it.
func TestProxySecurityProfile2(t *testing.T) {
	up := &rawUpstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	e := newBridgeEnv(t)
	p := &Proxy{Bridge: e.b, Upstream: "ws" + strings.TrimPrefix(upSrv.URL, "http") + "/ocpp", SecurityProfile: 2}
	srv := httptest.NewTLSServer(p)
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/ocpp/CS-1"
	dial := func(user, pass string) int {
		d := websocket.Dialer{Subprotocols: []string{"ocpp2.0.1"}, TLSClientConfig: &tls.Config{RootCAs: roots}}
		h := http.Header{}
		if user != "" {
			r := &http.Request{Header: http.Header{}}
			r.SetBasicAuth(user, pass)
			h.Set("Authorization", r.Header.Get("Authorization"))
		}
		c, resp, err := d.Dial(url, h)
		if err != nil {
			if resp != nil {
				return resp.StatusCode
			}
			t.Fatal(err)
		}
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if got := dial("", ""); got != http.StatusUnauthorized {
		t.Errorf("no Basic auth: %d", got)
	}
	if got := dial("CS-2", "secret"); got != http.StatusForbidden {
		t.Errorf("another station's user: %d", got)
	}
	if got := dial("CS-1", "secret"); got != http.StatusSwitchingProtocols {
		t.Errorf("the station: %d", got)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if want := "Basic Q1MtMTpzZWNyZXQ="; up.auth != want {
		t.Errorf("upstream got Authorization %q, want %q", up.auth, want)
	}
}

// TestProxyUpstreamTLS: the proxy reaches a wss:// CSMS whose certificate
// it checks, with its own Basic auth credentials.
func TestProxyUpstreamTLS(t *testing.T) {
	up := &rawUpstream{}
	upSrv := httptest.NewTLSServer(up)
	t.Cleanup(upSrv.Close)
	e := newBridgeEnv(t)
	roots := x509.NewCertPool()
	roots.AddCert(upSrv.Certificate())
	p := &Proxy{Bridge: e.b, Upstream: "wss" + strings.TrimPrefix(upSrv.URL, "https") + "/ocpp",
		UpstreamTLS: &tls.Config{RootCAs: roots}, UpstreamUser: "pncd", UpstreamPassword: "upstream-secret"}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c, _, err := dialRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ocpp/CS-1", "ocpp2.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(`[2,"1","Heartbeat",{}]`)
	if f := c.read(); f.Type != TypeCallResult || f.ID != "1" {
		t.Fatalf("Heartbeat over wss: %+v", f)
	}
	up.mu.Lock()
	auth := up.auth
	up.mu.Unlock()
	if auth != "Basic cG5jZDp1cHN0cmVhbS1zZWNyZXQ=" {
		t.Errorf("upstream Authorization %q", auth)
	}
	// An upstream certificate the proxy does not trust: the station gets 502.
	p.UpstreamTLS = &tls.Config{RootCAs: x509.NewCertPool()}
	if _, resp, err := dialRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ocpp/CS-1", "ocpp2.0.1", nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("untrusted upstream: %v %v", err, resp)
	}
}

// TestProxyOCPP21ISO20: a station speaking ocpp2.1 through pncd's proxy
// gets the ISO 15118-20 certificate messages answered, each frame checked
// against the official 2.1 schemas on both sides: SignCertificate with
// V2G20Certificate and the CertificateSigned that follows, Get15118EV
// Certificate with a -20 request (its answer read and decrypted by the
// vehicle), Authorize with that -20 contract certificate's hash data, and
// a -20 exiRequest over 2.1's 11,000 characters refused as a CALLERROR.
func TestProxyOCPP21ISO20(t *testing.T) {
	up := &rawUpstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	e := newBridgeEnvWith(t, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE", ISO20: true}, "")
	ev, _ := withInstaller20(t, e, false)
	p := &Proxy{Bridge: e.b, Upstream: "ws" + strings.TrimPrefix(upSrv.URL, "http") + "/ocpp"}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c, _, err := dialRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ocpp/CS-1", "ocpp2.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	// answer reads until the answer to id, checking pncpki's own calls to
	// the station (root sync, FieldLength) against the 2.1 schemas.
	var calls []*Frame
	answer := func(id string) *Frame {
		t.Helper()
		for {
			f := c.read()
			if f.Type == TypeCall {
				var v any
				json.Unmarshal(f.Payload, &v)
				e.schema(t, OCPP21, f.Action, false, v)
				calls = append(calls, f)
				continue
			}
			if f.ID != id {
				t.Fatalf("frame %+v, want the answer to %s", f, id)
			}
			return f
		}
	}
	call := func(id, action string, payload any) *Frame {
		t.Helper()
		c.send(`[2,"` + id + `","` + action + `",` + string(mustJSON(t, payload)) + `]`)
		f := answer(id)
		if f.Type == TypeCallResult {
			var v any
			json.Unmarshal(f.Payload, &v)
			e.schema(t, OCPP21, action, true, v)
		}
		return f
	}

	// The SECC's -20 certificate.
	f := call("s1", "SignCertificate", SignCertificateRequest{CSR: csrPEMOn(t, elliptic.P521(), "DEABCE0001", "Example CPO"), CertificateType: "V2G20Certificate"})
	if f.Type != TypeCallResult || !strings.Contains(string(f.Payload), `"Accepted"`) {
		t.Fatalf("SignCertificate: %+v %s", f, f.Payload)
	}
	var signed *CertificateSignedRequest
	for i := 0; signed == nil && i < 10; i++ {
		for _, cf := range calls {
			if cf.Action == "CertificateSigned" {
				signed = &CertificateSignedRequest{}
				if err := Decode(OCPP21, cf.Payload, signed); err != nil {
					t.Fatal(err)
				}
			}
		}
		if signed == nil {
			calls = append(calls, c.read())
		}
	}
	if signed == nil || signed.CertificateType != "V2G20Certificate" {
		t.Fatalf("no CertificateSigned for the -20 certificate: %+v", calls)
	}
	chain, err := ParsePEMChain([]byte(signed.CertificateChain))
	if err != nil {
		t.Fatal(err)
	}
	verifyOpenSSL(t, e, chain, policies.ISO20SECC)

	// A vehicle's -20 installation.
	exiReq, err := ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	maxChains := int32(2)
	f = call("g1", "Get15118EVCertificate", Get15118EVCertificateRequest{ISO15118SchemaVersion: contract.ISO15118v20Schema, Action: "Install",
		EXIRequest: base64.StdEncoding.EncodeToString(exiReq), MaximumContractCertificateChains: &maxChains})
	var res Get15118EVCertificateResponse
	if f.Type != TypeCallResult || Decode(OCPP21, f.Payload, &res) != nil || res.Status != "Accepted" || res.RemainingContracts == nil || *res.RemainingContracts != 1 {
		t.Fatalf("Get15118EVCertificate: %+v %s", f, f.Payload)
	}
	exiRes, _ := base64.StdEncoding.DecodeString(res.EXIResponse)
	inst, err := ev.ReadResponse20(exiRes, testcerts.PCID)
	if err != nil {
		t.Fatal(err)
	}

	// Authorize with its hash data: the CSMS decides on the idToken (this
	// one answers an empty object), pncpki adds the certificate's status.
	h, err := HashDataOf(inst.ContractChain[0], inst.ContractChain[1], "SHA256")
	if err != nil {
		t.Fatal(err)
	}
	c.send(`[2,"a1","Authorize",` + string(mustJSON(t, AuthorizeRequest{IDToken: IdToken{IDToken: inst.EMAID, Type: "eMAID"}, ISO15118CertificateHashData: []OCSPRequestData{{
		HashAlgorithm: h.HashAlgorithm, IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber, ResponderURL: "http://127.0.0.1:1/ocsp"}}})) + `]`)
	var auth AuthorizeResponse
	if f = answer("a1"); f.Type != TypeCallResult || json.Unmarshal(f.Payload, &auth) != nil || auth.CertificateStatus != CertAccepted {
		t.Errorf("Authorize: %+v %s", f, f.Payload)
	}

	// 2.1 allows 11,000 characters of exiRequest, not more.
	f = call("g2", "Get15118EVCertificate", Get15118EVCertificateRequest{ISO15118SchemaVersion: contract.ISO15118v20Schema, Action: "Install",
		EXIRequest: strings.Repeat("A", 11004)})
	if f.Type != TypeCallError || f.ErrorCode != CodePropertyConstraint {
		t.Errorf("an exiRequest over 11,000 characters: %+v", f)
	}
	if got := fmt.Sprint(up.seen()); got != "[Authorize]" {
		t.Errorf("the CSMS saw %s, want only Authorize", got)
	}
}

// TestProxyOCPP21Certificates takes the OCPP 2.1 certificate messages
// through pncd's proxy against the ISO 15118-20 hierarchy of each variant,
// with every frame in both directions checked against the official 2.1
// schemas. pncpki's own calls: the root sync asks which roots the station
// holds (GetInstalledCertificateIds, OEMRootCertificate included), installs
// each trust anchor it lacks (InstallCertificate: V2G, MO and OEM roots of
// both -20 variants, the vehicle's OEM root among them) and deletes the
// OEM root pncpki does not trust (DeleteCertificate). The station's: a -20
// vehicle's Get15118EVCertificate, then GetCertificateStatus and
// GetCertificateChainStatus (OCSP and CRL) for its contract chain, and
// Authorize with its hash data, all answered Good/Accepted.
func TestProxyOCPP21Certificates(t *testing.T) {
	for _, v := range []struct {
		name, root string
		ed         bool
	}{{"secp521r1", "v2g20-root", false}, {"Ed448", "v2g20ed-root", true}} {
		t.Run(v.name, func(t *testing.T) {
			up := &rawUpstream{}
			upSrv := httptest.NewServer(up)
			t.Cleanup(upSrv.Close)
			e := newBridgeEnvWith(t, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE", ISO20: true}, "")
			ev, vehiclePKI := withInstaller20(t, e, v.ed)
			oemRoot := vehiclePKI.Get("oem-root").Cert
			e.b.Anchors[UseOEM] = append(e.b.Anchors[UseOEM], oemRoot)
			other, _ := testcerts.Generate20(99, time.Now())
			e.b.Policy.DeleteUnknownRoots = true
			installedV2G, _ := e.d.CA.Authority(v.root)
			hash := func(c *x509.Certificate) CertificateHashData {
				h, err := HashDataOf(c, c, "SHA256")
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			p := &Proxy{Bridge: e.b, Upstream: "ws" + strings.TrimPrefix(upSrv.URL, "http") + "/ocpp", Manage: true}
			srv := httptest.NewServer(p)
			t.Cleanup(srv.Close)
			c, _, err := dialRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ocpp/CS-1", "ocpp2.1", nil)
			if err != nil {
				t.Fatal(err)
			}
			boot := map[string]any{"reason": "PowerUp", "chargingStation": map[string]string{"model": "AC22-20", "vendorName": "Example"}}
			e.schema(t, OCPP21, "BootNotification", false, boot)
			c.send(`[2,"b1","BootNotification",` + string(mustJSON(t, boot)) + `]`)
			if f := c.read(); f.ID != "b1" || f.Type != TypeCallResult {
				t.Fatalf("BootNotification: %+v", f)
			}

			// pncpki's calls after the CSMS accepted the station, each
			// answered as a station would.
			anchors := e.b.TrustAnchors()
			wantInstalls := -1 // the V2G root the station holds
			for _, u := range []Use{UseV2G, UseMO, UseCSMS, UseManufacturer, UseOEM} {
				wantInstalls += len(anchors[u])
			}
			installed := map[string][]*x509.Certificate{}
			var deleted []CertificateHashData
			reply := func(f *Frame, payload any) {
				t.Helper()
				e.schema(t, OCPP21, f.Action, true, payload)
				c.send(`[3,"` + f.ID + `",` + string(mustJSON(t, payload)) + `]`)
			}
			for n := 0; n < wantInstalls+8 && (len(installedCount(installed)) < wantInstalls || len(deleted) == 0); n++ {
				f := c.read()
				if f.Type != TypeCall {
					t.Fatalf("a %v frame before pncpki's calls were done", f.Type)
				}
				var raw any
				json.Unmarshal(f.Payload, &raw)
				e.schema(t, OCPP21, f.Action, false, raw)
				switch f.Action {
				case "GetInstalledCertificateIds":
					var req GetInstalledCertificateIdsRequest
					json.Unmarshal(f.Payload, &req)
					if !slices.Contains(req.CertificateType, "OEMRootCertificate") {
						t.Errorf("root sync over 2.1 asks for %v, without OEMRootCertificate", req.CertificateType)
					}
					reply(f, GetInstalledCertificateIdsResponse{Status: "Accepted", CertificateHashDataChain: []CertificateHashDataChain{
						{CertificateType: "V2GRootCertificate", CertificateHashData: hash(installedV2G.Cert)},
						{CertificateType: "OEMRootCertificate", CertificateHashData: hash(other.Get("oem-root").Cert)}}})
				case "GetVariables":
					var req GetVariablesRequest
					json.Unmarshal(f.Payload, &req)
					res := GetVariablesResponse{}
					for _, d := range req.GetVariableData {
						res.GetVariableResult = append(res.GetVariableResult, GetVariableResult{AttributeStatus: "UnknownVariable", Component: d.Component, Variable: d.Variable})
					}
					reply(f, res)
				case "InstallCertificate":
					var req InstallCertificateRequest
					json.Unmarshal(f.Payload, &req)
					certs, err := ParsePEMChain([]byte(req.Certificate))
					if err != nil || len(certs) != 1 {
						t.Fatalf("InstallCertificate %s: %v", req.CertificateType, err)
					}
					installed[req.CertificateType] = append(installed[req.CertificateType], certs[0])
					reply(f, InstallCertificateResponse{Status: "Accepted"})
				case "DeleteCertificate":
					var req DeleteCertificateRequest
					json.Unmarshal(f.Payload, &req)
					deleted = append(deleted, req.CertificateHashData)
					reply(f, DeleteCertificateResponse{Status: "Accepted"})
				default:
					t.Fatalf("pncpki sent %s", f.Action)
				}
			}
			if got := len(installedCount(installed)); got != wantInstalls {
				t.Errorf("%d roots installed, want %d: %v", got, wantInstalls, installedCount(installed))
			}
			for _, u := range []Use{UseV2G, UseMO, UseOEM} {
				for _, a := range anchors[u] {
					if !a.Equal(installedV2G.Cert) && !slices.ContainsFunc(installed[string(u)], a.Equal) {
						t.Errorf("%s %s was not installed", u, a.Subject.CommonName)
					}
				}
			}
			if !slices.ContainsFunc(installed["OEMRootCertificate"], oemRoot.Equal) {
				t.Error("the vehicle's OEM root was not installed")
			}
			if slices.ContainsFunc(installed["V2GRootCertificate"], installedV2G.Cert.Equal) {
				t.Error("the root the station holds was installed again")
			}
			if len(deleted) != 1 || !deleted[0].Same(hash(other.Get("oem-root").Cert)) {
				t.Errorf("deleted %+v, want the unknown OEM root", deleted)
			}

			// The station's calls for a -20 vehicle's contract.
			call := func(id, action string, payload any) *Frame {
				t.Helper()
				c.send(`[2,"` + id + `","` + action + `",` + string(mustJSON(t, payload)) + `]`)
				f := c.read()
				if f.ID != id || f.Type != TypeCallResult {
					t.Fatalf("%s: %+v %s", action, f, f.Payload)
				}
				var raw any
				json.Unmarshal(f.Payload, &raw)
				e.schema(t, OCPP21, action, true, raw)
				return f
			}
			exiReq, err := ev.InstallationRequest()
			if err != nil {
				t.Fatal(err)
			}
			var res Get15118EVCertificateResponse
			f := call("g1", "Get15118EVCertificate", Get15118EVCertificateRequest{ISO15118SchemaVersion: contract.ISO15118v20Schema, Action: "Install",
				EXIRequest: base64.StdEncoding.EncodeToString(exiReq)})
			if Decode(OCPP21, f.Payload, &res) != nil || res.Status != "Accepted" {
				t.Fatalf("Get15118EVCertificate: %s", f.Payload)
			}
			exiRes, _ := base64.StdEncoding.DecodeString(res.EXIResponse)
			inst, err := ev.ReadResponse20(exiRes, testcerts.PCID)
			if err != nil {
				t.Fatal(err)
			}
			chain := inst.ContractChain // contract, MO Sub-CA 2, MO Sub-CA 1

			leaf, err := HashDataOf(chain[0], chain[1], "SHA256")
			if err != nil {
				t.Fatal(err)
			}
			var status GetCertificateStatusResponse
			f = call("s1", "GetCertificateStatus", GetCertificateStatusRequest{OCSPRequestData: OCSPRequestData{HashAlgorithm: leaf.HashAlgorithm,
				IssuerNameHash: leaf.IssuerNameHash, IssuerKeyHash: leaf.IssuerKeyHash, SerialNumber: leaf.SerialNumber, ResponderURL: "http://127.0.0.1:1/ocsp"}})
			if json.Unmarshal(f.Payload, &status) != nil || status.Status != "Accepted" {
				t.Fatalf("GetCertificateStatus: %s", f.Payload)
			}
			der, _ := base64.StdEncoding.DecodeString(status.OCSPResult)
			if r, err := xocsp.ParseResponse(der, nil); err != nil || r.Status != xocsp.Good || r.SerialNumber.Cmp(chain[0].SerialNumber) != 0 {
				t.Errorf("ocspResult: %v %+v", err, r)
			}

			var reqs []CertificateStatusRequestInfo
			for i := 0; i+1 < len(chain); i++ {
				h, err := HashDataOf(chain[i], chain[i+1], "SHA256")
				if err != nil {
					t.Fatal(err)
				}
				source := "OCSP"
				if i > 0 {
					source = "CRL" // the sub-CAs carry a CRL distribution point
				}
				reqs = append(reqs, CertificateStatusRequestInfo{CertificateHashData: h, Source: source, URLs: []string{"http://pki.example/" + source}})
			}
			var chainStatus GetCertificateChainStatusResponse
			f = call("c1", "GetCertificateChainStatus", GetCertificateChainStatusRequest{CertificateStatusRequests: reqs})
			if json.Unmarshal(f.Payload, &chainStatus) != nil || len(chainStatus.CertificateStatus) != len(reqs) {
				t.Fatalf("GetCertificateChainStatus: %s", f.Payload)
			}
			for i, s := range chainStatus.CertificateStatus {
				if s.Status != "Good" || s.Source != reqs[i].Source || !s.CertificateHashData.Same(reqs[i].CertificateHashData) {
					t.Errorf("certificate %d: %+v", i, s)
				}
			}

			c.send(`[2,"a1","Authorize",` + string(mustJSON(t, AuthorizeRequest{IDToken: IdToken{IDToken: inst.EMAID, Type: "eMAID"},
				ISO15118CertificateHashData: []OCSPRequestData{{HashAlgorithm: leaf.HashAlgorithm, IssuerNameHash: leaf.IssuerNameHash,
					IssuerKeyHash: leaf.IssuerKeyHash, SerialNumber: leaf.SerialNumber, ResponderURL: "http://127.0.0.1:1/ocsp"}}})) + `]`)
			var auth AuthorizeResponse
			if f = c.read(); f.ID != "a1" || json.Unmarshal(f.Payload, &auth) != nil || auth.CertificateStatus != CertAccepted {
				t.Errorf("Authorize: %+v %s", f, f.Payload)
			}
			if got := fmt.Sprint(up.seen()); got != "[BootNotification Authorize]" {
				t.Errorf("the CSMS saw %s, want BootNotification and Authorize", got)
			}
		})
	}
}

// installedCount lists the installed roots as type/CN.
func installedCount(m map[string][]*x509.Certificate) []string {
	var out []string
	for typ, cs := range m {
		for _, c := range cs {
			out = append(out, typ+"/"+c.Subject.CommonName)
		}
	}
	slices.Sort(out)
	return out
}
