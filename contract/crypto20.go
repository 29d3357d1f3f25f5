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
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/internal/ed448x509"
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
		pub, err := ed448x509.ParsePublicKey(cert.RawSubjectPublicKeyInfo)
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
		pub, err := x448DHPublic(dhPublic)
		if err != nil {
			return nil, err
		}
		var shared x448.Key
		if !x448.Shared(&shared, k, pub) {
			return nil, errors.New("DHPublicKey is a low-order point")
		}
		z = shared[:]
	default:
		return nil, fmt.Errorf("ECDHCurve %q: want SECP521 or X448", curve)
	}
	return OpenPrivateKey20(KDF20(z), field, aad20(pcid, contractSKI))
}

// x448DHPublic reads an X448 DHPublicKey: 0x04 and the u coordinate, 57
// bytes (V2G20-2572).
func x448DHPublic(b []byte) (*x448.Key, error) {
	if len(b) != 1+x448.Size || b[0] != 0x04 {
		return nil, fmt.Errorf("X448 DHPublicKey of %d bytes, want 0x04 and %d", len(b), x448.Size)
	}
	var pub x448.Key
	copy(pub[:], b[1:])
	return &pub, nil
}

// sign20 signs SignedInfo's EXI for ISO 15118-20 and names the signature
// and digest methods: with a P-521 key (in a file or an HSM) ECDSA over
// SHA-512, the signature as r‖s of 66 bytes each, and SHA-512 digests;
// with an Ed448 key PureEdDSA and SHAKE256 digests.
func sign20(signer crypto.Signer, signedInfo []byte) ([]byte, error) {
	switch pub := signer.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P521() {
			break
		}
		d := sha512.Sum512(signedInfo)
		der, err := signer.Sign(rand.Reader, d[:], crypto.SHA512)
		if err != nil {
			return nil, err
		}
		return rawECDSA(der, 66)
	case ed448.PublicKey:
		return signer.Sign(rand.Reader, signedInfo, crypto.Hash(0))
	}
	return nil, errors.New("ISO 15118-20 signatures need a P-521 or an Ed448 key")
}

// methods20 are the signature and digest methods of signer's variant.
func methods20(signer crypto.Signer) (sig, digest string) {
	if _, ok := signer.Public().(ed448.PublicKey); ok {
		return SigEd448, DigestSHAKE256
	}
	return SigECDSASHA512, DigestSHA512
}

// EncryptPrivateKey20 encrypts a P-521 contract key for the vehicle whose
// OEM provisioning key is recipient, as ISO 15118-20 has it for SECP521:
// an ephemeral ECDH P-521 key, Z its x coordinate, and seal20 over the
// 66-byte scalar. It returns the SECP521_EncryptedPrivateKey field (IV ‖
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
	field, err = seal20(random, z, plain, pcid, contractSKI)
	return field, eph.PublicKey().Bytes(), err
}

// EncryptPrivateKeyX448 encrypts an Ed448 contract key for the vehicle
// whose X448 key (its OEM certificate's subjectAltPublicKeyInfo) is
// recipient, as ISO 15118-20 has it for X448: an ephemeral X448 key, Z the
// shared secret (RFC 7748), and seal20 over the 56-byte scalar
// (ed448x509.Scalar). It returns the X448_EncryptedPrivateKey field (84
// bytes) and the DHPublicKey, 0x04 ‖ u (57 bytes, V2G20-2572).
func EncryptPrivateKeyX448(random io.Reader, key ed448.PrivateKey, recipient *x448.Key, pcid string, contractSKI []byte) (field, dhPublic []byte, err error) {
	var eph, ephPub, z x448.Key
	if _, err := io.ReadFull(random, eph[:]); err != nil {
		return nil, nil, err
	}
	defer clear(eph[:])
	x448.KeyGen(&ephPub, &eph)
	if !x448.Shared(&z, &eph, recipient) {
		return nil, nil, errors.New("the vehicle's X448 key is a low-order point")
	}
	defer clear(z[:])
	plain := ed448x509.Scalar(key)
	defer clear(plain)
	field, err = seal20(random, z[:], plain, pcid, contractSKI)
	return field, append([]byte{0x04}, ephPub[:]...), err
}

// seal20 encrypts a contract key's scalar with the key KDF20 derives from
// Z: AES-256-GCM with a random 96-bit IV and PCID ‖ SKI (upper-case hex)
// for AAD, as IV ‖ ciphertext ‖ tag (V2G20-2492..2502).
func seal20(random io.Reader, z, plain []byte, pcid string, contractSKI []byte) ([]byte, error) {
	block, err := aes.NewCipher(KDF20(z))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, gcm.NonceSize())
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, err
	}
	return gcm.Seal(iv, iv, plain, aad20(pcid, contractSKI)), nil
}

// aad20 is the AAD of the contract key transport: the PCID and the
// contract certificate's SKI as upper-case hex (V2G20-2492).
func aad20(pcid string, contractSKI []byte) []byte {
	return append([]byte(pcid), strings.ToUpper(hex.EncodeToString(contractSKI))...)
}
