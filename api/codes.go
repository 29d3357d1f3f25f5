package api

// Stable codes of the API's own refusals; the CA's are ca.Code*.
const (
	CodeAuthMissing         = "auth.missing"                   // no bearer token, API client certificate or token cookie
	CodeAuthInvalid         = "auth.invalid"                   // the token or certificate does not verify, has expired or was revoked
	CodeAuthForbidden       = "auth.forbidden"                 // the caller's role or tenant may not do this
	CodeRouteNotFound       = "route.not_found"                // no such route
	CodeMethodNotAllowed    = "route.method_not_allowed"       // the route does not take this method
	CodeMediaType           = "request.unsupported_media_type" // the body is not application/json
	CodeStoreUnavailable    = "store.unavailable"              // the store does not answer: retry after Retry-After
	CodeTenantExists        = "tenant.exists"                  // a tenant of that name exists
	CodeTenantInvalid       = "tenant.invalid"                 // a malformed tenant: name, kind or identifiers
	CodeOAuthClientExists   = "oauth_client.exists"            // an OAuth client of that ID exists
	CodeOAuthClientNotFound = "oauth_client.not_found"         // no OAuth client of that ID
	CodeStationInvalid      = "station.invalid"                // a malformed station registration
	CodeStationNotFound     = "station.not_found"              // no such station (or not the tenant's)
	CodeContractDisabled    = "contract.disabled"              // pncd runs without the contract service (no CPS key)
	CodeOCPPDisabled        = "ocpp.disabled"                  // pncd runs without the OCPP bridge
	CodeOCPPVersion         = "ocpp.version"                   // not OCPP 1.6, 2.0.1 or 2.1
	CodeOCPPCSMSResponse    = "ocpp.csms_response"             // the CSMS's answer to a call pncpki made does not fit its schema
	CodeNotImplemented      = "ocpp.NotImplemented"            // an OCPP action pncpki does not answer (the CSMS does)
)
