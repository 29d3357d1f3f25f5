package ocppsec

import "encoding/json"

// The security messages of OCPP 2.0.1 and 2.1. One Go type serves both
// dialects: the `ocpp` tags say where they differ (see rule). Payloads are
// checked with Decode and Validate; the field names are those of the
// schemas.

// CustomData is the vendor extension every 2.x object may carry.
type CustomData struct {
	VendorID string `json:"vendorId"`
}

// StatusInfo explains a status: reasonCode is a short machine code.
type StatusInfo struct {
	CustomData     *CustomData `json:"customData,omitempty"`
	ReasonCode     string      `json:"reasonCode" ocpp:"req,max=20"`
	AdditionalInfo string      `json:"additionalInfo,omitempty" ocpp:"max=512,max@2.1=1024"`
}

// CertificateHashData identifies a certificate as in an RFC 6960 CertID:
// hashes of its issuer's name and key, and its serial number in hex.
type CertificateHashData struct {
	CustomData     *CustomData `json:"customData,omitempty"`
	HashAlgorithm  string      `json:"hashAlgorithm" ocpp:"req,enum=HashAlgorithm"`
	IssuerNameHash string      `json:"issuerNameHash" ocpp:"req,max=128"`
	IssuerKeyHash  string      `json:"issuerKeyHash" ocpp:"req,max=128"`
	SerialNumber   string      `json:"serialNumber" ocpp:"req,max=40"`
}

// OCSPRequestData is CertificateHashData with the responder to ask.
type OCSPRequestData struct {
	CustomData     *CustomData `json:"customData,omitempty"`
	HashAlgorithm  string      `json:"hashAlgorithm" ocpp:"req,enum=HashAlgorithm"`
	IssuerNameHash string      `json:"issuerNameHash" ocpp:"req,max=128"`
	IssuerKeyHash  string      `json:"issuerKeyHash" ocpp:"req,max=128"`
	SerialNumber   string      `json:"serialNumber" ocpp:"req,max=40"`
	ResponderURL   string      `json:"responderURL" ocpp:"req,max=512,max@2.1=2000"`
}

// HashData returns the certificate identity without the responder.
func (o *OCSPRequestData) HashData() CertificateHashData {
	return CertificateHashData{HashAlgorithm: o.HashAlgorithm, IssuerNameHash: o.IssuerNameHash, IssuerKeyHash: o.IssuerKeyHash, SerialNumber: o.SerialNumber}
}

// SignCertificateRequest asks the CSMS to sign a station's CSR (A02, A03).
type SignCertificateRequest struct {
	CustomData          *CustomData          `json:"customData,omitempty"`
	CSR                 string               `json:"csr" ocpp:"req,max=5500"`
	CertificateType     string               `json:"certificateType,omitempty" ocpp:"enum=CertificateSigningUse"`
	HashRootCertificate *CertificateHashData `json:"hashRootCertificate,omitempty" ocpp:"in=2.1"`
	RequestID           *int32               `json:"requestId,omitempty" ocpp:"in=2.1"`
}

// SignCertificateResponse accepts or rejects a CSR; the certificate follows
// in a CertificateSignedRequest.
type SignCertificateResponse struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Status     string      `json:"status" ocpp:"req,enum=GenericStatus"`
	StatusInfo *StatusInfo `json:"statusInfo,omitempty"`
}

// CertificateSignedRequest sends the signed chain, PEM, leaf first.
type CertificateSignedRequest struct {
	CustomData       *CustomData `json:"customData,omitempty"`
	CertificateChain string      `json:"certificateChain" ocpp:"req,max=10000"`
	CertificateType  string      `json:"certificateType,omitempty" ocpp:"enum=CertificateSigningUse"`
	RequestID        *int32      `json:"requestId,omitempty" ocpp:"in=2.1"`
}

// CertificateSignedResponse is the station's verdict on the chain.
type CertificateSignedResponse struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Status     string      `json:"status" ocpp:"req,enum=CertificateSignedStatus"`
	StatusInfo *StatusInfo `json:"statusInfo,omitempty"`
}

