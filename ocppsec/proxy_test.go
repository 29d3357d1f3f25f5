package ocppsec

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocpp16 "github.com/lorenzodonini/ocpp-go/ocpp1.6"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/core"
	types16 "github.com/lorenzodonini/ocpp-go/ocpp1.6/types"
	ocpp2 "github.com/lorenzodonini/ocpp-go/ocpp2.0.1"
	"github.com/lorenzodonini/ocpp-go/ocpp2.0.1/authorization"
	"github.com/lorenzodonini/ocpp-go/ocpp2.0.1/availability"
	"github.com/lorenzodonini/ocpp-go/ocpp2.0.1/iso15118"
	"github.com/lorenzodonini/ocpp-go/ocpp2.0.1/provisioning"
	"github.com/lorenzodonini/ocpp-go/ocpp2.0.1/security"
	"github.com/lorenzodonini/ocpp-go/ocpp2.0.1/types"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts connections on port.
func waitListening(t *testing.T, port int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %d", port)
}

// csms201 is an ocpp-go CSMS: it answers BootNotification and Authorize,
// and counts the certificate messages that must never reach it.
type csms201 struct {
	boots, authorizes, leaked atomic.Int32
}

func (c *csms201) OnBootNotification(id string, r *provisioning.BootNotificationRequest) (*provisioning.BootNotificationResponse, error) {
	c.boots.Add(1)
	return provisioning.NewBootNotificationResponse(types.NewDateTime(time.Now()), 60, provisioning.RegistrationStatusAccepted), nil
}
func (c *csms201) OnHeartbeat(string, *availability.HeartbeatRequest) (*availability.HeartbeatResponse, error) {
	return availability.NewHeartbeatResponse(*types.NewDateTime(time.Now())), nil
}
func (c *csms201) OnStatusNotification(string, *availability.StatusNotificationRequest) (*availability.StatusNotificationResponse, error) {
	return availability.NewStatusNotificationResponse(), nil
}
func (c *csms201) OnNotifyReport(string, *provisioning.NotifyReportRequest) (*provisioning.NotifyReportResponse, error) {
	return provisioning.NewNotifyReportResponse(), nil
}
func (c *csms201) OnAuthorize(id string, r *authorization.AuthorizeRequest) (*authorization.AuthorizeResponse, error) {
	c.authorizes.Add(1)
	return authorization.NewAuthorizationResponse(types.IdTokenInfo{Status: types.AuthorizationStatusAccepted, Language1: "de"}), nil
}
func (c *csms201) OnSecurityEventNotification(string, *security.SecurityEventNotificationRequest) (*security.SecurityEventNotificationResponse, error) {
	return security.NewSecurityEventNotificationResponse(), nil
}
func (c *csms201) OnSignCertificate(string, *security.SignCertificateRequest) (*security.SignCertificateResponse, error) {
	c.leaked.Add(1)
	return security.NewSignCertificateResponse(types.GenericStatusRejected), nil
}
func (c *csms201) OnGet15118EVCertificate(string, *iso15118.Get15118EVCertificateRequest) (*iso15118.Get15118EVCertificateResponse, error) {
	c.leaked.Add(1)
	return nil, fmt.Errorf("not here")
}
func (c *csms201) OnGetCertificateStatus(string, *iso15118.GetCertificateStatusRequest) (*iso15118.GetCertificateStatusResponse, error) {
	c.leaked.Add(1)
	return nil, fmt.Errorf("not here")
}

// station201 is the charging station's side: it keeps what pncd sends.
type station201 struct {
	signed    chan *security.CertificateSignedRequest
	installed chan *iso15118.InstallCertificateRequest
}

