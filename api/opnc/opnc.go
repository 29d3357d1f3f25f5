// Package opnc serves the pool interfaces of the Open Plug&Charge
// protocols from pncpki's own data, so that a CSMS written against a hosted
// Plug and Charge ecosystem can use pncpki by changing its base URL. CharIN's
// OPNC (Mount):
//
//	POST {prefix}/ccp/signedcontractdata             signed contract data for a CertificateInstallationReq
//	GET  {prefix}/ccp/contractData/{emaid|pcid}/{id} an eMSP's contracts by EMAID or by vehicle
//	PUT  {prefix}/ccp/signedcontractdata             an eMSP uploads contract data its CPS signed
//	GET  {prefix}/ccp/signedcontractdata/{emaid}/{pcid} signed contract data without a request (OEM back ends)
//	DELETE {prefix}/ccp/signedcontractdata/{emaid}   end a contract (its certificates are revoked)
//	POST {prefix}/ccp/signedcontractdata/{emaid}/{pcid}/setdefault
//	GET  {prefix}/rcp/rootcertificates[?pkiType=]    the root certificate pool (pncpki's trust anchors)
//	GET  {prefix}/rcp/rootcertificates/{id}          one root
//	PUT  {prefix}/rcp/rootcertificates               add a root (administrators)
//	DELETE {prefix}/rcp/rootcertificates/{id}        remove a root added at run time
//	PUT  {prefix}/pcp/provisioningcertificates       an OEM uploads a provisioning certificate chain
//	GET|DELETE {prefix}/pcp/provisioningcertificates/{pcid}
//	GET  {prefix}/pcp/lookupvehicle/{pcid}           whether pncpki knows a vehicle
//	POST|GET {prefix}/event/endpoints, GET|PUT|DELETE {prefix}/event/endpoints/{id}
//	                                                 webhook subscriptions (package webhook delivers)
//
// and Hubject's OPCP 1.0 (MountOPCP), whose shapes differ:
//
//	POST {prefix}/v1/ccp/signedContractData
//	GET|PUT {prefix}/v1/root/rootCerts, GET|DELETE {prefix}/v1/root/rootCerts/{id}
//	PUT  {prefix}/v1/ccp/signedContractData, DELETE .../{emaid}, POST .../{pcid}/{emaid}/default
//	GET  {prefix}/v1/ccp/lookupContract/{emaid}, {prefix}/v1/ccp/signedContractData/{pcid}
//	GET  {prefix}/v1/ccp/provideSignedContractData/{emaid}/{pcid}
//	PUT  {prefix}/v1/oem/provCerts, GET|DELETE .../{pcid}, GET .../lookupVehicle/{pcid}
//	POST|GET {prefix}/v1/webhook/endpoints, GET|PUT|DELETE .../{id} (OPNC's event endpoints)
//
// Bodies follow the OpenAPI documents; errors are their error object
// ({errorMessages, traceId}). Callers authenticate with a bearer token of
// the API. EST enrollment is package est's.
package opnc

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/webhook"
)

// MaxBody bounds request bodies: an OCPP 2.1 exiRequest is at most 11,000
// base64 characters.
const MaxBody = 64 << 10

// Installer answers certificate installation requests (contract.Installer).
type Installer interface {
	Handle(ctx context.Context, action contract.Action, exiRequest []byte, maxBase64 int) (*contract.Response, error)
	Prepare(ctx context.Context, actingTenant, emaid, pcid, sessionID, cpsRoot string, maxBase64 int) (*contract.Response, error)
}

// Server serves the OPNC pool interfaces.
type Server struct {
	// Verify checks a bearer token (the API's token verification).
	Verify func(token string) (*auth.Claims, error)
	// Installer makes signed contract data; nil answers 503.
	Installer Installer
	// Anchors returns the trust anchors of the root certificate pool.
	Anchors func() ocppsec.Anchors
	// Events publishes OPNC events and keeps the endpoints; nil answers
	// the event API with 503.
	Events *webhook.Dispatcher
	// Roots changes the root pool (administrators only); nil answers 503.
	Roots RootPool
	// Pool holds the contract and provisioning certificate pools; nil
	// leaves their routes out.
	Pool *contract.Pool
	Log  *slog.Logger
}

// DefaultPrefix is where pncd mounts the OPNC pools.
const DefaultPrefix = "/opnc/v1"

