// Package backup writes and restores one-file backups of a data directory:
// a consistent snapshot of the SQLite store (VACUUM INTO, taken while pncd
// runs), the configuration, the public half of the audit key and the
// latest audit checkpoint, and, only when asked, the private keys
// encrypted with a passphrase (age, scrypt). A restore checks the snapshot
// (certificate count, audit chain and checkpoints) before the directory
// appears under its name.
package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/checkpoint"
	"github.com/pncpki/pncpki/store/sqlite"
)

// Format names the layout of a backup file.
const Format = "pncpki-backup/1"

// Names inside a backup.
const (
	ManifestName = "manifest.json"
	DatabaseName = "pncpki.db"
	AuditPubName = datadir.AuditPublicKeyFile
	KeysName     = "keys.tar.age"
)

// plainFiles are the data directory files a backup always holds: none is
// secret. Keys, delegated OCSP keys and admin.token go only into KeysName.
var plainFiles = []string{"config.json", "cps-leaf.pem", datadir.CheckpointFile}

// secretPaths are what --keys adds, encrypted.
var secretPaths = []string{"keys", "ocsp", "admin.token"}

// Manifest describes a backup; it is the first entry of the file.
type Manifest struct {
	Format       string            `json:"format"`
	Created      time.Time         `json:"created"`
	Store        string            `json:"store"` // "sqlite", or "postgresql" (database not included)
	Certificates int64             `json:"certificates,omitempty"`
	AuditSeq     int64             `json:"audit_seq,omitempty"`
	AuditHash    string            `json:"audit_hash,omitempty"`
	Keys         bool              `json:"keys"`
	Files        map[string]string `json:"files"` // name to SHA-256, hex
}

// Options are what Write includes.
type Options struct {
	// Passphrase, when set, adds the private keys encrypted with it.
	Passphrase string
}

// Snapshotter is a store that can copy itself consistently (sqlite.DB).
type Snapshotter interface {
	Snapshot(ctx context.Context, path string) error
}

