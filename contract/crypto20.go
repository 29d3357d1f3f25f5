package contract

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/sign/ed448"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The algorithms of ISO 15118-20's two security variants (PNC-FACTS-20.md).
const (
	// SigECDSASHA512 signs with secp521r1 over SHA-512 (V2G20-2674); the
	// digest of a Reference is SHA-512.
	SigECDSASHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
	DigestSHA512   = "http://www.w3.org/2001/04/xmlenc#sha512"
	// SigEd448 signs with Ed448 (RFC 8032, PureEdDSA); the digest of a
	// Reference is SHAKE256 with 64 bytes out (V2G20-2319/2318).
	SigEd448        = "urn:iso:std:iso:15118:-20:Security:xmldsig#Ed448"
	DigestSHAKE256  = "urn:iso:std:iso:15118:-20:Security:xmlenc#SHAKE256"
	shake256DigestN = 64 // not in ISO text seen; EVerest and the vectors use 64
)

// oidEd448 is id-Ed448 (RFC 8410).
var oidEd448 = asn1.ObjectIdentifier{1, 3, 101, 113}

// Digest20 is the digest of a signed fragment's EXI under an ISO 15118-20
// DigestMethod.
func Digest20(method string, fragment []byte) ([]byte, error) {
	switch method {
	case DigestSHA512:
		d := sha512.Sum512(fragment)
		return d[:], nil
	case DigestSHAKE256:
		return sha3.SumSHAKE256(fragment, shake256DigestN), nil
	}
	return nil, fmt.Errorf("digest method %q: want SHA-512 or SHAKE256", method)
}

