package console

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pncpki/pncpki/api/apiclient"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/datadir"
)

// maxEXI bounds a pasted message (OCPP 2.1 allows 17,000 base64
// characters by default; a station may report more).
const maxEXI = 48 << 10

// inspection is what the EXI inspector shows.
type inspection struct {
	Input   string
	Message string // Body's element, e.g. CertificateInstallationRes
	Size    string
	Tree    string // the decoded message as indented JSON
	Checks  []check
	Error   *failure
}

type check struct {
	What, Result string
	OK           bool
}

func (h *Handler) exiPage(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	h.render(w, http.StatusOK, "exi", &page{Title: "EXI inspector", Session: s, Nav: "exi", Data: &inspection{}})
}

// exiInspect decodes a pasted exiRequest or exiResponse, and checks its
// signature: a request's with the certificate it carries, an answer's CPS
// signature and chain against the V2G roots the API lists for the session.
func (h *Handler) exiInspect(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	in := &inspection{Input: r.PostFormValue("exi")}
	status := http.StatusOK
	if err := h.inspect(r, c, in); err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	if in.Error != nil {
		status = http.StatusBadRequest
	}
	h.render(w, status, "exi", &page{Title: "EXI inspector", Session: s, Nav: "exi", Data: in})
}

// inspect fills in; its error is the API's (a message that does not
// decode is in.Error).
func (h *Handler) inspect(r *http.Request, c *apiclient.Client, in *inspection) error {
	raw, err := exiInput(in.Input)
	if err != nil {
		in.Error = &failure{"exi.invalid", err.Error()}
		return nil
	}
	doc, err := exi.ISO2.Decode(raw)
	if err != nil {
		if doc20, err20 := exi.ISO20.Decode(raw); err20 == nil {
			return h.inspect20(r, c, in, raw, doc20)
		}
		in.Error = &failure{"exi.invalid", "neither an ISO 15118-2 nor an ISO 15118-20 message: " + err.Error()}
		return nil
	}
	tree, _ := exi.JSON(doc)
	in.Tree = string(tree)
	in.Size = fmt.Sprintf("%d bytes, %d base64 characters", len(raw), (len(raw)+2)/3*4)
	if body := doc.Child("Body"); body != nil && len(body.Children) > 0 {
		in.Message = body.Children[0].Name.Local
	}
	switch in.Message {
	case "CertificateInstallationReq", "CertificateUpdateReq":
		_, chain, err := contract.RequestSigner(doc)
		what := "vehicle's signature"
		if chain != nil {
			what += " (" + ca.FormatName(chain[0].RawSubject) + ")"
		}
		in.Checks = append(in.Checks, result(what, err, "verified"))
		if chain == nil {
			return nil
		}
		chk, err := h.requestChain(r, c, in.Message, chain)
		if err != nil {
			return err
		}
		in.Checks = append(in.Checks, chk)
	case "CertificateInstallationRes":
		if rc := doc.Child("Body").Child(in.Message).Child("ResponseCode").Val(); rc != contract.ResponseOK {
			in.Checks = append(in.Checks, check{"ResponseCode", rc, false})
			return nil
		}
		roots, err := anchors(r, c, "V2GRootCertificate")
		if err != nil {
			return err
		}
		sd, err := contract.ParseSignedResponse(raw, roots, h.opts.Now())
		ok := ""
		if err == nil {
			ok = "verified, chain to " + ca.FormatName(sd.CPSChain[len(sd.CPSChain)-1].RawIssuer) + "; contract certificate for " + sd.EMAID
		}
		in.Checks = append(in.Checks, result("CPS signature and chain", err, ok))
	}
	return nil
}

// inspect20 fills in for an ISO 15118-20 CommonMessages message: the
// signature of an installation request or answer with the certificate it
// carries (ECDSA P-521 or Ed448; a request's in either reading of what it
// covers), and its chain: the vehicle's OEM provisioning chain as the
// installer would check it, the CPS chain to the V2G roots the API lists.
func (h *Handler) inspect20(r *http.Request, c *apiclient.Client, in *inspection, raw []byte, doc *exi.Element) error {
	tree, _ := exi.JSON(doc)
	in.Tree = string(tree)
	in.Message = doc.Name.Local + " (ISO 15118-20)"
	in.Size = fmt.Sprintf("%d bytes, %d base64 characters", len(raw), (len(raw)+2)/3*4)
	var chainEl *exi.Element
	what := "vehicle's signature"
	switch doc.Name.Local {
	case "CertificateInstallationReq":
		chainEl = doc.Child("OEMProvisioningCertificateChain")
	case "CertificateInstallationRes":
		if rc := doc.Child("ResponseCode").Val(); !strings.HasPrefix(rc, "OK") {
			in.Checks = append(in.Checks, check{"ResponseCode", rc, false})
			return nil
		}
		if doc.Child("EVSEProcessing").Val() != "Finished" {
			in.Checks = append(in.Checks, check{"EVSEProcessing", doc.Child("EVSEProcessing").Val() + ": no contract data yet", true})
			return nil
		}
		chainEl, what = doc.Child("CPSCertificateChain"), "CPS signature"
	default:
		return nil
	}
	signer, err := contract.VerifyMessage20(doc)
	if signer != nil {
		what += " (" + ca.FormatName(signer.RawSubject) + ")"
	}
	in.Checks = append(in.Checks, result(what, err, "verified"))
	chain, err := contract.ParseChain20(chainEl)
	if err != nil {
		in.Checks = append(in.Checks, check{"chain", err.Error(), false})
		return nil
	}
	if doc.Name.Local == "CertificateInstallationReq" {
		chk, err := h.requestChain(r, c, "CertificateInstallationReq", chain)
		if err != nil {
			return err
		}
		in.Checks = append(in.Checks, chk)
		return nil
	}
	roots, err := anchors(r, c, "V2GRootCertificate")
	if err != nil {
		return err
	}
	in.Checks = append(in.Checks, verifyChain("CPS chain", chain, roots, nil, h.opts.Now()))
	return nil
}

