package console

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/apiclient"
	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
)

// oauthToken exchanges client credentials at the token endpoint, in
// process, as an OAuth client would over HTTP.
func (h *Handler) oauthToken(ctx context.Context, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.opts.OAuth.ServeHTTP(rec, req)
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	json.NewDecoder(io.LimitReader(rec.Body, 64<<10)).Decode(&out)
	if rec.Code != http.StatusOK || out.AccessToken == "" {
		return "", fmt.Errorf("the client ID or secret is not valid (%s)", out.Error)
	}
	return out.AccessToken, nil
}

// caNode is a CA in the overview's tree.
type caNode struct {
	*pncpkiv1.Authority
	NotBefore, NotAfter, IssueFrom time.Time
	Responder, CRLThis, CRLNext    time.Time
	Children                       []*caNode
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	ctx := r.Context()
	admin := s.Role == auth.RoleAdmin
	// Without usage counts: they read every live certificate ('pncctl ca
	// list' has them); the page must stay fast with millions.
	resp, err := c.Authorities.ListAuthorities(ctx, apiclient.Call(c, &pncpkiv1.ListAuthoritiesRequest{}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	nodes := map[string]*caNode{}
	var order []*caNode
	for _, a := range resp.Msg.Authorities {
		n := &caNode{Authority: a, NotBefore: a.NotBefore.AsTime(), NotAfter: a.NotAfter.AsTime()}
		if a.IssueFrom != nil {
			n.IssueFrom = a.IssueFrom.AsTime()
		}
		if a.OcspResponderNotAfter != nil {
			n.Responder = a.OcspResponderNotAfter.AsTime()
		}
		if a.CrlThisUpdate != nil {
			n.CRLThis, n.CRLNext = a.CrlThisUpdate.AsTime(), a.CrlNextUpdate.AsTime()
		}
		nodes[a.Name] = n
		order = append(order, n)
	}
	var roots []*caNode
	for _, n := range order {
		if p := nodes[n.Parent]; p != nil && n.Parent != n.Name {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	now := h.opts.Now()
	expiring := map[int]int64{}
	for _, d := range []int{30, 90} {
		list, err := c.Certs.ListCertificates(ctx, apiclient.Call(c, &pncpkiv1.ListCertificatesRequest{Revoked: new(bool), OnlyCount: true,
			ExpiringAfter: timestamppb.New(now), ExpiringBefore: timestamppb.New(now.AddDate(0, 0, d))}))
		if err != nil {
			h.apiFail(w, r, s, err)
			return
		}
		expiring[d] = list.Msg.Count
	}
	counts, err := c.Certs.CertificateCounts(ctx, apiclient.Call(c, &pncpkiv1.CertificateCountsRequest{}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	data := struct {
		Roots    []*caNode
		Expiring map[int]int64
		Counts   *pncpkiv1.CertificateCountsResponse
		Audit    []*pncpkiv1.AuditEntry
		Health   []HealthCheck
	}{Roots: roots, Expiring: expiring, Counts: counts.Msg}
	if h.opts.Health != nil {
		data.Health = h.opts.Health(ctx)
	}
	if admin {
		// The newest entries: the log is read forward, so from its end.
		head, err := c.Audit.ListAudit(ctx, apiclient.Call(c, &pncpkiv1.ListAuditRequest{PageSize: 1}))
		var a *connect.Response[pncpkiv1.ListAuditResponse]
		if err == nil {
			a, err = c.Audit.ListAudit(ctx, apiclient.Call(c, &pncpkiv1.ListAuditRequest{After: max(0, head.Msg.HeadSeq-10), PageSize: 10}))
		}
		if err == nil {
			data.Audit = a.Msg.Entries
			slices.Reverse(data.Audit) // newest first
		}
	}
	h.render(w, http.StatusOK, "overview", &page{Title: "Overview", Session: s, Nav: "overview", Data: data})
}

// pageSize is the certificates listed per page.
const pageSize = 50

func (h *Handler) certificates(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	q := r.URL.Query()
	serial := strings.ToUpper(strings.TrimSpace(q.Get("serial")))
	if serial != "" {
		// A serial is unique but for twins under several CAs: one answer
		// opens its page.
		resp, err := c.Certs.GetCertificate(r.Context(), apiclient.Call(c, &pncpkiv1.GetCertificateRequest{Serial: serial, Issuer: q.Get("issuer")}))
		if err != nil {
			h.apiFail(w, r, s, err)
			return
		}
		cert := resp.Msg.Certificate
		http.Redirect(w, r, "/console/certificates/"+url.PathEscape(cert.Issuer)+"/"+url.PathEscape(cert.Serial), http.StatusSeeOther)
		return
	}
	req := &pncpkiv1.ListCertificatesRequest{CommonNamePrefix: strings.TrimSpace(q.Get("cn")), Profile: q.Get("profile"), Tenant: q.Get("tenant"),
		Issuer: q.Get("issuer"), PageSize: pageSize, PageToken: q.Get("page")}
	now := h.opts.Now()
	// The statuses of the overview's counts: valid is unrevoked and
	// unexpired, expired unrevoked and past notAfter.
	switch q.Get("status") {
	case "revoked":
		req.Revoked = new(bool)
		*req.Revoked = true
	case "valid":
		req.Revoked, req.ExpiringAfter = new(bool), timestamppb.New(now)
	case "expired":
		req.Revoked, req.ExpiringBefore = new(bool), timestamppb.New(now)
	}
	if d, err := strconv.Atoi(q.Get("expiring")); err == nil && d > 0 && d <= 3650 {
		// Soonest first: what runs out next is what needs renewing.
		req.ExpiringAfter, req.ExpiringBefore, req.OrderBy = timestamppb.New(now), timestamppb.New(now.AddDate(0, 0, d)), "expiry"
	}
	// An identifier typed in another form than the CNs carry (an EMAID
	// with separators, an EVSEID without) is looked for in theirs when
	// the CN as typed finds nothing.
	var resp *connect.Response[pncpkiv1.ListCertificatesResponse]
	for _, cn := range cnForms(req.CommonNamePrefix) {
		req.CommonNamePrefix = cn
		var err error
		if resp, err = c.Certs.ListCertificates(r.Context(), apiclient.Call(c, req)); err != nil {
			h.apiFail(w, r, s, err)
			return
		}
		if len(resp.Msg.Certificates) > 0 || req.PageToken != "" {
			break
		}
	}
	q.Set("cn", req.CommonNamePrefix)
	next := url.Values{}
	for k, v := range q {
		next[k] = v
	}
	next.Set("page", resp.Msg.NextPageToken)
	data := struct {
		Query    url.Values
		Certs    []*pncpkiv1.Certificate
		More     bool
		Next     string
		Profiles []*policies.Profile
	}{q, resp.Msg.Certificates, resp.Msg.NextPageToken != "", next.Encode(), policies.All()}
	h.render(w, http.StatusOK, "certificates", &page{Title: "Certificates", Session: s, Nav: "certificates", Data: data})
}

// cnForms is cn as typed, then as the normalised EMAID or EVSEID it
// names (contract certificates carry the EMAID without separators, SECC
// certificates the EVSEID with its '*'), where that differs.
func cnForms(cn string) []string {
	forms := []string{cn}
	add := func(f string) {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	if e, err := policies.ParseEMAID(cn); err == nil {
		add(e.String())
	}
	if e, err := policies.ParseEVSEID(cn); err == nil {
		add(e.String())
	}
	return forms
}

func (h *Handler) certificate(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	issuer, serial := r.PathValue("issuer"), r.PathValue("serial")
	resp, err := c.Certs.GetCertificate(r.Context(), apiclient.Call(c, &pncpkiv1.GetCertificateRequest{Issuer: issuer, Serial: serial}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	cert := resp.Msg.Certificate
	if r.URL.Query().Get("download") == "pem" {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", cert.Serial+".pem"))
		w.Write([]byte(cert.Pem))
		return
	}
	chain, err := c.Certs.GetChain(r.Context(), apiclient.Call(c, &pncpkiv1.GetChainRequest{Issuer: issuer, Serial: serial}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	x := pemOf(cert.Pem)
	data := struct {
		Cert     *pncpkiv1.Certificate
		Subject  string
		Issuer   string
		KeyAlg   string
		SigAlg   string
		SANs     []string
		OCSPURLs []string
		Chain    []string
		Lint     []string
		OCSP     string
		Reasons  []string
	}{Cert: cert}
	if x != nil {
		data.Subject, data.Issuer = ca.FormatName(x.RawSubject), ca.FormatName(x.RawIssuer)
		data.KeyAlg, data.SigAlg = x.PublicKeyAlgorithm.String(), x.SignatureAlgorithm.String()
		data.SANs = append(append(data.SANs, x.DNSNames...), x.EmailAddresses...)
		data.OCSPURLs = x.OCSPServer
		if p, err := policies.Lookup(cert.Profile); err == nil {
			for _, v := range p.Check(x, policies.SECCBoth) {
				data.Lint = append(data.Lint, v.String())
			}
		}
	}
	for _, p := range chain.Msg.Chain[1:] {
		if ic := pemOf(p); ic != nil {
			data.Chain = append(data.Chain, ca.FormatName(ic.RawSubject))
		}
	}
	data.OCSP = h.ocspStatus(r.Context(), x, chain.Msg.Chain)
	for name := range ca.Reasons {
		data.Reasons = append(data.Reasons, name)
	}
	slices.Sort(data.Reasons)
	h.render(w, http.StatusOK, "certificate", &page{Title: cert.CommonName, Session: s, Nav: "certificates", Data: data})
}

// ocspStatus asks pncpki's responder, as a relying party would.
func (h *Handler) ocspStatus(ctx context.Context, cert *x509.Certificate, chain []string) string {
	if h.opts.OCSP == nil || cert == nil || len(chain) < 2 {
		return "not asked"
	}
	issuer := pemOf(chain[1])
	if issuer == nil {
		return "not asked"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := h.opts.OCSP.Check(ctx, cert, issuer, "")
	if err != nil {
		return "no answer: " + err.Error()
	}
	switch res.Status {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked at " + res.RevokedAt.UTC().Format(time.RFC3339) + " (" + ca.ReasonName(res.Reason) + ")"
	}
	return "unknown"
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	issuer, serial := r.PathValue("issuer"), r.PathValue("serial")
	if r.PostFormValue("confirm") != serial {
		h.fail(w, r, s, http.StatusBadRequest, "request.invalid", "type the serial number to confirm the revocation")
		return
	}
	_, err := c.Certs.RevokeCertificate(r.Context(), apiclient.Call(c, &pncpkiv1.RevokeCertificateRequest{Issuer: issuer, Serial: serial, Reason: r.PostFormValue("reason")}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/certificates/"+url.PathEscape(issuer)+"/"+url.PathEscape(serial), http.StatusSeeOther)
}

// issuable are the leaf profiles offered for issuance: those a tenant may
// ask for (administrators: every leaf profile). The API decides.
func issuable(admin bool) []*policies.Profile {
	var out []*policies.Profile
	for _, p := range policies.All() {
		if !p.IsCA() && (admin || len(p.TenantKinds) > 0) {
			out = append(out, p)
		}
	}
	return out
}

func (h *Handler) issuePage(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	h.render(w, http.StatusOK, "issue", &page{Title: "Issue", Session: s, Nav: "issue", Data: issuable(s.Role == auth.RoleAdmin)})
}

func (h *Handler) issue(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	csr := r.PostFormValue("csr")
	if f, _, err := r.FormFile("file"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(f, maxForm))
		f.Close()
		if len(b) > 0 {
			csr = string(b)
		}
	}
	req := &pncpkiv1.SignCSRRequest{Profile: r.PostFormValue("profile"), Csr: csr, Tenant: r.PostFormValue("tenant")}
	if strings.TrimSpace(csr) == "" {
		h.fail(w, r, s, http.StatusBadRequest, "csr.invalid", "give a CSR: upload its file or paste its PEM")
		return
	}
	resp, err := c.Certs.SignCSR(r.Context(), apiclient.Call(c, req))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	cert := resp.Msg.Certificate
	http.Redirect(w, r, "/console/certificates/"+url.PathEscape(cert.Issuer)+"/"+url.PathEscape(cert.Serial), http.StatusSeeOther)
}

func (h *Handler) audit(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	h.auditPage(w, r, s, c, nil)
}

// auditVerify checks the whole chain through the API and shows the result
// above the log.
func (h *Handler) auditVerify(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	resp, err := c.Audit.VerifyAudit(r.Context(), apiclient.Call(c, &pncpkiv1.VerifyAuditRequest{}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	h.auditPage(w, r, s, c, resp.Msg)
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client, verified *pncpkiv1.VerifyAuditResponse) {
	q := r.URL.Query()
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	actions := strings.FieldsFunc(q.Get("action"), func(r rune) bool { return r == ',' || r == ' ' })
	resp, err := c.Audit.ListAudit(r.Context(), apiclient.Call(c, &pncpkiv1.ListAuditRequest{After: max(0, after), PageSize: 100, Actions: actions}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	data := struct {
		Entries  []*pncpkiv1.AuditEntry
		Action   string
		Next     string
		Head     int64
		Verified *pncpkiv1.VerifyAuditResponse
	}{Entries: resp.Msg.Entries, Action: q.Get("action"), Head: resp.Msg.HeadSeq, Verified: verified}
	if n := len(resp.Msg.Entries); n == 100 {
		next := url.Values{"after": {strconv.FormatInt(resp.Msg.Entries[n-1].Seq, 10)}, "action": {data.Action}}
		data.Next = next.Encode()
	}
	h.render(w, http.StatusOK, "audit", &page{Title: "Audit log", Session: s, Nav: "audit", Data: data})
}
