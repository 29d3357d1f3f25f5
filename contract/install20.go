package contract

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Options20 is what OCPP 2.1's Get15118EVCertificate adds for an ISO
// 15118-20 request: the station's copy of the vehicle's
// MaximumContractCertificateChains and PrioritizedEMAIDs. Zero values
// leave the request's own.
type Options20 struct {
	MaxContracts      int
	PrioritizedEMAIDs []string
}

// responseCode20 is the ISO 15118-20 ResponseCode for an ISO 15118-2 one:
// -20 has no FAILED_CertChainError and its kind; pncpki's reading, as no
// source maps them, is that a refused certificate or a missing contract
// is a WARNING (the session goes on without a contract) and a bad
// signature FAILED_SignatureError.
var responseCode20 = map[string]string{
	ResponseOK:                 ResponseOK,
	ResponseFailed:             ResponseFailed,
	ResponseSignatureError:     ResponseSignatureError,
	ResponseCertChainError:     "WARNING_CertificateValidationError",
	ResponseCertificateExpired: "WARNING_CertificateExpired",
	ResponseCertificateRevoked: "WARNING_CertificateRevoked",
	ResponseNoCertificate:      "WARNING_NoCertificateAvailable",
	ResponseContractCanceled:   "WARNING_NoCertificateAvailable",
}

// Handle20 answers an ISO 15118-20 CertificateInstallationReq of either
// security variant, secp521r1 or Ed448 (the OEM provisioning certificate's
// key tells): it verifies the vehicle's signature and OEM
// provisioning chain, picks the next of the vehicle's contracts (its
// PrioritizedEMAIDs first, at most MaximumContractCertificateChains per
// V2G session), issues the contract certificate from a -20 MO Sub-CA 2 of
// the variant (stored before the answer is returned), encrypts its key for
// the vehicle (ECDH P-521 or X448, SHA-512 KDF, AES-256-GCM), and signs
// SignedInstallationData with a -20 CPS leaf of the variant whose root the
// vehicle lists. Refusals are *InstallError with a -20 failure answer.
//
// TPM-encrypted keys are not offered: the request cannot ask for them.
func (in *Installer) Handle20(ctx context.Context, exiRequest []byte, maxBase64 int, o Options20) (*Response, error) {
	rec := &store.InstallationRecord{At: in.now(), Station: installationFrom(ctx).Station, Limit: maxBase64}
	label := labelISO20
	res, err := in.handle20(ctx, exiRequest, maxBase64, o, rec, &label)
	var ie *InstallError
	if errors.As(err, &ie) {
		ie.ResponseCode = responseCode20[ie.ResponseCode]
	}
	in.finish(ctx, rec, label, ActionInstall, res, err, func(ie *InstallError) {
		ie.Answer, _ = FailureAnswer20(exiRequest, ie.ResponseCode, in.now())
	})
	return res, err
}

