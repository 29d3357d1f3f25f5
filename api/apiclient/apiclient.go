// Package apiclient is a client of pncpki's API, for the programs that use
// it as any caller does: pncctl (over HTTP with --server, or in process for
// a local data directory) and the web console (in process).
package apiclient

import (
	"net/http"
	"net/http/httptest"

	"connectrpc.com/connect"

	"github.com/pncpki/pncpki/api/gen/pncpki/v1/pncpkiv1connect"
)

// Client calls the API's services as the holder of one token.
type Client struct {
	token        string
	Certs        pncpkiv1connect.CertificateServiceClient
	Authorities  pncpkiv1connect.AuthorityServiceClient
	Tenants      pncpkiv1connect.TenantServiceClient
	Tokens       pncpkiv1connect.TokenServiceClient
	Audit        pncpkiv1connect.AuditServiceClient
	Stations     pncpkiv1connect.StationServiceClient
	Contracts    pncpkiv1connect.ContractServiceClient
	Provisioning pncpkiv1connect.ProvisioningServiceClient
	OCPP         pncpkiv1connect.OCPPServiceClient
}

// New is the API at base through h, as the holder of token.
func New(h *http.Client, base, token string) *Client {
	return &Client{
		token:        token,
		Certs:        pncpkiv1connect.NewCertificateServiceClient(h, base),
		Authorities:  pncpkiv1connect.NewAuthorityServiceClient(h, base),
		Tenants:      pncpkiv1connect.NewTenantServiceClient(h, base),
		Tokens:       pncpkiv1connect.NewTokenServiceClient(h, base),
		Audit:        pncpkiv1connect.NewAuditServiceClient(h, base),
		Stations:     pncpkiv1connect.NewStationServiceClient(h, base),
		Contracts:    pncpkiv1connect.NewContractServiceClient(h, base),
		Provisioning: pncpkiv1connect.NewProvisioningServiceClient(h, base),
		OCPP:         pncpkiv1connect.NewOCPPServiceClient(h, base),
	}
}

// Call wraps a message with c's bearer token.
func Call[T any](c *Client, m *T) *connect.Request[T] {
	r := connect.NewRequest(m)
	r.Header().Set("Authorization", "Bearer "+c.token)
	return r
}

// InProcess is an http.RoundTripper that hands requests to a handler in
// this process: the API's own handler, with all its checks, and no socket.
type InProcess struct{ Handler http.Handler }

// RoundTrip implements http.RoundTripper.
func (t InProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.Handler.ServeHTTP(rec, r)
	return rec.Result(), nil
}
