package contract

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// Sizes of ISO 15118-2's encrypted contract key (ContractSignatureEncryptedPrivateKey:
// IV and two AES blocks) and of the ephemeral public key (DHpublickey, an
// uncompressed P-256 point).
const (
	EncryptedKeySize = 16 + 32
	DHPublicKeySize  = 65
)

// kdf is the concat KDF of ISO 15118-2 [V2G2-818]: SHA-256 over the
// counter 00000001, the shared secret Z and OtherInfo (AlgorithmID 0x01,
// PartyUInfo 'U', PartyVInfo 'V'); the first 16 bytes are the AES-128 key.
func kdf(z []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	h.Write([]byte{0x01, 0x55, 0x56})
	return h.Sum(nil)[:16]
}

// EncryptPrivateKey encrypts a contract private key for the vehicle that
// holds recipient's private key (its OEM provisioning key on installation,
// its current contract key on update): ephemeral ECDH on P-256, the
// [V2G2-818] KDF, AES-128-CBC without padding over the 32-byte private
// scalar, the random IV in front. It returns the 48 encrypted bytes and the
// 65-byte ephemeral public key. The plaintext copy of the scalar is zeroed.
func EncryptPrivateKey(rand io.Reader, key *ecdsa.PrivateKey, recipient *ecdsa.PublicKey) (encrypted, dhPublic []byte, err error) {
	eph, err := ecdh.P256().GenerateKey(rand)
	if err != nil {
		return nil, nil, err
	}
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(rand, iv); err != nil {
		return nil, nil, err
	}
	return encryptWith(eph, iv, key, recipient)
}

func encryptWith(eph *ecdh.PrivateKey, iv []byte, key *ecdsa.PrivateKey, recipient *ecdsa.PublicKey) ([]byte, []byte, error) {
	if key.Curve != elliptic.P256() || recipient.Curve != elliptic.P256() {
		return nil, nil, errors.New("contract keys and recipients are P-256")
	}
	pub, err := recipient.ECDH()
	if err != nil {
		return nil, nil, fmt.Errorf("recipient key: %w", err)
	}
	z, err := eph.ECDH(pub)
	if err != nil {
		return nil, nil, err
	}
	k := kdf(z)
	clear(z)
	block, err := aes.NewCipher(k)
	clear(k)
	if err != nil {
		return nil, nil, err
	}
	scalar, err := key.Bytes()
	if err != nil {
		return nil, nil, err
	}
	defer clear(scalar)
	out := make([]byte, EncryptedKeySize)
	copy(out, iv)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out[aes.BlockSize:], scalar)
	return out, eph.PublicKey().Bytes(), nil
}

// DecryptPrivateKey is the vehicle's side of EncryptPrivateKey: it recovers
// the contract private key with the recipient's private key.
func DecryptPrivateKey(encrypted, dhPublic []byte, recipient *ecdsa.PrivateKey) (*ecdsa.PrivateKey, error) {
	if len(encrypted) != EncryptedKeySize || len(dhPublic) != DHPublicKeySize {
		return nil, fmt.Errorf("encrypted key of %d bytes and DH public key of %d, want %d and %d", len(encrypted), len(dhPublic), EncryptedKeySize, DHPublicKeySize)
	}
	eph, err := ecdh.P256().NewPublicKey(dhPublic)
	if err != nil {
		return nil, fmt.Errorf("DH public key: %w", err)
	}
	priv, err := recipient.ECDH()
	if err != nil {
		return nil, err
	}
	z, err := priv.ECDH(eph)
	if err != nil {
		return nil, err
	}
	k := kdf(z)
	clear(z)
	block, err := aes.NewCipher(k)
	clear(k)
	if err != nil {
		return nil, err
	}
	scalar := make([]byte, 32)
	defer clear(scalar)
	cipher.NewCBCDecrypter(block, encrypted[:aes.BlockSize]).CryptBlocks(scalar, encrypted[aes.BlockSize:])
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		return nil, fmt.Errorf("decrypted key: %w", err)
	}
	return key, nil
}