func (in *Installer) handle20(ctx context.Context, exiRequest []byte, maxBase64 int, o Options20, rec *store.InstallationRecord, label *string) (*Response, error) {
	var tm Timings
	t := in.clock()
	msg, err := exi.ISO20.Decode(exiRequest)
	if err != nil {
		return nil, refuse(ResponseFailed, ReasonInvalidEXI, err, "not an ISO 15118-20 message")
	}
	tm.Decode = in.clock() - t
	t = in.clock()
	if msg.Name.Local != "CertificateInstallationReq" {
		return nil, refuse(ResponseFailed, ReasonWrongMessage, nil, "%s is not a CertificateInstallationReq", msg.Name.Local)
	}
	sent, err := ParseChain20(msg.Child("OEMProvisioningCertificateChain"))
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "OEM provisioning certificate chain")
	}
	leaf := sent[0]
	v, err := vehicleVariant(leaf)
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "OEM provisioning certificate")
	}
	*label = v.label()
	if _, err := VerifyMessage20(msg); err != nil {
		return nil, refuse(ResponseSignatureError, ReasonSignature, err, "request signature")
	}
	pcid, err := policies.NormalizePCID(leaf.Subject.CommonName)
	if err != nil {
		return nil, refuse(ResponseCertChainError, ReasonCertChain, err, "PCID of the OEM provisioning certificate")
	}
	rec.PCID = pcid
	if err := in.checkOEM(ctx, pcid, leaf, sent[1:], rec); err != nil {
		return nil, err
	}
	tm.Verify = in.clock() - t
	key := idempotencyKey(leaf.Raw, msg.Child("Header").Child("Signature"))
	if res := in.kept(ctx, key); res != nil {
		return res, nil
	}
	header := msg.Child("Header")
	sessionID, err := hex.DecodeString(header.Child("SessionID").Val())
	if err != nil {
		return nil, refuse(ResponseFailed, ReasonInvalidEXI, err, "SessionID")
	}
	roots := rootIDs(msg.Child("ListOfRootCertificateIDs"))
	maxChains := o.MaxContracts
	if maxChains <= 0 {
		maxChains, _ = strconv.Atoi(msg.Child("MaximumContractCertificateChains").Val())
	}
	maxChains = min(max(maxChains, 1), 255)
	prioritized := o.PrioritizedEMAIDs
	if len(prioritized) == 0 && msg.Child("PrioritizedEMAIDs") != nil {
		for _, e := range msg.Child("PrioritizedEMAIDs").All("EMAID") {
			prioritized = append(prioritized, e.Val())
		}
	}
	offers, err := in.offers20(ctx, pcid, v, prioritized)
	if err != nil {
		return nil, err
	}
	session := pcid + "/" + hex.EncodeToString(sessionID)
	given, err := in.sessions20().Delivered(ctx, session)
	if err != nil {
		// An outage of the shared tier must not stop charging: the
		// vehicle gets its first contract again.
		in.log().Warn("the session's contracts not read; answering as for a new session", "session", session, "err", err)
	}
	total := min(len(offers), maxChains)
	var next *offer20
	for i := range offers[:total] {
		if !slices.Contains(given, offers[i].emaid) {
			next = &offers[i]
			break
		}
	}
	if next == nil {
		return nil, refuse(ResponseNoCertificate, ReasonNoContract, nil, "the %d contracts of PCID %s for this session were installed", total, pcid)
	}
	rec.EMSP, rec.EMAID, rec.Source = next.tenant(), next.emaid, sourceIssued
	if next.deposit != nil {
		rec.Source = sourceDeposit
	}
	remaining := 0 // the session's contracts still to come after this one
	for _, o := range offers[:total] {
		if o.emaid != next.emaid && !slices.Contains(given, o.emaid) {
			remaining++
		}
	}

	cps, err := in.chooseCPS20(roots, v)
	if err != nil {
		return nil, err
	}
	out, record, chain, err := in.answer20(ctx, sessionID, next, pcid, v, cps, roots, remaining, maxBase64, &tm)
	if err != nil {
		return nil, err
	}
	if err := in.deliverable(ctx, out, record, maxBase64); err != nil {
		return nil, err
	}
	if err := in.sessions20().Add(ctx, session, next.emaid); err != nil {
		// The vehicle gets its contract; asking again, it may get the
		// same one (a new certificate for it) instead of the next.
		in.log().Warn("the session's contract not remembered", "session", session, "err", err)
	}
	res := &Response{EXI: out, EMAID: next.emaid, PCID: pcid, Contract: record, ContractChain: chain,
		CPSChain: WithoutRoot(cps.Chain), CPSRoot: cps.Chain[len(cps.Chain)-1], ISO20: true, Remaining: remaining, Timings: tm}
	in.keep(ctx, key, res)
	return res, nil
}

// offer20 is a contract a -20 vehicle can get: one of the pool, whose
// certificate pncpki issues, or the one an eMSP deposited for it.
type offer20 struct {
	emaid    string
	contract *store.Contract
	deposit  *store.ContractDeposit
}

func (o *offer20) tenant() string {
	if o.deposit != nil {
		return o.deposit.Tenant
	}
	return o.contract.Tenant
}

