package contract

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Action is what a Get15118EVCertificate asks for.
type Action string

// Actions of OCPP's CertificateActionEnumType.
const (
	ActionInstall Action = "Install"
	ActionUpdate  Action = "Update"
)

// ISO 15118-2 ResponseCodes of a failed installation or update.
const (
	ResponseOK                 = "OK"
	ResponseFailed             = "FAILED"
	ResponseSignatureError     = "FAILED_SignatureError"
	ResponseCertChainError     = "FAILED_CertChainError"
	ResponseCertificateExpired = "FAILED_CertificateExpired"
	ResponseCertificateRevoked = "FAILED_CertificateRevoked"
	ResponseNoCertificate      = "FAILED_NoCertificateAvailable"
	ResponseContractCanceled   = "FAILED_ContractCanceled"
)

// Reasons of a failed installation: OCPP statusInfo reason codes (at most
// 20 characters), one per cause so that an operator can tell them apart.
const (
	ReasonInvalidEXI    = "InvalidEXIRequest"
	ReasonWrongMessage  = "WrongMessage"
	ReasonSignature     = "SignatureError"
	ReasonCertChain     = "CertChainError"
	ReasonExpired       = "CertificateExpired"
	ReasonRevoked       = "CertificateRevoked"
	ReasonUnknownPCID   = "UnknownPCID"
	ReasonNoContract    = "NoContract"
	ReasonCancelled     = "ContractCancelled"
	ReasonNoRoot        = "NoAcceptableRoot"
	ReasonTooLarge      = "ResponseTooLarge"
	ReasonNotConfigured = "NoCPSConfigured"
	ReasonUpstream      = "UpstreamFailed"
)

// InstallError is a refused installation or update: the ResponseCode a
// station gives the vehicle and the reason for OCPP's statusInfo.
type InstallError struct {
	ResponseCode string
	Reason       string
	Message      string
	Err          error
	// Answer is the failure answer for the vehicle (FailureAnswer, EXI):
	// Installer.Handle fills it in.
	Answer []byte
}

func (e *InstallError) Error() string {
	s := e.Reason + " (" + e.ResponseCode + "): " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *InstallError) Unwrap() error { return e.Err }

