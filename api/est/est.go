// Package est serves certificate enrollment over EST (RFC 7030) the way the
// Open Plug&Charge protocols use it: per CA label (cpo, mo, oem, cps) and
// ISO 15118 version, PKCS#10 in as base64 DER, certs-only PKCS#7 out as
// base64 DER. Existing CSMS clients find pncpki at the paths they already
// call, under configurable prefixes.
package est

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// DefaultPrefix is RFC 7030's.
const DefaultPrefix = "/.well-known/est"

// Labels maps the CA labels of the EST paths to the profile enrolled there.
var Labels = map[string]string{
	"cpo": policies.ISO2SECC,
	"mo":  policies.ISO2Contract,
	"oem": policies.ISO2OEMProv,
	"cps": policies.ISO2CPSLeaf,
}

// Labels20 are the profiles of the CA labels for ISO15118-20 with
// secp521r1 (OPNC and OPCP's iso15118Version and algorithm), and
// Labels20Ed448 those with ed448.
var (
	Labels20 = map[string]string{
		"cpo": policies.ISO20SECC,
		"mo":  policies.ISO20Contract,
		"oem": policies.ISO20OEMProv,
		"cps": policies.ISO20CPSLeaf,
	}
	Labels20Ed448 = func() map[string]string {
		m := map[string]string{}
		for label, p := range Labels20 {
			m[label] = policies.Ed448Variant(p)
		}
		return m
	}()
)

// MaxBody bounds a request: a base64 CSR of at most ca.MaxCSRSize.
const MaxBody = ca.MaxCSRSize*4/3 + 1024

// Server serves EST for the CA service.
type Server struct {
	CA    *ca.Service
	Store store.Store
	// Verify checks a bearer token (the API's token verification).
	Verify func(token string) (*auth.Claims, error)
	// Revoked, when set, hears about revocations made here (to tell the
	// OCSP responders at once).
	Revoked func(ctx context.Context, rec *store.Certificate)
	Log     *slog.Logger
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Mount adds the EST routes under prefix to r: {prefix}/{ca}/cacerts,
// .../simpleenroll and .../simplereenroll, each also with the ISO 15118
// version segment (and, for cacerts, the algorithm segment) that OPCP and
// OPNC clients send.
func (s *Server) Mount(r chi.Router, prefix string) {
	prefix = "/" + strings.Trim(prefix, "/")
	for _, p := range []string{"/{ca}/cacerts", "/{ca}/cacerts/{iso}", "/{ca}/cacerts/{iso}/{alg}", "/{ca}/cacerts/{iso}/{alg}/"} {
		r.Get(prefix+p, s.cacerts)
	}
	for _, p := range []string{"/{ca}/simpleenroll", "/{ca}/simpleenroll/{iso}"} {
		r.Post(prefix+p, s.enroll(false))
	}
	for _, p := range []string{"/{ca}/simplereenroll", "/{ca}/simplereenroll/{iso}"} {
		r.Post(prefix+p, s.enroll(true))
	}
}

// opncError answers an OPNC PKI call (revokeCertificate) in OPNC's error
// shape, {errorMessages, traceId}, as the rest of OPNC answers; the message
// starts with pncpki's stable code.
func opncError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set(ErrorHeader, code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{code + ": " + msg}, "traceId": uuid.NewString()})
}

// Stable codes of EST's own refusals.
const (
	CodeBase64       = "est.base64"       // the body is neither base64 DER nor PEM
	CodeNoCA         = "est.no_ca"        // no CA issues this label's profile here
	CodeNotFound     = "est.not_found"    // no such CA label or ISO 15118 version
	CodeTooLarge     = "est.too_large"    // the body is over the limit
	CodeUnauthorized = "est.unauthorized" // no credentials, or not the ones this operation needs
	CodeForbidden    = "auth.forbidden"   // the caller may not do this (as the API's api.CodeAuthForbidden)
)

// ErrorHeader carries pncpki's stable code of an EST refusal, whose body
// is text as RFC 7030 has it ("code: message").
const ErrorHeader = "X-Pncpki-Error"

// httpError answers an EST refusal: text, and the code in ErrorHeader.
func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set(ErrorHeader, code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s: %s\n", code, msg)
}