// Write writes a backup of d to w and returns its manifest.
func Write(ctx context.Context, d *datadir.Dir, audit crypto.PublicKey, w io.Writer, opts Options) (*Manifest, error) {
	m := &Manifest{Format: Format, Created: time.Now().UTC().Truncate(time.Second), Store: "postgresql", Keys: opts.Passphrase != "", Files: map[string]string{}}

	// The small entries, in the order they follow the manifest. The
	// checkpoint is read before the snapshot, so it never names an entry
	// the snapshot lacks.
	type entry struct {
		name string
		data []byte
	}
	var small []entry
	for _, name := range plainFiles {
		data, err := os.ReadFile(filepath.Join(d.Path, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		small = append(small, entry{name, data})
	}
	pub, err := x509.MarshalPKIXPublicKey(audit)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	small = append(small, entry{AuditPubName, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})})

	var dbPath string
	if s, ok := d.Store.(Snapshotter); ok {
		tmp, err := os.MkdirTemp("", "pncpki-backup-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		m.Store = "sqlite"
		dbPath = filepath.Join(tmp, DatabaseName)
		if err := s.Snapshot(ctx, dbPath); err != nil {
			return nil, err
		}
		if m.Certificates, m.AuditSeq, m.AuditHash, err = inspect(ctx, dbPath); err != nil {
			return nil, err
		}
		if m.Files[DatabaseName], err = sumFile(dbPath); err != nil {
			return nil, err
		}
	}
	if opts.Passphrase != "" {
		keys, err := encryptedKeys(d.Path, opts.Passphrase)
		if err != nil {
			return nil, err
		}
		small = append(small, entry{KeysName, keys})
	}
	// The manifest comes first and holds every other entry's hash.
	for _, e := range small {
		m.Files[e.name] = sum(e.data)
	}
	mdata, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}

	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	add := func(name string, r io.Reader, size int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("backup %s: %w", name, err)
		}
		return nil
	}
	for _, e := range append([]entry{{ManifestName, mdata}}, small...) {
		if err := add(e.name, bytes.NewReader(e.data), int64(len(e.data))); err != nil {
			return nil, err
		}
	}
	if dbPath != "" {
		f, err := os.Open(dbPath)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if err := add(DatabaseName, f, st.Size()); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return m, zw.Close()
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func sumFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// inspect opens a snapshot and returns what the manifest records of it.
func inspect(ctx context.Context, path string) (certs, seq int64, hash string, err error) {
	db, err := sqlite.Open(path)
	if err != nil {
		return 0, 0, "", err
	}
	defer db.Close()
	if certs, err = db.CountCertificates(ctx, store.Filter{}); err != nil {
		return 0, 0, "", err
	}
	seq, h, err := db.AuditHead(ctx)
	return certs, seq, hex.EncodeToString(h), err
}

// encryptedKeys tars the secret paths of dir and encrypts the tar with
// passphrase.
func encryptedKeys(dir, passphrase string) ([]byte, error) {
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	aw, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(aw)
	for _, p := range secretPaths {
		err := filepath.WalkDir(filepath.Join(dir, p), func(path string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() || strings.HasSuffix(path, ".tmp") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("backup keys: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Report is what Restore checked.
type Report struct {
	Manifest *Manifest
	Audit    *checkpoint.Report // nil for a PostgreSQL backup
	Keys     int                // key files restored
}

// Limits on what Restore reads: a backup is outside input.
const (
	maxEntries   = 10000
	maxSmallFile = 16 << 20
)

// Restore unpacks the backup r into dir, which must not exist or be
// empty, after checking every file against the manifest and the database
// against the manifest's certificate count and audit head and the audit
// chain's own signatures. On any failure dir is left as it was.
func Restore(ctx context.Context, r io.Reader, dir, passphrase string) (*Report, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("restore into %s: the directory is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, ".pncpki-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	rep, err := unpack(ctx, r, tmp, passphrase)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return rep, nil
}

func unpack(ctx context.Context, r io.Reader, dir, passphrase string) (*Report, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a pncpki backup: %w", err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName || h.Size > maxSmallFile {
		return nil, errors.New("not a pncpki backup: no manifest first")
	}
	m := new(Manifest)
	if err := json.NewDecoder(io.LimitReader(tr, maxSmallFile)).Decode(m); err != nil || m.Format != Format {
		return nil, fmt.Errorf("not a %s backup (manifest: %v)", Format, err)
	}
	rep := &Report{Manifest: m}
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		want, ok := m.Files[h.Name]
		if !ok || seen[h.Name] || n > maxEntries || h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("unexpected entry %q", h.Name)
		}
		seen[h.Name] = true
		if h.Name != DatabaseName && h.Size > maxSmallFile {
			return nil, fmt.Errorf("%s: %d bytes", h.Name, h.Size)
		}
		// Names come from the manifest's fixed set, never a path.
		if h.Name != filepath.Base(h.Name) {
			return nil, fmt.Errorf("unexpected entry %q", h.Name)
		}
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		hash := sha256.New()
		_, err = io.Copy(io.MultiWriter(f, hash), io.LimitReader(tr, h.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		if got := hex.EncodeToString(hash.Sum(nil)); got != want {
			return nil, fmt.Errorf("%s: SHA-256 %s, the manifest says %s", h.Name, got, want)
		}
	}
	for name := range m.Files {
		if !seen[name] {
			return nil, fmt.Errorf("%s is missing", name)
		}
	}
	if m.Keys {
		if passphrase == "" {
			return nil, errors.New("the backup holds encrypted keys: give its passphrase")
		}
		if rep.Keys, err = decryptKeys(filepath.Join(dir, KeysName), dir, passphrase); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(filepath.Join(dir, KeysName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, AuditPubName))
	if err != nil {
		return nil, err
	}
	// Without the private key (a backup without --keys) the public half
	// stays, and 'audit verify' checks the checkpoints with it.
	if m.Keys {
		if err := os.Remove(filepath.Join(dir, AuditPubName)); err != nil {
			return nil, err
		}
	}
	if m.Store != "sqlite" {
		return rep, nil
	}
	if rep.Audit, err = check(ctx, dir, m, pubPEM); err != nil {
		return nil, err
	}
	return rep, nil
}

// check verifies the restored database against the manifest and the
// audit key.
func check(ctx context.Context, dir string, m *Manifest, pubPEM []byte) (*checkpoint.Report, error) {
	b, _ := pem.Decode(pubPEM)
	if b == nil {
		return nil, errors.New("audit key: no PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	var ext *checkpoint.Checkpoint
	if data, err := os.ReadFile(filepath.Join(dir, datadir.CheckpointFile)); err == nil {
		ext = new(checkpoint.Checkpoint)
		if err := json.Unmarshal(data, ext); err != nil {
			return nil, fmt.Errorf("%s: %w", datadir.CheckpointFile, err)
		}
	}
	db, err := sqlite.Open(filepath.Join(dir, DatabaseName))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	n, err := db.CountCertificates(ctx, store.Filter{})
	if err != nil {
		return nil, err
	}
	if n != m.Certificates {
		return nil, fmt.Errorf("the database holds %d certificates, the manifest %d", n, m.Certificates)
	}
	seq, hash, err := db.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	if seq != m.AuditSeq || hex.EncodeToString(hash) != m.AuditHash {
		return nil, fmt.Errorf("the audit chain ends at %d, the manifest says %d", seq, m.AuditSeq)
	}
	rep, err := checkpoint.Verify(ctx, db, pub, ext)
	if err != nil {
		return nil, fmt.Errorf("audit chain: %w", err)
	}
	return rep, nil
}

// decryptKeys unpacks the encrypted key archive into dir (keys/, ocsp/
// and admin.token only) and returns how many files it held.
func decryptKeys(archive, dir, passphrase string) (int, error) {
	f, err := os.Open(archive)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return 0, err
	}
	ar, err := age.Decrypt(f, id)
	if err != nil {
		return 0, fmt.Errorf("keys: %w (wrong passphrase?)", err)
	}
	tr := tar.NewReader(ar)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("keys: %w", err)
		}
		name := filepath.FromSlash(h.Name)
		top := strings.SplitN(h.Name, "/", 2)[0]
		if n >= maxEntries || h.Typeflag != tar.TypeReg || h.Size > maxSmallFile || !filepath.IsLocal(name) ||
			(top != "keys" && top != "ocsp" && h.Name != "admin.token") {
			return n, fmt.Errorf("keys: unexpected entry %q", h.Name)
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return n, err
		}
		out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return n, err
		}
		_, err = io.Copy(out, io.LimitReader(tr, h.Size))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
		n++
	}
}