func refuse(code, reason string, err error, format string, args ...any) *InstallError {
	return &InstallError{ResponseCode: code, Reason: reason, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrRevoked is what Installer.CheckOEM returns for a revoked certificate.
var ErrRevoked = errors.New("certificate revoked")

// CPS is a certificate provisioning service identity: the key that signs
// installation responses and its chain, leaf first and up to the root
// (the root itself is not sent).
type CPS struct {
	Signer crypto.Signer
	Chain  []*x509.Certificate
}

// Installer answers ISO 15118-2 CertificateInstallationReq and
// CertificateUpdateReq: it checks the vehicle's request, issues a contract
// certificate for the vehicle's contract, encrypts the new key for the
// vehicle and returns the CertificateInstallationRes/UpdateRes signed by
// the CPS.
type Installer struct {
	Pool *Pool
	// CPS lists the CPS identities; the one whose root the vehicle lists
	// is used.
	CPS []CPS
	// CPS20 are the ISO 15118-20 CPS identities (P-521): Handle20 signs
	// with the one whose root the vehicle lists.
	CPS20 []CPS
	// OEMRoots returns the vehicle OEM roots and the OEM sub-CAs known
	// without a registered provisioning certificate.
	OEMRoots func(ctx context.Context) (roots, intermediates []*x509.Certificate, err error)
	// CheckOEM, when set, checks the revocation status of an OEM
	// provisioning certificate; ErrRevoked refuses it, other errors are
	// logged and the request goes on (an unreachable OEM responder must not
	// stop charging).
	CheckOEM func(ctx context.Context, leaf, issuer *x509.Certificate) error
	// Upstream, when set, answers the installation requests of vehicles
	// whose contract pncpki does not hold (no contract and no deposit for
	// the PCID): an ecosystem's contract certificate pool, whose answer is
	// passed on as it is (package upstream).
	Upstream func(ctx context.Context, exiRequest []byte) (exiResponse []byte, emaid string, err error)
	// Window is how long the same request gets the same answer (default
	// two minutes): a station retrying gets no second contract certificate.
	Window time.Duration
	// Shared, when set, keeps the answers for every replica too (Redis);
	// the process keeps its own in any case.
	Shared Answers
	// Sessions, when set, keeps which contracts each ISO 15118-20 V2G
	// session got for every replica (RedisSessions); without it the
	// process keeps its own, and a vehicle whose next request reaches
	// another replica gets its first contract again.
	Sessions Sessions
	Now      func() time.Time
	// StageClock, when set, measures the stages of Timings instead of the
	// wall clock: benchmarks pass the thread's CPU time, so that a stage
	// counts its own work and not the wait for the scheduler after the
	// commit. The store stage stays the commit's wall time.
	StageClock func() time.Duration
	Rand       io.Reader
	Log        *slog.Logger
	Metrics    *Metrics

	chains chainCache
	parsed parsedChains
	bounds sync.Map // boundKey -> int: answerBound's sizes

	subMu   sync.Mutex
	subCAs  []*x509.Certificate
	subRead time.Time

	mu    sync.Mutex
	cache map[[32]byte]*cached
	order [][32]byte

	sessions memorySessions // Sessions' default
}

// cached is a remembered answer.
type cached struct {
	res Response
	at  time.Time
}

// maxCached bounds the idempotency cache.
const maxCached = 10000

// Response is a successful installation or update.
type Response struct {
	EXI      []byte
	EMAID    string
	PCID     string // the vehicle's, for installations
	Contract *store.Certificate
	// ContractChain (DER) and CPSChain are the chains in the response,
	// leaf first (has.to.be's OCPP 1.6 extension repeats them in JSON),
	// and CPSRoot the V2G root of the CPS chain. The contract chain stays
	// DER: thousands of remembered answers with parsed certificates are
	// pointers the garbage collector walks on every cycle, which under
	// load stalled installations for tens of milliseconds.
	ContractChain [][]byte
	CPSChain      []*x509.Certificate
	CPSRoot       *x509.Certificate
	// Repeated says the answer is the one given to the same request a
	// moment ago; Upstream that it comes from the ecosystem.
	Repeated, Upstream bool
	// ISO20 says the answer is an ISO 15118-20 CertificateInstallationRes;
	// Remaining is then how many more contracts the vehicle gets by
	// asking again (RemainingContractCertificateChains).
	ISO20     bool
	Remaining int
	Timings   Timings
}

// Timings is where an installation spent its time.
type Timings struct {
	Decode, Verify, KeyGen, Issue, Store, Encrypt, Sign, Encode time.Duration
}

// Add adds o to t (for means over many installations).
func (t *Timings) Add(o Timings) {
	t.Decode += o.Decode
	t.Verify += o.Verify
	t.KeyGen += o.KeyGen
	t.Issue += o.Issue
	t.Store += o.Store
	t.Encrypt += o.Encrypt
	t.Sign += o.Sign
	t.Encode += o.Encode
}

func (in *Installer) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

// clock reads the clock of the stage timings.
func (in *Installer) clock() time.Duration {
	if in.StageClock != nil {
		return in.StageClock()
	}
	return time.Since(clockStart)
}

var clockStart = time.Now()

func (in *Installer) rand() io.Reader {
	if in.Rand != nil {
		return in.Rand
	}
	return rand.Reader
}

func (in *Installer) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.Default()
}

// request is what Handle learned from a valid request.
type request struct {
	sessionID string
	roots     []rootID
	contract  *store.Contract
	deposit   *store.ContractDeposit // an eMSP's own signed contract data, used as it is
	pcid      string
	recipient *ecdsa.PublicKey // whose key the new contract key is encrypted for
	key       [32]byte         // idempotency key
	anyRoot   bool             // no vehicle root list (Prepare): the first CPS will do
}

// Handle answers an EXI-encoded request (without V2GTP header). maxBase64
// is the size limit of the response in base64 characters (the OCPP
// version's exiResponse limit; 0: none). An empty action takes the one
// the body names. Refusals are *InstallError.
func (in *Installer) Handle(ctx context.Context, action Action, exiRequest []byte, maxBase64 int) (*Response, error) {
	rec := &store.InstallationRecord{At: in.now(), Station: installationFrom(ctx).Station, Limit: maxBase64}
	res, err := in.handle(ctx, &action, exiRequest, maxBase64, rec)
	in.finish(ctx, rec, labelISO2, action, res, err, func(ie *InstallError) {
		ie.Answer, _ = FailureFor(action, ie.ResponseCode, exiRequest)
	})
	return res, err
}

// finish gives a refusal without an answer the one failure makes, counts
// the request in the metrics (by variant) and appends it to the
// installation log.
func (in *Installer) finish(ctx context.Context, rec *store.InstallationRecord, variant string, action Action, res *Response, err error, failure func(*InstallError)) {
	var ie *InstallError
	switch {
	case errors.As(err, &ie):
		if ie.Answer == nil {
			failure(ie)
		}
		in.Metrics.result(action, variant, ie.Reason)
	case err != nil:
		in.Metrics.result(action, variant, "error")
	case res.Repeated:
		in.Metrics.result(action, variant, "repeated")
	case res.Upstream:
		in.Metrics.result(action, variant, "upstream")
	default:
		in.Metrics.result(action, variant, ResponseOK)
		in.Metrics.observe(variant, res.Timings)
	}
	in.record(ctx, rec, action, res, err)
}

func (in *Installer) handle(ctx context.Context, action *Action, exiRequest []byte, maxBase64 int, rec *store.InstallationRecord) (*Response, error) {
	var tm Timings
	t := in.clock()
	doc, err := exi.ISO2.Decode(exiRequest)
	if err != nil {
		return nil, refuse(ResponseFailed, ReasonInvalidEXI, err, "not an ISO 15118-2 message")
	}
	tm.Decode = in.clock() - t
	if len(in.CPS) == 0 {
		return nil, refuse(ResponseFailed, ReasonNotConfigured, nil, "this pncpki has no CPS key to sign installation responses")
	}
	t = in.clock()
	if *action == "" {
		*action = ActionInstall
		if doc.Child("Body").Child("CertificateUpdateReq") != nil {
			*action = ActionUpdate
		}
	}
	var req *request
	switch *action {
	case ActionInstall:
		req, err = in.checkInstall(ctx, doc, rec)
		var ie *InstallError
		if in.Upstream != nil && errors.As(err, &ie) && ie.Reason == ReasonUnknownPCID {
			return in.fromUpstream(ctx, exiRequest, ie, maxBase64)
		}
	case ActionUpdate:
		req, err = in.checkUpdate(ctx, doc, rec)
	default:
		return nil, refuse(ResponseFailed, ReasonWrongMessage, nil, "action %q: want Install or Update", *action)
	}
	if err != nil {
		return nil, err
	}
	tm.Verify = in.clock() - t
	if res := in.kept(ctx, req.key); res != nil {
		return res, nil
	}
	res, err := in.respond(ctx, *action, req, &tm, maxBase64)
	if err != nil {
		return nil, err
	}
	res.Timings = tm
	in.keep(ctx, req.key, res)
	return res, nil
}

// kept returns the answer given to the same request a moment ago, by this
// replica or (through Shared) another, or nil.
func (in *Installer) kept(ctx context.Context, key [32]byte) *Response {
	if res := in.repeated(key); res != nil {
		return res
	}
	if in.Shared == nil {
		return nil
	}
	kept, err := in.Shared.Get(ctx, key)
	if err != nil {
		in.log().Warn("shared answers not read; answering anew", "err", err)
		return nil
	}
	if kept != nil {
		in.remember(key, kept)
		kept.Repeated = true
	}
	return kept
}

// keep remembers an answer for retries of its request, here and in
// Shared.
func (in *Installer) keep(ctx context.Context, key [32]byte, res *Response) {
	in.remember(key, res)
	if in.Shared != nil {
		if err := in.Shared.Put(ctx, key, res, in.window()); err != nil {
			in.log().Warn("answer not shared with the other replicas", "err", err)
		}
	}
}

// checkInstall verifies a CertificateInstallationReq: the OEM provisioning
// certificate, its chain and status, the signature, and the contract of
// its PCID.
func (in *Installer) checkInstall(ctx context.Context, doc *exi.Element, rec *store.InstallationRecord) (*request, error) {
	body := doc.Child("Body")
	msg := body.Child("CertificateInstallationReq")
	if msg == nil {
		return nil, refuse(ResponseFailed, ReasonWrongMessage, nil, "the action is Install but the body is not a CertificateInstallationReq")
	}
	leaf, err := parseCertValue(msg.Child("OEMProvisioningCert").Val())
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "OEM provisioning certificate")
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, nil, "the OEM provisioning certificate has no P-256 key")
	}
	id, _ := msg.Attr("Id")
	sig := doc.Child("Header").Child("Signature")
	if err := verifySignature(sig, body, pub, id); err != nil {
		return nil, refuse(ResponseSignatureError, ReasonSignature, err, "request signature")
	}
	pcid, err := policies.NormalizePCID(leaf.Subject.CommonName)
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "PCID of the OEM provisioning certificate")
	}
	rec.PCID = pcid
	if err := in.checkOEM(ctx, pcid, leaf, nil, rec); err != nil {
		return nil, err
	}
	r := &request{
		sessionID: doc.Child("Header").Child("SessionID").Val(),
		roots:     rootIDs(msg.Child("ListOfRootCertificateIDs")),
		pcid:      pcid,
		recipient: pub,
		key:       idempotencyKey(leaf.Raw, sig),
	}
	// An eMSP's deposit for the vehicle comes first: it was made for it
	// (an ISO 15118-2 one: a -20 deposit is for the vehicle's -20 requests).
	if r.deposit, err = in.Pool.Store.ContractDeposit(ctx, pcid); err == nil {
		if p, err := depositProfile(r.deposit); err != nil {
			return nil, err
		} else if p == policies.ISO2Contract {
			rec.EMSP, rec.EMAID, rec.Source = r.deposit.Tenant, r.deposit.EMAID, sourceDeposit
			return r, nil
		}
		r.deposit = nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if r.contract, err = in.contractFor(ctx, pcid); err != nil {
		return nil, err
	}
	rec.EMSP, rec.EMAID, rec.Source = r.contract.Tenant, r.contract.EMAID, sourceIssued
	return r, nil
}

