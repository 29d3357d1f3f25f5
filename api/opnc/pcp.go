package opnc

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
)

// The provisioning certificate pool (PCP) in OPNC's shape, over the
// contract pool's provisioning certificates: OEMs upload and remove their
// vehicles' provisioning certificates by PCID.

// mountPCP adds the PCP routes under prefix/pcp.
func (s *Server) mountPCP(r chi.Router, prefix string) {
	r.Put(prefix+"/pcp/provisioningcertificates", s.authed(s.putProvisioning))
	r.Get(prefix+"/pcp/provisioningcertificates/{pcid}", s.authed(s.getProvisioning))
	r.Delete(prefix+"/pcp/provisioningcertificates/{pcid}", s.authed(s.deleteProvisioning))
	r.Get(prefix+"/pcp/lookupvehicle/{pcid}", s.authed(s.lookupVehicle))
}

// actingTenant is the tenant a request acts for ("" for an administrator).
func actingTenant(r *http.Request) string {
	c := r.Context().Value(claimsKey{}).(*auth.Claims)
	if c.Role == auth.RoleAdmin {
		return ""
	}
	return c.Tenant
}

// poolError answers a refusal of the contract pool with the status OPNC
// gives it.
func (s *Server) poolError(w http.ResponseWriter, err error) {
	var pe *contract.Error
	if !errors.As(err, &pe) {
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	status := http.StatusBadRequest
	switch pe.Code {
	case contract.CodeForbidden:
		status = http.StatusForbidden
	case contract.CodeNotFound:
		status = http.StatusNotFound
	}
	s.writeError(w, status, "%v", err)
}

type certificateChain struct {
	Certificate       string `json:"certificate"`
	SubCA1Certificate string `json:"subCa1Certificate,omitempty"`
	SubCA2Certificate string `json:"subCa2Certificate,omitempty"`
}

// putProvisioning answers addProvisioningCertificateV1.
func (s *Server) putProvisioning(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(w, r, s) {
		return
	}
	var req struct {
		Chain                          certificateChain `json:"provisioningCertificateChain"`
		XSDMsgDefNamespace             string           `json:"xsdMsgDefNamespace"`
		RootIssuerSerialNumber         string           `json:"rootIssuerSerialNumber"`
		V2GRootAuthorityKeyIdentifiers []string         `json:"v2gRootAuthorityKeyIdentifiers"`
		RootAuthorityKeyIdentifier     string           `json:"rootAuthorityKeyIdentifier"`
		Fingerprint                    string           `json:"fingerprint"`
		PreviousPCID                   string           `json:"previousPcid"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if s.storeProvisioning(w, r, req.XSDMsgDefNamespace, req.Chain.Certificate, req.Chain.SubCA2Certificate, req.Chain.SubCA1Certificate) {
		w.WriteHeader(http.StatusOK)
	}
}

// storeProvisioning checks and stores a provisioning certificate chain
// given as base64 DER, leaf first, then Sub-CA 2 (its issuer) and Sub-CA 1
// (both optional); it answers refusals itself.
func (s *Server) storeProvisioning(w http.ResponseWriter, r *http.Request, namespace string, b64 ...string) bool {
	if namespace != ocppsec.ISO15118v2Schema {
		s.writeError(w, http.StatusBadRequest, "xsdMsgDefNamespace %q is not supported; pncpki speaks %s", namespace, ocppsec.ISO15118v2Schema)
		return false
	}
	var certs []*x509.Certificate
	for i, v := range b64 {
		if v == "" {
			if i == 0 {
				s.writeError(w, http.StatusBadRequest, "the provisioning certificate is required")
				return false
			}
			continue
		}
		der, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, "certificate %d is not base64", i)
			return false
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, "certificate %d: %v", i, err)
			return false
		}
		certs = append(certs, c)
	}
	if _, err := s.Pool.PutProvisioning(r.Context(), actingTenant(r), "", certs, s.Anchors()[ocppsec.UseOEM]); err != nil {
		s.poolError(w, err)
		return false
	}
	return true
}

// getProvisioning answers getProvisioningCertificateV1.
func (s *Server) getProvisioning(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Pool.ReadProvisioning(r.Context(), actingTenant(r), chi.URLParam(r, "pcid"))
	if err != nil {
		s.poolError(w, err)
		return
	}
	chain := certificateChain{Certificate: base64.StdEncoding.EncodeToString(rec.DER)}
	if subs, err := x509.ParseCertificates(rec.Chain); err == nil {
		if len(subs) > 0 {
			chain.SubCA2Certificate = base64.StdEncoding.EncodeToString(subs[0].Raw)
		}
		if len(subs) > 1 {
			chain.SubCA1Certificate = base64.StdEncoding.EncodeToString(subs[1].Raw)
		}
	}
	fp := sha256.Sum256(rec.DER)
	writeJSON(w, http.StatusOK, map[string]any{"provisioningCertificate": map[string]any{
		"provisioningCertificateChain": chain,
		"xsdMsgDefNamespace":           ocppsec.ISO15118v2Schema,
		"fingerprint":                  hex.EncodeToString(fp[:]),
	}})
}

// deleteProvisioning answers deleteProvisioningCertificateV1.
func (s *Server) deleteProvisioning(w http.ResponseWriter, r *http.Request) {
	if err := s.Pool.DeleteProvisioning(r.Context(), actingTenant(r), chi.URLParam(r, "pcid")); err != nil {
		s.poolError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// lookupVehicle answers lookupVehicleV1: whether pncpki knows a PCID (a
// provisioning certificate or a contract), without saying whose.
func (s *Server) lookupVehicle(w http.ResponseWriter, r *http.Request) {
	pcid := chi.URLParam(r, "pcid")
	if _, err := s.Pool.GetProvisioning(r.Context(), "", pcid); err == nil {
		w.WriteHeader(http.StatusOK)
		return
	} else if pe := (*contract.Error)(nil); errors.As(err, &pe) && pe.Code == contract.CodeInvalid {
		s.poolError(w, err)
		return
	}
	if cs, err := s.Pool.Store.ListContracts(r.Context(), "", pcid); err == nil && len(cs) > 0 {
		w.WriteHeader(http.StatusOK)
		return
	}
	s.writeError(w, http.StatusNotFound, "no vehicle %s", pcid)
}

// jsonBody checks the content type of a JSON request.
func jsonBody(w http.ResponseWriter, r *http.Request, s *Server) bool {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		s.writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	return true
}

// decode reads a bounded JSON body, refusing unknown fields.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", MaxBody)
			return false
		}
		s.writeError(w, http.StatusBadRequest, "malformed body: %v", err)
		return false
	}
	return true
}
