package ocppsec

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pncpki/pncpki/internal/ed448x509"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ocsp"
)

// AuthorizeCertificateStatus values.
const (
	CertAccepted      = "Accepted"
	CertSignatureErr  = "SignatureError"
	CertExpired       = "CertificateExpired"
	CertRevoked       = "CertificateRevoked"
	CertNoCertificate = "NoCertificateAvailable"
	CertChainErr      = "CertChainError"
	CertCancelled     = "ContractCancelled"
)

// authorize checks a contract certificate chain (PEM, leaf first) or its
// hash data (use cases C07/C08 with ISO 15118 Plug and Charge): the chain
// against the MO and V2G roots, then each certificate below the root
// through OCSP. The verdict goes into certificateStatus; the idToken
// decision stays the CSMS's.
func (b *Bridge) authorize(ctx context.Context, d Dialect, emaid, certPEM string, hashes []OCSPRequestData) (*Result, error) {
	var status string
	switch {
	case certPEM != "":
		var leafCN string
		status, leafCN = b.checkContractChain(ctx, certPEM)
		if emaid == "" {
			emaid = leafCN
		}
	case len(hashes) > 0:
		status = b.checkHashes(ctx, hashes)
	}
	// A cancelled contract's certificates are revoked with it: its
	// verdict is ContractCancelled, which says why.
	if (status == CertAccepted || status == CertRevoked) && emaid != "" && b.Contracts != nil {
		cancelled, err := b.Contracts.Cancelled(ctx, emaid)
		if err != nil {
			b.log().Error("Authorize: contract status", "emaid", emaid, "err", err)
		} else if cancelled {
			status = CertCancelled
		}
	}
	res := &Result{CertificateStatus: status}
	idStatus := "Unknown" // no certificate data: nothing for pncpki to say
	if status == CertAccepted {
		idStatus = "Accepted"
	} else if status != "" {
		idStatus = "Invalid"
	}
	if d == Has2be {
		res.Response = &Has2beAuthorizeResponse{IDTokenInfo: Has2beIdTokenInfo{Status: idStatus}, CertificateStatus: has2beStatus(status)}
	} else {
		info, _ := json.Marshal(map[string]string{"status": idStatus})
		res.Response = &AuthorizeResponse{IDTokenInfo: info, CertificateStatus: status}
	}
	return res, nil
}

// has2beStatus maps a verdict to has.to.be's two values.
func has2beStatus(s string) string {
	if s == CertAccepted || s == "" {
		return CertAccepted
	}
	return CertRevoked
}

// checkContractChain returns the verdict on a contract chain and the
// leaf's CN (its EMAID).
func (b *Bridge) checkContractChain(ctx context.Context, certPEM string) (string, string) {
	chain, err := ParsePEMChain([]byte(certPEM))
	if err != nil {
		b.log().Info("Authorize: contract chain unreadable", "err", err)
		return CertChainErr, ""
	}
	cn := chain[0].Subject.CommonName
	return b.chainVerdict(ctx, chain), cn
}