// Mount adds the routes under prefix.
func (s *Server) Mount(r chi.Router, prefix string) {
	prefix = "/" + strings.Trim(prefix, "/")
	r.Post(prefix+"/ccp/signedcontractdata", s.authed(s.signedContractData))
	r.Get(prefix+"/rcp/rootcertificates", s.authed(s.rootCertificates))
	r.Get(prefix+"/rcp/rootcertificates/{id}", s.authed(s.rootCertificate))
	r.Put(prefix+"/rcp/rootcertificates", s.authed(s.putRoot))
	r.Delete(prefix+"/rcp/rootcertificates/{id}", s.authed(s.deleteRoot))
	s.mountEvents(r, prefix)
	if s.Pool != nil {
		s.mountPCP(r, prefix)
		s.mountCCP(r, prefix)
	}
}

// DefaultOPCPPrefix is where pncd mounts the OPCP pools.
const DefaultOPCPPrefix = "/opcp"

// MountOPCP adds the OPCP routes under prefix.
func (s *Server) MountOPCP(r chi.Router, prefix string) {
	prefix = "/" + strings.Trim(prefix, "/")
	r.Post(prefix+"/v1/ccp/signedContractData", s.authed(s.opcpSignedContractData))
	r.Get(prefix+"/v1/root/rootCerts", s.authed(s.opcpRootCerts))
	r.Get(prefix+"/v1/root/rootCerts/{id}", s.authed(s.opcpRootCert))
	r.Put(prefix+"/v1/root/rootCerts", s.authed(s.putRoot))
	r.Delete(prefix+"/v1/root/rootCerts/{id}", s.authed(s.deleteRoot))
	r.Post(prefix+"/v1/webhook/endpoints", s.authed(s.createEndpoint))
	r.Get(prefix+"/v1/webhook/endpoints", s.authed(s.listEndpoints))
	r.Get(prefix+"/v1/webhook/endpoints/{id}", s.authed(s.getEndpoint))
	r.Put(prefix+"/v1/webhook/endpoints/{id}", s.authed(s.updateEndpoint))
	r.Delete(prefix+"/v1/webhook/endpoints/{id}", s.authed(s.deleteEndpoint))
	if s.Pool != nil {
		s.mountOPCPPools(r, prefix)
	}
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// writeError answers with OPNC's error object; the trace ID goes to the
// log too, so that an operator finds the request.
func (s *Server) writeError(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	id := traceID()
	s.log().Info("OPNC request refused", "status", status, "error", msg, "trace_id", id)
	writeJSON(w, status, map[string]any{"errorMessages": []string{msg}, "traceId": id})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// traceID is a random UUID (version 4).
func traceID() string { return uuid.NewString() }

type claimsKey struct{}

// authed requires a valid bearer token.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			s.writeError(w, http.StatusUnauthorized, "a bearer token is required")
			return
		}
		c, err := s.Verify(tok)
		if err != nil {
			s.writeError(w, http.StatusUnauthorized, "token: %v", err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	}
}

// install reads a signed contract data request (the same in OPNC and
// OPCP) and runs the installation; it answers the refusals itself.
func (s *Server) install(w http.ResponseWriter, r *http.Request) (*contract.Response, bool) {
	if !jsonBody(w, r, s) {
		return nil, false
	}
	var req struct {
		CertificateInstallationReq string `json:"certificateInstallationReq"`
		XSDMsgDefNamespace         string `json:"xsdMsgDefNamespace"`
		Metadata                   string `json:"metadata"`
	}
	if !s.decode(w, r, &req) {
		return nil, false
	}
	if req.XSDMsgDefNamespace != ocppsec.ISO15118v2Schema {
		s.writeError(w, http.StatusBadRequest, "xsdMsgDefNamespace %q is not supported; pncpki speaks %s", req.XSDMsgDefNamespace, ocppsec.ISO15118v2Schema)
		return nil, false
	}
	exiReq, err := base64.StdEncoding.DecodeString(req.CertificateInstallationReq)
	if err != nil || len(exiReq) == 0 {
		s.writeError(w, http.StatusBadRequest, "EXI format is invalid: certificateInstallationReq is not base64")
		return nil, false
	}
	if s.Installer == nil {
		s.writeError(w, http.StatusServiceUnavailable, "this pncpki runs no contract service (no CPS key)")
		return nil, false
	}
	res, err := s.Installer.Handle(r.Context(), contract.ActionInstall, exiReq, 0)
	var ie *contract.InstallError
	switch {
	case errors.As(err, &ie) && alwaysReturnEXI(r) && ie.Answer != nil:
		// OPNC and OPCP's alwaysReturnEXI (default true): the vehicle's
		// answer with its failure ResponseCode, for the CPO to pass on.
		s.log().Info("installation refused; answering with EXI", "reason", ie.Reason, "response_code", ie.ResponseCode, "detail", ie.Message)
		return &contract.Response{EXI: ie.Answer}, true
	case errors.As(err, &ie):
		status := http.StatusBadRequest
		switch ie.Reason {
		case contract.ReasonUnknownPCID, contract.ReasonNoContract, contract.ReasonCancelled, contract.ReasonNoRoot:
			status = http.StatusNotFound
		case contract.ReasonNotConfigured:
			status = http.StatusServiceUnavailable
		}
		s.writeError(w, status, "%s (%s): %s", ie.Reason, ie.ResponseCode, ie.Message)
		return nil, false
	case err != nil:
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return nil, false
	}
	return res, true
}

// signedContractData answers OPNC's getSignedContractDataByCertificateInstallationReqV1.
func (s *Server) signedContractData(w http.ResponseWriter, r *http.Request) {
	res, ok := s.install(w, r)
	if !ok {
		return
	}
	data := map[string]any{
		"certificateInstallationRes": base64.StdEncoding.EncodeToString(res.EXI),
		"emaid":                      res.EMAID,
		"pcid":                       res.PCID,
		"xsdMsgDefNamespace":         ocppsec.ISO15118v2Schema,
	}
	if res.CPSRoot != nil { // not known for an ecosystem's answer
		data["cpsV2GRootCertificateFingerprint"] = ca.Fingerprint(res.CPSRoot)
	}
	writeJSON(w, http.StatusOK, map[string]any{"signedContractDataCollection": []map[string]any{data}})
}

// opcpSignedContractData answers OPCP's getSignedContractData.
func (s *Server) opcpSignedContractData(w http.ResponseWriter, r *http.Request) {
	res, ok := s.install(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"CCPResponse": map[string]any{"emaidContent": []map[string]any{{"messageDef": map[string]any{
			"certificateInstallationRes": base64.StdEncoding.EncodeToString(res.EXI),
			"emaid":                      res.EMAID,
		}}}},
		"xsdMsgDefNamespace": ocppsec.ISO15118v2Schema,
	})
}