func (s *station201) OnDeleteCertificate(*iso15118.DeleteCertificateRequest) (*iso15118.DeleteCertificateResponse, error) {
	return iso15118.NewDeleteCertificateResponse(iso15118.DeleteCertificateStatusNotFound), nil
}
func (s *station201) OnGetInstalledCertificateIds(*iso15118.GetInstalledCertificateIdsRequest) (*iso15118.GetInstalledCertificateIdsResponse, error) {
	return iso15118.NewGetInstalledCertificateIdsResponse(iso15118.GetInstalledCertificateStatusNotFound), nil
}
func (s *station201) OnInstallCertificate(r *iso15118.InstallCertificateRequest) (*iso15118.InstallCertificateResponse, error) {
	s.installed <- r
	return iso15118.NewInstallCertificateResponse(iso15118.CertificateStatusAccepted), nil
}

func (s *station201) OnCertificateSigned(r *security.CertificateSignedRequest) (*security.CertificateSignedResponse, error) {
	s.signed <- r
	return security.NewCertificateSignedResponse(security.CertificateSignedStatusAccepted), nil
}

type proxyEnv struct {
	*bridgeEnv
	proxy    *Proxy
	proxyURL string // ws://127.0.0.1:port/ocpp
}

func newProxyEnv(t *testing.T, csmsPort int) *proxyEnv {
	t.Helper()
	e := newBridgeEnv(t)
	p := &Proxy{Bridge: e.b, Upstream: fmt.Sprintf("ws://127.0.0.1:%d/ocpp", csmsPort)}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &proxyEnv{bridgeEnv: e, proxy: p, proxyURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ocpp"}
}

// startCSMS201 runs an ocpp-go CSMS on a free port until the test ends.
func startCSMS201(t *testing.T) (*csms201, int) {
	t.Helper()
	port := freePort(t)
	handler := &csms201{}
	csms := ocpp2.NewCSMS(nil, nil)
	csms.SetProvisioningHandler(handler)
	csms.SetAvailabilityHandler(handler)
	csms.SetAuthorizationHandler(handler)
	csms.SetSecurityHandler(handler)
	csms.SetISO15118Handler(handler)
	go csms.Start(port, "/ocpp/{ws}")
	t.Cleanup(csms.Stop)
	waitListening(t, port)
	return handler, port
}

// TestProxyOCPP201 runs a real OCPP 2.0.1 charging station and CSMS
// (ocpp-go) through the proxy.
func TestProxyOCPP201(t *testing.T) {
	handler, port := startCSMS201(t)
	e := newProxyEnv(t, port)

	e.proxy.Manage = true
	st := &station201{signed: make(chan *security.CertificateSignedRequest, 4), installed: make(chan *iso15118.InstallCertificateRequest, 8)}
	cs := ocpp2.NewChargingStation("CS-1", nil, nil)
	cs.SetSecurityHandler(st)
	cs.SetISO15118Handler(st)
	if err := cs.Start(e.proxyURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cs.Stop)

	// Pass-through.
	boot, err := cs.BootNotification(provisioning.BootReasonPowerUp, "model", "vendor")
	if err != nil || boot.Status != provisioning.RegistrationStatusAccepted || handler.boots.Load() != 1 {
		t.Fatalf("BootNotification through the proxy: %v %+v", err, boot)
	}
	if hb, err := cs.Heartbeat(); err != nil || hb.CurrentTime.IsZero() {
		t.Fatalf("Heartbeat through the proxy: %v %+v", err, hb)
	}
	// The accepted boot starts a root sync: the station has none, so it
	// gets pncpki's V2G, MO and CSMS roots.
	var roots []string
	for len(roots) < 3 {
		select {
		case r := <-st.installed:
			certs, err := ParsePEMChain([]byte(r.Certificate))
			if err != nil || IsRoot(certs[0]) != nil {
				t.Fatalf("InstallCertificate %s: %v", r.CertificateType, err)
			}
			roots = append(roots, string(r.CertificateType))
		case <-time.After(5 * time.Second):
			t.Fatalf("root sync: got %v", roots)
		}
	}
	slices.Sort(roots)
	if fmt.Sprint(roots) != "[CSMSRootCertificate MORootCertificate V2GRootCertificate]" {
		t.Errorf("installed %v", roots)
	}

	// SignCertificate is pncd's: Accepted, then CertificateSigned.
	for _, tc := range []struct {
		use     types.CertificateSigningUse
		cn      string
		profile string
	}{
		{types.V2GCertificate, "DEABCE0001", policies.ISO2SECC},
		{types.ChargingStationCert, "SN-0001", policies.OCPPChargingStation},
	} {
		resp, err := cs.SignCertificate(csrPEM(t, tc.cn, "Example CPO"), func(r *security.SignCertificateRequest) { r.CertificateType = tc.use })
		if err != nil || resp.Status != types.GenericStatusAccepted {
			t.Fatalf("%s SignCertificate: %v %+v", tc.use, err, resp)
		}
		var signed *security.CertificateSignedRequest
		select {
		case signed = <-st.signed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no CertificateSigned", tc.use)
		}
		chain, err := ParsePEMChain([]byte(signed.CertificateChain))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := policies.Lookup(tc.profile)
		if vs := p.Check(chain[0], policies.SECCBoth); len(vs) > 0 || string(signed.TypeOfCertificate) != string(tc.use) {
			t.Errorf("%s: lint %v, type %s", tc.use, vs, signed.TypeOfCertificate)
		}
		verifyOpenSSL(t, e.bridgeEnv, chain, tc.profile)
	}
	// The station's CertificateSignedResponse reached pncd, not the CSMS.
	waitFor(t, func() bool {
		log, _ := e.d.Store.AuditLog(context.Background(), 0, 1000)
		return len(e.proxy.unanswered(context.Background(), "CS-1")) == 0 && log[len(log)-1].Action == AuditCertificateInstalled
	})
	// ... and the registry knows what the station holds now.
	held, err := e.d.Store.InstalledCertificates(context.Background(), "CS-1")
	if err != nil {
		t.Fatal(err)
	}
	var heldTypes []string
	for _, c := range held {
		heldTypes = append(heldTypes, c.Type)
	}
	if fmt.Sprint(heldTypes) != "[CSMSRootCertificate ChargingStationCertificate MORootCertificate V2GCertificateChain V2GRootCertificate]" {
		t.Errorf("installed certificates %v", heldTypes)
	}

	// GetCertificateStatus returns a real OCSP response; Authorize turns
	// CertificateRevoked after a revocation.
	chain := issueContractChain(t, e.bridgeEnv)
	h, _ := HashDataOf(chain[0], chain[1], "SHA256")
	ocspData := types.OCSPRequestDataType{HashAlgorithm: types.SHA256, IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash,
		SerialNumber: h.SerialNumber, ResponderURL: "http://127.0.0.1:1/ocsp"}
	status, err := cs.GetCertificateStatus(ocspData)
	if err != nil || status.Status != types.GenericStatusAccepted {
		t.Fatalf("GetCertificateStatus: %v %+v", err, status)
	}
	der, _ := base64.StdEncoding.DecodeString(status.OcspResult)
	if r, err := xocsp.ParseResponseForCert(der, chain[0], chain[1]); err != nil || r.Status != xocsp.Good {
		t.Errorf("ocspResult: %v %+v", err, r)
	}
	authorize := func() *authorization.AuthorizeResponse {
		t.Helper()
		resp, err := cs.Authorize("DEABCC123456788", types.IdTokenTypeEMAID, func(r *authorization.AuthorizeRequest) {
			r.Certificate = EncodePEMChain(chain...)
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := authorize(); r.CertificateStatus != authorization.CertificateStatusAccepted || r.IdTokenInfo.Language1 != "de" {
		t.Errorf("Authorize: %+v", r)
	}
	if _, err := e.d.CA.Revoke(context.Background(), "mo-sub2", ca.SerialHex(chain[0].SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.resp.ApplyRevocations(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := authorize(); r.CertificateStatus != authorization.CertificateStatusCertificateRevoked || r.IdTokenInfo.Status != types.AuthorizationStatusAccepted {
		t.Errorf("Authorize after revocation: %+v", r)
	}
	e.b.Policy.InvalidateRevoked = true
	if r := authorize(); r.IdTokenInfo.Status != types.AuthorizationStatusInvalid {
		t.Errorf("Authorize with InvalidateRevoked: %+v", r.IdTokenInfo)
	}
	if handler.authorizes.Load() != 3 || handler.leaked.Load() != 0 {
		t.Errorf("CSMS saw %d Authorize (want 3) and %d certificate messages (want 0)", handler.authorizes.Load(), handler.leaked.Load())
	}

	// A refused installation: ocpp-go takes the CallResult (Failed with an
	// exiResponse, never an empty one), and the answer tells the vehicle
	// why in its ResponseCode.
	ev := withInstaller(t, e.bridgeEnv)
	ev.ProvisioningCert = issueContractChain(t, e.bridgeEnv)[0] // not the key the request is signed with
	for _, tc := range []struct {
		name string
		exi  func() string
		code string
	}{
		{"signed with another key", func() string {
			r, err := ev.InstallationRequest()
			if err != nil {
				t.Fatal(err)
			}
			return base64.StdEncoding.EncodeToString(r)
		}, contract.ResponseSignatureError},
		{"not EXI", func() string { return base64.StdEncoding.EncodeToString([]byte("garbage")) }, contract.ResponseFailed},
	} {
		resp, err := cs.Get15118EVCertificate(ISO15118v2Schema, iso15118.CertificateActionInstall, tc.exi())
		if err != nil {
			t.Fatalf("%s: ocpp-go refused the answer: %v", tc.name, err)
		}
		if resp.Status != types.Certificate15118EVStatusFailed || resp.ExiResponse == "" {
			t.Fatalf("%s: %+v", tc.name, resp)
		}
		der, _ := base64.StdEncoding.DecodeString(resp.ExiResponse)
		doc, err := exi.ISO2.Decode(der)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := doc.Child("Body").Child("CertificateInstallationRes").Child("ResponseCode").Val(); got != tc.code {
			t.Errorf("%s: ResponseCode %s, want %s", tc.name, got, tc.code)
		}
	}
}

// fieldLengthStation is an ocpp-go station that reports its exiResponse
// limit through OCPPCommCtrlr.FieldLength, or that it has none (0).
type fieldLengthStation struct {
	limit int
	asked chan struct{}
}

func (s *fieldLengthStation) OnGetBaseReport(*provisioning.GetBaseReportRequest) (*provisioning.GetBaseReportResponse, error) {
	return nil, errors.New("not supported")
}
func (s *fieldLengthStation) OnGetReport(*provisioning.GetReportRequest) (*provisioning.GetReportResponse, error) {
	return nil, errors.New("not supported")
}
func (s *fieldLengthStation) OnReset(*provisioning.ResetRequest) (*provisioning.ResetResponse, error) {
	return nil, errors.New("not supported")
}
func (s *fieldLengthStation) OnSetNetworkProfile(*provisioning.SetNetworkProfileRequest) (*provisioning.SetNetworkProfileResponse, error) {
	return nil, errors.New("not supported")
}
func (s *fieldLengthStation) OnSetVariables(*provisioning.SetVariablesRequest) (*provisioning.SetVariablesResponse, error) {
	return nil, errors.New("not supported")
}
func (s *fieldLengthStation) OnGetVariables(r *provisioning.GetVariablesRequest) (*provisioning.GetVariablesResponse, error) {
	defer func() { s.asked <- struct{}{} }()
	var out []provisioning.GetVariableResult
	for _, v := range r.GetVariableData {
		res := provisioning.GetVariableResult{AttributeStatus: provisioning.GetVariableStatusUnknownVariable, Component: v.Component, Variable: v.Variable}
		if s.limit > 0 && v.Component.Name == "OCPPCommCtrlr" && v.Variable.Name == "FieldLength" && v.Variable.Instance == "Get15118EVCertificateResponse.exiResponse" {
			res.AttributeStatus, res.AttributeValue = provisioning.GetVariableStatusAccepted, fmt.Sprint(s.limit)
		}
		out = append(out, res)
	}
	return provisioning.NewGetVariablesResponse(out), nil
}

// TestProxyStationEXILimit: under a hierarchy whose answers exceed 5,600
// characters (a 64-character organization and a public https URL), a
// station that reports a FieldLength of 7,500 after its accepted boot gets
// its installation; one that reports none keeps OCPP 2.0.1's 5,600 and
// gets ResponseTooLarge, with no certificate issued.
func TestProxyStationEXILimit(t *testing.T) {
	_, port := startCSMS201(t)
	org := strings.Repeat("Stadtwerke Musterstadt ", 3)[:64]
	e := newBridgeEnvWith(t, datadir.InitConfig{Organization: org, Country: "DE"}, "https://pki.stadtwerke-musterstadt.example")
	p := &Proxy{Bridge: e.b, Upstream: fmt.Sprintf("ws://127.0.0.1:%d/ocpp", port), Manage: true}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	ev := withInstaller(t, e)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := e.d.Store.PutStation(ctx, &store.Station{ID: "CS-3", Tenant: "cpo1", OCPPVersion: "2.0.1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	install := func(station string) *Get15118EVCertificateResponse {
		t.Helper()
		req, err := ev.InstallationRequest()
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.b.Handle(ctx, station, OCPP201, "Get15118EVCertificate", mustJSON(t, Get15118EVCertificateRequest{
			ISO15118SchemaVersion: ISO15118v2Schema, Action: "Install", EXIRequest: base64.StdEncoding.EncodeToString(req)}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Response.(*Get15118EVCertificateResponse)
	}
	for _, tc := range []struct {
		station string
		reports int
	}{{"CS-1", 7500}, {"CS-3", 0}} {
		st := &fieldLengthStation{limit: tc.reports, asked: make(chan struct{}, 1)}
		cs := ocpp2.NewChargingStation(tc.station, nil, nil)
		cs.SetProvisioningHandler(st)
		cs.SetSecurityHandler(&station201{signed: make(chan *security.CertificateSignedRequest, 4)})
		cs.SetISO15118Handler(&station201{installed: make(chan *iso15118.InstallCertificateRequest, 16)})
		if err := cs.Start("ws" + strings.TrimPrefix(srv.URL, "http") + "/ocpp"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cs.Stop)
		if boot, err := cs.BootNotification(provisioning.BootReasonPowerUp, "model", "vendor"); err != nil || boot.Status != provisioning.RegistrationStatusAccepted {
			t.Fatalf("%s BootNotification: %v", tc.station, err)
		}
		select {
		case <-st.asked:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s was not asked for its FieldLength", tc.station)
		}
		waitFor(t, func() bool {
			got, err := e.d.Store.Station(ctx, tc.station)
			return err == nil && got.EXIResponseLimit == tc.reports
		})
		// Having spoken through the proxy, the station was seen.
		waitFor(t, func() bool {
			got, err := e.d.Store.Station(ctx, tc.station)
			return err == nil && time.Since(got.LastSeen) < time.Minute
		})
	}

	before := countCerts(t, e)
	if r := install("CS-3"); r.Status != "Failed" || r.StatusInfo == nil || r.StatusInfo.ReasonCode != contract.ReasonTooLarge {
		t.Fatalf("CS-3, no limit reported: %+v", r)
	}
	if after := countCerts(t, e); after != before {
		t.Fatalf("a size refusal stored %d certificates", after-before)
	}
	r := install("CS-1")
	if r.Status != "Accepted" || len(r.EXIResponse) <= 5600 || len(r.EXIResponse) > 7500 {
		t.Fatalf("CS-1, limit 7500: status %s, %d characters", r.Status, len(r.EXIResponse))
	}
	t.Logf("CS-1 installation: %d base64 characters", len(r.EXIResponse))
	// The audit entry of the contract certificate names the station and
	// the limit that applied.
	log, err := e.d.Store.AuditLog(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	last := log[len(log)-1]
	if last.Action != store.AuditCertificateIssue || !strings.Contains(last.Detail, `"station":"CS-1","exi_response_limit":7500,"limit_source":"station"`) {
		t.Errorf("audit entry of the installation: %s %s", last.Action, last.Detail)
	}
}

func countCerts(t *testing.T, e *bridgeEnv) int {
	t.Helper()
	recs, err := e.d.Store.Certificates(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached within 5 s")
}

// csms16 is an ocpp-go OCPP 1.6 central system.
type csms16 struct{ boots, transfers atomic.Int32 }

func (c *csms16) OnAuthorize(string, *core.AuthorizeRequest) (*core.AuthorizeConfirmation, error) {
	return core.NewAuthorizationConfirmation(&types16.IdTagInfo{Status: types16.AuthorizationStatusAccepted}), nil
}
func (c *csms16) OnBootNotification(string, *core.BootNotificationRequest) (*core.BootNotificationConfirmation, error) {
	c.boots.Add(1)
	return core.NewBootNotificationConfirmation(ocppTime(), 60, core.RegistrationStatusAccepted), nil
}
func (c *csms16) OnDataTransfer(id string, r *core.DataTransferRequest) (*core.DataTransferConfirmation, error) {
	c.transfers.Add(1)
	// A CSMS answering a PnC Authorize in DataTransfer: the idToken is fine.
	conf := core.NewDataTransferConfirmation(core.DataTransferStatusAccepted)
	conf.Data = `{"idTokenInfo":{"status":"Accepted"}}`
	return conf, nil
}
func (c *csms16) OnHeartbeat(string, *core.HeartbeatRequest) (*core.HeartbeatConfirmation, error) {
	return core.NewHeartbeatConfirmation(ocppTime()), nil
}
func (c *csms16) OnMeterValues(string, *core.MeterValuesRequest) (*core.MeterValuesConfirmation, error) {
	return core.NewMeterValuesConfirmation(), nil
}
func (c *csms16) OnStatusNotification(string, *core.StatusNotificationRequest) (*core.StatusNotificationConfirmation, error) {
	return core.NewStatusNotificationConfirmation(), nil
}
func (c *csms16) OnStartTransaction(string, *core.StartTransactionRequest) (*core.StartTransactionConfirmation, error) {
	return nil, fmt.Errorf("not in this test")
}
func (c *csms16) OnStopTransaction(string, *core.StopTransactionRequest) (*core.StopTransactionConfirmation, error) {
	return nil, fmt.Errorf("not in this test")
}

func ocppTime() *types16.DateTime { return types16.NewDateTime(time.Now()) }

// cp16 is the charge point's side of OCPP 1.6: it keeps the DataTransfers
// pncd sends.
type cp16 struct {
	transfers chan *core.DataTransferRequest
}

func (c *cp16) OnChangeAvailability(*core.ChangeAvailabilityRequest) (*core.ChangeAvailabilityConfirmation, error) {
	return nil, fmt.Errorf("no")
}
func (c *cp16) OnChangeConfiguration(*core.ChangeConfigurationRequest) (*core.ChangeConfigurationConfirmation, error) {
	return nil, fmt.Errorf("no")
}
func (c *cp16) OnClearCache(*core.ClearCacheRequest) (*core.ClearCacheConfirmation, error) {
	return nil, fmt.Errorf("no")
}
func (c *cp16) OnDataTransfer(r *core.DataTransferRequest) (*core.DataTransferConfirmation, error) {
	c.transfers <- r
	conf := core.NewDataTransferConfirmation(core.DataTransferStatusAccepted)
	conf.Data = `{"status":"Accepted"}`
	return conf, nil
}
func (c *cp16) OnGetConfiguration(*core.GetConfigurationRequest) (*core.GetConfigurationConfirmation, error) {
	return nil, fmt.Errorf("no")
}
func (c *cp16) OnRemoteStartTransaction(*core.RemoteStartTransactionRequest) (*core.RemoteStartTransactionConfirmation, error) {
	return nil, fmt.Errorf("no")
}
func (c *cp16) OnRemoteStopTransaction(*core.RemoteStopTransactionRequest) (*core.RemoteStopTransactionConfirmation, error) {
	return nil, fmt.Errorf("no")
}
func (c *cp16) OnReset(*core.ResetRequest) (*core.ResetConfirmation, error) {
	return nil, fmt.Errorf("no")
}
func (c *cp16) OnUnlockConnector(*core.UnlockConnectorRequest) (*core.UnlockConnectorConfirmation, error) {
	return nil, fmt.Errorf("no")
}

// TestProxyOCPP16 runs a real OCPP 1.6J charge point and central system
// (ocpp-go) through the proxy: pass-through, and both Plug and Charge
// DataTransfer variants answered by pncd.
func TestProxyOCPP16(t *testing.T) {
	port := freePort(t)
	handler := &csms16{}
	central := ocpp16.NewCentralSystem(nil, nil)
	central.SetCoreHandler(handler)
	go central.Start(port, "/ocpp/{ws}")
	t.Cleanup(central.Stop)
	waitListening(t, port)
	e := newProxyEnv(t, port)

	st := &cp16{transfers: make(chan *core.DataTransferRequest, 4)}
	cp := ocpp16.NewChargePoint("CS-2", nil, nil)
	cp.SetCoreHandler(st)
	if err := cp.Start(e.proxyURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	if boot, err := cp.BootNotification("model", "vendor"); err != nil || boot.Status != core.RegistrationStatusAccepted || handler.boots.Load() != 1 {
		t.Fatalf("BootNotification through the proxy: %v %+v", err, boot)
	}
	for _, tc := range []struct {
		vendor string
		inner  any
		d      Dialect
	}{
		{VendorOCA, SignCertificateRequest{CSR: csrPEM(t, "DEXYZE0001", "Other CPO"), CertificateType: "V2GCertificate"}, OCPP201},
		{VendorHas2be, Has2beSignCertificateRequest{CSR: csrPEM(t, "DEXYZE0001", "Other CPO"), TypeOfCertificate: "V2GCertificate"}, Has2be},
	} {
		conf, err := cp.DataTransfer(tc.vendor, func(r *core.DataTransferRequest) {
			r.MessageId = "SignCertificate"
			r.Data = string(mustJSON(t, tc.inner))
		})
		if err != nil || conf.Status != core.DataTransferStatusAccepted || conf.Data != `{"status":"Accepted"}` {
			t.Fatalf("%s SignCertificate: %v %+v", tc.vendor, err, conf)
		}
		var dt *core.DataTransferRequest
		select {
		case dt = <-st.transfers:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no CertificateSigned", tc.vendor)
		}
		m, _ := Lookup(tc.d, "CertificateSigned")
		signed := newValue(m.Request)
		if dt.VendorId != tc.vendor || dt.MessageId != "CertificateSigned" || Decode(tc.d, []byte(dt.Data.(string)), signed) != nil {
			t.Fatalf("%s: CertificateSigned %+v", tc.vendor, dt)
		}
	}
	if handler.transfers.Load() != 0 {
		t.Errorf("the central system saw %d PnC DataTransfers", handler.transfers.Load())
	}

	// Authorize in a DataTransfer goes to the central system and comes
	// back with the certificate verdict.
	chain := issueContractChain(t, e.bridgeEnv)
	h, _ := HashDataOf(chain[0], chain[1], "SHA256")
	authz := AuthorizeRequest{IDToken: IdToken{IDToken: "DEABCC123456788", Type: "eMAID"}, ISO15118CertificateHashData: []OCSPRequestData{{
		HashAlgorithm: "SHA256", IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber, ResponderURL: "http://127.0.0.1:1/"}}}
	if _, err := e.d.CA.Revoke(context.Background(), "mo-sub2", ca.SerialHex(chain[0].SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.resp.ApplyRevocations(context.Background()); err != nil {
		t.Fatal(err)
	}
	conf, err := cp.DataTransfer(VendorOCA, func(r *core.DataTransferRequest) {
		r.MessageId = "Authorize"
		r.Data = string(mustJSON(t, authz))
	})
	if err != nil || !strings.Contains(fmt.Sprint(conf.Data), `"certificateStatus":"CertificateRevoked"`) || handler.transfers.Load() != 1 {
		t.Errorf("PnC Authorize: %v %+v", err, conf)
	}
}