func (b *Bridge) chainVerdict(ctx context.Context, chain []*x509.Certificate) string {
	// A certificate that names the next as issuer but whose signature does
	// not verify is a SignatureError, not a chain that fails to build.
	for i := 0; i+1 < len(chain); i++ {
		if bytes.Equal(chain[i].RawIssuer, chain[i+1].RawSubject) && ed448x509.CheckSignature(chain[i], chain[i+1]) != nil {
			return CertSignatureErr
		}
	}
	var path []*x509.Certificate
	var err error
	if ed448x509.SignedWithEd448(chain[0]) {
		// An ISO 15118-20 Ed448 contract: crypto/x509 cannot check it.
		a := b.TrustAnchors()
		path, err = ed448x509.Verify(chain[0], slices.Concat(a[UseMO], a[UseV2G]), chain[1:], b.now())
	} else {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		var verified [][]*x509.Certificate
		verified, err = chain[0].Verify(x509.VerifyOptions{
			Roots: b.contractRootPool(), Intermediates: inter, CurrentTime: b.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err == nil {
			path = verified[0]
		}
	}
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired && inv.Cert.NotAfter.Before(b.now()) {
			return CertExpired // not a certificate that is not valid yet
		}
		b.log().Info("Authorize: contract chain does not verify", "cn", chain[0].Subject.CommonName, "err", err)
		return CertChainErr
	}
	for i := 0; i+1 < len(path); i++ {
		r, err := b.OCSP.Check(ctx, path[i], path[i+1], "")
		if s := b.ocspVerdict(r, err, path[i].SerialNumber.Text(16)); s != CertAccepted {
			return s
		}
	}
	return CertAccepted
}

func (b *Bridge) checkHashes(ctx context.Context, hashes []OCSPRequestData) string {
	for _, o := range hashes {
		r, err := b.OCSP.CheckData(ctx, ocsp.RequestData{HashAlgorithm: o.HashAlgorithm, IssuerNameHash: o.IssuerNameHash,
			IssuerKeyHash: o.IssuerKeyHash, SerialNumber: o.SerialNumber, ResponderURL: o.ResponderURL})
		if s := b.ocspVerdict(r, err, o.SerialNumber); s != CertAccepted {
			return s
		}
	}
	return CertAccepted
}

// ocspVerdict turns one OCSP answer into a certificate status; failures
// follow Policy.AuthorizeFailOpen.
func (b *Bridge) ocspVerdict(r *ocsp.Result, err error, serial string) string {
	switch {
	case err != nil:
		b.log().Warn("Authorize: OCSP failed", "serial", serial, "fail_open", b.Policy.AuthorizeFailOpen, "err", err)
		if b.Policy.AuthorizeFailOpen {
			return CertAccepted
		}
		return CertChainErr
	case r.Status == xocsp.Revoked:
		return CertRevoked
	case r.Status == xocsp.Good:
		return CertAccepted
	}
	return CertChainErr // "unknown" to the responder: not a certificate of that CA
}

// chainStatus answers GetCertificateChainStatus (OCPP 2.1) through OCSP;
// a status that cannot be learned is Failed.
func (b *Bridge) chainStatus(ctx context.Context, r *GetCertificateChainStatusRequest) (*Result, error) {
	resp := &GetCertificateChainStatusResponse{}
	for _, q := range r.CertificateStatusRequests {
		h := q.CertificateHashData
		url := ""
		if q.Source == "OCSP" {
			url = q.URLs[0]
		}
		st := CertificateStatus{CertificateHashData: h, Source: q.Source, Status: "Failed", NextUpdate: b.now().UTC().Format(time.RFC3339)}
		res, err := b.OCSP.CheckData(ctx, ocsp.RequestData{HashAlgorithm: h.HashAlgorithm, IssuerNameHash: h.IssuerNameHash,
			IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber, ResponderURL: url})
		if err == nil {
			st.Status = map[int]string{xocsp.Good: "Good", xocsp.Revoked: "Revoked"}[res.Status]
			if st.Status == "" {
				st.Status = "Unknown"
			}
			if !res.NextUpdate.IsZero() {
				st.NextUpdate = res.NextUpdate.UTC().Format(time.RFC3339)
			}
		} else {
			b.log().Warn("GetCertificateChainStatus: OCSP failed", "serial", h.SerialNumber, "err", err)
		}
		resp.CertificateStatus = append(resp.CertificateStatus, st)
	}
	return &Result{Response: resp}, nil
}

// MergeAuthorize puts the certificate verdict into a CSMS's
// AuthorizeResponse payload, leaving everything else as the CSMS sent it;
// with invalidate, a verdict other than Accepted also sets
// idTokenInfo.status to Invalid.
func MergeAuthorize(d Dialect, csms []byte, certStatus string, invalidate bool) ([]byte, error) {
	if certStatus == "" {
		return csms, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(csms, &m); err != nil {
		return nil, fmt.Errorf("CSMS AuthorizeResponse: %w", err)
	}
	if d == Has2be {
		certStatus = has2beStatus(certStatus)
	}
	m["certificateStatus"], _ = json.Marshal(certStatus)
	if invalidate && certStatus != CertAccepted {
		var info map[string]json.RawMessage
		if err := json.Unmarshal(m["idTokenInfo"], &info); err != nil {
			return nil, fmt.Errorf("CSMS AuthorizeResponse idTokenInfo: %w", err)
		}
		info["status"] = json.RawMessage(`"Invalid"`)
		m["idTokenInfo"], _ = json.Marshal(info)
	}
	return json.Marshal(m)
}
