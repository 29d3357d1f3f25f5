package store

import (
	"context"
	"strings"
	"time"
)

// Contract binds an eMSP's contract (its EMAID) to a vehicle (its PCID).
// A PCID may have several contracts; one of them is its default.
// Its JSON form (pncctl -o json) has the API's snake_case keys.
type Contract struct {
	EMAID  string `json:"emaid"`  // normalised, with its check digit
	Tenant string `json:"tenant"` // the eMSP
	PCID   string `json:"pcid"`
	// Default marks the contract a vehicle gets when it does not ask for
	// one; at most one per PCID.
	Default bool `json:"default"`
	// ValidUntil ends the contract (zero: open-ended).
	ValidUntil  time.Time `json:"valid_until,omitzero"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	CancelledAt time.Time `json:"cancelled_at,omitzero"` // zero while active
}

// Cancelled reports whether the contract was cancelled.
func (c *Contract) Cancelled() bool { return !c.CancelledAt.IsZero() }

// Audit actions of the contract pool.
const (
	AuditContractPut    = "contract.put"
	AuditContractCancel = "contract.cancel"
)

// ContractAudit records a created or changed contract.
func ContractAudit(ctx context.Context, c *Contract) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: AuditContractPut, Object: c.EMAID,
		Detail: detail("tenant", c.Tenant, "pcid", c.PCID, "default", c.Default, "valid_until", c.ValidUntil)}
}

// Contracts is the contract pool of a store.
type Contracts interface {
	// PutContract creates a contract or replaces one of the same tenant
	// (a contract never moves to another tenant: ErrExists; a cancelled
	// one is not revived: ErrExists). A default contract takes the
	// default from the PCID's others in the same transaction.
	PutContract(ctx context.Context, c *Contract) error
	Contract(ctx context.Context, emaid string) (*Contract, error)
	// ListContracts returns the contracts of a tenant and/or a PCID (empty:
	// any), by EMAID.
	ListContracts(ctx context.Context, tenant, pcid string) ([]*Contract, error)
	// CancelContract marks a contract cancelled and returns it.
	CancelContract(ctx context.Context, emaid string, at time.Time) (*Contract, error)
}

// ProvisioningCertificate is a vehicle's OEM provisioning certificate,
// registered by its OEM under the vehicle's PCID (the provisioning
// certificate pool): the contract service checks installation requests
// against it.
type ProvisioningCertificate struct {
	PCID      string
	Tenant    string // the OEM
	DER       []byte // the leaf
	Chain     []byte // its sub-CAs, DER concatenated (may be empty)
	CreatedAt time.Time
}

// Audit actions of the provisioning certificate pool.
const (
	AuditProvisioningPut    = "provisioning.put"
	AuditProvisioningDelete = "provisioning.delete"
)

// ProvisioningCertificates is the provisioning certificate pool of a store.
type ProvisioningCertificates interface {
	// PutProvisioningCertificate registers or replaces the certificate of
	// a PCID; a PCID of another OEM is refused (ErrExists).
	PutProvisioningCertificate(ctx context.Context, p *ProvisioningCertificate) error
	ProvisioningCertificate(ctx context.Context, pcid string) (*ProvisioningCertificate, error)
	// ListProvisioningCertificates returns a tenant's (all: ""), by PCID.
	ListProvisioningCertificates(ctx context.Context, tenant string) ([]*ProvisioningCertificate, error)
	DeleteProvisioningCertificate(ctx context.Context, pcid string) error
}

// ProvisioningAudit records a registered or removed provisioning
// certificate (by fingerprint).
func ProvisioningAudit(ctx context.Context, action, pcid, tenant string, der []byte) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: action, Object: pcid, Detail: detail("tenant", tenant, "certificate_sha256", fingerprint(der))}
}

// OEMSubCA is a vehicle OEM's sub-CA certificate registered by the OEM, so
// that installation requests, which carry only the provisioning leaf,
// chain to the OEM's root without a provisioning certificate registered
// per vehicle.
type OEMSubCA struct {
	SHA256    string // hex fingerprint of DER, the key
	Tenant    string // the OEM
	DER       []byte
	CreatedAt time.Time
}

// Audit actions of the OEM sub-CA registry.
const (
	AuditOEMSubCAPut    = "oem_subca.put"
	AuditOEMSubCADelete = "oem_subca.delete"
)

// OEMSubCAs is the OEM sub-CA registry of a store.
type OEMSubCAs interface {
	// PutOEMSubCA registers a sub-CA (again: nothing changes); one of
	// another tenant is refused (ErrExists).
	PutOEMSubCA(ctx context.Context, c *OEMSubCA) error
	// OEMSubCAs returns a tenant's sub-CAs (all: ""), by fingerprint.
	OEMSubCAs(ctx context.Context, tenant string) ([]*OEMSubCA, error)
	DeleteOEMSubCA(ctx context.Context, sha256 string) error
}

// OEMSubCAAudit records a registered or removed OEM sub-CA.
func OEMSubCAAudit(ctx context.Context, action string, c *OEMSubCA) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: action, Object: c.SHA256, Detail: detail("tenant", c.Tenant)}
}

// ContractDeposit is signed contract data an eMSP with its own MO PKI
// deposits for a vehicle: pncpki only signs and packages it as the CPS.
type ContractDeposit struct {
	PCID         string
	Tenant       string // the eMSP
	EMAID        string
	Chain        []byte // the contract certificate and its sub-CAs, DER concatenated, leaf first
	EncryptedKey []byte // ContractSignatureEncryptedPrivateKey (IV and ciphertext)
	DHPublicKey  []byte // DHpublickey, uncompressed point
	CreatedAt    time.Time
}

// Audit actions of contract deposits.
const (
	AuditDepositPut    = "contract_deposit.put"
	AuditDepositDelete = "contract_deposit.delete"
)

// ContractDeposits holds the deposits of a store, one per PCID.
type ContractDeposits interface {
	// PutContractDeposit stores or replaces the deposit of a PCID; one of
	// another tenant is refused (ErrExists).
	PutContractDeposit(ctx context.Context, d *ContractDeposit) error
	ContractDeposit(ctx context.Context, pcid string) (*ContractDeposit, error)
	// ListContractDeposits returns a tenant's (all: ""), by PCID.
	ListContractDeposits(ctx context.Context, tenant string) ([]*ContractDeposit, error)
	DeleteContractDeposit(ctx context.Context, pcid string) error
}

// DepositAudit records a stored or removed deposit.
func DepositAudit(ctx context.Context, action string, d *ContractDeposit) *AuditEntry {
	return &AuditEntry{Actor: ActorFrom(ctx), Action: action, Object: d.PCID, Detail: detail("tenant", d.Tenant, "emaid", d.EMAID)}
}

// InstallationRecord is one answered Get15118EVCertificate: what a station
// asked for and what pncpki answered, so that an operator can see why a
// vehicle's installation failed without reading logs.
type InstallationRecord struct {
	Seq          int64     `json:"seq"` // assigned by the store, increasing
	At           time.Time `json:"time"`
	Station      string    `json:"station,omitempty"` // "" when not asked through a known station
	Action       string    `json:"action"`            // Install or Update
	PCID         string    `json:"pcid,omitempty"`    // "" when the request did not get that far
	EMAID        string    `json:"emaid,omitempty"`
	EMSP         string    `json:"emsp,omitempty"`   // tenant of the contract ("" unknown)
	OEM          string    `json:"oem,omitempty"`    // tenant of the registered provisioning certificate ("" none)
	ResponseCode string    `json:"response_code"`    // ISO 15118 ResponseCode: OK or the failure's
	Reason       string    `json:"reason,omitempty"` // pncpki's reason for a refusal ("" for OK)
	Source       string    `json:"source,omitempty"` // issued, deposit, upstream or repeated ("" for a refusal)
	Size         int       `json:"size"`             // the exiResponse's length in base64 characters
	Limit        int       `json:"size_limit"`       // the exiResponse limit it was measured against (0: none)
}

// InstallationFilter selects installation records, newest first.
type InstallationFilter struct {
	Tenant string // as eMSP or OEM; "": all
	PCID   string
	EMAID  string
	Before int64 // records with a smaller Seq (0: from the newest)
	Limit  int
}

// Installations is the installation log of a store.
type Installations interface {
	// PutInstallation appends r and sets its Seq.
	PutInstallation(ctx context.Context, r *InstallationRecord) error
	ListInstallations(ctx context.Context, f InstallationFilter) ([]*InstallationRecord, error)
}

// Where renders the filter as an SQL WHERE clause with its arguments for
// the SQL stores (see Filter.Where); Limit is left to the caller.
func (f InstallationFilter) Where(placeholder func(i int) string) (string, []any) {
	var conds []string
	var args []any
	p := func(v any) string {
		args = append(args, v)
		return placeholder(len(args))
	}
	if f.Tenant != "" {
		conds = append(conds, "(emsp = "+p(f.Tenant)+" OR oem = "+p(f.Tenant)+")")
	}
	if f.PCID != "" {
		conds = append(conds, "pcid = "+p(f.PCID))
	}
	if f.EMAID != "" {
		conds = append(conds, "emaid = "+p(f.EMAID))
	}
	if f.Before > 0 {
		conds = append(conds, "seq < "+p(f.Before))
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}