// subCATTL is how long the registered OEM sub-CAs are read once for all
// requests: a new registration counts within this.
const subCATTL = 10 * time.Second

// registeredSubCAs returns the OEM sub-CAs registered in the store.
func (in *Installer) registeredSubCAs(ctx context.Context) ([]*x509.Certificate, error) {
	in.subMu.Lock()
	defer in.subMu.Unlock()
	if now := time.Now(); in.subCAs == nil || now.Sub(in.subRead) > subCATTL {
		list, err := in.Pool.OEMSubCAs(ctx)
		if err != nil {
			return nil, err
		}
		in.subCAs, in.subRead = list, now
	}
	return in.subCAs, nil
}

func idempotencyKey(cert []byte, sig *exi.Element) [32]byte {
	h := sha256.New()
	h.Write(cert)
	h.Write([]byte(sig.Child("SignatureValue").Val()))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// checkOEM verifies the provisioning certificate's chain to an OEM root,
// with the sub-CAs registered with it (provisioning pool), known as OEM
// sub-CAs or sent with it, and its revocation status.
func (in *Installer) checkOEM(ctx context.Context, pcid string, leaf *x509.Certificate, sent []*x509.Certificate, rec *store.InstallationRecord) error {
	now := in.now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return refuse(ResponseCertificateExpired, ReasonExpired, nil, "the OEM provisioning certificate is valid %s to %s",
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	inter, err := in.registeredSubCAs(ctx)
	if err != nil {
		return err
	}
	inter = append(slices.Clip(inter), sent...) // the sub-CAs an ISO 15118-20 request carries
	reg, err := in.Pool.Store.ProvisioningCertificate(ctx, pcid)
	switch {
	case err == nil:
		rec.OEM = reg.Tenant
		if !slices.Equal(reg.DER, leaf.Raw) {
			return refuse(ResponseCertChainError, ReasonCertChain, nil, "PCID %s is registered with another provisioning certificate", pcid)
		}
		cs, err := in.parsed.parse(reg.Chain)
		if err != nil {
			return fmt.Errorf("registered chain of %s: %w", pcid, err)
		}
		inter = append(slices.Clip(inter), cs...)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	issuer, err := in.verifyOEM(ctx, leaf, inter, now)
	if err != nil {
		return err
	}
	if in.CheckOEM != nil {
		if err := in.CheckOEM(ctx, leaf, issuer); errors.Is(err, ErrRevoked) {
			return refuse(ResponseCertificateRevoked, ReasonRevoked, nil, "the OEM provisioning certificate of %s is revoked", pcid)
		} else if err != nil {
			in.log().Warn("OEM provisioning certificate status unknown; going on", "pcid", pcid, "err", err)
		}
	}
	return nil
}

// VerifyOEMChain checks that an OEM provisioning certificate found outside
// pncpki (in an ecosystem's pool), with the sub-CAs that came with it,
// leads to an OEM root as a vehicle's own would have to. A chain that
// does not is refused with an *InstallError; other errors are OEMRoots'.
func (in *Installer) VerifyOEMChain(ctx context.Context, leaf *x509.Certificate, subs []*x509.Certificate) error {
	_, err := in.verifyOEM(ctx, leaf, subs, in.now())
	return err
}

// verifyOEM verifies leaf to an OEM root of OEMRoots, with OEMRoots' sub-CAs
// and extra as intermediates, and returns its issuer.
func (in *Installer) verifyOEM(ctx context.Context, leaf *x509.Certificate, extra []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	var roots, inter []*x509.Certificate
	if in.OEMRoots != nil {
		var err error
		if roots, inter, err = in.OEMRoots(ctx); err != nil {
			return nil, err
		}
	}
	issuer, err := in.chains.verify(leaf, roots, append(slices.Clip(inter), extra...), now)
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "the OEM provisioning certificate does not lead to a known OEM root")
	}
	return issuer, nil
}

// contractFor picks the contract of a vehicle: its default contract, or
// its only one.
func (in *Installer) contractFor(ctx context.Context, pcid string) (*store.Contract, error) {
	cs, err := in.Pool.Store.ListContracts(ctx, "", pcid)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, refuse(ResponseNoCertificate, ReasonUnknownPCID, nil, "no contract is bound to PCID %s", pcid)
	}
	now := in.now()
	var live []*store.Contract
	cancelled := 0
	for _, c := range cs {
		switch {
		case c.Cancelled():
			cancelled++
		case c.ValidUntil.IsZero() || now.Before(c.ValidUntil):
			live = append(live, c)
		}
	}
	for _, c := range live {
		if c.Default {
			return c, nil
		}
	}
	switch {
	case len(live) == 1:
		return live[0], nil
	case len(live) > 1:
		return nil, refuse(ResponseNoCertificate, ReasonNoContract, nil, "PCID %s has %d contracts and none is the default", pcid, len(live))
	case cancelled == len(cs):
		return nil, refuse(ResponseContractCanceled, ReasonCancelled, nil, "the contracts of PCID %s are cancelled", pcid)
	}
	return nil, refuse(ResponseNoCertificate, ReasonNoContract, nil, "the contracts of PCID %s have ended", pcid)
}

