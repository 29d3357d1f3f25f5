package ocppsec

// The OCPP 1.6 security extension (OCPP 1.6 Security Whitepaper): the same
// operations as in 2.0.1 with fewer fields and 1.6's own enumerations.

// SignCertificate16 asks the central system to sign a charge point CSR.
type SignCertificate16 struct {
	CSR string `json:"csr" ocpp:"req,max=5500"`
}

// SignCertificate16Response accepts or rejects the CSR.
type SignCertificate16Response struct {
	Status string `json:"status" ocpp:"req,enum=GenericStatus"`
}

// CertificateSigned16 sends the signed chain, PEM, leaf first.
type CertificateSigned16 struct {
	CertificateChain string `json:"certificateChain" ocpp:"req,max=10000"`
}

// CertificateSigned16Response is the charge point's verdict.
type CertificateSigned16Response struct {
	Status string `json:"status" ocpp:"req,enum=CertificateSignedStatus"`
}

// InstallCertificate16 installs a CentralSystem or Manufacturer root.
type InstallCertificate16 struct {
	CertificateType string `json:"certificateType" ocpp:"req,enum=InstallCertificateUse"`
	Certificate     string `json:"certificate" ocpp:"req,max=5500"`
}

// InstallCertificate16Response is the charge point's answer.
type InstallCertificate16Response struct {
	Status string `json:"status" ocpp:"req,enum=InstallCertificateStatus"`
}

// CertificateHashData16 is CertificateHashData without customData.
type CertificateHashData16 struct {
	HashAlgorithm  string `json:"hashAlgorithm" ocpp:"req,enum=HashAlgorithm"`
	IssuerNameHash string `json:"issuerNameHash" ocpp:"req,max=128"`
	IssuerKeyHash  string `json:"issuerKeyHash" ocpp:"req,max=128"`
	SerialNumber   string `json:"serialNumber" ocpp:"req,max=40"`
}

// DeleteCertificate16 removes an installed certificate.
type DeleteCertificate16 struct {
	CertificateHashData CertificateHashData16 `json:"certificateHashData" ocpp:"req"`
}

// DeleteCertificate16Response is the charge point's answer.
type DeleteCertificate16Response struct {
	Status string `json:"status" ocpp:"req,enum=DeleteCertificateStatus"`
}

// GetInstalledCertificateIds16 asks for the roots of one type.
type GetInstalledCertificateIds16 struct {
	CertificateType string `json:"certificateType" ocpp:"req,enum=GetCertificateIdUse"`
}

// GetInstalledCertificateIds16Response lists them.
type GetInstalledCertificateIds16Response struct {
	CertificateHashData []CertificateHashData16 `json:"certificateHashData,omitempty" ocpp:"items=1:"`
	Status              string                  `json:"status" ocpp:"req,enum=GetInstalledCertificateStatus"`
}

// ExtendedTriggerMessage16 asks a charge point to send a message now, e.g.
// SignChargePointCertificate.
type ExtendedTriggerMessage16 struct {
	RequestedMessage string `json:"requestedMessage" ocpp:"req,enum=MessageTrigger"`
	ConnectorID      *int32 `json:"connectorId,omitempty"`
}

// ExtendedTriggerMessage16Response is the charge point's answer.
type ExtendedTriggerMessage16Response struct {
	Status string `json:"status" ocpp:"req,enum=TriggerMessageStatus"`
}

// DataTransfer16 carries the Plug and Charge messages of 1.6 stations: the
// OCA variant (vendorId org.openchargealliance.iso15118pnc, data = the 2.0.1
// payload as JSON text) and has.to.be's (vendorId iso15118).
type DataTransfer16 struct {
	VendorID  string `json:"vendorId" ocpp:"req,max=255"`
	MessageID string `json:"messageId,omitempty" ocpp:"max=50"`
	Data      string `json:"data,omitempty"`
}

// DataTransfer16Response answers a DataTransfer; data is again JSON text.
type DataTransfer16Response struct {
	Status string `json:"status" ocpp:"req,enum=DataTransferStatus"`
	Data   string `json:"data,omitempty"`
}

// Vendor IDs of the 1.6 Plug and Charge DataTransfer variants.
const (
	VendorOCA    = "org.openchargealliance.iso15118pnc"
	VendorHas2be = "iso15118"
)

// The has.to.be ISO 15118 extension of OCPP 1.6 (v1.3): its own field names
// (typeOfCertificate, 15118CertificateHashData) and smaller limits.

// Has2beSignCertificateRequest asks for a certificate.
type Has2beSignCertificateRequest struct {
	CSR               string `json:"csr" ocpp:"req,max=800"`
	TypeOfCertificate string `json:"typeOfCertificate,omitempty" ocpp:"enum=CertificateSigningUse"`
}

// Has2beCertificateSignedRequest sends the signed certificate.
type Has2beCertificateSignedRequest struct {
	Cert              string `json:"cert" ocpp:"req,max=10000"`
	TypeOfCertificate string `json:"typeOfCertificate" ocpp:"req,enum=CertificateSigningUse"`
}

