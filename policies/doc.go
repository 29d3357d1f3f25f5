// Package policies holds the certificate profiles of the Plug and Charge
// world (ISO 15118-2 and OCPP) as data, the identifier rules they depend on
// (EVSEID, SECC ID, EMAID with its check digit, PCID), the tenant name policy
// that decides who may receive which certificate, and the linter that checks
// a certificate or a CSR against a profile.
//
// The linter and the CA read the same Profile values, so the certificate a
// CA builds and the rules it is checked against cannot drift apart.
package policies
