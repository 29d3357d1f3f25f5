// Package ocppsec is pncpki's OCPP security bridge: the certificate
// messages of OCPP 2.0.1, 2.1, the 1.6 security extension and the two 1.6
// Plug and Charge DataTransfer variants (OCA, has.to.be) as Go types
// validated to the limits of the official schemas; the Bridge that answers
// them (SignCertificate against the station registry, GetCertificateStatus
// and Authorize through OCSP, root sync and renewal triggers); and the
// OCPP-J Proxy that puts the Bridge between charging stations and any CSMS.
package ocppsec
