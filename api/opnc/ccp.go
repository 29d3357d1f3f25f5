package opnc

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/ca"
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
	r.Get(prefix+"/ccp/contractData/emaid/{emaid}", s.authed(s.contractDataByEMAID(opncContracts)))
	r.Get(prefix+"/ccp/contractData/pcid/{pcid}", s.authed(s.contractDataByPCID(opncContracts)))
	r.Put(prefix+"/ccp/signedcontractdata", s.authed(s.addSignedContractData))
	r.Get(prefix+"/ccp/signedcontractdata/{emaid}/{pcid}", s.authed(s.provideSignedContractData(false)))
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

// The keys of contract lists in OPNC and OPCP.
const (
	opncContracts = "contractDataCollection"
	opcpContracts = "XMLContracts"
)

// writeContractsAs answers the live contracts under key (OPNC's
// contractDataCollection, OPCP's XMLContracts).
func (s *Server) writeContractsAs(w http.ResponseWriter, r *http.Request, key string, cs []*store.Contract) {
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
	writeJSON(w, http.StatusOK, map[string]any{key: list})
}

// contractDataByEMAID answers getContractDataByEmaidV1.
// It answers OPCP's lookupContract too, under key.
func (s *Server) contractDataByEMAID(key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.Pool.Get(r.Context(), actingTenant(r), chi.URLParam(r, "emaid"))
		if err != nil {
			s.poolError(w, err)
			return
		}
		s.writeContractsAs(w, r, key, []*store.Contract{c})
	}
}

// contractDataByPCID answers getContractDataByPcidV1: the vehicle's
// contracts the caller may see.
// It answers OPCP's signedContractData/{pcid} too, under key.
func (s *Server) contractDataByPCID(key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
		s.writeContractsAs(w, r, key, cs)
	}
}