// checkUpdate verifies a CertificateUpdateReq: the current contract chain
// must be one pncpki issued for an active contract, and the request must
// be signed with its key.
func (in *Installer) checkUpdate(ctx context.Context, doc *exi.Element, rec *store.InstallationRecord) (*request, error) {
	body := doc.Child("Body")
	msg := body.Child("CertificateUpdateReq")
	if msg == nil {
		return nil, refuse(ResponseFailed, ReasonWrongMessage, nil, "the action is Update but the body is not a CertificateUpdateReq")
	}
	chain, err := parseChain(msg.Child("ContractSignatureCertChain"))
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "contract certificate chain")
	}
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, nil, "the contract certificate has no P-256 key")
	}
	id, _ := msg.Attr("Id")
	sig := doc.Child("Header").Child("Signature")
	if err := verifySignature(sig, body, pub, id); err != nil {
		return nil, refuse(ResponseSignatureError, ReasonSignature, err, "request signature")
	}
	emaid, err := policies.ParseEMAID(msg.Child("eMAID").Val())
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "eMAID")
	}
	rec.EMAID = emaid.String()
	if cn, err := policies.ParseEMAID(leaf.Subject.CommonName); err != nil || cn.String() != emaid.String() {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "the contract certificate is not for eMAID %s", emaid)
	}
	// The certificate must be one of ours: known to the store, under a
	// MO sub-CA pncpki runs, and not revoked.
	var issuer *ca.Authority
	for _, a := range in.Pool.CA.Authorities() {
		if a.Profile.Name == policies.ISO2MOSub2 && ed448x509.CheckSignature(leaf, a.Cert) == nil {
			issuer = a
		}
	}
	if issuer == nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, nil, "the contract certificate was not issued by a MO sub-CA of this pncpki")
	}
	cert, err := in.Pool.Store.Certificate(ctx, issuer.Name, ca.SerialHex(leaf.SerialNumber))
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, nil, "unknown contract certificate")
	} else if err != nil {
		return nil, err
	}
	c, err := in.Pool.Store.Contract(ctx, emaid.String())
	if err == nil {
		rec.EMSP, rec.PCID, rec.Source = c.Tenant, c.PCID, sourceIssued
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, refuse(ResponseNoCertificate, ReasonNoContract, nil, "no contract %s", emaid)
	case err != nil:
		return nil, err
	case c.Cancelled():
		return nil, refuse(ResponseContractCanceled, ReasonCancelled, nil, "contract %s is cancelled", emaid)
	case cert.Revoked():
		return nil, refuse(ResponseCertificateRevoked, ReasonRevoked, nil, "the contract certificate is revoked")
	case !c.ValidUntil.IsZero() && !in.now().Before(c.ValidUntil):
		return nil, refuse(ResponseNoCertificate, ReasonNoContract, nil, "contract %s has ended", emaid)
	}
	return &request{
		sessionID: doc.Child("Header").Child("SessionID").Val(),
		roots:     rootIDs(msg.Child("ListOfRootCertificateIDs")),
		pcid:      c.PCID,
		contract:  c,
		recipient: pub,
		key:       idempotencyKey(leaf.Raw, sig),
	}, nil
}