// InstallCertificateRequest installs a root certificate (PEM) on a station.
type InstallCertificateRequest struct {
	CustomData      *CustomData `json:"customData,omitempty"`
	CertificateType string      `json:"certificateType" ocpp:"req,enum=InstallCertificateUse"`
	Certificate     string      `json:"certificate" ocpp:"req,max=5500,max@2.1=10000"`
}

// InstallCertificateResponse is the station's answer to an install.
type InstallCertificateResponse struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Status     string      `json:"status" ocpp:"req,enum=InstallCertificateStatus"`
	StatusInfo *StatusInfo `json:"statusInfo,omitempty"`
}

// DeleteCertificateRequest removes an installed certificate.
type DeleteCertificateRequest struct {
	CustomData          *CustomData         `json:"customData,omitempty"`
	CertificateHashData CertificateHashData `json:"certificateHashData" ocpp:"req"`
}

// DeleteCertificateResponse is the station's answer to a delete.
type DeleteCertificateResponse struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Status     string      `json:"status" ocpp:"req,enum=DeleteCertificateStatus"`
	StatusInfo *StatusInfo `json:"statusInfo,omitempty"`
}

// GetInstalledCertificateIdsRequest asks which certificates a station has.
type GetInstalledCertificateIdsRequest struct {
	CustomData      *CustomData `json:"customData,omitempty"`
	CertificateType []string    `json:"certificateType,omitempty" ocpp:"items=1:,enum=GetCertificateIdUse"`
}

// CertificateHashDataChain is one installed certificate and its
// sub-certificates.
type CertificateHashDataChain struct {
	CustomData               *CustomData           `json:"customData,omitempty"`
	CertificateHashData      CertificateHashData   `json:"certificateHashData" ocpp:"req"`
	CertificateType          string                `json:"certificateType" ocpp:"req,enum=GetCertificateIdUse"`
	ChildCertificateHashData []CertificateHashData `json:"childCertificateHashData,omitempty" ocpp:"items=1:4"`
}

// GetInstalledCertificateIdsResponse lists a station's certificates.
type GetInstalledCertificateIdsResponse struct {
	CustomData               *CustomData                `json:"customData,omitempty"`
	Status                   string                     `json:"status" ocpp:"req,enum=GetInstalledCertificateStatus"`
	StatusInfo               *StatusInfo                `json:"statusInfo,omitempty"`
	CertificateHashDataChain []CertificateHashDataChain `json:"certificateHashDataChain,omitempty" ocpp:"items=1:"`
}

// Get15118EVCertificateRequest forwards a vehicle's EXI
// CertificateInstallationReq or CertificateUpdateReq, base64.
type Get15118EVCertificateRequest struct {
	CustomData                       *CustomData `json:"customData,omitempty"`
	ISO15118SchemaVersion            string      `json:"iso15118SchemaVersion" ocpp:"req,max=50"`
	Action                           string      `json:"action" ocpp:"req,enum=CertificateAction"`
	EXIRequest                       string      `json:"exiRequest" ocpp:"req,max=5600,max@2.1=11000"`
	MaximumContractCertificateChains *int32      `json:"maximumContractCertificateChains,omitempty" ocpp:"in=2.1,min=0"`
	PrioritizedEMAIDs                []string    `json:"prioritizedEMAIDs,omitempty" ocpp:"in=2.1,items=1:8,max=255"`
}

// Get15118EVCertificateResponse carries the EXI response, base64.
type Get15118EVCertificateResponse struct {
	CustomData         *CustomData `json:"customData,omitempty"`
	Status             string      `json:"status" ocpp:"req,enum=Iso15118EVCertificateStatus"`
	StatusInfo         *StatusInfo `json:"statusInfo,omitempty"`
	EXIResponse        string      `json:"exiResponse" ocpp:"req,max=5600,max@2.1=17000"`
	RemainingContracts *int32      `json:"remainingContracts,omitempty" ocpp:"in=2.1,min=0"`
}

// GetCertificateStatusRequest asks for the OCSP status of a certificate.
type GetCertificateStatusRequest struct {
	CustomData      *CustomData     `json:"customData,omitempty"`
	OCSPRequestData OCSPRequestData `json:"ocspRequestData" ocpp:"req"`
}