// deleteContract answers deleteSignedContractDataByEmaidV1: the contract
// ends and its certificates are revoked; signed contract data an eMSP
// uploaded (a deposit) is removed.
func (s *Server) deleteContract(w http.ResponseWriter, r *http.Request) {
	tenant, emaid := actingTenant(r), chi.URLParam(r, "emaid")
	_, _, err := s.Pool.Cancel(r.Context(), tenant, emaid)
	var pe *contract.Error
	if errors.As(err, &pe) && pe.Code == contract.CodeNotFound {
		err = s.Pool.DeleteDepositOf(r.Context(), tenant, emaid)
	}
	if err != nil {
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
	if s.storeSignedData(w, r, req.XSDMsgDefNamespace, req.CertificateInstallationRes, req.EMAID, req.PCID) {
		w.WriteHeader(http.StatusCreated)
	}
}

// storeSignedData checks signed contract data (base64 EXI) and keeps it
// as the vehicle's deposit; it answers refusals itself.
func (s *Server) storeSignedData(w http.ResponseWriter, r *http.Request, namespace, b64, emaid, pcid string) bool {
	tenant := actingTenant(r)
	if tenant == "" {
		s.writeError(w, http.StatusForbidden, "signed contract data is uploaded by the eMSP it belongs to")
		return false
	}
	parse := contract.ParseSignedResponse
	switch {
	case namespace == ocppsec.ISO15118v2Schema:
	case iso20Namespace(namespace):
		parse = contract.ParseSignedResponse20
	default:
		s.writeError(w, http.StatusBadRequest, "xsdMsgDefNamespace %q is not supported; pncpki speaks %s and ISO 15118-20 (%s)",
			namespace, ocppsec.ISO15118v2Schema, strings.Join(iso20Namespaces, ", "))
		return false
	}
	exiRes, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(exiRes) == 0 {
		s.writeError(w, http.StatusBadRequest, "EXI format is invalid: the signed contract data is not base64")
		return false
	}
	anchors := s.Anchors()
	data, err := parse(exiRes, anchors[ocppsec.UseV2G], time.Now())
	if err != nil {
		s.poolError(w, err)
		return false
	}
	want, err1 := policies.ParseEMAID(emaid)
	got, err2 := policies.ParseEMAID(data.EMAID)
	if err1 != nil || err2 != nil || want.String() != got.String() {
		s.writeError(w, http.StatusBadRequest, "emaid %q is not the response's eMAID %q", emaid, data.EMAID)
		return false
	}
	if _, err := s.Pool.PutDeposit(r.Context(), tenant, "", pcid, data.ContractChain, data.EncryptedKey, data.DHPublicKey, anchors[ocppsec.UseMO]); err != nil {
		s.poolError(w, err)
		return false
	}
	s.log().Info("signed contract data uploaded", "tenant", tenant, "emaid", got.String(), "pcid", pcid, "cps", data.CPSChain[0].Subject.CommonName)
	return true
}

// iso20Namespaces name ISO 15118-20's messages in signed contract data:
// OPNC's, OPCP's (the first two, in this order), and the CommonMessages
// namespace OCPP 2.1 carries.
var iso20Namespaces = []string{"urn:iso:15118:20:2020:MsgDef", "urn:iso:15118:20:2022:MsgDef", contract.ISO15118v20Schema}

func iso20Namespace(ns string) bool { return slices.Contains(iso20Namespaces, ns) }

// provideSignedContractData answers getSignedContractDataByEmaidAndPcidV1
// (and OPCP's provideSignedContractData): signed contract data for a
// vehicle without its request, for the OEM that registered the vehicle or
// the contract's eMSP. Each call issues a new contract certificate.
func (s *Server) provideSignedContractData(opcp bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ns := q.Get("xsdMsgDefNamespace")
		if ns != "" && ns != ocppsec.ISO15118v2Schema && !iso20Namespace(ns) {
			s.writeError(w, http.StatusBadRequest, "xsdMsgDefNamespace %q is not supported; pncpki speaks %s and ISO 15118-20 (%s)",
				ns, ocppsec.ISO15118v2Schema, strings.Join(iso20Namespaces, ", "))
			return
		}
		if ns != "" && !s.partMatches(r.Context(), chi.URLParam(r, "pcid"), iso20Namespace(ns)) {
			// Checked before anything is issued: the vehicle's registered
			// provisioning certificate decides the part it gets.
			s.writeError(w, http.StatusBadRequest, "xsdMsgDefNamespace %q is not the ISO 15118 part of the provisioning certificate registered for %s", ns, chi.URLParam(r, "pcid"))
			return
		}
		if s.Installer == nil {
			s.writeError(w, http.StatusServiceUnavailable, "this pncpki runs no contract service (no CPS key)")
			return
		}
		res, err := s.Installer.Prepare(r.Context(), actingTenant(r), chi.URLParam(r, "emaid"), chi.URLParam(r, "pcid"),
			q.Get("sessionID"), q.Get("cpsV2GRootCertificateFingerprint"), 0)
		var ie *contract.InstallError
		switch {
		case errors.As(err, &ie):
			s.writeError(w, http.StatusServiceUnavailable, "%s: %s", ie.Reason, ie.Message)
			return
		case err != nil:
			s.poolError(w, err)
			return
		}
		exiRes := base64.StdEncoding.EncodeToString(res.EXI)
		resNS := ocppsec.ISO15118v2Schema
		if res.ISO20 {
			resNS = iso20Namespaces[0] // OPNC's
			if opcp {
				resNS = iso20Namespaces[1]
			}
		}
		if opcp { // OPCP's fingerprint pattern is a UUID's: left out
			writeJSON(w, http.StatusOK, map[string]any{"certificateInstallationRes": exiRes, "xsdMsgDefNamespace": resNS})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"signedContractDataCollection": []map[string]any{{
			"certificateInstallationRes": exiRes, "emaid": res.EMAID, "pcid": res.PCID,
			"xsdMsgDefNamespace": resNS, "cpsV2GRootCertificateFingerprint": ca.Fingerprint(res.CPSRoot),
		}}})
	}
}

// partMatches says whether the provisioning certificate registered for
// pcid is of the ISO 15118 part asked for (-20 or -2); with none
// registered (or the PCID malformed) Prepare gives the error.
func (s *Server) partMatches(ctx context.Context, pcid string, want20 bool) bool {
	n, err := policies.NormalizePCID(pcid)
	if err != nil {
		return true
	}
	prov, err := s.Pool.Store.ProvisioningCertificate(ctx, n)
	if err != nil {
		return true
	}
	leaf, err := x509.ParseCertificate(prov.DER)
	if err != nil {
		return true
	}
	return (contract.ProvisioningProfile(leaf) != policies.ISO2OEMProv) == want20
}
