package contract

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/pncpki/pncpki/contract/exi"
)

// EV plays the vehicle's side of ISO 15118-2 contract certificate
// installation and update, for tests and `pncctl contracts simulate-ev`:
// it builds and signs requests and checks and decrypts answers as a
// vehicle does.
type EV struct {
	// ProvisioningCert and ProvisioningKey are the OEM provisioning
	// certificate and its key (Install).
	ProvisioningCert *x509.Certificate
	ProvisioningKey  *ecdsa.PrivateKey
	// Roots are the roots the vehicle trusts and lists in
	// ListOfRootCertificateIDs (V2G and MO roots).
	Roots []*x509.Certificate
}

// SessionID is the SessionID the simulated vehicle sends.
var SessionID = []byte{0x50, 0x4e, 0x43, 0x50, 0x4b, 0x49, 0x45, 0x56}

func (ev *EV) rootList() *exi.Element {
	l := exi.New("ListOfRootCertificateIDs")
	for _, r := range ev.Roots {
		l.Children = append(l.Children, exi.New("RootCertificateID",
			exi.Text("X509IssuerName", r.Subject.String()),
			exi.Text("X509SerialNumber", r.SerialNumber.String())))
	}
	return l
}

func (ev *EV) request(body *exi.Element, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := signature(key, body)
	if err != nil {
		return nil, err
	}
	return exi.ISO2.Encode(exi.New("V2G_Message",
		exi.New("Header", exi.Text("SessionID", hex.EncodeToString(SessionID)), sig),
		exi.New("Body", body)))
}

// InstallationRequest returns a signed CertificateInstallationReq.
func (ev *EV) InstallationRequest() ([]byte, error) {
	if ev.ProvisioningCert == nil || ev.ProvisioningKey == nil {
		return nil, errors.New("the vehicle needs its provisioning certificate and key")
	}
	return ev.request(exi.New("CertificateInstallationReq",
		exi.Text("OEMProvisioningCert", base64.StdEncoding.EncodeToString(ev.ProvisioningCert.Raw)),
		ev.rootList()).WithAttr("Id", "id1"), ev.ProvisioningKey)
}

// UpdateRequest returns a CertificateUpdateReq signed with the current
// contract key.
func (ev *EV) UpdateRequest(chain []*x509.Certificate, key *ecdsa.PrivateKey, emaid string) ([]byte, error) {
	return ev.request(exi.New("CertificateUpdateReq",
		certChain("ContractSignatureCertChain", "", chain),
		exi.Text("eMAID", emaid),
		ev.rootList()).WithAttr("Id", "id1"), key)
}

// Installed is what a vehicle takes from a successful response.
type Installed struct {
	EMAID         string
	ContractChain []*x509.Certificate // leaf first
	ContractKey   *ecdsa.PrivateKey
	CPSChain      []*x509.Certificate // leaf first
}

// ReadResponse checks a CertificateInstallationRes or CertificateUpdateRes
// as the vehicle must: the CPS chain leads to one of its roots, the CPS
// signature covers the four elements, and the decrypted contract key
// (recipient is the provisioning key for Install, the old contract key
// for Update) belongs to the contract certificate.
func (ev *EV) ReadResponse(data []byte, recipient *ecdsa.PrivateKey) (*Installed, error) {
	doc, err := exi.ISO2.Decode(data)
	if err != nil {
		return nil, err
	}
	body := doc.Child("Body")
	res := body.Child("CertificateInstallationRes")
	if res == nil {
		res = body.Child("CertificateUpdateRes")
	}
	if res == nil {
		return nil, errors.New("not a CertificateInstallationRes or CertificateUpdateRes")
	}
	if rc := res.Child("ResponseCode").Val(); rc != ResponseOK && rc != "OK_CertificateExpiresSoon" {
		return nil, fmt.Errorf("ResponseCode %s", rc)
	}
	if got := doc.Child("Header").Child("SessionID").Val(); got != hex.EncodeToString(SessionID) && got != fmt.Sprintf("%X", SessionID) {
		return nil, fmt.Errorf("SessionID %s is not the request's", got)
	}
	cps, err := parseChain(res.Child("SAProvisioningCertificateChain"))
	if err != nil {
		return nil, fmt.Errorf("SAProvisioningCertificateChain: %w", err)
	}
	if err := ev.verifyChain(cps); err != nil {
		return nil, fmt.Errorf("CPS chain: %w", err)
	}
	pub, ok := cps[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("the CPS certificate has no ECDSA key")
	}
	if err := verifySignature(doc.Child("Header").Child("Signature"), body, pub, "id1", "id2", "id3", "id4"); err != nil {
		return nil, fmt.Errorf("CPS signature: %w", err)
	}
	contract, err := parseChain(res.Child("ContractSignatureCertChain"))
	if err != nil {
		return nil, fmt.Errorf("ContractSignatureCertChain: %w", err)
	}
	enc, err1 := base64.StdEncoding.DecodeString(res.Child("ContractSignatureEncryptedPrivateKey").Val())
	dh, err2 := base64.StdEncoding.DecodeString(res.Child("DHpublickey").Val())
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	key, err := DecryptPrivateKey(enc, dh, recipient)
	if err != nil {
		return nil, fmt.Errorf("decrypt the contract key: %w", err)
	}
	if !key.PublicKey.Equal(contract[0].PublicKey) {
		return nil, errors.New("the decrypted key is not the contract certificate's")
	}
	emaid := res.Child("eMAID").Val()
	if contract[0].Subject.CommonName != emaid {
		return nil, fmt.Errorf("contract certificate for %s, eMAID %s", contract[0].Subject.CommonName, emaid)
	}
	return &Installed{EMAID: emaid, ContractChain: contract, ContractKey: key, CPSChain: cps}, nil
}

func (ev *EV) verifyChain(chain []*x509.Certificate) error {
	_, err := verifyChain(chain[0], ev.Roots, chain[1:], time.Now())
	return err
}