// profile reads the CA label and the ISO 15118 version of a request: from
// the path (RFC 7030, OPCP) or, in the OPNC form, from the caDomain,
// iso15118Version and algorithm query parameters.
func profile(r *http.Request) (*policies.Profile, int, string) {
	label, iso, alg := chi.URLParam(r, "ca"), chi.URLParam(r, "iso"), chi.URLParam(r, "alg")
	if label == "" {
		q := r.URL.Query()
		label, iso, alg = q.Get("caDomain"), q.Get("iso15118Version"), q.Get("algorithm")
		if label == "emsp" {
			label = "mo"
		}
	}
	labels, curve := Labels, "secp256r1"
	switch {
	case iso == "" || strings.EqualFold(iso, "ISO15118-2"):
	case strings.EqualFold(iso, "ISO15118-20") && strings.EqualFold(alg, "ed448"):
		labels, curve = Labels20Ed448, "ed448"
	case strings.EqualFold(iso, "ISO15118-20"):
		labels, curve = Labels20, "secp521r1"
	default:
		return nil, http.StatusNotFound, "ISO 15118 version " + iso + " is not supported (ISO15118-2 or ISO15118-20)"
	}
	name, ok := labels[strings.ToLower(label)]
	if !ok {
		return nil, http.StatusNotFound, "unknown CA label " + label + " (cpo, mo/emsp, oem or cps)"
	}
	if alg != "" && !strings.EqualFold(alg, curve) {
		return nil, http.StatusNotFound, "algorithm " + alg + " is not supported for " + cmp.Or(iso, "ISO15118-2") + " (" + curve + ")"
	}
	p, _ := policies.Lookup(name)
	return p, 0, ""
}

// MountOPNC adds the OPNC PKI API under prefix (e.g. /opnc/v1/pki):
// GET /est/cacerts and POST /est/simpleenroll with the CA domain in the
// query, and POST /pki/revokeCertificate.
func (s *Server) MountOPNC(r chi.Router, prefix string) {
	prefix = "/" + strings.Trim(prefix, "/")
	r.Get(prefix+"/est/cacerts", s.cacerts)
	r.Post(prefix+"/est/simpleenroll", s.enroll(false))
	r.Post(prefix+"/pki/revokeCertificate", s.revoke)
}

// opncReasons are the revocation reasons of OPNC's revokeCertificate.
var opncReasons = map[string]bool{"privilegeWithdrawn": true, "affiliationChanged": true, "superseded": true,
	"unspecified": true, "keyCompromise": true, "aACompromise": true, "cessationOfOperation": true}