// chooseCPS picks the CPS identity whose root the vehicle lists.
func (in *Installer) chooseCPS(roots []rootID) (*CPS, error) {
	for i := range in.CPS {
		c := &in.CPS[i]
		if top := c.Chain[len(c.Chain)-1]; listed(roots, top) {
			return c, nil
		}
	}
	return nil, refuse(ResponseNoCertificate, ReasonNoRoot, nil, "the vehicle lists none of the V2G roots of this pncpki's CPS")
}

// chooseMO picks the MO sub-CA 2 for a contract certificate: one whose root
// the vehicle lists; when the vehicle lists no MO root this pncpki knows
// (many list only V2G roots), any MO sub-CA 2.
func (in *Installer) chooseMO(roots []rootID) (*ca.Authority, error) {
	return in.chooseMOOf(roots, policies.ISO2MOSub2, policies.ISO2MORoot)
}

// chooseMOOf is chooseMO among the CAs of profile sub under roots of
// profile root (ISO 15118-2's or -20's).
func (in *Installer) chooseMOOf(roots []rootID, sub, root string) (*ca.Authority, error) {
	var fallback *ca.Authority
	knownListed := false
	for _, a := range in.Pool.CA.Authorities() {
		switch {
		case a.Profile.Name == sub && a.Signer != nil:
			if listed(roots, a.Chain[len(a.Chain)-1]) {
				return a, nil
			}
			fallback = a
		case a.Profile.Name == root && listed(roots, a.Cert):
			knownListed = true
		}
	}
	if fallback == nil || knownListed {
		return nil, refuse(ResponseNoCertificate, ReasonNoRoot, nil, "no %s of this pncpki leads to a root the vehicle lists", sub)
	}
	return fallback, nil
}

