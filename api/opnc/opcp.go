package opnc

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/pncpki/pncpki/internal/ed448x509"

	"github.com/pncpki/pncpki/ocppsec"
)

// OPCP 1.0's shapes of the contract and provisioning certificate pools and
// of the webhook endpoints, over the same pools as OPNC's.

// mountOPCPPools adds OPCP's pool routes besides signedContractData and
// the root pool.
func (s *Server) mountOPCPPools(r chi.Router, prefix string) {
	r.Put(prefix+"/v1/ccp/signedContractData", s.authed(s.opcpAddSignedContractData))
	r.Delete(prefix+"/v1/ccp/signedContractData/{emaid}", s.authed(s.deleteContract))
	r.Post(prefix+"/v1/ccp/signedContractData/{pcid}/{emaid}/default", s.authed(s.setDefault))
	r.Get(prefix+"/v1/ccp/provideSignedContractData/{emaid}/{pcid}", s.authed(s.provideSignedContractData(true)))
	r.Get(prefix+"/v1/ccp/lookupContract/{emaid}", s.authed(s.contractDataByEMAID(opcpContracts)))
	r.Get(prefix+"/v1/ccp/signedContractData/{pcid}", s.authed(s.contractDataByPCID(opcpContracts)))
	r.Put(prefix+"/v1/oem/provCerts", s.authed(s.opcpPutProvisioning))
	r.Get(prefix+"/v1/oem/provCerts/lookupVehicle/{pcid}", s.authed(s.lookupVehicle))
	r.Get(prefix+"/v1/oem/provCerts/{pcid}", s.authed(s.opcpGetProvisioning))
	r.Delete(prefix+"/v1/oem/provCerts/{pcid}", s.authed(s.deleteProvisioning))
}

// opcpAddSignedContractData answers OPCP's PUT signedContractData: the
// same upload as OPNC's, with signedContractDataXML for the base64 EXI.
func (s *Server) opcpAddSignedContractData(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(w, r, s) {
		return
	}
	var req struct {
		XSDMsgDefNamespace               string `json:"xsdMsgDefNamespace"`
		EMAID                            string `json:"emaid"`
		PCID                             string `json:"pcid"`
		SignedContractDataXML            string `json:"signedContractDataXML"`
		Metadata                         string `json:"metadata"`
		CPSV2GRootCertificateFingerprint string `json:"cpsV2GRootCertificateFingerprint"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if s.storeSignedData(w, r, req.XSDMsgDefNamespace, req.SignedContractDataXML, req.EMAID, req.PCID) {
		w.WriteHeader(http.StatusCreated)
	}
}

// opcpProvisioning is OPCP's ProvisioningCertificate.
type opcpProvisioning struct {
	SubCA1Certificate              string   `json:"subCA1Certificate"`
	SubCA2Certificate              string   `json:"subCA2Certificate,omitempty"`
	VehicleCertificate             string   `json:"vehicleCertificate"`
	XSDMsgDefNamespace             string   `json:"xsdMsgDefNamespace"`
	V2GRootAuthorityKeyIdentifiers []string `json:"v2gRootAuthorityKeyIdentifiers,omitempty"`
	PreviousPCID                   string   `json:"previousPcid,omitempty"`
}

// opcpPutProvisioning answers OPCP's addOEM (PUT provCerts) with the
// stored chain in ProvisioningCertificateData.
func (s *Server) opcpPutProvisioning(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(w, r, s) {
		return
	}
	var req opcpProvisioning
	if !s.decode(w, r, &req) {
		return
	}
	if req.SubCA1Certificate == "" {
		s.writeError(w, http.StatusBadRequest, "subCA1Certificate is required")
		return
	}
	if !s.storeProvisioning(w, r, req.XSDMsgDefNamespace, req.VehicleCertificate, req.SubCA2Certificate, req.SubCA1Certificate) {
		return
	}
	der, _ := base64.StdEncoding.DecodeString(req.VehicleCertificate)
	leaf, _ := x509.ParseCertificate(der)
	rec, err := s.Pool.GetProvisioning(r.Context(), actingTenant(r), leaf.Subject.CommonName)
	if err != nil {
		s.poolError(w, err)
		return
	}
	s.writeOPCPProvisioning(w, rec.DER, rec.Chain, false)
}

// opcpGetProvisioning answers OPCP's GET provCerts/{pcid}.
func (s *Server) opcpGetProvisioning(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Pool.ReadProvisioning(r.Context(), actingTenant(r), chi.URLParam(r, "pcid"))
	if err != nil {
		s.poolError(w, err)
		return
	}
	s.writeOPCPProvisioning(w, rec.DER, rec.Chain, true)
}

// writeOPCPProvisioning answers ProvisioningCertificateData (wrapped in
// OEMMessage for a read): the chain and the OEM root it leads to.
func (s *Server) writeOPCPProvisioning(w http.ResponseWriter, leafDER, chainDER []byte, wrap bool) {
	b64 := base64.StdEncoding.EncodeToString
	fp := sha256.Sum256(leafDER)
	data := map[string]any{"vehicleCertificate": b64(leafDER), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema, "fingerprint": hex.EncodeToString(fp[:])}
	subs, _ := x509.ParseCertificates(chainDER)
	top := (*x509.Certificate)(nil)
	switch len(subs) {
	case 1:
		data["subCA1Certificate"], top = b64(subs[0].Raw), subs[0]
	case 2:
		data["subCA2Certificate"], data["subCA1Certificate"], top = b64(subs[0].Raw), b64(subs[1].Raw), subs[1]
	}
	if top != nil {
		data["rootIssuerDistinguishedName"] = top.Issuer.String()
		data["rootIssuerSerialNumber"] = ""
		for _, root := range s.Anchors()[ocppsec.UseOEM] {
			if ed448x509.CheckSignature(top, root) == nil {
				data["rootIssuerDistinguishedName"] = distinguishedName(root)
				data["rootIssuerSerialNumber"] = strings.ToLower(root.SerialNumber.Text(16))
				data["rootAuthorityKeyIdentifier"] = strings.ToUpper(hex.EncodeToString(root.SubjectKeyId))
				break
			}
		}
	}
	if wrap {
		writeJSON(w, http.StatusOK, map[string]any{"OEMMessage": data})
		return
	}
	writeJSON(w, http.StatusOK, data)
}