// revoke serves OPNC's revokeCertificate: a subscriber revokes only its
// own certificates (administrators any), named by the certificate itself
// (base64 of its PEM).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	tenant, _, status, err := s.authenticate(r)
	if err != nil {
		opncError(w, status, CodeUnauthorized, err.Error())
		return
	}
	var req struct {
		Certificate      string `json:"certificate"`
		RevocationReason string `json:"revocationReason"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		opncError(w, http.StatusBadRequest, "request.invalid", "want {certificate, revocationReason}: "+err.Error())
		return
	}
	if !opncReasons[req.RevocationReason] {
		opncError(w, http.StatusBadRequest, ca.CodeBadReason, "revocationReason "+req.RevocationReason+" is not an OPNC reason")
		return
	}
	pemText, err := base64.StdEncoding.DecodeString(req.Certificate)
	if err != nil {
		opncError(w, http.StatusBadRequest, "request.invalid", "certificate is not base64")
		return
	}
	block, _ := pem.Decode(pemText)
	if block == nil || block.Type != "CERTIFICATE" {
		opncError(w, http.StatusBadRequest, "request.invalid", "certificate is not a base64 PEM certificate")
		return
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		opncError(w, http.StatusBadRequest, "request.invalid", "certificate: "+err.Error())
		return
	}
	rec, err := s.issued(r.Context(), cert)
	if err != nil || tenant != "" && rec.Tenant != tenant {
		// Another subscriber's certificate is as good as unknown.
		opncError(w, http.StatusForbidden, CodeForbidden, "not a certificate of yours")
		return
	}
	reason, _ := ca.ParseReason(req.RevocationReason)
	revoked, err := s.CA.Revoke(store.WithActor(r.Context(), "opnc:"+tenant), rec.Issuer, rec.Serial, reason)
	if err != nil {
		opncError(w, http.StatusBadRequest, ca.CodeOf(err), err.Error())
		return
	}
	if s.Revoked != nil {
		s.Revoked(r.Context(), revoked)
	}
	w.WriteHeader(http.StatusOK)
}

// issuerChain is the chain of the CA issuing p, root last.
func (s *Server) issuerChain(ctx context.Context, p *policies.Profile) ([]*x509.Certificate, error) {
	// Certificates an upstream ecosystem signs come with its chain.
	if chain, ok, err := s.CA.ExternalCACerts(ctx, p.Name); ok {
		return chain, err
	}
	var found []*ca.Authority
	for _, a := range s.CA.Authorities() {
		for _, ip := range p.Issuers {
			if a.Profile.Name == ip {
				found = append(found, a)
			}
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d CAs issue %s", len(found), p.Name)
	}
	return found[0].Chain, nil
}

func (s *Server) cacerts(w http.ResponseWriter, r *http.Request) {
	p, status, msg := profile(r)
	if p == nil {
		httpError(w, status, CodeNotFound, msg)
		return
	}
	chain, err := s.issuerChain(r.Context(), p)
	if err != nil {
		httpError(w, http.StatusNotFound, CodeNoCA, err.Error())
		return
	}
	writePKCS7(w, http.StatusOK, chain)
}

// enroll serves simpleenroll and, with reenroll, simplereenroll (the
// client authenticates with its current certificate or a token; the new
// certificate keeps the current one's subject).
func (s *Server) enroll(reenroll bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, status, msg := profile(r)
		if p == nil {
			httpError(w, status, CodeNotFound, msg)
			return
		}
		tenant, current, status, err := s.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pncpki"`)
			httpError(w, status, CodeUnauthorized, err.Error())
			return
		}
		if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/pkcs10") {
			httpError(w, http.StatusUnsupportedMediaType, "est.content_type", "want Content-Type application/pkcs10")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			httpError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, err.Error())
			return
		}
		der, err := csrBody(body)
		if err != nil {
			httpError(w, http.StatusBadRequest, CodeBase64, err.Error())
			return
		}
		if reenroll {
			if current == nil {
				httpError(w, http.StatusUnauthorized, CodeUnauthorized, "simplereenroll needs the current certificate as TLS client certificate")
				return
			}
			// The subject pncpki issues adds to the CSR's (the profile's
			// DC, the tenant's O), so the identity compared is the CN.
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil || csr.Subject.CommonName != current.Subject.CommonName {
				httpError(w, http.StatusBadRequest, "est.reenroll_subject", "a re-enrollment CSR carries the current certificate's CN")
				return
			}
		}
		iss, err := s.CA.Issue(store.WithActor(r.Context(), "est:"+tenant), ca.Request{Profile: p.Name, CSR: der, Tenant: tenant})
		if err != nil {
			status := http.StatusBadRequest
			switch code := ca.CodeOf(err); {
			case code == ca.CodePolicyDenied:
				status = http.StatusForbidden
			case code == "":
				s.log().Error("EST enrollment", "err", err)
				httpError(w, http.StatusInternalServerError, "internal", "the certificate could not be issued")
				return
			}
			httpError(w, status, ca.CodeOf(err), err.Error())
			return
		}
		writePKCS7(w, http.StatusOK, []*x509.Certificate{iss.Cert()})
	}
}

// authenticate accepts a bearer token, or a TLS client certificate that
// pncpki issued and has not revoked (it acts for its tenant). The
// certificate is returned for simplereenroll.
func (s *Server) authenticate(r *http.Request) (tenant string, current *x509.Certificate, status int, err error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		c, err := s.Verify(tok)
		if err != nil {
			return "", nil, http.StatusUnauthorized, err
		}
		if c.Role == auth.RoleAdmin {
			return "", nil, 0, nil
		}
		return c.Tenant, nil, 0, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cert := r.TLS.PeerCertificates[0]
		rec, err := s.record(r.Context(), cert)
		if err != nil {
			return "", nil, http.StatusUnauthorized, err
		}
		return rec.Tenant, cert, 0, nil
	}
	return "", nil, http.StatusUnauthorized, errors.New("a bearer token or a client certificate is required")
}