func listed(roots []rootID, c *x509.Certificate) bool {
	for _, r := range roots {
		if r.names(c) {
			return true
		}
	}
	return false
}

// contractData is what the vehicle receives for its contract: the chain
// (DER, leaf first), the key encrypted for it, the DH public key and the
// EMAID. For a certificate pncpki issued now, stored says when its record
// is durable (nil for a deposit).
type contractData struct {
	chain             [][]byte
	encrypted, dhPubl []byte
	emaid             string
	stored            <-chan recorded
}

// recorded is the outcome of storing a contract certificate.
type recorded struct {
	issued *ca.Issued
	err    error
}

// respond gets the contract data (issued now, or deposited by an eMSP with
// its own MO PKI) and builds the signed response. A certificate issued now
// is stored while the response is encrypted, signed and encoded; the
// response is returned only once the certificate is stored.
func (in *Installer) respond(ctx context.Context, action Action, req *request, tm *Timings, maxBase64 int) (res *Response, err error) {
	cps := &in.CPS[0]
	if !req.anyRoot {
		if cps, err = in.chooseCPS(req.roots); err != nil {
			return nil, err
		}
	}
	var data *contractData
	if req.deposit != nil {
		if data, err = depositData(req.deposit); err == nil {
			err = in.fits(action, req, cps, data.chain, data.emaid, maxBase64)
		}
	} else {
		data, err = in.issue(ctx, action, req, cps, tm, maxBase64)
	}
	if err != nil {
		return nil, err
	}
	out, err := in.build(action, req, cps, data, tm)
	var record *store.Certificate
	if data.stored != nil {
		r := <-data.stored
		if r.err != nil {
			return nil, fmt.Errorf("issue contract certificate: %w", r.err)
		}
		record, tm.Store = r.issued.Record, r.issued.Stored
	}
	if err != nil {
		return nil, err
	}
	if err := in.deliverable(ctx, out, record, maxBase64); err != nil {
		return nil, err
	}
	return &Response{EXI: out, EMAID: data.emaid, PCID: req.pcid, Contract: record, ContractChain: data.chain,
		CPSChain: WithoutRoot(cps.Chain), CPSRoot: cps.Chain[len(cps.Chain)-1]}, nil
}

