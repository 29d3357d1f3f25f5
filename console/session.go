package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// A session lives in its cookie, sealed (AES-256-GCM) with the session
// key: replicas that share keys/ open each other's sessions, and nothing
// is kept on the server. The API token inside never reaches the page: the
// cookie is HttpOnly, and every call the console makes for the session
// goes to the API with the token as bearer, where it is checked as any
// caller's (a revoked token ends its sessions at their next request).
type session struct {
	ID      string    `json:"id"` // random; the CSRF token is bound to it
	Token   string    `json:"token"`
	Subject string    `json:"sub"`
	Tenant  string    `json:"tenant,omitempty"`
	Role    string    `json:"role"`
	Expires time.Time `json:"exp"`
}

// MaxSession bounds a session; a token that expires sooner ends it sooner.
const MaxSession = 8 * time.Hour

// cookieName is the session cookie's name: __Host- under TLS, so that it
// is Secure, host-only and for the whole path; plain otherwise.
func cookieName(tls bool) string {
	if tls {
		return "__Host-pncpki-console"
	}
	return "pncpki-console"
}

// maxCookie bounds the session cookie read (a token is at most 8 KiB).
const maxCookie = 12 << 10

// seal encrypts s for its cookie.
func (h *Handler) seal(s *session) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, h.aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(h.aead.Seal(nonce, nonce, plain, []byte("pncpki console session"))), nil
}

// open decrypts a session cookie and checks that it has not expired.
func (h *Handler) open(v string, now time.Time) (*session, error) {
	if len(v) > maxCookie {
		return nil, errors.New("session cookie too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < h.aead.NonceSize() {
		return nil, errors.New("malformed session cookie")
	}
	n := h.aead.NonceSize()
	plain, err := h.aead.Open(nil, raw[:n], raw[n:], []byte("pncpki console session"))
	if err != nil {
		return nil, errors.New("session cookie not sealed by this console's key")
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil {
		return nil, err
	}
	if !now.Before(s.Expires) {
		return nil, errors.New("session expired")
	}
	return &s, nil
}

// csrf is the token a session's forms carry: bound to the session, so a
// page of another site cannot know it.
func (h *Handler) csrf(s *session) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(s.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SessionKeyFile is where the session key is kept in a data directory.
func SessionKeyFile(dataDir string) string { return filepath.Join(dataDir, "keys", "console.key") }

// LoadOrCreateSessionKey reads the data directory's session key, creating
// it (32 random bytes, mode 0600) when it is missing.
func LoadOrCreateSessionKey(dataDir string) ([]byte, error) {
	path := SessionKeyFile(dataDir)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process made it first
			return LoadOrCreateSessionKey(dataDir)
		} else if err != nil {
			return nil, err
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, err
		}
		return key, f.Close()
	} else if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%s: want 32 bytes, have %d", path, len(key))
	}
	return key, nil
}

// newAEAD derives the cookie cipher and the CSRF key from the session key.
func newAEAD(key []byte) (cipher.AEAD, []byte, error) {
	if len(key) != 32 {
		return nil, nil, errors.New("console: the session key is not 32 bytes")
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("cookie"))
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	return aead, derive("csrf"), err
}
