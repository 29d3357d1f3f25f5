// Package auth issues and verifies pncd's bearer tokens: JWTs signed by
// pncd's own token key (ES256 with a P-256 key, EdDSA with an Ed25519 key)
// or by an external identity provider's keys (JWKS), carrying the tenant
// and the role.
package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pncpki/pncpki/ca"
)

// Roles.
const (
	RoleAdmin    = "admin"    // everything, every tenant
	RoleOperator = "operator" // the tenant's own certificates
)

// Token claims: issuer and audience are fixed, the subject names the
// holder.
const (
	Issuer   = "pncd"
	Audience = "pncpki"
)

// MaxTTL bounds a token's lifetime.
const MaxTTL = 366 * 24 * time.Hour

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// Claims are pncpki's JWT claims.
type Claims struct {
	Tenant string `json:"tenant"`
	Role   string `json:"role"`
	// Party is the Open Plug&Charge party role of tokens from the OAuth2
	// endpoint (CPO, MO, OEM); informative, access follows the tenant.
	Party string `json:"party,omitempty"`
	jwt.RegisteredClaims
}

// Key is pncd's token key. Its algorithm is pinned by its type: ES256 for
// ECDSA P-256, EdDSA for Ed25519; tokens with any other alg are refused.
type Key struct {
	signer crypto.Signer
	pub    crypto.PublicKey
	method jwt.SigningMethod
}

// methodFor pins the JWT algorithm of a public key.
func methodFor(pub crypto.PublicKey) (jwt.SigningMethod, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jwt.SigningMethodES256, nil
		}
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, fmt.Errorf("token keys are ECDSA P-256 or Ed25519, not %T", pub)
}

// Key types for LoadOrCreateKey.
const (
	KeyECDSA   = "ecdsa"   // P-256, ES256 (the default)
	KeyEd25519 = "ed25519" // EdDSA
)

// KeyFile is where the token key lives in a data directory.
func KeyFile(dataDir string) string { return filepath.Join(dataDir, "keys", "token.key") }

// LoadOrCreateKey loads the token key of a data directory, creating it
// (mode 0600) on first use, of type KeyECDSA (or "") or KeyEd25519; an
// existing key keeps its type.
func LoadOrCreateKey(dataDir string, keyType ...string) (*Key, error) {
	path := KeyFile(dataDir)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		var k crypto.Signer
		var err error
		switch t := append(keyType, "")[0]; t {
		case "", KeyECDSA:
			k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case KeyEd25519:
			_, k, err = ed25519.GenerateKey(rand.Reader)
		default:
			err = fmt.Errorf("token key type %q: want %s or %s", t, KeyECDSA, KeyEd25519)
		}
		if err != nil {
			return nil, err
		}
		if err := ca.WriteKeyFile(path, k); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	s, err := (&ca.Signers{}).Load(context.Background(), "softkms:path="+path)
	if err != nil {
		return nil, err
	}
	m, err := methodFor(s.Public())
	if err != nil {
		return nil, fmt.Errorf("token key %s: %w", path, err)
	}
	return &Key{signer: s, pub: s.Public(), method: m}, nil
}

// Algorithm is the JWT alg of the key's tokens.
func (k *Key) Algorithm() string { return k.method.Alg() }

// Mint issues a token for tenant with role, valid for ttl.
func (k *Key) Mint(subject, tenant, role string, ttl time.Duration, now time.Time) (string, error) {
	return k.MintParty(subject, tenant, role, "", ttl, now)
}

// MintParty is Mint with an Open Plug&Charge party role claim.
func (k *Key) MintParty(subject, tenant, role, party string, ttl time.Duration, now time.Time) (string, error) {
	if subject == "" || len(subject) > 128 {
		return "", errors.New("subject: want 1..128 characters")
	}
	if role != RoleAdmin && role != RoleOperator {
		return "", fmt.Errorf("role %q: want %s or %s", role, RoleAdmin, RoleOperator)
	}
	if role == RoleOperator && tenant == "" {
		return "", errors.New("an operator token needs a tenant")
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("ttl %v: want up to %v", ttl, MaxTTL)
	}
	id := make([]byte, 16)
	rand.Read(id)
	c := Claims{Tenant: tenant, Role: role, Party: party, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: subject, Audience: jwt.ClaimStrings{Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID: hex.EncodeToString(id),
	}}
	return jwt.NewWithClaims(k.method, c).SignedString(k.signer)
}

// Error is a refused token.
type Error struct{ Reason string }

func (e *Error) Error() string { return "unauthenticated: " + e.Reason }

// MaxToken bounds a token.
const MaxToken = 8 << 10

// Verify checks a token: this key's alg only (none, HMAC and every other
// alg are refused), issuer, audience, exp (required), nbf and iat within
// Leeway, a known role.
func (k *Key) Verify(token string, now time.Time) (*Claims, error) {
	return verify(token, now, k.method, Issuer, Audience, func(*jwt.Token) (any, error) { return k.pub, nil })
}

func verify(token string, now time.Time, method jwt.SigningMethod, issuer, audience string, key jwt.Keyfunc) (*Claims, error) {
	if len(token) > MaxToken {
		return nil, &Error{"token longer than 8 KiB"}
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, key,
		jwt.WithValidMethods([]string{method.Alg()}), jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, &Error{err.Error()}
	}
	if c.Role != RoleAdmin && c.Role != RoleOperator {
		return nil, &Error{fmt.Sprintf("unknown role %q", c.Role)}
	}
	if c.Role == RoleOperator && c.Tenant == "" {
		return nil, &Error{"operator token without tenant"}
	}
	return &c, nil
}