// Has2beOCSPRequestData is OCSPRequestData with an optional responder.
type Has2beOCSPRequestData struct {
	HashAlgorithm  string `json:"hashAlgorithm" ocpp:"req,enum=HashAlgorithm"`
	IssuerNameHash string `json:"issuerNameHash" ocpp:"req,max=128"`
	IssuerKeyHash  string `json:"issuerKeyHash" ocpp:"req,max=128"`
	SerialNumber   string `json:"serialNumber" ocpp:"req,max=40"`
	ResponderURL   string `json:"responderURL,omitempty" ocpp:"max=512"`
}

// Has2beIdToken is an eMAID.
type Has2beIdToken struct {
	IDToken string `json:"idToken" ocpp:"req,max=36"`
	Type    string `json:"type" ocpp:"req,enum=IdToken"`
}

// Has2beAuthorizeRequest authorizes a contract by its hash data.
type Has2beAuthorizeRequest struct {
	IDToken                     Has2beIdToken           `json:"idToken" ocpp:"req"`
	ISO15118CertificateHashData []Has2beOCSPRequestData `json:"15118CertificateHashData" ocpp:"req,items=1:4"`
}

// Has2beIdTokenInfo is the authorization decision.
type Has2beIdTokenInfo struct {
	Status              string `json:"status" ocpp:"req,enum=AuthorizationStatus"`
	CacheExpiryDateTime string `json:"cacheExpiryDateTime,omitempty" ocpp:"datetime"`
}

// Has2beAuthorizeResponse has only Accepted and CertificateRevoked as
// certificate statuses.
type Has2beAuthorizeResponse struct {
	IDTokenInfo       Has2beIdTokenInfo `json:"idTokenInfo" ocpp:"req"`
	CertificateStatus string            `json:"certificateStatus" ocpp:"req,enum=AuthorizeCertificateStatus"`
}

// Has2beGet15118EVCertificateRequest forwards the vehicle's EXI request.
type Has2beGet15118EVCertificateRequest struct {
	SchemaVersion string `json:"15118SchemaVersion,omitempty" ocpp:"max=50"`
	EXIRequest    string `json:"exiRequest" ocpp:"req,max=5500"`
}

// Has2beCertificateChain is a certificate and its sub-CAs (DER, base64).
type Has2beCertificateChain struct {
	Certificate      string   `json:"certificate" ocpp:"req,max=800"`
	ChildCertificate []string `json:"childCertificate,omitempty" ocpp:"items=1:4,max=800"`
}

// Has2beGet15118EVCertificateResponse carries the EXI response.
type Has2beGet15118EVCertificateResponse struct {
	Status                            string                  `json:"status" ocpp:"req,enum=Iso15118EVCertificateStatus"`
	EXIResponse                       string                  `json:"exiResponse" ocpp:"req,max=5600"`
	ContractSignatureCertificateChain *Has2beCertificateChain `json:"contractSignatureCertificateChain,omitempty" ocpp:"open"`
	SAProvisioningCertificateChain    *Has2beCertificateChain `json:"saProvisioningCertificateChain,omitempty" ocpp:"open"`
}

// Has2beGetCertificateStatusRequest asks for an OCSP status.
type Has2beGetCertificateStatusRequest struct {
	OCSPRequestData Has2beOCSPRequestData `json:"ocspRequestData" ocpp:"req"`
}

// Has2beGetCertificateStatusResponse carries the OCSP response.
type Has2beGetCertificateStatusResponse struct {
	Status     string `json:"status" ocpp:"req,enum=GetCertificateStatus"`
	OCSPResult string `json:"ocspResult,omitempty" ocpp:"max=5500"`
}

// Has2beInstallCertificateRequest installs a root.
type Has2beInstallCertificateRequest struct {
	CertificateType string `json:"certificateType" ocpp:"req,enum=InstallCertificateUse"`
	Certificate     string `json:"certificate" ocpp:"req,max=800"`
}

// Has2beGetInstalledCertificateIdsRequest asks for installed certificates.
type Has2beGetInstalledCertificateIdsRequest struct {
	TypeOfCertificate []string `json:"typeOfCertificate,omitempty" ocpp:"items=1:,enum=GetCertificateIdUse"`
}

// Has2beGetInstalledCertificateIdsResponse lists them.
type Has2beGetInstalledCertificateIdsResponse struct {
	Status                   string                  `json:"status" ocpp:"req,enum=GetInstalledCertificateStatus"`
	CertificateHashDataChain []CertificateHashData16 `json:"certificateHashDataChain,omitempty" ocpp:"items=1:"`
}

// Has2beTriggerMessageRequest asks for a new CSR.
type Has2beTriggerMessageRequest struct {
	RequestedMessage string `json:"requestedMessage" ocpp:"req,enum=MessageTrigger"`
}
