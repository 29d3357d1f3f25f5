// Package checkpoint signs the head of the audit chain, so that the chain
// cannot be rewritten or cut by whoever can write the database. The hash
// chain alone proves nothing to someone who can recompute every hash after
// a changed row; a checkpoint is the head (sequence number and hash)
// signed with an audit key that the database does not hold. Checkpoints
// are appended to the chain itself (action audit.checkpoint) and logged;
// one kept outside the database (a file, a log archive) also proves that
// nothing was cut from the end.
package checkpoint

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pncpki/pncpki/store"
)

// Action is the audit action of a checkpoint entry.
const Action = "audit.checkpoint"

// Checkpoint is a signed statement of the audit chain's head.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"` // hex SHA-256 of entry Seq
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`    // hex SHA-256 of the audit key's public key (SPKI DER)
	Signature []byte    `json:"signature"` // over message(); ASN.1 ECDSA or Ed25519
}

// message is what a checkpoint signs.
func (c *Checkpoint) message() []byte {
	return []byte("pncpki audit checkpoint v1\n" + strconv.FormatInt(c.Seq, 10) + "\n" + c.Hash + "\n" + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
}

// KeyID names a public key: the hex SHA-256 of its SPKI DER.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:]), nil
}

// Sign makes a checkpoint of (seq, hash) at now with signer.
func Sign(signer crypto.Signer, seq int64, hash []byte, now time.Time) (*Checkpoint, error) {
	id, err := KeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Seq: seq, Hash: hex.EncodeToString(hash), Time: now.UTC(), KeyID: id}
	msg := c.message()
	var digest []byte
	opts := crypto.SignerOpts(crypto.Hash(0))
	if _, ok := signer.Public().(ed25519.PublicKey); ok {
		digest = msg
	} else {
		d := sha256.Sum256(msg)
		digest, opts = d[:], crypto.SHA256
	}
	if c.Signature, err = signer.Sign(rand.Reader, digest, opts); err != nil {
		return nil, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	return c, nil
}

// Verify checks the checkpoint's signature with pub.
func (c *Checkpoint) Verify(pub crypto.PublicKey) error {
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	if id != c.KeyID {
		return fmt.Errorf("checkpoint of seq %d is signed by key %s, not the audit key %s", c.Seq, c.KeyID, id)
	}
	msg := c.message()
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		if ecdsa.VerifyASN1(k, d[:], c.Signature) {
			return nil
		}
	case ed25519.PublicKey:
		if ed25519.Verify(k, msg, c.Signature) {
			return nil
		}
	default:
		return fmt.Errorf("audit key of type %T", pub)
	}
	return fmt.Errorf("checkpoint of seq %d: the signature does not verify", c.Seq)
}

// Take signs the head of st's audit chain and appends the checkpoint to
// the chain; the caller logs it (and may keep it elsewhere).
func Take(ctx context.Context, st store.Store, signer crypto.Signer, now time.Time) (*Checkpoint, error) {
	seq, hash, err := st.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit head: %w", err)
	}
	c, err := Sign(signer, seq, hash, now)
	if err != nil {
		return nil, err
	}
	detail, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := st.AppendAudit(ctx, &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: Action, Object: strconv.FormatInt(seq, 10), Detail: string(detail)}); err != nil {
		return nil, fmt.Errorf("append audit checkpoint: %w", err)
	}
	return c, nil
}

// Report is what Verify found.
type Report struct {
	Entries     int64 // the chain's length
	Checkpoints int   // checkpoints in the chain, all verified
	Covered     int64 // the last sequence number a checkpoint covers
	Revocations int   // revocation entries checked against the certificates
}

// Verify walks st's audit chain: every link, every checkpoint in it (the
// audit key's signature, and the hash it names equal to the chain's entry
// of that number), each revocation entry against the certificate's stored
// status (a certificate un-revoked in the table is caught), and, when
// external is given (a checkpoint kept outside the database), that the
// chain still holds that entry with that hash: what was cut from its end,
// or rewritten before it, is found.
func Verify(ctx context.Context, st store.Store, pub crypto.PublicKey, external *Checkpoint) (*Report, error) {
	if external != nil {
		if err := external.Verify(pub); err != nil {
			return nil, fmt.Errorf("the external checkpoint: %w", err)
		}
	}
	r := &Report{}
	hashes := map[int64]string{}
	var failure error
	fail := func(err error) {
		if failure == nil {
			failure = err
		}
	}
	seq, _, err := store.WalkAudit(ctx, st, store.MaxPage, func(e *store.AuditEntry) {
		hashes[e.Seq] = hex.EncodeToString(e.Hash)
		switch e.Action {
		case Action:
			var c Checkpoint
			if err := json.Unmarshal([]byte(e.Detail), &c); err != nil {
				fail(fmt.Errorf("audit entry %d: checkpoint unreadable: %w", e.Seq, err))
				return
			}
			if err := c.Verify(pub); err != nil {
				fail(fmt.Errorf("audit entry %d: %w", e.Seq, err))
				return
			}
			if c.Seq > 0 && hashes[c.Seq] != c.Hash {
				fail(fmt.Errorf("audit entry %d: the checkpoint signed entry %d with hash %s, the chain has %s: entries up to %d were rewritten", e.Seq, c.Seq, c.Hash, hashes[c.Seq], c.Seq))
				return
			}
			r.Checkpoints++
			r.Covered = max(r.Covered, c.Seq)
		case store.AuditCertificateRevoke:
			issuer, serial, ok := cutLast(e.Object)
			if !ok {
				return
			}
			rec, err := st.Certificate(ctx, issuer, serial)
			switch {
			case errors.Is(err, store.ErrNotFound):
				fail(fmt.Errorf("audit entry %d: revoked certificate %s is not in the store", e.Seq, e.Object))
			case err != nil:
				fail(err)
			case !rec.Revoked():
				fail(fmt.Errorf("audit entry %d: certificate %s was revoked, but the store says it is not: it was un-revoked outside pncpki", e.Seq, e.Object))
			default:
				r.Revocations++
			}
		}
	})
	r.Entries = seq
	if err != nil {
		return r, err
	}
	if failure != nil {
		return r, failure
	}
	if external != nil {
		switch have, ok := hashes[external.Seq]; {
		case !ok:
			return r, fmt.Errorf("the chain ends at entry %d, before the external checkpoint's entry %d: entries were cut from its end", seq, external.Seq)
		case have != external.Hash:
			return r, fmt.Errorf("entry %d has hash %s, the external checkpoint signed %s: entries up to it were rewritten", external.Seq, have, external.Hash)
		}
		r.Covered = max(r.Covered, external.Seq)
	}
	return r, nil
}

// cutLast splits "issuer/serial" at its last slash.
func cutLast(s string) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