// record finds a client certificate among pncpki's own and unrevoked.
func (s *Server) record(ctx context.Context, cert *x509.Certificate) (*store.Certificate, error) {
	rec, err := s.issued(ctx, cert)
	if err == nil && rec.Revoked() {
		return nil, errors.New("the client certificate is revoked")
	}
	return rec, err
}

// issued finds a certificate among pncpki's own.
func (s *Server) issued(ctx context.Context, cert *x509.Certificate) (*store.Certificate, error) {
	recs, err := s.Store.Certificates(ctx, store.Filter{Serial: ca.SerialHex(cert.SerialNumber)})
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if bytes.Equal(rec.DER, cert.Raw) {
			return rec, nil
		}
	}
	return nil, errors.New("the certificate was not issued here")
}

// PKCS7 encodes certificates as a degenerate, certs-only CMS SignedData
// (RFC 5652 section 5, no signers), as EST returns them.
func PKCS7(certs []*x509.Certificate) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier([]int{1, 2, 840, 113549, 1, 7, 2}) // signedData
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(*cryptobyte.Builder) {}) // digestAlgorithms
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier([]int{1, 2, 840, 113549, 1, 7, 1}) // data
				})
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					for _, c := range certs {
						b.AddBytes(c.Raw)
					}
				})
				b.AddASN1(cbasn1.SET, func(*cryptobyte.Builder) {}) // signerInfos
			})
		})
	})
	return b.Bytes()
}

func writePKCS7(w http.ResponseWriter, status int, certs []*x509.Certificate) {
	der, err := PKCS7(certs)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime; smime-type=certs-only")
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.WriteHeader(status)
	enc := base64.StdEncoding.EncodeToString(der)
	for len(enc) > 64 { // RFC 7030 clients accept folded base64
		io.WriteString(w, enc[:64]+"\n")
		enc = enc[64:]
	}
	io.WriteString(w, enc+"\n")
}

// csrBody reads the CSR of an enrollment: base64 DER as RFC 7030 sends it,
// or the PEM text itself, as CSMSs that pass on the station's
// SignCertificateRequest CSR do (CitrineOS).
func csrBody(body []byte) ([]byte, error) {
	if t := bytes.TrimSpace(body); bytes.HasPrefix(t, []byte("-----BEGIN")) {
		b, rest := pem.Decode(t)
		if b == nil || (b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST") || len(bytes.TrimSpace(rest)) > 0 {
			return nil, errors.New("the body is not one PEM certificate request")
		}
		return b.Bytes, nil
	}
	der, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(body), nil)))
	if err != nil {
		return nil, fmt.Errorf("the body is not base64 DER: %w", err)
	}
	return der, nil
}

// MaxPKCS7Certs bounds the certificates read from one PKCS#7.
const MaxPKCS7Certs = 16

// ParsePKCS7 reads the certificates of a certs-only CMS SignedData (DER),
// as an EST server returns them; their order is the sender's.
func ParsePKCS7(der []byte) ([]*x509.Certificate, error) {
	in := cryptobyte.String(der)
	var ci, content, sd, certs cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() ||
		!ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}) ||
		!ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!content.ReadASN1(&sd, cbasn1.SEQUENCE) {
		return nil, errors.New("not a CMS SignedData")
	}
	var version int64
	if !sd.ReadASN1Integer(&version) || !sd.SkipASN1(cbasn1.SET) || !sd.SkipASN1(cbasn1.SEQUENCE) {
		return nil, errors.New("malformed SignedData")
	}
	if !sd.ReadASN1(&certs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errors.New("the SignedData carries no certificates")
	}
	var out []*x509.Certificate
	for !certs.Empty() {
		var raw cryptobyte.String
		if !certs.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
			return nil, errors.New("malformed certificate set")
		}
		if len(out) == MaxPKCS7Certs {
			return nil, fmt.Errorf("more than %d certificates", MaxPKCS7Certs)
		}
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	return out, nil
}
