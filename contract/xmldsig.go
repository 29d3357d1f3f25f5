package contract

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ISO 15118-2 signs messages with an XML signature over EXI (Annex J): each
// signed body element is EXI-encoded alone as a fragment and its SHA-256
// goes into a Reference; the EXI of SignedInfo is signed with ECDSA P-256
// and SHA-256 as it is (no canonical XML), and SignatureValue is the raw
// r||s, 32 bytes each. These are the byte-level parts; the EXI encoding of
// the fragments and of SignedInfo is the codec's.

// SignatureSize is the length of an ISO 15118-2 SignatureValue.
const SignatureSize = 64

// Digest is a Reference's DigestValue: SHA-256 of an element's EXI fragment.
func Digest(fragmentEXI []byte) []byte {
	d := sha256.Sum256(fragmentEXI)
	return d[:]
}

// Sign signs the EXI of SignedInfo with a P-256 key and returns the raw
// r||s SignatureValue. The signer may be a crypto.Signer of any backend
// (file, PKCS#11); its ASN.1 signature is converted.
func Sign(signer crypto.Signer, signedInfoEXI []byte) ([]byte, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("ISO 15118-2 signatures need an ECDSA P-256 key")
	}
	d := sha256.Sum256(signedInfoEXI)
	der, err := signer.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return rawECDSA(der, 32)
}

// rawECDSA turns a DER ECDSA signature into r‖s, each of n bytes: the
// form ISO 15118's SignatureValue has.
func rawECDSA(der []byte, n int) ([]byte, error) {
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() ||
		r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 8*n || s.BitLen() > 8*n {
		return nil, fmt.Errorf("signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*n)
	r.FillBytes(out[:n])
	s.FillBytes(out[n:])
	return out, nil
}

// Verify checks a raw r||s SignatureValue over the EXI of SignedInfo.
func Verify(pub *ecdsa.PublicKey, signedInfoEXI, sig []byte) error {
	if len(sig) != SignatureSize {
		return fmt.Errorf("SignatureValue of %d bytes, want %d (r||s)", len(sig), SignatureSize)
	}
	if pub.Curve != elliptic.P256() {
		return errors.New("ISO 15118-2 signatures are ECDSA P-256")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(sig[:32]))
		b.AddASN1BigInt(new(big.Int).SetBytes(sig[32:]))
	})
	der, err := b.Bytes()
	if err != nil {
		return err
	}
	d := sha256.Sum256(signedInfoEXI)
	if !ecdsa.VerifyASN1(pub, d[:], der) {
		return errors.New("signature does not verify")
	}
	return nil
}