// anchors returns the trust anchors of one use the API lists for the
// session.
func anchors(r *http.Request, c *apiclient.Client, use string) ([]*x509.Certificate, error) {
	resp, err := c.Authorities.ListTrustAnchors(r.Context(), apiclient.Call(c, &pncpkiv1.ListTrustAnchorsRequest{Use: use}))
	if err != nil {
		return nil, err
	}
	var roots []*x509.Certificate
	for _, a := range resp.Msg.Anchors {
		if cert := pemOf(a.Pem); cert != nil {
			roots = append(roots, cert)
		}
	}
	return roots, nil
}

// requestChain checks the chain of a request's signer as the installer
// would, with what the API shows the session: an installation request's
// OEM provisioning certificate to an OEM root, through the registered OEM
// sub-CAs and the sub-CAs registered with its PCID (which must be this
// certificate); an update request's contract chain to an MO root. Pools
// the session may not read count as empty.
func (h *Handler) requestChain(r *http.Request, c *apiclient.Client, message string, chain []*x509.Certificate) (check, error) {
	ctx := r.Context()
	what, use, inter := "contract certificate chain", "MORootCertificate", chain[1:]
	if message == "CertificateInstallationReq" {
		what, use = "OEM provisioning chain", "OEMRootCertificate"
		subs, err := c.Provisioning.ListOEMSubCAs(ctx, apiclient.Call(c, &pncpkiv1.ListOEMSubCAsRequest{}))
		if err != nil && !unseen(err) {
			return check{}, err
		}
		if err == nil {
			for _, s := range subs.Msg.SubCas {
				if cert := pemOf(s.Pem); cert != nil {
					inter = append(inter, cert)
				}
			}
		}
		pcid := chain[0].Subject.CommonName
		reg, err := c.Provisioning.GetProvisioningCertificate(ctx, apiclient.Call(c, &pncpkiv1.GetProvisioningCertificateRequest{Pcid: pcid}))
		switch {
		case err == nil:
			certs, _ := datadir.ParseCertificates([]byte(reg.Msg.Certificate.Pem))
			if len(certs) == 0 || !certs[0].Equal(chain[0]) {
				return check{what, "PCID " + pcid + " is registered with another provisioning certificate", false}, nil
			}
			inter = append(inter, certs[1:]...)
		case !unseen(err):
			return check{}, err
		}
	}
	roots, err := anchors(r, c, use)
	if err != nil {
		return check{}, err
	}
	if len(roots) == 0 {
		return check{what, "no " + use + " is a trust anchor here: pncpki refuses this request", false}, nil
	}
	return verifyChain(what, chain[:1], roots, inter, h.opts.Now()), nil
}

// verifyChain checks that chain (leaf first, its sub-CAs after it) with
// the intermediates inter leads to one of roots at now.
func verifyChain(what string, chain, roots, inter []*x509.Certificate, now time.Time) check {
	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	for _, root := range roots {
		opts.Roots.AddCert(root)
	}
	for _, sub := range append(slices.Clip(chain[1:]), inter...) {
		opts.Intermediates.AddCert(sub)
	}
	chains, err := chain[0].Verify(opts)
	if err != nil {
		return check{what, err.Error(), false}
	}
	top := chains[0][len(chains[0])-1]
	return check{what, "leads to " + ca.FormatName(top.RawSubject), true}
}

// unseen reports whether err is the API's refusal to show the session
// something (another tenant's, or none there).
func unseen(err error) bool {
	code, _ := apiCode(err)
	return code == "auth.forbidden" || code == contract.CodeForbidden || strings.HasSuffix(code, ".not_found")
}

func result(what string, err error, ok string) check {
	if err != nil {
		return check{what, err.Error(), false}
	}
	return check{what, ok, true}
}

// exiInput reads base64 (as OCPP carries it) or hex.
func exiInput(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	if s == "" {
		return nil, fmt.Errorf("paste an exiRequest or exiResponse (base64) or the message in hex")
	}
	if len(s) > maxEXI {
		return nil, fmt.Errorf("longer than %d characters", maxEXI)
	}
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("neither base64 nor hex: %w", err)
	}
	return b, nil
}