// VerifySignedInfo20 checks an ISO 15118-20 SignatureValue over the EXI of
// SignedInfo (its xmldsig fragment, not a hash of it) with the key of
// cert: r‖s of 66 bytes each for ECDSA on secp521r1 with SHA-512, or an
// Ed448 signature of 114 bytes. Go's x509 does not know Ed448 keys, so
// those are read from the certificate's SubjectPublicKeyInfo here.
func VerifySignedInfo20(method string, signedInfo, sig []byte, cert *x509.Certificate) error {
	switch method {
	case SigECDSASHA512:
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P521() {
			return errors.New("ecdsa-sha512 signature, but the certificate has no P-521 key")
		}
		if len(sig) != 132 {
			return fmt.Errorf("ECDSA P-521 signature of %d bytes, want r‖s of 132", len(sig))
		}
		h := sha512.Sum512(signedInfo)
		r, s := new(big.Int).SetBytes(sig[:66]), new(big.Int).SetBytes(sig[66:])
		if !ecdsa.Verify(pub, h[:], r, s) {
			return errors.New("signature does not verify")
		}
		return nil
	case SigEd448:
		pub, err := Ed448PublicKey(cert.RawSubjectPublicKeyInfo)
		if err != nil {
			return err
		}
		if len(sig) != ed448.SignatureSize {
			return fmt.Errorf("Ed448 signature of %d bytes, want %d", len(sig), ed448.SignatureSize)
		}
		if !ed448.Verify(pub, signedInfo, sig, "") {
			return errors.New("signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("signature method %q: want ecdsa-sha512 or Ed448", method)
}

// Ed448PublicKey reads an Ed448 key from a DER SubjectPublicKeyInfo.
func Ed448PublicKey(spki []byte) (ed448.PublicKey, error) {
	s := cryptobyte.String(spki)
	var inner, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	var key asn1.BitString
	if !s.ReadASN1(&inner, cbasn1.SEQUENCE) || !s.Empty() ||
		!inner.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) || !alg.Empty() ||
		!inner.ReadASN1BitString(&key) || !inner.Empty() {
		return nil, errors.New("malformed SubjectPublicKeyInfo")
	}
	if !oid.Equal(oidEd448) {
		return nil, fmt.Errorf("public key algorithm %v, want Ed448", oid)
	}
	if key.BitLength != 8*ed448.PublicKeySize {
		return nil, fmt.Errorf("Ed448 key of %d bits", key.BitLength)
	}
	return ed448.PublicKey(key.Bytes), nil
}

// KDF20 derives the AES-256 key of an ISO 15118-20 contract key transport
// from the shared secret Z: the one-step concatenation KDF of SP 800-56A
// with SHA-512, AlgorithmID 0x01, PartyUInfo 0x55 and PartyVInfo 0x56
// (V2G20-2535): SHA-512(00000001 ‖ Z ‖ 01 55 56), first 32 bytes.
func KDF20(z []byte) []byte {
	h := sha512.New()
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	h.Write([]byte{0x01, 0x55, 0x56})
	return h.Sum(nil)[:32]
}

// OpenPrivateKey20 decrypts an ISO 15118-20 encrypted contract key field,
// IV(12) ‖ ciphertext ‖ tag(16), with AES-256-GCM under key and aad (the
// PCID and the contract certificate's SKI as upper-case hex, V2G20-2492).
// A field whose tag does not authenticate is refused.
func OpenPrivateKey20(key, field, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(field) < gcm.NonceSize()+gcm.Overhead() {
		return nil, fmt.Errorf("encrypted private key of %d bytes", len(field))
	}
	plain, err := gcm.Open(nil, field[:gcm.NonceSize()], field[gcm.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("contract key does not authenticate: %w", err)
	}
	return plain, nil
}

// ECDHCurve values of ISO 15118-20 (V2G20-2487/2488).
const (
	CurveSECP521 = "SECP521"
	CurveX448    = "X448"
)

// DecryptPrivateKey20 is the vehicle's side of the ISO 15118-20 contract
// key transport: Z from its static OEM key (an *ecdsa.PrivateKey on P-521,
// or an *x448.Key) and the answer's DHPublicKey (0x04 and X and Y, 133
// bytes; or 0x04 and the X448 u coordinate, 57 bytes), the key from
// KDF20, and AES-256-GCM with the PCID and the contract certificate's SKI
// as upper-case hex for AAD.
func DecryptPrivateKey20(curve string, oemKey any, dhPublic, field []byte, pcid string, contractSKI []byte) ([]byte, error) {
	var z []byte
	switch curve {
	case CurveSECP521:
		k, ok := oemKey.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P521() {
			return nil, errors.New("SECP521 transport needs a P-521 OEM key")
		}
		priv, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		pub, err := ecdh.P521().NewPublicKey(dhPublic)
		if err != nil {
			return nil, fmt.Errorf("DHPublicKey: %w", err)
		}
		if z, err = priv.ECDH(pub); err != nil {
			return nil, err
		}
	case CurveX448:
		k, ok := oemKey.(*x448.Key)
		if !ok {
			return nil, errors.New("X448 transport needs an X448 OEM key")
		}
		if len(dhPublic) != 1+x448.Size || dhPublic[0] != 0x04 {
			return nil, fmt.Errorf("X448 DHPublicKey of %d bytes, want 0x04 and 56", len(dhPublic))
		}
		var pub, shared x448.Key
		copy(pub[:], dhPublic[1:])
		if !x448.Shared(&shared, k, &pub) {
			return nil, errors.New("DHPublicKey is a low-order point")
		}
		z = shared[:]
	default:
		return nil, fmt.Errorf("ECDHCurve %q: want SECP521 or X448", curve)
	}
	aad := append([]byte(pcid), strings.ToUpper(hex.EncodeToString(contractSKI))...)
	return OpenPrivateKey20(KDF20(z), field, aad)
}

// signP521 signs SignedInfo's EXI for ISO 15118-20 with a P-521 key (in a
// file or an HSM): SHA-512, and the signature as r‖s of 66 bytes each.
func signP521(signer crypto.Signer, signedInfo []byte) ([]byte, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P521() {
		return nil, errors.New("ISO 15118-20 ECDSA signatures need a P-521 key")
	}
	d := sha512.Sum512(signedInfo)
	der, err := signer.Sign(rand.Reader, d[:], crypto.SHA512)
	if err != nil {
		return nil, err
	}
	return rawECDSA(der, 66)
}

// EncryptPrivateKey20 encrypts a P-521 contract key for the vehicle whose
// OEM provisioning key is recipient, as ISO 15118-20 has it for SECP521:
// an ephemeral ECDH P-521 key, Z its x coordinate, KDF20, and AES-256-GCM
// over the 66-byte scalar with a random IV and PCID ‖ SKI (upper-case hex)
// for AAD. It returns the SECP521_EncryptedPrivateKey field (IV ‖
// ciphertext ‖ tag, 94 bytes) and the DHPublicKey (133 bytes).
func EncryptPrivateKey20(random io.Reader, key *ecdsa.PrivateKey, recipient *ecdsa.PublicKey, pcid string, contractSKI []byte) (field, dhPublic []byte, err error) {
	if key.Curve != elliptic.P521() || recipient.Curve != elliptic.P521() {
		return nil, nil, errors.New("SECP521 transport needs P-521 keys")
	}
	to, err := recipient.ECDH()
	if err != nil {
		return nil, nil, err
	}
	eph, err := ecdh.P521().GenerateKey(random)
	if err != nil {
		return nil, nil, err
	}
	z, err := eph.ECDH(to)
	if err != nil {
		return nil, nil, err
	}
	plain, err := key.Bytes() // the 66-byte big-endian scalar
	if err != nil {
		return nil, nil, err
	}
	defer clear(plain)
	block, err := aes.NewCipher(KDF20(z))
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	iv := make([]byte, gcm.NonceSize())
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, nil, err
	}
	aad := append([]byte(pcid), strings.ToUpper(hex.EncodeToString(contractSKI))...)
	return gcm.Seal(iv, iv, plain, aad), eph.PublicKey().Bytes(), nil
}
