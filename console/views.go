package console

import (
	"net/http"
	"net/url"

	"github.com/pncpki/pncpki/api/apiclient"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
)

// The list views: each is one or more API calls and a template, and shows
// what the session's token may list.

func (h *Handler) stations(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	resp, err := c.Stations.ListStations(r.Context(), apiclient.Call(c, &pncpkiv1.ListStationsRequest{Tenant: r.URL.Query().Get("tenant")}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	h.render(w, http.StatusOK, "stations", &page{Title: "Stations", Session: s, Nav: "stations", Data: resp.Msg.Stations})
}

func (h *Handler) station(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	resp, err := c.Stations.GetStation(r.Context(), apiclient.Call(c, &pncpkiv1.GetStationRequest{Id: r.PathValue("id")}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	h.render(w, http.StatusOK, "station", &page{Title: resp.Msg.Station.Id, Session: s, Nav: "stations", Data: resp.Msg})
}

func (h *Handler) contracts(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	q := r.URL.Query()
	data := struct {
		PCID, EMAID   string
		Contracts     []*pncpkiv1.Contract
		Provisioning  []*pncpkiv1.ProvisioningCertificate
		Installations []*pncpkiv1.Installation
		Next          string // query of the next page of installations
	}{PCID: q.Get("pcid"), EMAID: q.Get("emaid")}
	// Each list as far as the tenant's kind allows: an eMSP has contracts,
	// an OEM provisioning certificates, an administrator both.
	if resp, err := c.Contracts.ListContracts(r.Context(), apiclient.Call(c, &pncpkiv1.ListContractsRequest{Pcid: data.PCID})); err == nil {
		data.Contracts = resp.Msg.Contracts
	} else if code, _ := apiCode(err); code != "auth.forbidden" {
		h.apiFail(w, r, s, err)
		return
	}
	if resp, err := c.Provisioning.ListProvisioningCertificates(r.Context(), apiclient.Call(c, &pncpkiv1.ListProvisioningCertificatesRequest{})); err == nil {
		data.Provisioning = resp.Msg.Certificates
	} else if code, _ := apiCode(err); code != "auth.forbidden" {
		h.apiFail(w, r, s, err)
		return
	}
	resp, err := c.Contracts.ListInstallations(r.Context(), apiclient.Call(c, &pncpkiv1.ListInstallationsRequest{
		Pcid: data.PCID, Emaid: data.EMAID, PageSize: 50, PageToken: q.Get("before")}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	data.Installations = resp.Msg.Installations
	if resp.Msg.NextPageToken != "" {
		data.Next = url.Values{"pcid": {data.PCID}, "emaid": {data.EMAID}, "before": {resp.Msg.NextPageToken}}.Encode()
	}
	h.render(w, http.StatusOK, "contracts", &page{Title: "Contracts and provisioning", Session: s, Nav: "contracts", Data: data})
}

func (h *Handler) anchors(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	resp, err := c.Authorities.ListTrustAnchors(r.Context(), apiclient.Call(c, &pncpkiv1.ListTrustAnchorsRequest{Use: r.URL.Query().Get("use")}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	h.render(w, http.StatusOK, "anchors", &page{Title: "Trust anchors", Session: s, Nav: "anchors", Data: resp.Msg.Anchors})
}

// access lists tenants, tokens and OAuth clients: administrators only, as
// the API decides.
func (h *Handler) access(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	ctx := r.Context()
	tenants, err := c.Tenants.ListTenants(ctx, apiclient.Call(c, &pncpkiv1.ListTenantsRequest{}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	tokens, err := c.Tokens.ListTokens(ctx, apiclient.Call(c, &pncpkiv1.ListTokensRequest{All: r.URL.Query().Get("all") != ""}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	clients, err := c.Tokens.ListOAuthClients(ctx, apiclient.Call(c, &pncpkiv1.ListOAuthClientsRequest{}))
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	data := struct {
		Tenants []*pncpkiv1.Tenant
		Tokens  []*pncpkiv1.Token
		Clients []*pncpkiv1.OAuthClient
	}{tenants.Msg.Tenants, tokens.Msg.Tokens, clients.Msg.Clients}
	h.render(w, http.StatusOK, "access", &page{Title: "Tenants and access", Session: s, Nav: "access", Data: data})
}