// offers20 returns the contracts of a PCID in the order a -20 vehicle
// gets them: those it prioritizes in its order (only those, when it names
// any); else an eMSP's deposit of its variant first (it was made for the
// vehicle), then the pool's live contracts, the default first.
func (in *Installer) offers20(ctx context.Context, pcid string, v variant20, prioritized []string) ([]offer20, error) {
	cs, err := in.Pool.Store.ListContracts(ctx, "", pcid)
	if err != nil {
		return nil, err
	}
	var offers []offer20
	d, err := in.Pool.Store.ContractDeposit(ctx, pcid)
	switch {
	case err == nil:
		if p, _ := depositProfile(d); p == v.profile(policies.ISO20Contract) {
			offers = append(offers, offer20{emaid: d.EMAID, deposit: d})
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	now := in.now()
	var live []*store.Contract
	for _, c := range cs {
		if !c.Cancelled() && (c.ValidUntil.IsZero() || now.Before(c.ValidUntil)) && (d == nil || c.EMAID != d.EMAID || len(offers) == 0) {
			live = append(live, c)
		}
	}
	slices.SortStableFunc(live, func(a, b *store.Contract) int {
		switch {
		case a.Default && !b.Default:
			return -1
		case b.Default && !a.Default:
			return 1
		}
		return 0
	})
	for _, c := range live {
		offers = append(offers, offer20{emaid: c.EMAID, contract: c})
	}
	if len(offers) == 0 {
		reason := ReasonUnknownPCID
		if len(cs) > 0 {
			reason = ReasonNoContract
		}
		return nil, refuse(ResponseNoCertificate, reason, nil, "no live contract is bound to PCID %s", pcid)
	}
	if len(prioritized) == 0 {
		return offers, nil
	}
	var out []offer20
	for _, p := range prioritized {
		e, err := policies.ParseEMAID(p)
		if err != nil {
			continue
		}
		for _, o := range offers {
			if o.emaid == e.String() && !slices.ContainsFunc(out, func(x offer20) bool { return x.emaid == o.emaid }) {
				out = append(out, o)
			}
		}
	}
	if len(out) == 0 {
		return nil, refuse(ResponseNoCertificate, ReasonNoContract, nil, "none of the EMAIDs the vehicle prioritizes is a live contract of PCID %s", pcid)
	}
	return out, nil
}

// variant20 is the ISO 15118-20 security variant of a vehicle, as its OEM
// provisioning certificate tells: its key for the contract key transport,
// a P-521 key (SECP521) or the X448 key of an Ed448 certificate.
type variant20 struct {
	p521 *ecdsa.PublicKey
	x448 *x448.Key
}

func vehicleVariant(leaf *x509.Certificate) (variant20, error) {
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok && pub.Curve == elliptic.P521() {
		return variant20{p521: pub}, nil
	}
	if ed448x509.PublicKey(leaf) == nil {
		return variant20{}, errors.New("neither a P-521 nor an Ed448 key")
	}
	k, err := ed448x509.AltX448Key(leaf)
	if err != nil {
		return variant20{}, fmt.Errorf("an Ed448 certificate without the vehicle's X448 key: %w", err)
	}
	return variant20{x448: k}, nil
}

// label is the variant's value of the metrics' variant label.
func (v variant20) label() string {
	if v.x448 != nil {
		return labelISO20Ed448
	}
	return labelISO20P521
}

// profile is the variant's profile for a secp521r1 one.
func (v variant20) profile(p521 string) string {
	if v.x448 != nil {
		return policies.Ed448Variant(p521)
	}
	return p521
}

// signs says whether a signer's key is of the variant.
func (v variant20) signs(signer crypto.Signer) bool {
	switch k := signer.Public().(type) {
	case *ecdsa.PublicKey:
		return v.p521 != nil && k.Curve == elliptic.P521()
	case ed448.PublicKey:
		return v.x448 != nil
	}
	return false
}

// chooseCPS20 picks a -20 CPS identity of the vehicle's variant whose
// root the vehicle lists.
func (in *Installer) chooseCPS20(roots []rootID, v variant20) (*CPS, error) {
	if c := in.cps20(v, func(root *x509.Certificate) bool { return listed(roots, root) }); c != nil {
		return c, nil
	}
	return nil, refuse(ResponseNoCertificate, ReasonNoRoot, nil, "the vehicle lists none of the V2G roots of this pncpki's ISO 15118-20 CPS of its variant")
}

// cps20 is the first -20 CPS identity of variant v whose root takes, or
// nil.
func (in *Installer) cps20(v variant20, takes func(root *x509.Certificate) bool) *CPS {
	for i := range in.CPS20 {
		c := &in.CPS20[i]
		if v.signs(c.Signer) && takes(c.Chain[len(c.Chain)-1]) {
			return c
		}
	}
	return nil
}

// answer20 issues and stores the contract certificate, encrypts its key
// and builds the signed CertificateInstallationRes.
func (in *Installer) answer20(ctx context.Context, sessionID []byte, o *offer20, pcid string, v variant20, cps *CPS, roots []rootID, remaining, maxBase64 int, tm *Timings) ([]byte, *store.Certificate, [][]byte, error) {
	var chain [][]byte
	var dh, field []byte
	var record *store.Certificate
	if o.deposit != nil {
		certs, err := x509.ParseCertificates(o.deposit.Chain)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("deposit for %s: %w", pcid, err)
		}
		chain, dh, field = ChainDER(certs), o.deposit.DHPublicKey, o.deposit.EncryptedKey
	} else {
		mo, err := in.chooseMOOf(roots, v.profile(policies.ISO20MOSub2), v.profile(policies.ISO20MORoot))
		if err != nil {
			return nil, nil, nil, err
		}
		if chain, dh, field, record, err = in.issue20(ctx, sessionID, o.contract, pcid, v, cps, mo, remaining, maxBase64, tm); err != nil {
			return nil, nil, nil, err
		}
	}
	t := in.clock()
	sid := v.signedInstallationData(chain, dh, field)
	sig, err := signature20(cps.Signer, sigRef{sidID, sid})
	if err != nil {
		return nil, nil, nil, err
	}
	tm.Sign = in.clock() - t
	t = in.clock()
	out, err := exi.ISO20.Encode(installationRes20(sessionID, in.now().Unix(), sig, cps, sid, remaining))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode the answer: %w", err)
	}
	tm.Encode = in.clock() - t
	return out, record, chain, nil
}