// opcpRootType is OPCP's rootType of a trust anchor use.
var opcpRootType = map[ocppsec.Use]string{ocppsec.UseV2G: "V2G", ocppsec.UseMO: "MO", ocppsec.UseOEM: "OEM"}

// opcpRootTypes maps OPCP's rootType filter (the spec spells it in lower
// case; pncpki takes any case) to the trust anchor use.
var opcpRootTypes = map[string]ocppsec.Use{"v2g": ocppsec.UseV2G, "mo": ocppsec.UseMO, "oem": ocppsec.UseOEM}

// opcpRoots lists the root pool in OPCP's RootCertV2 shape: OPNC's fields
// with rootType instead of rootTypeList; with uses, only those.
func (s *Server) opcpRoots(uses ...ocppsec.Use) []map[string]any {
	if len(uses) == 0 {
		uses = []ocppsec.Use{ocppsec.UseV2G, ocppsec.UseMO, ocppsec.UseOEM}
	}
	anchors := s.Anchors()
	var out []map[string]any
	for _, u := range uses {
		for _, c := range anchors[u] {
			root := rootJSON(c, u)
			delete(root, "rootTypeList")
			root["rootType"] = opcpRootType[u]
			out = append(out, root)
		}
	}
	return out
}

// opcpRootCerts answers OPCP's getAllRootCerts.
func (s *Server) opcpRootCerts(w http.ResponseWriter, r *http.Request) {
	var uses []ocppsec.Use
	if t := r.URL.Query().Get("rootType"); t != "" {
		u, ok := opcpRootTypes[strings.ToLower(t)]
		if !ok {
			s.writeError(w, http.StatusBadRequest, "rootType %q: want v2g, mo or oem", t)
			return
		}
		uses = []ocppsec.Use{u}
	}
	list := s.opcpRoots(uses...)
	if list == nil {
		list = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"RootCertificateCollection": map[string]any{"rootCertificates": list}})
}

// opcpRootCert answers OPCP's getRootCert.
func (s *Server) opcpRootCert(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	for _, root := range s.opcpRoots() {
		if root["rootCertificateId"] == id {
			writeJSON(w, http.StatusOK, map[string]any{"RootResponse": root})
			return
		}
	}
	s.writeError(w, http.StatusNotFound, "no root certificate %s", id)
}

