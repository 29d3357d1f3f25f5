package opnc

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/ocppsec"
)

// RootPool changes the trust anchors at run time (ocppsec.Bridge).
type RootPool interface {
	AddTrustAnchor(ctx context.Context, u ocppsec.Use, c *x509.Certificate, source string) error
	RemoveTrustAnchor(ctx context.Context, u ocppsec.Use, fingerprint string) error
}

// rootTypes maps the root types of OPNC (eMSP) and OPCP (MO) to the trust
// anchor use. OPNC's PE (private environment) has no use in pncpki.
var rootTypes = map[string]ocppsec.Use{"V2G": ocppsec.UseV2G, "eMSP": ocppsec.UseMO, "MO": ocppsec.UseMO, "OEM": ocppsec.UseOEM}

// putRootReq is the body of putRootCertificateV1 (OPNC's rootCertificate,
// whose informative fields are ignored) and of OPCP's saveRootCa.
type putRootReq struct {
	CACertificate string          `json:"caCertificate"`
	RootType      string          `json:"rootType"`     // OPCP, and required by OPNC's schema
	RootTypeList  []string        `json:"rootTypeList"` // OPNC's property
	ID            json.RawMessage `json:"rootCertificateId"`
	DN            json.RawMessage `json:"distinguishedName"`
	CTL           json.RawMessage `json:"rootCtlList"`
	CN            json.RawMessage `json:"commonName"`
	AKI           json.RawMessage `json:"rootAuthorityKeyIdentifier"`
	Serial        json.RawMessage `json:"rootIssuerSerialNumber"`
	From          json.RawMessage `json:"validFrom"`
	To            json.RawMessage `json:"validTo"`
	Org           json.RawMessage `json:"organizationName"`
	CRL           json.RawMessage `json:"certificateRevocationList"`
	Cross         json.RawMessage `json:"crossCertificatePair"`
	URI           json.RawMessage `json:"labeledUri"`
	Fingerprint   json.RawMessage `json:"fingerprint"`
}

// admin refuses callers that are not administrators: only the root pool's
// operator changes the pool.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	if r.Context().Value(claimsKey{}).(*auth.Claims).Role != auth.RoleAdmin {
		s.writeError(w, http.StatusForbidden, "only the root pool's operator (an administrator) changes the root pool")
		return false
	}
	if s.Roots == nil {
		s.writeError(w, http.StatusServiceUnavailable, "this pncpki does not change its root pool at run time")
		return false
	}
	return true
}

// putRoot answers putRootCertificateV1 and OPCP's saveRootCa: the root
// becomes a trust anchor for each of its types.
func (s *Server) putRoot(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(w, r, s) || !s.admin(w, r) {
		return
	}
	var req putRootReq
	if !s.decode(w, r, &req) {
		return
	}
	types := req.RootTypeList
	if req.RootType != "" {
		types = append(types, req.RootType)
	}
	if len(types) == 0 {
		s.writeError(w, http.StatusBadRequest, "rootType is required")
		return
	}
	var uses []ocppsec.Use
	for _, t := range types {
		u, ok := rootTypes[t]
		if !ok {
			s.writeError(w, http.StatusBadRequest, "rootType %q: want V2G, eMSP (or MO) or OEM", t)
			return
		}
		uses = append(uses, u)
	}
	der, err := base64.StdEncoding.DecodeString(req.CACertificate)
	if err != nil || len(der) == 0 {
		s.writeError(w, http.StatusBadRequest, "caCertificate is not base64 DER")
		return
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, "caCertificate: %v", err)
		return
	}
	if err := ocppsec.IsRoot(c); err != nil {
		s.writeError(w, http.StatusBadRequest, "caCertificate: %v", err)
		return
	}
	added := 0
	for _, u := range uses {
		switch err := s.Roots.AddTrustAnchor(r.Context(), u, c, "admin"); {
		case errors.Is(err, ocppsec.ErrAnchorExists):
		case err != nil:
			s.writeError(w, http.StatusInternalServerError, "%v", err)
			return
		default:
			added++
			s.log().Info("root added to the pool", "use", u, "subject", c.Subject.String(), "sha256", ca.Fingerprint(c))
		}
	}
	writeJSON(w, http.StatusOK, rootJSON(c, uses[0]))
}

// deleteRoot answers deleteRootCertificateV1 and OPCP's deleteRootCa for
// roots added at run time; configured roots stay.
func (s *Server) deleteRoot(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	id := chi.URLParam(r, "id")
	anchors := s.Anchors()
	for _, u := range ocppsec.RootUses {
		for _, c := range anchors[u] {
			if rootID(c) != id {
				continue
			}
			switch err := s.Roots.RemoveTrustAnchor(r.Context(), u, ca.Fingerprint(c)); {
			case errors.Is(err, ocppsec.ErrAnchorConfigured):
				s.writeError(w, http.StatusBadRequest, "%v", err)
				return
			case err != nil:
				s.writeError(w, http.StatusInternalServerError, "%v", err)
				return
			}
			s.log().Info("root removed from the pool", "use", u, "subject", c.Subject.String(), "sha256", ca.Fingerprint(c))
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	s.writeError(w, http.StatusNotFound, "no root certificate %s", id)
}