// issue20 issues and stores a pool contract's certificate for the vehicle
// and encrypts its key: the contract chain, DHPublicKey and the encrypted
// key of SignedInstallationData.
func (in *Installer) issue20(ctx context.Context, sessionID []byte, c *store.Contract, pcid string, v variant20, cps *CPS, mo *ca.Authority, remaining, maxBase64 int, tm *Timings) (chain [][]byte, dh, field []byte, record *store.Certificate, err error) {
	validity, err := in.contractValidity(c)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	t := in.clock()
	// The contract key, and how it is sealed for the vehicle once the
	// certificate (its SKI) is there.
	var pub crypto.PublicKey
	var seal func(ski []byte) (field, dh []byte, err error)
	if v.x448 != nil {
		_, key, kerr := ed448.GenerateKey(in.rand())
		if kerr != nil {
			return nil, nil, nil, nil, kerr
		}
		defer clear(key)
		pub = key.Public()
		seal = func(ski []byte) ([]byte, []byte, error) {
			return EncryptPrivateKeyX448(in.rand(), key, v.x448, pcid, ski)
		}
	} else {
		key, kerr := ecdsa.GenerateKey(elliptic.P521(), in.rand())
		if kerr != nil {
			return nil, nil, nil, nil, kerr
		}
		//lint:ignore SA1019 D is the only handle on the scalar's memory
		defer clear(key.D.Bits())
		pub = &key.PublicKey
		seal = func(ski []byte) ([]byte, []byte, error) {
			return EncryptPrivateKey20(in.rand(), key, v.p521, pcid, ski)
		}
	}
	tm.KeyGen = in.clock() - t
	subject := policies.Subject{CommonName: c.EMAID}
	if err := in.fits20(v, sessionID, cps, mo, pub, subject, validity, remaining, maxBase64); err != nil {
		return nil, nil, nil, nil, err
	}
	t = in.clock()
	signed, err := in.Pool.CA.SignForKeyAs(c.Tenant, v.profile(policies.ISO20Contract), mo.Name, pub, subject, validity)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("issue contract certificate: %w", err)
	}
	tm.Issue = in.clock() - t
	inst := installationFrom(ctx)
	signed.Installation = &inst
	issued, err := signed.Record(ctx)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("store contract certificate: %w", err)
	}
	tm.Store = issued.Stored // the commit's wall time
	t = in.clock()
	cert, err := x509.ParseCertificate(signed.DER)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if field, dh, err = seal(cert.SubjectKeyId); err != nil {
		return nil, nil, nil, nil, err
	}
	tm.Encrypt = in.clock() - t
	return append([][]byte{signed.DER}, ChainDER(WithoutRoot(signed.Chain))...), dh, field, issued.Record, nil
}

// sidID is the Id of SignedInstallationData, which the CPS signature
// references.
const sidID = "id-sid"

// signedInstallationData is the variant's SignedInstallationData.
func (v variant20) signedInstallationData(chain [][]byte, dh, field []byte) *exi.Element {
	curve, fieldName := CurveSECP521, "SECP521_EncryptedPrivateKey"
	if v.x448 != nil {
		curve, fieldName = CurveX448, "X448_EncryptedPrivateKey"
	}
	return exi.New("SignedInstallationData",
		chain20("ContractCertificateChain", chain, true),
		exi.Text("ECDHCurve", curve),
		exi.Binary("DHPublicKey", dh),
		exi.Binary(fieldName, field)).WithAttr("Id", sidID)
}

