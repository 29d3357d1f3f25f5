package contract

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// sessionIDPattern is an ISO 15118-2 SessionID: at most 8 bytes, hex.
var sessionIDPattern = regexp.MustCompile(`^(?:[0-9A-Fa-f]{2}){1,8}$`)

// Prepare makes signed contract data for a vehicle without its request, as
// OPNC's getSignedContractDataByEmaidAndPcid gives it to OEM back ends that
// install contracts over the air: the contract of emaid, which must be
// bound to pcid and live; a new contract certificate; its key encrypted
// for the provisioning certificate registered for pcid; the response
// signed by the CPS under the V2G root whose SHA-256 fingerprint (hex) is
// cpsRoot ("" the first CPS), with sessionID (hex, default "00") in the
// header. actingTenant ("" an administrator) must be the OEM that
// registered the vehicle or the contract's eMSP. Every call issues a new
// contract certificate. A vehicle registered with an ISO 15118-20
// provisioning certificate gets a -20 CertificateInstallationRes of its
// variant (prepare20).
func (in *Installer) Prepare(ctx context.Context, actingTenant, emaid, pcid, sessionID, cpsRoot string, maxBase64 int) (*Response, error) {
	if sessionID != "" && !sessionIDPattern.MatchString(sessionID) {
		return nil, &Error{Code: CodeInvalid, Message: "Invalid SessionID format, make sure the length is maximum 8 bytes and it is represented in HEX binary"}
	}
	e, err := policies.ParseEMAID(emaid)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "EMAID", Err: err}
	}
	if pcid, err = policies.NormalizePCID(pcid); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: "PCID", Err: err}
	}
	c, err := in.Pool.Store.Contract(ctx, e.String())
	prov, perr := in.Pool.Store.ProvisioningCertificate(ctx, pcid)
	allowed := actingTenant == "" || err == nil && c.Tenant == actingTenant || perr == nil && prov.Tenant == actingTenant
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && c.PCID != pcid || !allowed:
		return nil, &Error{Code: CodeNotFound, Message: fmt.Sprintf("no contract %s for PCID %s", e, pcid)}
	case err != nil:
		return nil, err
	}
	if errors.Is(perr, store.ErrNotFound) {
		return nil, &Error{Code: CodeNotFound, Message: "no provisioning certificate is registered for PCID " + pcid + ": the key cannot be encrypted for the vehicle"}
	} else if perr != nil {
		return nil, perr
	}
	leaf, err := x509.ParseCertificate(prov.DER)
	if err != nil {
		return nil, fmt.Errorf("provisioning certificate of %s: %w", pcid, err)
	}
	return in.PrepareFor(ctx, c, leaf, sessionID, cpsRoot, maxBase64)
}

// PrepareFor is Prepare for a contract the caller found and the vehicle's
// provisioning certificate it holds (e.g. from an ecosystem's pool).
func (in *Installer) PrepareFor(ctx context.Context, c *store.Contract, provisioning *x509.Certificate, sessionID, cpsRoot string, maxBase64 int) (*Response, error) {
	if c.Cancelled() || !c.ValidUntil.IsZero() && !in.now().Before(c.ValidUntil) {
		return nil, &Error{Code: CodeInvalid, Message: "contract " + c.EMAID + " is cancelled or has ended"}
	}
	if sessionID == "" {
		sessionID = "00"
	}
	if !sessionIDPattern.MatchString(sessionID) {
		return nil, &Error{Code: CodeInvalid, Message: "Invalid SessionID format, make sure the length is maximum 8 bytes and it is represented in HEX binary"}
	}
	if pcid, err := policies.NormalizePCID(provisioning.Subject.CommonName); err != nil || pcid != c.PCID {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("the provisioning certificate is not PCID %s's", c.PCID)}
	}
	if v, err := vehicleVariant(provisioning); err == nil {
		return in.prepare20(ctx, c, v, sessionID, cpsRoot, maxBase64)
	}
	if len(in.CPS) == 0 {
		return nil, refuse(ResponseFailed, ReasonNotConfigured, nil, "this pncpki has no CPS key to sign installation responses")
	}
	pub, ok := provisioning.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, &Error{Code: CodeInvalid, Message: "the provisioning certificate of " + c.PCID + " has no P-256 key (ISO 15118-2), P-521 or Ed448 key (ISO 15118-20)"}
	}
	req := &request{sessionID: strings.ToUpper(sessionID), pcid: c.PCID, recipient: pub, contract: c, anyRoot: true}
	if cpsRoot != "" {
		found := false
		for _, cps := range in.CPS {
			root := cps.Chain[len(cps.Chain)-1]
			if strings.EqualFold(ca.Fingerprint(root), strings.ReplaceAll(cpsRoot, ":", "")) {
				req.roots, req.anyRoot, found = []rootID{{issuer: root.Issuer.String(), serial: root.SerialNumber}}, false, true
			}
		}
		if !found {
			return nil, &Error{Code: CodeNotFound, Message: "no CPS of this pncpki signs under the V2G root " + cpsRoot}
		}
	}
	var tm Timings
	res, err := in.respond(ctx, ActionInstall, req, &tm, maxBase64)
	if err != nil {
		return nil, err
	}
	res.Timings = tm
	return res, nil
}

// prepare20 is PrepareFor for a vehicle of ISO 15118-20 (its registered
// provisioning certificate's key P-521 or Ed448): the answer to a
// CertificateInstallationReq of V2G session sessionID (8 bytes, zeros
// when empty) carrying contract c, signed by a -20 CPS of the vehicle's
// variant (under the V2G root cpsRoot names, when it names one), with no
// other contract to come.
func (in *Installer) prepare20(ctx context.Context, c *store.Contract, v variant20, sessionID, cpsRoot string, maxBase64 int) (*Response, error) {
	sid, err := hex.DecodeString(sessionID)
	if err != nil || len(sid) > 8 {
		return nil, &Error{Code: CodeInvalid, Message: "Invalid SessionID format, make sure the length is maximum 8 bytes and it is represented in HEX binary"}
	}
	sid = append(make([]byte, 8-len(sid)), sid...) // -20 SessionIDs are 8 bytes
	cps := in.cps20(v, func(root *x509.Certificate) bool {
		return cpsRoot == "" || strings.EqualFold(ca.Fingerprint(root), strings.ReplaceAll(cpsRoot, ":", ""))
	})
	if cps == nil {
		return nil, &Error{Code: CodeNotFound, Message: "no ISO 15118-20 CPS of the vehicle's variant signs here (under the V2G root " + cmp.Or(cpsRoot, "any") + ")"}
	}
	var tm Timings
	out, record, chain, err := in.answer20(ctx, sid, &offer20{emaid: c.EMAID, contract: c}, c.PCID, v, cps, nil, 0, maxBase64, &tm)
	if err != nil {
		return nil, err
	}
	return &Response{EXI: out, EMAID: c.EMAID, PCID: c.PCID, Contract: record, ContractChain: chain,
		CPSChain: WithoutRoot(cps.Chain), CPSRoot: cps.Chain[len(cps.Chain)-1], ISO20: true, Timings: tm}, nil
}