// build signs the contract data with the CPS and encodes the response.
func (in *Installer) build(action Action, req *request, cps *CPS, data *contractData, tm *Timings) ([]byte, error) {
	t := in.clock()
	signed := signedParts(data.chain, data.encrypted, data.dhPubl, data.emaid)
	sig, err := signature(cps.Signer, signed...)
	if err != nil {
		return nil, err
	}
	tm.Sign = in.clock() - t

	t = in.clock()
	out, err := encodeAnswer(action, ResponseOK, req.sessionID, ChainDER(WithoutRoot(cps.Chain)), signed, sig)
	tm.Encode = in.clock() - t
	return out, err
}

// issue makes the contract data: a new key, its certificate from an MO
// Sub-CA 2 the vehicle accepts (being stored when issue returns), the key
// encrypted for the vehicle.
//
// The answer's size is known before anything is signed: a vehicle whose
// answer would exceed maxBase64 gets ResponseTooLarge, and no certificate
// is issued, stored or revoked for it.
func (in *Installer) issue(ctx context.Context, action Action, req *request, cps *CPS, tm *Timings, maxBase64 int) (*contractData, error) {
	mo, err := in.chooseMO(req.roots)
	if err != nil {
		return nil, err
	}
	validity, err := in.contractValidity(req.contract)
	if err != nil {
		return nil, err
	}

	t := in.clock()
	key, err := ecdsa.GenerateKey(elliptic.P256(), in.rand())
	if err != nil {
		return nil, err
	}
	// Wipe the key's scalar when done. Go keeps a second, internal copy
	// that no API reaches; this one and keywrap's byte copy are wiped.
	//lint:ignore SA1019 D is the only handle on the scalar's memory
	defer clear(key.D.Bits())
	tm.KeyGen = in.clock() - t

	// CN and DC are all a contract certificate's subject needs ([V2G2-108]):
	// the eMSP's organization is in the issuer's name right beside it.
	subject := policies.Subject{CommonName: req.contract.EMAID}
	if maxBase64 > 0 {
		n, err := in.answerBound(action, req, cps, mo, &key.PublicKey, subject, validity)
		if err != nil {
			return nil, err
		}
		if b := base64.StdEncoding.EncodedLen(n); b > maxBase64 {
			return nil, refuse(ResponseFailed, ReasonTooLarge, nil, "the response would be up to %d base64 characters, over the limit of %d; nothing was issued", b, maxBase64)
		}
	}

	t = in.clock()
	signed, err := in.Pool.CA.SignForKeyAs(req.contract.Tenant, policies.ISO2Contract, mo.Name, &key.PublicKey, subject, validity)
	if err != nil {
		return nil, fmt.Errorf("issue contract certificate: %w", err)
	}
	tm.Issue = in.clock() - t
	inst := installationFrom(ctx)
	inst.EXIResponseLimit = maxBase64
	signed.Installation = &inst
	stored := make(chan recorded, 1)
	go func() {
		issued, err := signed.Record(ctx)
		stored <- recorded{issued, err}
	}()

	t = in.clock()
	encrypted, dhPublic, err := EncryptPrivateKey(in.rand(), key, req.recipient)
	tm.Encrypt = in.clock() - t
	if err != nil {
		<-stored // stored and not delivered, as when the caller goes away
		return nil, err
	}
	chain := append([][]byte{signed.DER}, ChainDER(WithoutRoot(signed.Chain))...)
	return &contractData{chain: chain, encrypted: encrypted, dhPubl: dhPublic, emaid: req.contract.EMAID, stored: stored}, nil
}

// contractValidity is how long a contract certificate for c lives: a
// year, or until the contract ends; a contract that ends within the
// contract certificate's minimum of 28 days gets none.
func (in *Installer) contractValidity(c *store.Contract) (policies.Period, error) {
	if c.ValidUntil.IsZero() {
		return policies.Period{Years: 1}, nil
	}
	days := int(c.ValidUntil.Sub(in.now()).Hours() / 24)
	if days < 28 {
		return policies.Period{}, refuse(ResponseNoCertificate, ReasonNoContract, nil, "contract %s ends in %d days, before a contract certificate's minimum of 28", c.EMAID, days)
	}
	return policies.Period{Days: min(days, 365)}, nil
}

