package opnc

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// The contract certificate pool's lookups and changes in OPNC's shape, over
// pncpki's contract pool: an eMSP sees and changes its own contracts
// (administrators all).

// mountCCP adds the CCP routes besides signedcontractdata.
func (s *Server) mountCCP(r chi.Router, prefix string) {
	r.Get(prefix+"/ccp/contractData/emaid/{emaid}", s.authed(s.contractDataByEMAID))
	r.Get(prefix+"/ccp/contractData/pcid/{pcid}", s.authed(s.contractDataByPCID))
	r.Put(prefix+"/ccp/signedcontractdata", s.authed(s.addSignedContractData))
	r.Delete(prefix+"/ccp/signedcontractdata/{emaid}", s.authed(s.deleteContract))
	r.Post(prefix+"/ccp/signedcontractdata/{emaid}/{pcid}/setdefault", s.authed(s.setDefault))
}

// contractData is a contract in OPNC's contractCertificateData shape, with
// its newest live contract certificate that pncpki issued.
func (s *Server) contractData(r *http.Request, c *store.Contract) map[string]any {
	out := map[string]any{"pcid": c.PCID, "emaid": c.EMAID, "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema, "defaultContract": c.Default}
	live := false
	recs, err := s.Pool.Store.Certificates(r.Context(), store.Filter{Profile: policies.ISO2Contract, CommonName: c.EMAID, Revoked: &live, Limit: 1})
	if err == nil && len(recs) == 1 {
		out["contractCertificate"] = base64.StdEncoding.EncodeToString(recs[0].DER)
		out["certValidFrom"] = recs[0].NotBefore.UTC().Format(time.RFC3339)
		out["certValidTo"] = recs[0].NotAfter.UTC().Format(time.RFC3339)
	}
	return out
}

func (s *Server) writeContracts(w http.ResponseWriter, r *http.Request, cs []*store.Contract) {
	list := []map[string]any{}
	for _, c := range cs {
		if !c.Cancelled() {
			list = append(list, s.contractData(r, c))
		}
	}
	if len(list) == 0 {
		s.writeError(w, http.StatusNotFound, "no contract")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"contractDataCollection": list})
}

// contractDataByEMAID answers getContractDataByEmaidV1.
func (s *Server) contractDataByEMAID(w http.ResponseWriter, r *http.Request) {
	c, err := s.Pool.Get(r.Context(), actingTenant(r), chi.URLParam(r, "emaid"))
	if err != nil {
		s.poolError(w, err)
		return
	}
	s.writeContracts(w, r, []*store.Contract{c})
}

// contractDataByPCID answers getContractDataByPcidV1: the vehicle's
// contracts the caller may see.
func (s *Server) contractDataByPCID(w http.ResponseWriter, r *http.Request) {
	pcid, err := policies.NormalizePCID(chi.URLParam(r, "pcid"))
	if err != nil {
		s.writeError(w, http.StatusBadRequest, "pcid: %v", err)
		return
	}
	cs, err := s.Pool.Store.ListContracts(r.Context(), actingTenant(r), pcid)
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	s.writeContracts(w, r, cs)
}

// deleteContract answers deleteSignedContractDataByEmaidV1: the contract
// ends and its certificates are revoked.
func (s *Server) deleteContract(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.Pool.Cancel(r.Context(), actingTenant(r), chi.URLParam(r, "emaid")); err != nil {
		s.poolError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// setDefault answers setSignedContractDataAsDefaultV1.
func (s *Server) setDefault(w http.ResponseWriter, r *http.Request) {
	tenant := actingTenant(r)
	c, err := s.Pool.Get(r.Context(), tenant, chi.URLParam(r, "emaid"))
	if err != nil {
		s.poolError(w, err)
		return
	}
	if pcid, err := policies.NormalizePCID(chi.URLParam(r, "pcid")); err != nil || pcid != c.PCID {
		s.writeError(w, http.StatusBadRequest, "contract %s is not bound to PCID %s", c.EMAID, chi.URLParam(r, "pcid"))
		return
	}
	if c.Cancelled() {
		s.writeError(w, http.StatusBadRequest, "contract %s is cancelled", c.EMAID)
		return
	}
	c.Default = true
	if _, err := s.Pool.Put(r.Context(), tenant, *c); err != nil {
		s.poolError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// signedDataReq is OPNC's signedContractData, the body of
// addSignedContractDataV1.
type signedDataReq struct {
	CertificateInstallationRes       string `json:"certificateInstallationRes"`
	EMAID                            string `json:"emaid"`
	PCID                             string `json:"pcid"`
	XSDMsgDefNamespace               string `json:"xsdMsgDefNamespace"`
	MetaData                         string `json:"metaData"`
	CPSV2GRootCertificateFingerprint string `json:"cpsV2GRootCertificateFingerprint"`
	CPSRootDistinguishedName         string `json:"cpsRootDistinguishedName"`
}

// addSignedContractData answers addSignedContractDataV1: an eMSP whose own
// CPS signed a vehicle's contract data uploads it. pncpki checks the CPS
// chain (to a V2G root of its pool) and signature and the contract chain
// (to an MO root, EMAID under the eMSP's provider IDs), and keeps the
// contract data as the vehicle's deposit: installation requests for that
// PCID are answered with it, signed by pncpki's CPS.
func (s *Server) addSignedContractData(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(w, r, s) {
		return
	}
	var req signedDataReq
	if !s.decode(w, r, &req) {
		return
	}
	tenant := actingTenant(r)
	if tenant == "" {
		s.writeError(w, http.StatusForbidden, "signed contract data is uploaded by the eMSP it belongs to")
		return
	}
	if req.XSDMsgDefNamespace != ocppsec.ISO15118v2Schema {
		s.writeError(w, http.StatusBadRequest, "xsdMsgDefNamespace %q is not supported; pncpki speaks %s", req.XSDMsgDefNamespace, ocppsec.ISO15118v2Schema)
		return
	}
	exiRes, err := base64.StdEncoding.DecodeString(req.CertificateInstallationRes)
	if err != nil || len(exiRes) == 0 {
		s.writeError(w, http.StatusBadRequest, "EXI format is invalid: certificateInstallationRes is not base64")
		return
	}
	anchors := s.Anchors()
	data, err := contract.ParseSignedResponse(exiRes, anchors[ocppsec.UseV2G], time.Now())
	if err != nil {
		s.poolError(w, err)
		return
	}
	want, err1 := policies.ParseEMAID(req.EMAID)
	got, err2 := policies.ParseEMAID(data.EMAID)
	if err1 != nil || err2 != nil || want.String() != got.String() {
		s.writeError(w, http.StatusBadRequest, "emaid %q is not the response's eMAID %q", req.EMAID, data.EMAID)
		return
	}
	if _, err := s.Pool.PutDeposit(r.Context(), tenant, "", req.PCID, data.ContractChain, data.EncryptedKey, data.DHPublicKey, anchors[ocppsec.UseMO]); err != nil {
		s.poolError(w, err)
		return
	}
	s.log().Info("signed contract data uploaded", "tenant", tenant, "emaid", got.String(), "pcid", req.PCID, "cps", data.CPSChain[0].Subject.CommonName)
	w.WriteHeader(http.StatusCreated)
}