// pkiTypes maps OPNC's pkiType to the trust anchor use.
var pkiTypes = map[string]ocppsec.Use{"v2g": ocppsec.UseV2G, "emsp": ocppsec.UseMO, "oem": ocppsec.UseOEM}

// rootID is a root's ID in the pool: a UUID derived from its fingerprint,
// so that it stays the same across restarts and replicas.
func rootID(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	var id uuid.UUID
	copy(id[:], h[:16])
	id[6] = id[6]&0x0f | 0x80 // version 8: application-defined (RFC 9562)
	id[8] = id[8]&0x3f | 0x80
	return id.String()
}

// rootJSON is a root in OPNC's rootCertificate shape.
func rootJSON(c *x509.Certificate, u ocppsec.Use) map[string]any {
	ski := c.SubjectKeyId
	if len(ski) == 0 {
		h := sha1.Sum(c.RawSubjectPublicKeyInfo)
		ski = h[:]
	}
	types := map[ocppsec.Use]string{ocppsec.UseV2G: "V2G", ocppsec.UseMO: "eMSP", ocppsec.UseOEM: "OEM"}
	out := map[string]any{
		"rootCertificateId":          rootID(c),
		"distinguishedName":          distinguishedName(c),
		"rootTypeList":               []string{types[u]},
		"caCertificate":              base64.StdEncoding.EncodeToString(c.Raw),
		"commonName":                 c.Subject.CommonName,
		"rootAuthorityKeyIdentifier": strings.ToUpper(hex.EncodeToString(ski)),
		"rootIssuerSerialNumber":     strings.ToUpper(c.SerialNumber.Text(16)),
		"validFrom":                  c.NotBefore.UTC().Format(time.RFC3339),
		"validTo":                    c.NotAfter.UTC().Format(time.RFC3339),
		"fingerprint":                strings.ToUpper(ca.Fingerprint(c)),
	}
	if len(c.Subject.Organization) > 0 {
		out["organizationName"] = c.Subject.Organization[0]
	}
	return out
}

// oidDC is domainComponent, which ISO 15118 certificates carry.
var oidDC = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}

// distinguishedName writes a subject as OPNC's pattern wants it: CN, OU,
// O, C, DC and ST in certificate order, comma separated, other attributes
// and commas in values left out (the field is informative).
func distinguishedName(c *x509.Certificate) string {
	short := map[string]string{"2.5.4.3": "CN", "2.5.4.11": "OU", "2.5.4.10": "O", "2.5.4.6": "C", "2.5.4.8": "ST", oidDC.String(): "DC"}
	var parts []string
	for _, n := range c.Subject.Names {
		k, ok := short[n.Type.String()]
		v, isString := n.Value.(string)
		if ok && isString && v != "" {
			parts = append(parts, k+"="+strings.ReplaceAll(v, ",", ""))
		}
	}
	return strings.Join(parts, ", ")
}

func (s *Server) roots(pkiType string) ([]map[string]any, error) {
	uses := []ocppsec.Use{ocppsec.UseV2G, ocppsec.UseMO, ocppsec.UseOEM}
	if pkiType != "" {
		u, ok := pkiTypes[pkiType]
		if !ok {
			return nil, fmt.Errorf("pkiType %q: want v2g, emsp or oem", pkiType)
		}
		uses = []ocppsec.Use{u}
	}
	anchors := s.Anchors()
	var out []map[string]any
	for _, u := range uses {
		for _, c := range anchors[u] {
			out = append(out, rootJSON(c, u))
		}
	}
	return out, nil
}

// rootCertificates answers getRootCertificatesV1.
func (s *Server) rootCertificates(w http.ResponseWriter, r *http.Request) {
	list, err := s.roots(r.URL.Query().Get("pkiType"))
	if err != nil {
		s.writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if list == nil {
		list = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rootCertificateCollection": list})
}

// rootCertificate answers getRootCertificateV1. OPNC's response property
// is spelled "roootCertificate" in the published document; pncpki answers
// with both spellings.
func (s *Server) rootCertificate(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	list, _ := s.roots("")
	for _, root := range list {
		if root["rootCertificateId"] == id {
			writeJSON(w, http.StatusOK, map[string]any{"roootCertificate": root, "rootCertificate": root})
			return
		}
	}
	s.writeError(w, http.StatusNotFound, "no root certificate %s", id)
}

// alwaysReturnEXI reads the alwaysReturnEXI header of OPNC's and OPCP's
// signed contract data requests: true unless it says false.
func alwaysReturnEXI(r *http.Request) bool {
	v, err := strconv.ParseBool(r.Header.Get("alwaysReturnEXI"))
	return err != nil || v
}
