package ocppsec

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cloudflare/circl/sign/ed448"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Policy holds the choices operators make differently.
type Policy struct {
	// StationCNIdentity accepts the station's OCPP identity as the CN of
	// its charging-station certificate besides its serial number.
	StationCNIdentity bool
	// OCSPFailOpen says, per use, whether an OCSP failure (no responder,
	// timeout, unverifiable answer) lets a certificate pass. The default,
	// false, fails closed: Authorize answers CertChainError.
	AuthorizeFailOpen bool
	// StationTLSFailOpen lets a security profile 3 station connect when the
	// OCSP status of its certificate cannot be learned (default: refused).
	// GetCertificateStatus has no such choice: it answers Failed.
	StationTLSFailOpen bool
	// InvalidateRevoked makes the proxy turn the CSMS's idTokenInfo.status
	// to Invalid when the contract certificate is revoked, expired or
	// otherwise not Accepted.
	InvalidateRevoked bool
	// DeleteUnknownRoots makes root sync remove V2G, MO and OEM roots that
	// are not trust anchors of this pncpki (CSMS and manufacturer roots are
	// never removed).
	DeleteUnknownRoots bool
	// RenewalWindow is how long before expiry a station is asked for a new
	// CSR (default 30 days).
	RenewalWindow time.Duration
	// SignLimit bounds the SignCertificate requests a station may make per
	// SignWindow on one replica (default 20 per hour): a station needs a
	// few a year, and each one that passes costs a signature and a stored
	// certificate.
	SignLimit  int
	SignWindow time.Duration
	// EXIResponseLimit replaces OCPP 2.0.1's 5,600 base64 characters as
	// the exiResponse limit of 2.0.1 and 1.6 stations that have no limit
	// of their own (the data directory's planned limit, --exi-limit);
	// 2.1 stations take 17,000 by their schema. 0: 5,600.
	EXIResponseLimit int
	// AdditionalRootCertificateCheck is the stations' setting of that
	// name: a station that holds a CSMS root accepts a new one only signed
	// by it, so root sync sends the rollover certificate instead.
	AdditionalRootCertificateCheck bool
}

// Bridge answers the certificate messages of charging stations. It is the
// one implementation behind the API's OCPPService and the OCPP-J proxy.
type Bridge struct {
	CA    *ca.Service
	Store store.Store
	OCSP  *ocsp.Client
	// Anchors are the configured trust anchors; read the ones in force
	// with TrustAnchors, which adds those stored at run time.
	Anchors Anchors
	Policy  Policy
	Log     *slog.Logger
	Metrics *Metrics
	// Contracts, when set, turns Authorize for a cancelled or expired
	// contract into ContractCancelled.
	Contracts ContractStatus
	// Installer, when set, answers Get15118EVCertificate
	// (contract.Installer); without it the bridge says NoContractService.
	Installer Installer
	// AnchorChanged, when set, hears of every trust anchor added or
	// removed at run time, whoever changed it (an administrator or the
	// upstream root sync): pncd announces them as root pool events. It is
	// called after the change is stored and in force.
	AnchorChanged func(ctx context.Context, u Use, c *x509.Certificate, added bool)
	Now           func() time.Time

	signMu    sync.Mutex
	signCount map[string][]time.Time // station -> recent SignCertificate times

	anchorsMu sync.Mutex                     // serializes trust anchor changes
	live      atomic.Pointer[anchorSnapshot] // nil: Anchors alone
}

// maxTrackedStations bounds the rate limiter's memory; past it, it starts
// over.
const maxTrackedStations = 100_000