// GetCertificateStatusResponse carries the DER OCSP response, base64.
type GetCertificateStatusResponse struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Status     string      `json:"status" ocpp:"req,enum=GetCertificateStatus"`
	StatusInfo *StatusInfo `json:"statusInfo,omitempty"`
	OCSPResult string      `json:"ocspResult,omitempty" ocpp:"max=5500,max@2.1=18000"`
}

// AdditionalInfo is a further identifier attached to an IdToken.
type AdditionalInfo struct {
	CustomData        *CustomData `json:"customData,omitempty"`
	AdditionalIDToken string      `json:"additionalIdToken" ocpp:"req,max=36,max@2.1=255"`
	Type              string      `json:"type" ocpp:"req,max=50"`
}

// IdToken identifies whoever asks to charge; for Plug and Charge its type
// is eMAID and the token is the contract's EMAID.
type IdToken struct {
	CustomData     *CustomData      `json:"customData,omitempty"`
	AdditionalInfo []AdditionalInfo `json:"additionalInfo,omitempty" ocpp:"items=1:"`
	IDToken        string           `json:"idToken" ocpp:"req,max=36,max@2.1=255"`
	Type           string           `json:"type" ocpp:"req,enum=IdToken,enum@2.1=,max@2.1=20"`
}

// AuthorizeRequest asks whether an idToken may charge; with Plug and
// Charge it carries the contract certificate or its hash data.
type AuthorizeRequest struct {
	CustomData                  *CustomData       `json:"customData,omitempty"`
	IDToken                     IdToken           `json:"idToken" ocpp:"req"`
	Certificate                 string            `json:"certificate,omitempty" ocpp:"max=5500,max@2.1=10000"`
	ISO15118CertificateHashData []OCSPRequestData `json:"iso15118CertificateHashData,omitempty" ocpp:"items=1:4"`
}

// AuthorizeResponse is the CSMS's decision. pncpki sets only
// certificateStatus (and, by policy, idTokenInfo.status): the rest is the
// CSMS's and passes through unchanged.
type AuthorizeResponse struct {
	CustomData            *CustomData     `json:"customData,omitempty"`
	IDTokenInfo           json.RawMessage `json:"idTokenInfo" ocpp:"req,raw"`
	CertificateStatus     string          `json:"certificateStatus,omitempty" ocpp:"enum=AuthorizeCertificateStatus"`
	AllowedEnergyTransfer json.RawMessage `json:"allowedEnergyTransfer,omitempty" ocpp:"in=2.1,raw"`
	Tariff                json.RawMessage `json:"tariff,omitempty" ocpp:"in=2.1,raw"`
}

// EVSE addresses an EVSE and optionally one of its connectors.
type EVSE struct {
	CustomData  *CustomData `json:"customData,omitempty"`
	ID          int32       `json:"id" ocpp:"req,min@2.1=0"`
	ConnectorID *int32      `json:"connectorId,omitempty" ocpp:"min@2.1=0"`
}

// TriggerMessageRequest asks a station to send a message now, e.g.
// SignV2GCertificate to renew its SECC certificate.
type TriggerMessageRequest struct {
	CustomData       *CustomData `json:"customData,omitempty"`
	RequestedMessage string      `json:"requestedMessage" ocpp:"req,enum=MessageTrigger"`
	EVSE             *EVSE       `json:"evse,omitempty"`
	CustomTrigger    string      `json:"customTrigger,omitempty" ocpp:"in=2.1,max=50"`
}

// TriggerMessageResponse is the station's answer to a trigger.
type TriggerMessageResponse struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Status     string      `json:"status" ocpp:"req,enum=TriggerMessageStatus"`
	StatusInfo *StatusInfo `json:"statusInfo,omitempty"`
}

// SecurityEventNotificationRequest reports a security event of a station.
type SecurityEventNotificationRequest struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Type       string      `json:"type" ocpp:"req,max=50"`
	Timestamp  string      `json:"timestamp" ocpp:"req,datetime"`
	TechInfo   string      `json:"techInfo,omitempty" ocpp:"max=255"`
}

// SecurityEventNotificationResponse is empty.
type SecurityEventNotificationResponse struct {
	CustomData *CustomData `json:"customData,omitempty"`
}