// installationRes20 is an accepted CertificateInstallationRes.
func installationRes20(sessionID []byte, timestamp int64, sig *exi.Element, cps *CPS, sid *exi.Element, remaining int) *exi.Element {
	return exi.New("CertificateInstallationRes",
		header20(sessionID, timestamp, sig),
		exi.Text("ResponseCode", ResponseOK),
		exi.Text("EVSEProcessing", "Finished"),
		chain20("CPSCertificateChain", ChainDER(WithoutRoot(cps.Chain)), false),
		sid,
		exi.Text("RemainingContractCertificateChains", strconv.Itoa(remaining)))
}

// The lengths of the variable parts of a -20 answer, by variant
// (PNC-FACTS-20.md): DHPublicKey, the encrypted key, the signature; both
// digests are 64 bytes.
const (
	dhLenP521, fieldLenP521, sigLenP521  = 133, 94, 132
	dhLenX448, fieldLenX448, sigLenEd448 = 57, 84, 114
	digestLen20                          = 64
)

// fits20 refuses, before anything is issued, an answer that could exceed
// maxBase64: the answer encoded with placeholders of the exact lengths of
// its parts, and the contract certificate at its longest DER (EXI carries
// bytes with their length, whatever they are). Only a station's own limit
// below OCPP 2.1's can be exceeded: -20 certificates have at most 1,600
// bytes, and an answer's five certificates and the rest stay under 17,000
// characters.
func (in *Installer) fits20(v variant20, sessionID []byte, cps *CPS, mo *ca.Authority, pub crypto.PublicKey, subject policies.Subject, validity policies.Period, remaining, maxBase64 int) error {
	if maxBase64 <= 0 || maxBase64 >= LimitOCPP21 {
		return nil
	}
	leaf, err := in.Pool.CA.MaxDERFrom(mo, v.profile(policies.ISO20Contract), pub, subject, validity)
	if err != nil {
		return err
	}
	dh, field, sig := dhLenP521, fieldLenP521, sigLenP521
	if v.x448 != nil {
		dh, field, sig = dhLenX448, fieldLenX448, sigLenEd448
	}
	chain := append([][]byte{make([]byte, leaf)}, ChainDER(WithoutRoot(mo.Chain))...)
	sid := v.signedInstallationData(chain, make([]byte, dh), make([]byte, field))
	sigMethod, digestMethod := methods20(cps.Signer)
	signature := exi.New("Signature", signedInfo20(sigMethod, digestMethod, digestRef{sidID, make([]byte, digestLen20)}),
		exi.Binary("SignatureValue", make([]byte, sig)))
	out, err := exi.ISO20.Encode(installationRes20(sessionID, in.now().Unix(), signature, cps, sid, remaining))
	if err != nil {
		return fmt.Errorf("encode the answer's bound: %w", err)
	}
	if n := base64.StdEncoding.EncodedLen(len(out)); n > maxBase64 {
		return refuse(ResponseFailed, ReasonTooLarge, nil, "the response would be up to %d base64 characters, over the station's limit of %d", n, maxBase64)
	}
	return nil
}

// FailureAnswer20 is an unsigned ISO 15118-20 CertificateInstallationRes
// with code for the request (its SessionID, where it decodes): the schema
// requires the chains and SignedInstallationData, which carry
// placeholders (one zero byte, and zero bytes of the fixed lengths), as
// libcbv2g's Ongoing answer does.
func FailureAnswer20(exiRequest []byte, code string, now time.Time) ([]byte, error) {
	sessionID := make([]byte, 8)
	if msg, err := exi.ISO20.Decode(exiRequest); err == nil {
		if b, err := hex.DecodeString(msg.Child("Header").Child("SessionID").Val()); err == nil && len(b) == 8 {
			sessionID = b
		}
	}
	zero := []byte{0}
	return exi.ISO20.Encode(exi.New("CertificateInstallationRes",
		header20(sessionID, now.Unix(), nil),
		exi.Text("ResponseCode", code),
		exi.Text("EVSEProcessing", "Finished"),
		chain20("CPSCertificateChain", [][]byte{zero}, false),
		exi.New("SignedInstallationData",
			chain20("ContractCertificateChain", [][]byte{zero, zero}, true),
			exi.Text("ECDHCurve", CurveSECP521),
			exi.Binary("DHPublicKey", make([]byte, 133)),
			exi.Binary("SECP521_EncryptedPrivateKey", make([]byte, 94))).WithAttr("Id", "id-sid"),
		exi.Text("RemainingContractCertificateChains", "0")))
}