// allowSign counts a SignCertificate of a station and says whether it is
// within the limit.
func (b *Bridge) allowSign(stationID string) bool {
	limit, window := b.Policy.SignLimit, b.Policy.SignWindow
	if limit <= 0 {
		limit = 20
	}
	if window <= 0 {
		window = time.Hour
	}
	now := b.now()
	b.signMu.Lock()
	defer b.signMu.Unlock()
	if b.signCount == nil || len(b.signCount) >= maxTrackedStations {
		b.signCount = map[string][]time.Time{}
	}
	recent := b.signCount[stationID][:0]
	for _, t := range b.signCount[stationID] {
		if now.Sub(t) < window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= limit {
		b.signCount[stationID] = recent
		return false
	}
	b.signCount[stationID] = append(recent, now)
	return true
}

// ContractStatus tells whether the contract of an EMAID was cancelled
// (contract.Pool).
type ContractStatus interface {
	Cancelled(ctx context.Context, emaid string) (bool, error)
}

// Installer installs and updates contract certificates for ISO 15118-2
// requests (contract.Installer). An empty action means the body decides.
type Installer interface {
	Handle(ctx context.Context, action contract.Action, exiRequest []byte, maxBase64 int) (*contract.Response, error)
	// Handle20 answers an ISO 15118-20 CertificateInstallationReq.
	Handle20(ctx context.Context, exiRequest []byte, maxBase64 int, o contract.Options20) (*contract.Response, error)
}

// Call is a request pncpki wants sent to a station.
type Call struct {
	Action  string
	Payload any
}

// Result is the answer to a station's request, and the calls that follow
// it (a CertificateSigned after an accepted SignCertificate).
type Result struct {
	Response any
	Calls    []Call
	// CertificateStatus is the Authorize verdict on the certificate data,
	// for a CSMS or the proxy to combine with its idToken decision.
	CertificateStatus string
}

// ErrNotHandled means the bridge does not answer this action: a proxy
// forwards it, the API says NotImplemented.
var ErrNotHandled = errors.New("ocppsec: action not handled by pncpki")

// Reason codes of statusInfo (at most 20 characters each).
const (
	ReasonUnknownStation    = "UnknownStation"
	ReasonWrongStation      = "NotThisStation"
	ReasonInvalidCSR        = "InvalidCSR"
	ReasonPolicy            = "PolicyDenied"
	ReasonUnsupported       = "UnsupportedType"
	ReasonInternal          = "InternalError"
	ReasonOCSPFailed        = "OCSPFailed"
	ReasonUnknownIssuer     = "UnknownIssuer"
	ReasonNoContractSvc     = "NoContractService"
	ReasonCombinedRefused   = "CombinedRefused"
	ReasonUnknownRoot       = "UnknownRoot"
	ReasonUnsupportedSchema = "UnsupportedSchema"
	ReasonRateLimited       = "RateLimited"
	ReasonInvalidEXI        = "InvalidEXIRequest"
)

func (b *Bridge) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Bridge) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.Default()
}

// Handle answers a request a station sent. payload is the JSON as
// received; it is validated against the dialect's schema first (a
// *ValidationError becomes a CALLERROR). ErrNotHandled says the action is
// not a certificate message.
func (b *Bridge) Handle(ctx context.Context, stationID string, d Dialect, action string, payload []byte) (*Result, error) {
	m, ok := Lookup(d, action)
	if !ok || !m.FromStation {
		return nil, ErrNotHandled
	}
	req := newValue(m.Request)
	if err := Decode(d, payload, req); err != nil {
		return nil, err
	}
	switch r := req.(type) {
	case *SignCertificateRequest:
		return b.signCertificate(ctx, stationID, d, r.CSR, r.CertificateType, r.RequestID, r.HashRootCertificate)
	case *SignCertificate16:
		return b.signCertificate(ctx, stationID, d, r.CSR, "ChargingStationCertificate", nil, nil)
	case *Has2beSignCertificateRequest:
		return b.signCertificate(ctx, stationID, d, r.CSR, r.TypeOfCertificate, nil, nil)
	case *GetCertificateStatusRequest:
		return b.certificateStatus(ctx, d, r.OCSPRequestData)
	case *Has2beGetCertificateStatusRequest:
		o := r.OCSPRequestData
		return b.certificateStatus(ctx, d, OCSPRequestData{HashAlgorithm: o.HashAlgorithm, IssuerNameHash: o.IssuerNameHash,
			IssuerKeyHash: o.IssuerKeyHash, SerialNumber: o.SerialNumber, ResponderURL: o.ResponderURL})
	case *AuthorizeRequest:
		emaid := ""
		if r.IDToken.Type == "eMAID" {
			emaid = r.IDToken.IDToken
		}
		return b.authorize(ctx, d, emaid, r.Certificate, r.ISO15118CertificateHashData)
	case *Has2beAuthorizeRequest:
		hashes := make([]OCSPRequestData, len(r.ISO15118CertificateHashData))
		for i, o := range r.ISO15118CertificateHashData {
			hashes[i] = OCSPRequestData{HashAlgorithm: o.HashAlgorithm, IssuerNameHash: o.IssuerNameHash,
				IssuerKeyHash: o.IssuerKeyHash, SerialNumber: o.SerialNumber, ResponderURL: o.ResponderURL}
		}
		return b.authorize(ctx, d, r.IDToken.IDToken, "", hashes)
	case *Get15118EVCertificateRequest:
		if r.ISO15118SchemaVersion == contract.ISO15118v20Schema {
			return b.get15118EVCertificate20(ctx, stationID, d, r)
		}
		return b.get15118EVCertificate(ctx, stationID, d, r.ISO15118SchemaVersion, contract.Action(r.Action), r.EXIRequest)
	case *Has2beGet15118EVCertificateRequest:
		return b.get15118EVCertificate(ctx, stationID, d, r.SchemaVersion, "", r.EXIRequest)
	case *GetCertificateChainStatusRequest:
		return b.chainStatus(ctx, r)
	case *DataTransfer16:
		return b.dataTransfer(ctx, stationID, r)
	}
	return nil, ErrNotHandled
}