// CertificateStatusRequestInfo asks for one certificate's status (2.1).
type CertificateStatusRequestInfo struct {
	CustomData          *CustomData         `json:"customData,omitempty"`
	CertificateHashData CertificateHashData `json:"certificateHashData" ocpp:"req"`
	Source              string              `json:"source" ocpp:"req,enum=CertificateStatusSource"`
	URLs                []string            `json:"urls" ocpp:"req,items=1:5,max=2000"`
}

// GetCertificateChainStatusRequest asks for the status of up to four
// certificates of a chain (2.1).
type GetCertificateChainStatusRequest struct {
	CustomData                *CustomData                    `json:"customData,omitempty"`
	CertificateStatusRequests []CertificateStatusRequestInfo `json:"certificateStatusRequests" ocpp:"req,items=1:4"`
}

// CertificateStatus is one certificate's status (2.1).
type CertificateStatus struct {
	CustomData          *CustomData         `json:"customData,omitempty"`
	CertificateHashData CertificateHashData `json:"certificateHashData" ocpp:"req"`
	Source              string              `json:"source" ocpp:"req,enum=CertificateStatusSource"`
	Status              string              `json:"status" ocpp:"req,enum=CertificateStatus"`
	NextUpdate          string              `json:"nextUpdate" ocpp:"req,datetime"`
}

// GetCertificateChainStatusResponse answers GetCertificateChainStatus (2.1).
type GetCertificateChainStatusResponse struct {
	CustomData        *CustomData         `json:"customData,omitempty"`
	CertificateStatus []CertificateStatus `json:"certificateStatus" ocpp:"req,items=1:4"`
}

// GetVariablesRequest reads variables of a station's device model: pncpki
// asks for the longest exiResponse a station takes (FieldLengthVariable).
type GetVariablesRequest struct {
	CustomData      *CustomData       `json:"customData,omitempty"`
	GetVariableData []GetVariableData `json:"getVariableData" ocpp:"req,items=1:"`
}

// GetVariableData names one variable to read.
type GetVariableData struct {
	CustomData    *CustomData `json:"customData,omitempty"`
	AttributeType string      `json:"attributeType,omitempty" ocpp:"enum=Attribute"`
	Component     Component   `json:"component" ocpp:"req"`
	Variable      Variable    `json:"variable" ocpp:"req"`
}

// Component is a device model component.
type Component struct {
	CustomData *CustomData `json:"customData,omitempty"`
	EVSE       *EVSE       `json:"evse,omitempty"`
	Name       string      `json:"name" ocpp:"req,max=50"`
	Instance   string      `json:"instance,omitempty" ocpp:"max=50"`
}

// Variable is a variable of a component.
type Variable struct {
	CustomData *CustomData `json:"customData,omitempty"`
	Name       string      `json:"name" ocpp:"req,max=50"`
	Instance   string      `json:"instance,omitempty" ocpp:"max=50"`
}

// GetVariablesResponse holds a result per variable asked for.
type GetVariablesResponse struct {
	CustomData        *CustomData         `json:"customData,omitempty"`
	GetVariableResult []GetVariableResult `json:"getVariableResult" ocpp:"req,items=1:"`
}

// GetVariableResult is one variable's value, or why there is none.
type GetVariableResult struct {
	CustomData          *CustomData `json:"customData,omitempty"`
	AttributeStatus     string      `json:"attributeStatus" ocpp:"req,enum=GetVariableStatus"`
	AttributeStatusInfo *StatusInfo `json:"attributeStatusInfo,omitempty"`
	AttributeType       string      `json:"attributeType,omitempty" ocpp:"enum=Attribute"`
	AttributeValue      string      `json:"attributeValue,omitempty" ocpp:"max=2500"`
	Component           Component   `json:"component" ocpp:"req"`
	Variable            Variable    `json:"variable" ocpp:"req"`
}

// FieldLengthVariable is the device model variable in which a station
// says how long a field of a message may be; its instance names the
// field. OCPP 2.0.1 and 2.1 both have it.
var FieldLengthVariable = GetVariableData{
	Component: Component{Name: "OCPPCommCtrlr"},
	Variable:  Variable{Name: "FieldLength", Instance: "Get15118EVCertificateResponse.exiResponse"},
}
