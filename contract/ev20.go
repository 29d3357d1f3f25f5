package contract

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/ed448x509"
)

// EV20 plays an ISO 15118-20 vehicle of either security variant: it
// builds and signs CertificateInstallationReq with its OEM provisioning
// key and reads the answers, checking the CPS signature and chains and
// decrypting each contract key. Tests and 'pncctl contracts simulate-ev'
// use it.
type EV20 struct {
	// ProvisioningChain is the OEM provisioning certificate, then the
	// sub-CAs the vehicle sends with it (up to three).
	ProvisioningChain []*x509.Certificate
	// ProvisioningKey is the certificate's key: *ecdsa.PrivateKey on
	// P-521, or ed448.PrivateKey.
	ProvisioningKey crypto.Signer
	// X448Key is an Ed448 vehicle's key agreement key, whose public half
	// is in its certificate's subjectAltPublicKeyInfo.
	X448Key *x448.Key
	// Roots are the V2G and MO roots the vehicle holds and lists.
	Roots []*x509.Certificate
	// MaxContracts is MaximumContractCertificateChains (1 when 0).
	MaxContracts int
	// PrioritizedEMAIDs, when set, are the contracts the vehicle asks
	// for, in its order (at most 8).
	PrioritizedEMAIDs []string
	// SessionID is the V2G session's (8 bytes; SessionID when nil).
	SessionID []byte

	// last is the TimeStamp of the last request: each new request gets a
	// later one. pncpki answers a byte-identical request as a retry, and
	// Ed448 signatures are deterministic, so two requests of one second
	// would otherwise be the same request.
	last int64
}

func (ev *EV20) session() []byte {
	if ev.SessionID != nil {
		return ev.SessionID
	}
	return SessionID
}

// InstallationRequest returns a signed CertificateInstallationReq. The
// signature's Reference names the OEM chain's Id and digests the
// CertificateInstallationReq without the header's Signature, as
// EVerest's -20 code does (PNC-FACTS-20.md).
func (ev *EV20) InstallationRequest() ([]byte, error) {
	if len(ev.ProvisioningChain) == 0 || ev.ProvisioningKey == nil {
		return nil, errors.New("the vehicle needs its provisioning certificate and key")
	}
	const chainID = "id-oem"
	max := max(ev.MaxContracts, 1)
	req := exi.New("CertificateInstallationReq",
		header20(ev.session(), ev.timestamp(), nil),
		chain20("OEMProvisioningCertificateChain", ChainDER(ev.ProvisioningChain), false).WithAttr("Id", chainID),
		(&EV{Roots: ev.Roots}).rootList(),
		exi.Text("MaximumContractCertificateChains", strconv.Itoa(max)))
	if len(ev.PrioritizedEMAIDs) > 0 {
		l := exi.New("PrioritizedEMAIDs")
		for _, e := range ev.PrioritizedEMAIDs {
			l.Children = append(l.Children, exi.Text("EMAID", e))
		}
		req.Children = append(req.Children, l)
	}
	sig, err := signature20(ev.ProvisioningKey, sigRef{chainID, req})
	if err != nil {
		return nil, err
	}
	req.Children[0].Children = append(req.Children[0].Children, sig)
	return exi.ISO20.Encode(req)
}

func (ev *EV20) timestamp() int64 {
	ev.last = max(time.Now().Unix(), ev.last+1)
	return ev.last
}

// Installed20 is what a vehicle got from one ISO 15118-20 answer.
type Installed20 struct {
	EMAID         string
	ContractChain []*x509.Certificate // leaf first
	ContractKey   *ecdsa.PrivateKey   // secp521r1 variant
	// ContractScalar is the Ed448 variant's contract key as transported:
	// s mod L, 56 bytes big-endian (ed448x509.Scalar).
	ContractScalar []byte
	CPSChain       []*x509.Certificate // leaf first
	// Remaining is RemainingContractCertificateChains: how many more
	// contracts the vehicle gets by asking again.
	Remaining int
}