func statusInfo(reason, format string, args ...any) *StatusInfo {
	info := fmt.Sprintf(format, args...)
	if len(info) > 512 { // the 2.0.1 limit; 2.1 allows 1024
		info = strings.ToValidUTF8(info[:512], "")
	}
	return &StatusInfo{ReasonCode: reason, AdditionalInfo: info}
}

// signCertificate checks a station's CSR against its registration, issues
// the certificate and returns the CertificateSigned to send (use cases
// A02/A03 of OCPP 2.0.1; the 1.6 security extension; has.to.be).
func (b *Bridge) signCertificate(ctx context.Context, stationID string, d Dialect, csrPEM, use string, requestID *int32, root *CertificateHashData) (*Result, error) {
	reject := func(reason, format string, args ...any) (*Result, error) {
		b.log().Warn("SignCertificate rejected", "station", stationID, "ocpp", d, "use", use, "reason", reason, "detail", fmt.Sprintf(format, args...))
		if d == OCPP16 || d == Has2be {
			return &Result{Response: &SignCertificate16Response{Status: "Rejected"}}, nil
		}
		return &Result{Response: &SignCertificateResponse{Status: "Rejected", StatusInfo: statusInfo(reason, format, args...)}}, nil
	}
	st, err := b.Store.Station(ctx, stationID)
	if errors.Is(err, store.ErrNotFound) {
		return reject(ReasonUnknownStation, "station %q is not registered", stationID)
	} else if err != nil {
		return nil, err
	}
	if !b.allowSign(stationID) {
		return reject(ReasonRateLimited, "too many SignCertificate requests from this station; try again later")
	}
	var profile string
	switch use {
	case "V2GCertificate":
		profile = policies.ISO2SECC
	case "ChargingStationCertificate":
		profile = policies.OCPPChargingStation
	case "V2G20Certificate":
		// OCPP 2.1 only (the enum check refuses it on 2.0.1): the SECC's
		// ISO 15118-20 certificate, from a -20 CPO Sub-CA 2.
		profile = policies.ISO20SECC
	case "":
		// One certificate for both uses cannot satisfy both profiles: the
		// SECC leaf's CN is its SECC ID or EVSEID, the station's its
		// serial number, and their key usages differ.
		return reject(ReasonCombinedRefused, "a combined certificate cannot meet both the ISO 15118 SECC and the OCPP station profile; send certificateType")
	}
	csr, err := ca.ParseCSR([]byte(csrPEM))
	if err != nil {
		return reject(ReasonInvalidCSR, "%v", err)
	}
	if _, ok := csr.PublicKey.(ed448.PublicKey); ok && profile == policies.ISO20SECC {
		profile = policies.ISO20EdSECC // the SECC of the Ed448 variant
	}
	if err := b.checkSubject(st, profile, csr.Subject.CommonName); err != nil {
		return reject(ReasonWrongStation, "%v", err)
	}
	issuer := ""
	if root != nil { // OCPP 2.1: the station names the root to chain to
		if issuer = b.issuerUnder(profile, *root); issuer == "" {
			return reject(ReasonUnknownRoot, "no CA here issues %s under the root %s/%s", profile, root.IssuerKeyHash, root.SerialNumber)
		}
	}
	actx := store.WithActor(ctx, "station:"+stationID)
	iss, err := b.CA.Issue(actx, ca.Request{Profile: profile, CSR: []byte(csrPEM), Tenant: st.Tenant, Issuer: issuer})
	if err != nil {
		var ce *ca.Error
		if errors.As(err, &ce) {
			reason := ReasonInvalidCSR
			if ce.Code == ca.CodePolicyDenied {
				reason = ReasonPolicy
			}
			return reject(reason, "%v", err)
		}
		b.log().Error("SignCertificate failed", "station", stationID, "err", err)
		return reject(ReasonInternal, "the certificate could not be issued")
	}
	b.log().Info("SignCertificate accepted", "station", stationID, "ocpp", d, "profile", profile, "serial", iss.Record.Serial)
	chain := EncodePEMChain(append([]*x509.Certificate{iss.Cert()}, withoutRoot(iss.Chain)...)...)
	res := &Result{}
	switch d {
	case OCPP16:
		res.Response = &SignCertificate16Response{Status: "Accepted"}
		res.Calls = []Call{{"CertificateSigned", &CertificateSigned16{CertificateChain: chain}}}
	case Has2be:
		res.Response = &SignCertificate16Response{Status: "Accepted"}
		res.Calls = []Call{{"CertificateSigned", &Has2beCertificateSignedRequest{Cert: chain, TypeOfCertificate: use}}}
	default:
		res.Response = &SignCertificateResponse{Status: "Accepted"}
		res.Calls = []Call{{"CertificateSigned", &CertificateSignedRequest{CertificateChain: chain, CertificateType: use, RequestID: requestID}}}
	}
	return res, nil
}