// deliverable refuses an answer over maxBase64. An answer whose contract
// certificate was issued for it was bounded before issuance (answerBound,
// fits20), so that is a defect; still nothing may be half done: the
// certificate nobody will receive is revoked before the refusal. A
// deposit's answer, all its parts given, is measured here only.
func (in *Installer) deliverable(ctx context.Context, out []byte, record *store.Certificate, maxBase64 int) error {
	n := base64.StdEncoding.EncodedLen(len(out))
	if maxBase64 <= 0 || n <= maxBase64 {
		return nil
	}
	if record != nil {
		if _, err := in.Pool.CA.Revoke(ctx, record.Issuer, record.Serial, reasonCessationOfOperation); err != nil {
			return fmt.Errorf("revoke the undeliverable contract certificate: %w", err)
		}
	}
	return refuse(ResponseFailed, ReasonTooLarge, nil, "the response is %d base64 characters, over the limit of %d", n, maxBase64)
}

// depositData is the contract data an eMSP deposited.
func depositData(d *store.ContractDeposit) (*contractData, error) {
	chain, err := x509.ParseCertificates(d.Chain)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("deposit for %s: %v", d.PCID, err)
	}
	return &contractData{chain: ChainDER(chain), encrypted: d.EncryptedKey, dhPubl: d.DHPublicKey, emaid: d.EMAID}, nil
}

// fromUpstream passes a request whose vehicle pncpki knows no contract of
// to the ecosystem; its answer is used as it is, within the size limit.
func (in *Installer) fromUpstream(ctx context.Context, exiRequest []byte, unknown *InstallError, maxBase64 int) (*Response, error) {
	res, emaid, err := in.Upstream(ctx, exiRequest)
	var se interface{ NotFound() bool }
	switch {
	case errors.As(err, &se) && se.NotFound():
		return nil, unknown
	case err != nil:
		return nil, refuse(ResponseNoCertificate, ReasonUpstream, err, "the ecosystem's contract pool did not answer")
	}
	doc, err := exi.ISO2.Decode(res)
	if err != nil {
		return nil, refuse(ResponseFailed, ReasonUpstream, err, "the ecosystem answered with no ISO 15118-2 message")
	}
	switch code := doc.Child("Body").Child("CertificateInstallationRes").Child("ResponseCode").Val(); code {
	case ResponseOK:
	case "":
		return nil, refuse(ResponseFailed, ReasonUpstream, nil, "the ecosystem answered with no CertificateInstallationRes")
	default:
		// An ecosystem that answers refusals for the vehicle too: its
		// answer is passed on as the refusal's.
		ie := refuse(code, ReasonUpstream, nil, "the ecosystem answered ResponseCode %q", code)
		ie.Answer = res
		return nil, ie
	}
	if n := base64.StdEncoding.EncodedLen(len(res)); maxBase64 > 0 && n > maxBase64 {
		return nil, refuse(ResponseFailed, ReasonTooLarge, nil, "the ecosystem's response is %d base64 characters, over the limit of %d", n, maxBase64)
	}
	out := &Response{EXI: res, EMAID: emaid, Upstream: true}
	if doc, err := exi.ISO2.Decode(exiRequest); err == nil {
		if leaf, err := parseCertValue(doc.Child("Body").Child("CertificateInstallationReq").Child("OEMProvisioningCert").Val()); err == nil {
			out.PCID, _ = policies.NormalizePCID(leaf.Subject.CommonName)
		}
	}
	return out, nil
}

func (in *Installer) repeated(k [32]byte) *Response {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := in.cache[k]
	if c == nil || in.now().Sub(c.at) > in.window() {
		return nil
	}
	r := c.res
	r.Repeated = true
	return &r
}

func (in *Installer) window() time.Duration {
	if in.Window > 0 {
		return in.Window
	}
	return 2 * time.Minute
}

func (in *Installer) remember(k [32]byte, res *Response) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cache == nil {
		in.cache = map[[32]byte]*cached{}
	}
	now := in.now()
	// Drop what is too old or over the bound, oldest first.
	for len(in.order) > 0 {
		c := in.cache[in.order[0]]
		if c != nil && len(in.order) < maxCached && now.Sub(c.at) <= in.window() {
			break
		}
		delete(in.cache, in.order[0])
		in.order = in.order[1:]
	}
	in.cache[k] = &cached{res: *res, at: now}
	in.order = append(in.order, k)
}
