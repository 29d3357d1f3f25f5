// Package auth issues and verifies pncd's bearer tokens: JWTs signed with
// ES256 by pncd's own token key, carrying the tenant and the role.
package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
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
	jwt.RegisteredClaims
}

// Key is pncd's token key: ECDSA P-256, alg ES256 only.
type Key struct {
	signer crypto.Signer
	pub    *ecdsa.PublicKey
}

// KeyFile is where the token key lives in a data directory.
func KeyFile(dataDir string) string { return filepath.Join(dataDir, "keys", "token.key") }

// LoadOrCreateKey loads the token key of a data directory, creating it
// (mode 0600) on first use.
func LoadOrCreateKey(dataDir string) (*Key, error) {
	path := KeyFile(dataDir)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token key %s is not ECDSA P-256", path)
	}
	return &Key{signer: s, pub: pub}, nil
}

// Mint issues a token for tenant with role, valid for ttl.
func (k *Key) Mint(subject, tenant, role string, ttl time.Duration, now time.Time) (string, error) {
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
	c := Claims{Tenant: tenant, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: subject, Audience: jwt.ClaimStrings{Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID: hex.EncodeToString(id),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(k.signer)
}

// Error is a refused token.
type Error struct{ Reason string }

func (e *Error) Error() string { return "unauthenticated: " + e.Reason }

// Verify checks a token: ES256 by this key only (none, HMAC and every
// other alg are refused), issuer, audience, exp (required), nbf and iat
// within Leeway, a known role.
func (k *Key) Verify(token string, now time.Time) (*Claims, error) {
	if len(token) > 8<<10 {
		return nil, &Error{"token longer than 8 KiB"}
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) { return k.pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(Issuer), jwt.WithAudience(Audience),
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
