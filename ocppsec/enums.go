package ocppsec

import "slices"

// enums holds the values of every enumeration per dialect; the "" entry
// applies to every dialect without its own.
var enums = map[string]map[Dialect][]string{
	"HashAlgorithm": {"": {"SHA256", "SHA384", "SHA512"}},
	"GenericStatus": {"": {"Accepted", "Rejected"}},
	"CertificateSigningUse": {
		"":     {"ChargingStationCertificate", "V2GCertificate"},
		OCPP21: {"ChargingStationCertificate", "V2GCertificate", "V2G20Certificate"},
	},
	"CertificateSignedStatus": {"": {"Accepted", "Rejected"}},
	"InstallCertificateUse": {
		"":     {"V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "ManufacturerRootCertificate"},
		OCPP21: {"V2GRootCertificate", "MORootCertificate", "ManufacturerRootCertificate", "CSMSRootCertificate", "OEMRootCertificate"},
		OCPP16: {"CentralSystemRootCertificate", "ManufacturerRootCertificate"},
	},
	"InstallCertificateStatus": {"": {"Accepted", "Rejected", "Failed"}},
	"DeleteCertificateStatus":  {"": {"Accepted", "Failed", "NotFound"}},
	"GetCertificateIdUse": {
		"":     {"V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "V2GCertificateChain", "ManufacturerRootCertificate"},
		OCPP21: {"V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "V2GCertificateChain", "ManufacturerRootCertificate", "OEMRootCertificate"},
		OCPP16: {"CentralSystemRootCertificate", "ManufacturerRootCertificate"},
	},
	"GetInstalledCertificateStatus": {"": {"Accepted", "NotFound"}},
	"CertificateAction":             {"": {"Install", "Update"}},
	"Iso15118EVCertificateStatus":   {"": {"Accepted", "Failed"}},
	"GetCertificateStatus":          {"": {"Accepted", "Failed"}},
	"IdToken": {
		"":     {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization"},
		Has2be: {"eMAID"},
	},
	"AuthorizationStatus": {"": {"Accepted", "Blocked", "ConcurrentTx", "Expired", "Invalid", "NoCredit", "NotAllowedTypeEVSE", "NotAtThisLocation", "NotAtThisTime", "Unknown"}},
	"AuthorizeCertificateStatus": {
		"":     {"Accepted", "SignatureError", "CertificateExpired", "CertificateRevoked", "NoCertificateAvailable", "CertChainError", "ContractCancelled"},
		Has2be: {"Accepted", "CertificateRevoked"},
	},
	"MessageTrigger": {
		OCPP201: {"BootNotification", "LogStatusNotification", "FirmwareStatusNotification", "Heartbeat", "MeterValues", "SignChargingStationCertificate", "SignV2GCertificate", "StatusNotification", "TransactionEvent", "SignCombinedCertificate", "PublishFirmwareStatusNotification"},
		OCPP21:  {"BootNotification", "LogStatusNotification", "FirmwareStatusNotification", "Heartbeat", "MeterValues", "SignChargingStationCertificate", "SignV2GCertificate", "SignV2G20Certificate", "StatusNotification", "TransactionEvent", "SignCombinedCertificate", "PublishFirmwareStatusNotification", "CustomTrigger"},
		OCPP16:  {"BootNotification", "LogStatusNotification", "FirmwareStatusNotification", "Heartbeat", "MeterValues", "SignChargePointCertificate", "StatusNotification"},
		Has2be:  {"SignChargingStationCertificate", "SignV2GCertificate"},
	},
	"TriggerMessageStatus":    {"": {"Accepted", "Rejected", "NotImplemented"}},
	"CertificateStatusSource": {"": {"CRL", "OCSP"}},
	"CertificateStatus":       {"": {"Good", "Revoked", "Unknown", "Failed"}},
	"DataTransferStatus":      {"": {"Accepted", "Rejected", "UnknownMessageId", "UnknownVendorId"}},
	"MessageFormat":           {"": {"ASCII", "HTML", "URI", "UTF8"}},
	"Attribute":               {"": {"Actual", "Target", "MinSet", "MaxSet"}},
	"GetVariableStatus":       {"": {"Accepted", "Rejected", "UnknownComponent", "UnknownVariable", "NotSupportedAttributeType"}},
}

// EnumValues returns the values of enumeration name in dialect d.
func EnumValues(d Dialect, name string) []string {
	e := enums[name]
	if vs, ok := e[d]; ok {
		return vs
	}
	return e[""]
}

func enumHas(d Dialect, name, v string) bool {
	return slices.Contains(EnumValues(d, name), v)
}
