package console

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/pncpki/pncpki/api/apiclient"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/contract/exi"
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
		in.Error = &failure{"exi.invalid", "not an ISO 15118-2 message: " + err.Error()}
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
		_, signer, err := contract.RequestSigner(doc)
		what := "vehicle's signature"
		if signer != nil {
			what += " (" + ca.FormatName(signer.RawSubject) + ")"
		}
		in.Checks = append(in.Checks, result(what, err, "verified"))
	case "CertificateInstallationRes":
		if rc := doc.Child("Body").Child(in.Message).Child("ResponseCode").Val(); rc != contract.ResponseOK {
			in.Checks = append(in.Checks, check{"ResponseCode", rc, false})
			return nil
		}
		anchors, err := c.Authorities.ListTrustAnchors(r.Context(), apiclient.Call(c, &pncpkiv1.ListTrustAnchorsRequest{Use: "V2GRootCertificate"}))
		if err != nil {
			return err
		}
		var roots []*x509.Certificate
		for _, a := range anchors.Msg.Anchors {
			if cert := pemOf(a.Pem); cert != nil {
				roots = append(roots, cert)
			}
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