// ReadResponse20 checks an ISO 15118-20 CertificateInstallationRes as the
// vehicle does: its session, the CPS signature and chain to one of its
// roots, the contract chain to one of its roots, and the contract key,
// decrypted with its OEM key, against the contract certificate.
func (ev *EV20) ReadResponse20(data []byte, pcid string) (*Installed20, error) {
	msg, err := exi.ISO20.Decode(data)
	if err != nil {
		return nil, err
	}
	if msg.Name.Local != "CertificateInstallationRes" {
		return nil, fmt.Errorf("%s, not a CertificateInstallationRes", msg.Name.Local)
	}
	if rc := msg.Child("ResponseCode").Val(); rc != ResponseOK && rc != "OK_CertificateExpiresSoon" {
		return nil, fmt.Errorf("ResponseCode %s", rc)
	}
	if got := msg.Child("Header").Child("SessionID").Val(); got != hex.EncodeToString(ev.session()) && got != fmt.Sprintf("%X", ev.session()) {
		return nil, fmt.Errorf("SessionID %s is not the request's", got)
	}
	cps, err := ParseChain20(msg.Child("CPSCertificateChain"))
	if err != nil {
		return nil, fmt.Errorf("CPSCertificateChain: %w", err)
	}
	signer, err := VerifyMessage20(msg)
	if err != nil {
		return nil, fmt.Errorf("CPS signature: %w", err)
	}
	if !signer.Equal(cps[0]) {
		return nil, errors.New("the signer is not the CPS chain's leaf")
	}
	if err := (&EV{Roots: ev.Roots}).verifyChain(cps); err != nil {
		return nil, fmt.Errorf("CPS chain: %w", err)
	}
	sid := msg.Child("SignedInstallationData")
	contract, err := ParseChain20(sid.Child("ContractCertificateChain"))
	if err != nil {
		return nil, fmt.Errorf("ContractCertificateChain: %w", err)
	}
	if err := (&EV{Roots: ev.Roots}).verifyChain(contract); err != nil {
		return nil, fmt.Errorf("contract chain: %w", err)
	}
	curve := sid.Child("ECDHCurve").Val()
	fieldName, oemKey := "SECP521_EncryptedPrivateKey", any(ev.ProvisioningKey)
	if curve == CurveX448 {
		fieldName, oemKey = "X448_EncryptedPrivateKey", ev.X448Key
	}
	dh, err1 := base64.StdEncoding.DecodeString(sid.Child("DHPublicKey").Val())
	field, err2 := base64.StdEncoding.DecodeString(sid.Child(fieldName).Val())
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	plain, err := DecryptPrivateKey20(curve, oemKey, dh, field, pcid, contract[0].SubjectKeyId)
	if err != nil {
		return nil, err
	}
	inst := &Installed20{EMAID: contract[0].Subject.CommonName, ContractChain: contract, CPSChain: cps}
	if curve == CurveX448 {
		if err := ed448x509.CheckScalar(plain, ed448x509.PublicKey(contract[0])); err != nil {
			return nil, fmt.Errorf("contract key: %w", err)
		}
		inst.ContractScalar = plain
	} else {
		// The scalar is 66 bytes with 7 leading zero bits (V2G20-2497).
		if len(plain) != 66 || plain[0]&0xfe != 0 {
			return nil, fmt.Errorf("contract key of %d bytes, or over 521 bits", len(plain))
		}
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P521(), plain)
		if err != nil {
			return nil, fmt.Errorf("contract key: %w", err)
		}
		if !key.PublicKey.Equal(contract[0].PublicKey) {
			return nil, errors.New("the decrypted key is not the contract certificate's")
		}
		inst.ContractKey = key
	}
	remaining, err := strconv.Atoi(msg.Child("RemainingContractCertificateChains").Val())
	if err != nil {
		return nil, fmt.Errorf("RemainingContractCertificateChains: %w", err)
	}
	inst.Remaining = remaining
	return inst, nil
}

// ParseChain20 reads an ISO 15118-20 certificate chain element
// (Certificate, then SubCertificates), leaf first.
func ParseChain20(e *exi.Element) ([]*x509.Certificate, error) {
	if e == nil || e.Child("Certificate") == nil {
		return nil, errors.New("no certificate")
	}
	vals := []*exi.Element{e.Child("Certificate")}
	if subs := e.Child("SubCertificates"); subs != nil {
		vals = append(vals, subs.All("Certificate")...)
	}
	var out []*x509.Certificate
	for i, v := range vals {
		c, err := parseCertValue(v.Val())
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}