// issuerUnder returns the CA that issues profile under the root named by
// h, or "" when there is none (or more than one).
func (b *Bridge) issuerUnder(profile string, h CertificateHashData) string {
	p, err := policies.Lookup(profile)
	if err != nil {
		return ""
	}
	var found []string
	for _, a := range b.CA.Authorities() {
		if len(a.Chain) > 0 && slices.Contains(p.Issuers, a.Profile.Name) && sameRoot(a.Chain[len(a.Chain)-1], h) {
			found = append(found, a.Name)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

// withoutRoot drops a self-signed last element: OCPP chains stop below the
// root, which the station holds already.
func withoutRoot(chain []*x509.Certificate) []*x509.Certificate {
	if n := len(chain); n > 0 && IsRoot(chain[n-1]) == nil {
		return chain[:n-1]
	}
	return chain
}

// checkSubject checks that the CN a station asks for is its own.
func (b *Bridge) checkSubject(st *store.Station, profile, cn string) error {
	switch profile {
	case policies.ISO2SECC, policies.ISO20SECC, policies.ISO20EdSECC:
		id, ok := NormalizeSECCName(cn)
		if !ok {
			return fmt.Errorf("CN %q is neither an EVSEID nor a SECC ID", cn)
		}
		for _, x := range append(st.EVSEIDs, st.SECCIDs...) {
			if x == id {
				return nil
			}
		}
		return fmt.Errorf("CN %q is not an EVSEID or SECC ID registered for station %s", cn, st.ID)
	case policies.OCPPChargingStation:
		if cn != "" && (cn == st.SerialNumber || b.Policy.StationCNIdentity && cn == st.ID) {
			return nil
		}
		want := "its serial number " + st.SerialNumber
		if b.Policy.StationCNIdentity {
			want += " or its identity " + st.ID
		}
		return fmt.Errorf("CN %q of station %s must be %s (OCPP A00.FR.405)", cn, st.ID, want)
	}
	return nil
}

// NormalizeSECCName returns the compact form of an EVSEID or SECC ID, the
// form stations are registered with.
func NormalizeSECCName(s string) (string, bool) {
	if e, err := policies.ParseEVSEID(s); err == nil {
		return e.Compact(), true
	}
	if id, err := policies.ParseSECCID(s); err == nil {
		return id.String(), true
	}
	return "", false
}

// certificateStatus answers GetCertificateStatus with a verified OCSP
// response: from the local responder for our CAs, from the responder URL
// for foreign ones (use case M06).
func (b *Bridge) certificateStatus(ctx context.Context, d Dialect, o OCSPRequestData) (*Result, error) {
	r, err := b.OCSP.CheckData(ctx, ocsp.RequestData{HashAlgorithm: o.HashAlgorithm, IssuerNameHash: o.IssuerNameHash,
		IssuerKeyHash: o.IssuerKeyHash, SerialNumber: o.SerialNumber, ResponderURL: o.ResponderURL})
	if err != nil {
		reason := ReasonOCSPFailed
		if errors.Is(err, ocsp.ErrUnknownIssuer) {
			reason = ReasonUnknownIssuer
		}
		b.log().Warn("GetCertificateStatus failed", "serial", o.SerialNumber, "err", err)
		if d == Has2be {
			return &Result{Response: &Has2beGetCertificateStatusResponse{Status: "Failed"}}, nil
		}
		return &Result{Response: &GetCertificateStatusResponse{Status: "Failed", StatusInfo: statusInfo(reason, "%v", err)}}, nil
	}
	result := base64.StdEncoding.EncodeToString(r.DER)
	if d == Has2be {
		return &Result{Response: &Has2beGetCertificateStatusResponse{Status: "Accepted", OCSPResult: result}}, nil
	}
	return &Result{Response: &GetCertificateStatusResponse{Status: "Accepted", OCSPResult: result}}, nil
}

// ISO15118v2Schema is the iso15118SchemaVersion of ISO 15118-2 requests.
const ISO15118v2Schema = "urn:iso:15118:2:2013:MsgDef"

// get15118EVCertificate hands a vehicle's certificate installation or
// update request to the contract service and returns its answer, or Failed
// with the reason (the ISO 15118-2 ResponseCode for the vehicle is in
// additionalInfo).
// Sources of an installation's exiResponse limit, as its log line and
// audit entry name them.
const (
	LimitStation = "station"    // the station's own (registered, or reported by FieldLength)
	LimitConfig  = "config"     // the data directory's planned limit
	LimitOCPP201 = "ocpp-2.0.1" // OCPP 2.0.1's schema (also the 1.6 Plug and Charge profiles')
	LimitOCPP21  = "ocpp-2.1"   // the least a 2.1 station accepts
)

// exiLimit is the exiResponse limit of a station's answers, and where it
// comes from: the station's own when it has one, else its OCPP version's
// (for 2.0.1 and 1.6 the data directory's planned limit when set).
func (b *Bridge) exiLimit(ctx context.Context, stationID string, d Dialect) (int, string) {
	if stationID != "" && b.Store != nil {
		if st, err := b.Store.Station(ctx, stationID); err == nil && st.EXIResponseLimit > 0 {
			return st.EXIResponseLimit, LimitStation
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			b.log().Warn("station registry not read; the OCPP version's exiResponse limit applies", "station", stationID, "err", err)
		}
	}
	switch {
	case d == OCPP21:
		return contract.LimitOCPP21, LimitOCPP21
	case b.Policy.EXIResponseLimit > 0:
		return b.Policy.EXIResponseLimit, LimitConfig
	}
	return contract.LimitOCPP201, LimitOCPP201
}

func (b *Bridge) get15118EVCertificate(ctx context.Context, stationID string, d Dialect, schema string, action contract.Action, exiRequest string) (*Result, error) {
	// Every failure carries an answer the station can hand the vehicle
	// (ISO 15118-2 has a ResponseCode for each): an empty exiResponse is
	// what strict OCPP libraries refuse as a missing field, and the
	// vehicle would never learn why.
	var reqEXI []byte
	fail := func(answer []byte, reason, format string, args ...any) (*Result, error) {
		b.log().Warn("Get15118EVCertificate failed", "reason", reason, "detail", fmt.Sprintf(format, args...))
		if answer == nil {
			answer, _ = contract.FailureFor(action, contract.ResponseFailed, reqEXI)
		}
		out := base64.StdEncoding.EncodeToString(answer)
		if d == Has2be {
			return &Result{Response: &Has2beGet15118EVCertificateResponse{Status: "Failed", EXIResponse: out}}, nil
		}
		return &Result{Response: &Get15118EVCertificateResponse{Status: "Failed", EXIResponse: out, StatusInfo: statusInfo(reason, format, args...)}}, nil
	}
	if schema != "" && schema != ISO15118v2Schema { // has.to.be may leave it out
		return fail(nil, ReasonUnsupportedSchema, "iso15118SchemaVersion %q is not supported; pncpki speaks %s, and %s over OCPP 2.1", schema, ISO15118v2Schema, contract.ISO15118v20Schema)
	}
	req, err := base64.StdEncoding.DecodeString(exiRequest)
	if err != nil || exiRequest == "" {
		return fail(nil, ReasonInvalidEXI, "exiRequest is not base64: %v", err)
	}
	reqEXI = req
	if b.Installer == nil {
		return fail(nil, ReasonNoContractSvc, "this pncpki runs no contract service (no CPS key)")
	}
	limit, source := b.exiLimit(ctx, stationID, d)
	res, err := b.Installer.Handle(contract.ForStation(ctx, stationID, source), action, req, limit)
	var ie *contract.InstallError
	if errors.As(err, &ie) {
		return fail(ie.Answer, ie.Reason, "ResponseCode %s: %s (exiResponse limit %d from %s)", ie.ResponseCode, ie.Error(), limit, source)
	} else if err != nil {
		return fail(nil, ReasonInternal, "%v", err)
	}
	out := base64.StdEncoding.EncodeToString(res.EXI)
	b.log().Info("contract certificate installed", "station", stationID, "emaid", res.EMAID, "action", string(action), "issued", res.Contract != nil,
		"repeated", res.Repeated, "base64", len(out), "exi_limit", limit, "exi_limit_source", source)
	if d == Has2be {
		return &Result{Response: &Has2beGet15118EVCertificateResponse{Status: "Accepted", EXIResponse: out,
			ContractSignatureCertificateChain: has2beChain(res.ContractChain),
			SAProvisioningCertificateChain:    has2beChain(contract.ChainDER(res.CPSChain))}}, nil
	}
	return &Result{Response: &Get15118EVCertificateResponse{Status: "Accepted", EXIResponse: out}}, nil
}

// get15118EVCertificate20 hands an ISO 15118-20 CertificateInstallationReq
// to the contract service (OCPP 2.1 only: its 17,000-character
// exiResponse is what a -20 answer needs, and only 2.1 carries
// maximumContractCertificateChains and remainingContracts).
func (b *Bridge) get15118EVCertificate20(ctx context.Context, stationID string, d Dialect, r *Get15118EVCertificateRequest) (*Result, error) {
	fail := func(answer []byte, reason, format string, args ...any) (*Result, error) {
		b.log().Warn("Get15118EVCertificate (ISO 15118-20) failed", "reason", reason, "detail", fmt.Sprintf(format, args...))
		if answer == nil {
			// The vehicle still gets an answer it can read.
			req, _ := base64.StdEncoding.DecodeString(r.EXIRequest)
			answer, _ = contract.FailureAnswer20(req, contract.ResponseFailed, b.now())
		}
		return &Result{Response: &Get15118EVCertificateResponse{Status: "Failed", EXIResponse: base64.StdEncoding.EncodeToString(answer),
			StatusInfo: statusInfo(reason, format, args...)}}, nil
	}
	if d != OCPP21 {
		return fail(nil, ReasonUnsupportedSchema, "ISO 15118-20 installations need OCPP 2.1")
	}
	if r.Action != string(contract.ActionInstall) {
		return fail(nil, ReasonUnsupportedSchema, "ISO 15118-20 has no certificate update: action %s", r.Action)
	}
	req, err := base64.StdEncoding.DecodeString(r.EXIRequest)
	if err != nil || r.EXIRequest == "" {
		return fail(nil, ReasonInvalidEXI, "exiRequest is not base64: %v", err)
	}
	if b.Installer == nil {
		return fail(nil, ReasonNoContractSvc, "this pncpki runs no contract service (no CPS key)")
	}
	o := contract.Options20{PrioritizedEMAIDs: r.PrioritizedEMAIDs}
	if r.MaximumContractCertificateChains != nil {
		o.MaxContracts = int(*r.MaximumContractCertificateChains)
	}
	limit, source := b.exiLimit(ctx, stationID, d)
	res, err := b.Installer.Handle20(contract.ForStation(ctx, stationID, source), req, limit, o)
	var ie *contract.InstallError
	if errors.As(err, &ie) {
		return fail(ie.Answer, ie.Reason, "ResponseCode %s: %s (exiResponse limit %d from %s)", ie.ResponseCode, ie.Error(), limit, source)
	} else if err != nil {
		return fail(nil, ReasonInternal, "%v", err)
	}
	out := base64.StdEncoding.EncodeToString(res.EXI)
	b.log().Info("contract certificate installed", "station", stationID, "emaid", res.EMAID, "schema", "iso15118-20", "repeated", res.Repeated,
		"remaining", res.Remaining, "base64", len(out), "exi_limit", limit, "exi_limit_source", source)
	remaining := int32(res.Remaining)
	return &Result{Response: &Get15118EVCertificateResponse{Status: "Accepted", EXIResponse: out, RemainingContracts: &remaining}}, nil
}

func has2beChain(chain [][]byte) *Has2beCertificateChain {
	if len(chain) == 0 {
		return nil
	}
	c := &Has2beCertificateChain{Certificate: base64.StdEncoding.EncodeToString(chain[0])}
	for _, s := range chain[1:] {
		c.ChildCertificate = append(c.ChildCertificate, base64.StdEncoding.EncodeToString(s))
	}
	return c
}

// dataTransfer unwraps the 1.6 Plug and Charge variants: the OCA one
// carries 2.0.1 payloads, has.to.be's its own. Other vendors are not ours.
func (b *Bridge) dataTransfer(ctx context.Context, stationID string, r *DataTransfer16) (*Result, error) {
	var d Dialect
	switch r.VendorID {
	case VendorOCA:
		d = OCPP201
	case VendorHas2be:
		d = Has2be
	default:
		return nil, ErrNotHandled
	}
	res, err := b.Handle(ctx, stationID, d, r.MessageID, []byte(r.Data))
	if errors.Is(err, ErrNotHandled) {
		return &Result{Response: &DataTransfer16Response{Status: "UnknownMessageId"}}, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(res.Response)
	if err != nil {
		return nil, err
	}
	out := &Result{Response: &DataTransfer16Response{Status: "Accepted", Data: string(data)}, CertificateStatus: res.CertificateStatus}
	for _, c := range res.Calls {
		inner, err := json.Marshal(c.Payload)
		if err != nil {
			return nil, err
		}
		out.Calls = append(out.Calls, Call{"DataTransfer", &DataTransfer16{VendorID: r.VendorID, MessageID: c.Action, Data: string(inner)}})
	}
	return out, nil
}

// Audit actions of the bridge.
const (
	AuditCertificateInstalled = "station.certificate_accepted"
	AuditCertificateRefused   = "station.certificate_rejected"
)

// HandleResult consumes a station's answer to a call pncpki sent (sent is
// that call, as returned in Result.Calls; callID its message ID when the
// store keeps it as pending, else ""), records in one store transaction
// what the station now holds and that the call is answered, and returns
// the calls that follow from the answer (the InstallCertificate and
// DeleteCertificate requests of a root sync). A station that rejects its
// CertificateSigned is recorded in the audit log and logged as an error,
// not sent the chain again: its own retry (CertSigningWaitMinimum,
// CertSigningRepeatTimes) sends a new CSR.
func (b *Bridge) HandleResult(ctx context.Context, stationID string, d Dialect, sent Call, callID string, payload []byte) ([]Call, error) {
	r := callResult{StationCallResult: &store.StationCallResult{}}
	follow, err := b.resultOf(stationID, d, sent, payload, &r)
	if err != nil {
		return nil, err
	}
	if err := b.Store.FinishStationCall(ctx, stationID, callID, *r.StationCallResult); err != nil {
		return nil, err
	}
	if r.exiLimit > 0 {
		if err := b.reportedLimit(ctx, stationID, r.exiLimit); err != nil {
			return nil, err
		}
	}
	return follow, nil
}

// callResult is what an answer to a pncpki call changes: the store's
// part, and the exiResponse limit the station reported (0: none).
type callResult struct {
	*store.StationCallResult
	exiLimit int
}

// reportedLimit records the exiResponse limit a station reported as its
// own in the registry (audited as a station change), within the limits a
// station may have.
func (b *Bridge) reportedLimit(ctx context.Context, stationID string, limit int) error {
	limit = min(max(limit, MinEXIResponseLimit), contract.LimitOCPP21)
	st, err := b.Store.Station(ctx, stationID)
	if err != nil {
		return err
	}
	if st.EXIResponseLimit == limit {
		return nil
	}
	b.log().Info("station reported its exiResponse limit", "station", stationID, "limit", limit, "was", st.EXIResponseLimit)
	st.EXIResponseLimit, st.UpdatedAt = limit, b.now().UTC()
	return b.Store.PutStation(ctx, st)
}

// CallFailed records a CALLERROR a station answered a call with.
func (b *Bridge) CallFailed(ctx context.Context, stationID string, sent Call, callID, code, description string) error {
	b.log().Error("station answered a pncpki call with a CALLERROR", "station", stationID, "action", sent.Action, "code", code, "description", description)
	var r store.StationCallResult
	if sent.Action == "CertificateSigned" || sent.Action == "DataTransfer" {
		r.Audit = append(r.Audit, b.certificateResult(stationID, "CallError "+code, description))
	}
	return b.Store.FinishStationCall(ctx, stationID, callID, r)
}

// resultOf reads an answer into the changes it makes (r) and the calls
// that follow.
func (b *Bridge) resultOf(stationID string, d Dialect, sent Call, payload []byte, r *callResult) ([]Call, error) {
	if dt, ok := sent.Payload.(*DataTransfer16); ok {
		var outer DataTransfer16Response
		if err := Decode(OCPP16, payload, &outer); err != nil {
			return nil, err
		}
		if outer.Status != "Accepted" {
			if dt.MessageID == "CertificateSigned" {
				r.Audit = append(r.Audit, b.certificateResult(stationID, "DataTransfer "+outer.Status, dt.MessageID))
			} else {
				b.log().Info("station declined a Plug and Charge DataTransfer", "station", stationID, "message", dt.MessageID, "status", outer.Status)
			}
			return nil, nil
		}
		inner := OCPP201
		if dt.VendorID == VendorHas2be {
			inner = Has2be
		}
		call, err := ParseCall(inner, dt.MessageID, []byte(dt.Data))
		if err != nil {
			return nil, err
		}
		follow, err := b.resultOf(stationID, inner, call, []byte(outer.Data), r)
		if err != nil {
			return nil, err
		}
		// What follows goes to the station the same way.
		for i, c := range follow {
			data, err := json.Marshal(c.Payload)
			if err != nil {
				return nil, err
			}
			follow[i] = Call{"DataTransfer", &DataTransfer16{VendorID: dt.VendorID, MessageID: c.Action, Data: string(data)}}
		}
		return follow, nil
	}
	m, ok := Lookup(d, sent.Action)
	if !ok {
		return nil, ErrNotHandled
	}
	resp := newValue(m.Response)
	if err := Decode(d, payload, resp); err != nil {
		return nil, err
	}
	now := b.now().UTC()
	status := reflect.ValueOf(resp).Elem().FieldByName("Status").String()
	switch resp := resp.(type) {
	case *CertificateSignedResponse, *CertificateSigned16Response:
		reason := ""
		if resp, ok := resp.(*CertificateSignedResponse); ok && resp.StatusInfo != nil {
			reason = resp.StatusInfo.ReasonCode + " " + resp.StatusInfo.AdditionalInfo
		}
		if status == "Accepted" {
			if c, ok := signedCertificate(sent, now); ok {
				r.Installed = append(r.Installed, c)
			}
		}
		r.Audit = append(r.Audit, b.certificateResult(stationID, status, reason))
	case *GetInstalledCertificateIdsResponse:
		req, ok := sent.Payload.(*GetInstalledCertificateIdsRequest)
		if !ok {
			return nil, nil
		}
		var have []installed
		for _, c := range resp.CertificateHashDataChain {
			have = append(have, installed{c.CertificateType, c.CertificateHashData})
		}
		r.ReplaceTypes, r.Installed = req.CertificateType, installedRecords(have, now)
		return b.rootSyncFollowUp(d, req.CertificateType, have), nil
	case *GetInstalledCertificateIds16Response:
		req, ok := sent.Payload.(*GetInstalledCertificateIds16)
		if !ok {
			return nil, nil
		}
		var have []installed
		for _, h := range resp.CertificateHashData {
			have = append(have, installed{req.CertificateType, CertificateHashData{HashAlgorithm: h.HashAlgorithm,
				IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber}})
		}
		r.ReplaceTypes, r.Installed = []string{req.CertificateType}, installedRecords(have, now)
		return b.rootSyncFollowUp(d, []string{req.CertificateType}, have), nil
	case *GetVariablesResponse:
		for _, v := range resp.GetVariableResult {
			if v.Component.Name != FieldLengthVariable.Component.Name || v.Variable != FieldLengthVariable.Variable {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(v.AttributeValue))
			if v.AttributeStatus != "Accepted" || err != nil || n <= 0 {
				b.log().Info("station reports no exiResponse limit; its OCPP version's applies", "station", stationID,
					"status", v.AttributeStatus, "value", v.AttributeValue)
				continue
			}
			r.exiLimit = n
		}
	case *InstallCertificateResponse, *InstallCertificate16Response, *DeleteCertificateResponse, *DeleteCertificate16Response:
		level := slog.LevelInfo
		if status != "Accepted" {
			level = slog.LevelWarn
		} else {
			installOrDelete(sent, now, r.StationCallResult)
		}
		b.log().Log(context.Background(), level, "station answered "+sent.Action, "station", stationID, "status", status)
	}
	return nil, nil
}

// installedOf turns hash data into what the store keeps: lowercase hex,
// the serial without leading zeros.
func installedOf(typ string, h CertificateHashData, seen time.Time) store.InstalledCertificate {
	return store.InstalledCertificate{Type: typ, HashAlgorithm: h.HashAlgorithm, IssuerNameHash: strings.ToLower(h.IssuerNameHash),
		IssuerKeyHash: strings.ToLower(h.IssuerKeyHash), SerialNumber: trimZeros(strings.ToLower(h.SerialNumber)), SeenAt: seen}
}

func installedRecords(have []installed, now time.Time) []store.InstalledCertificate {
	out := make([]store.InstalledCertificate, 0, len(have))
	for _, h := range have {
		out = append(out, installedOf(h.typ, h.hash, now))
	}
	return out
}

func installOrDelete(sent Call, now time.Time, r *store.StationCallResult) {
	switch p := sent.Payload.(type) {
	case *InstallCertificateRequest:
		if c, ok := chainRecord(p.CertificateType, p.Certificate, now); ok {
			r.Installed = append(r.Installed, c)
		}
	case *InstallCertificate16:
		if c, ok := chainRecord(p.CertificateType, p.Certificate, now); ok {
			r.Installed = append(r.Installed, c)
		}
	case *DeleteCertificateRequest:
		r.Removed = append(r.Removed, installedOf("", p.CertificateHashData, now))
	case *DeleteCertificate16:
		h := p.CertificateHashData
		r.Removed = append(r.Removed, installedOf("", CertificateHashData{IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber}, now))
	}
}

// chainRecord is the record of the first certificate of a PEM chain,
// issued by the second (or by itself).
func chainRecord(typ, chainPEM string, now time.Time) (store.InstalledCertificate, bool) {
	chain, err := ParsePEMChain([]byte(chainPEM))
	if err != nil {
		return store.InstalledCertificate{}, false
	}
	issuer := chain[0]
	if len(chain) > 1 {
		issuer = chain[1]
	}
	h, err := HashDataOf(chain[0], issuer, "SHA256")
	if err != nil {
		return store.InstalledCertificate{}, false
	}
	return installedOf(typ, h, now), true
}

// signedCertificate is the record of the certificate a station accepted.
func signedCertificate(sent Call, now time.Time) (store.InstalledCertificate, bool) {
	var chain, typ string
	switch p := sent.Payload.(type) {
	case *CertificateSignedRequest:
		chain, typ = p.CertificateChain, p.CertificateType
	case *CertificateSigned16:
		chain, typ = p.CertificateChain, "ChargingStationCertificate"
	case *Has2beCertificateSignedRequest:
		chain, typ = p.Cert, p.TypeOfCertificate
	default:
		return store.InstalledCertificate{}, false
	}
	if typ == "V2GCertificate" {
		typ = "V2GCertificateChain" // OCPP's GetCertificateIdUse name for it
	}
	return chainRecord(typ, chain, now)
}

// certificateResult is the audit entry of a station's verdict on the
// certificate pncpki sent; a rejection is also logged and counted.
func (b *Bridge) certificateResult(stationID, status, reason string) *store.AuditEntry {
	action := AuditCertificateInstalled
	if status != "Accepted" {
		action = AuditCertificateRefused
		b.Metrics.certificateRejected()
		b.log().Error("station rejected its new certificate", "station", stationID, "status", status, "reason", reason)
	}
	detail, _ := json.Marshal(map[string]string{"status": status, "reason": reason})
	return &store.AuditEntry{Actor: "station:" + stationID, Action: action, Object: stationID, Detail: string(detail)}
}
