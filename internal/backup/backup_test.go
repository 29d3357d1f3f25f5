package backup_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/backup"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store/checkpoint"
	"github.com/pncpki/pncpki/store/sqlite"
)

const pass = "Ladesäule-Backup 2026 / Tresor 3"

func newDir(t *testing.T) *datadir.Dir {
	t.Helper()
	d, err := datadir.Open(context.Background(), t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(context.Background(), datadir.InitConfig{Organization: "Stadtwerke Musterstadt Ladeinfrastruktur GmbH", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	return d
}

func issue(ctx context.Context, d *datadir.Dir, i int) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name(fmt.Sprintf("DE*MUS*E%d", i), "", "", "")}, key)
	if err != nil {
		return "", err
	}
	iss, err := d.CA.Issue(ctx, ca.Request{Profile: policies.ISO2SECC, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})})
	if err != nil {
		return "", err
	}
	return iss.Record.Issuer + "/" + iss.Record.Serial, nil
}

// A backup taken while certificates are being issued restores to a data
// directory holding every certificate acknowledged before it began, with
// an intact audit chain, and its keys when asked.
func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	signer, err := d.AuditSigner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.Take(ctx, d.Store, signer, d.CA.Now()); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id, err := issue(ctx, d, w*1_000_000+i)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		if t.Failed() {
			close(stop)
			wg.Wait()
			t.FailNow()
		}
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	var buf bytes.Buffer
	m, err := backup.Write(ctx, d, signer.Public(), &buf, backup.Options{Passphrase: pass})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if m.Store != "sqlite" || !m.Keys || m.Certificates < int64(len(before)) {
		t.Fatalf("manifest %+v, %d acknowledged before", m, len(before))
	}
	if bytes.Contains(buf.Bytes(), []byte("PRIVATE KEY")) {
		t.Fatal("a private key is in the backup in clear")
	}

	dir := filepath.Join(t.TempDir(), "restored")
	rep, err := backup.Restore(ctx, bytes.NewReader(buf.Bytes()), dir, pass)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Audit == nil || rep.Audit.Entries != m.AuditSeq || rep.Audit.Checkpoints != 1 || rep.Keys == 0 {
		t.Errorf("report %+v, audit %+v", rep, rep.Audit)
	}
	db, err := sqlite.Open(filepath.Join(dir, backup.DatabaseName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range before {
		issuer, serial, _ := strings.Cut(id, "/")
		if _, err := db.Certificate(ctx, issuer, serial); err != nil {
			t.Errorf("acknowledged %s not restored: %v", id, err)
		}
	}
	for _, name := range []string{"keys/v2g-root.key", "keys/audit.key", "admin.token"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if name == "admin.token" && os.IsNotExist(err) {
			continue // pncd's first start writes it; Init does not
		}
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, st, err)
		}
	}
	for _, name := range []string{backup.KeysName, backup.AuditPubName} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s left in the restored directory", name)
		}
	}
	// The restored directory is a data directory.
	r, err := datadir.Open(ctx, dir, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := issue(ctx, r, 9_999_999); err != nil {
		t.Errorf("issue from the restored directory: %v", err)
	}
}

// rewrite returns the backup with fn applied to each entry.
func rewrite(t *testing.T, data []byte, fn func(h *tar.Header, body []byte) (*tar.Header, []byte)) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		h, body = fn(h, body)
		if h == nil {
			continue
		}
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	return out.Bytes()
}

func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	signer, err := d.AuditSigner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := backup.Write(ctx, d, signer.Public(), &buf, backup.Options{Passphrase: pass}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	flip := func(name string) []byte {
		return rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == name {
				b = append([]byte(nil), b...)
				b[len(b)/2] ^= 1
			}
			return h, b
		})
	}
	for _, tc := range []struct {
		name, pass, want string
		data             []byte
		prepare          func(dir string)
	}{
		{"not a backup", pass, "not a pncpki backup", []byte("hello"), nil},
		{"directory not empty", pass, "not empty", good, func(dir string) {
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "pncpki.db"), []byte("x"), 0o600)
		}},
		{"no passphrase", "", "give its passphrase", good, nil},
		{"wrong passphrase", "Ladesäule-Backup 2025", "wrong passphrase", good, nil},
		{"database changed", pass, "pncpki.db: SHA-256", flip(backup.DatabaseName), nil},
		{"keys changed", pass, "keys.tar.age: SHA-256", flip(backup.KeysName), nil},
		{"entry outside the manifest", pass, `unexpected entry "../escape"`, rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == "cps-leaf.pem" {
				h.Name = "../escape"
			}
			return h, b
		}), nil},
		{"entry dropped", pass, "is missing", rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == backup.AuditPubName {
				return nil, nil
			}
			return h, b
		}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "restored")
			if tc.prepare != nil {
				tc.prepare(dir)
			}
			before, _ := os.ReadDir(dir)
			_, err := backup.Restore(ctx, bytes.NewReader(tc.data), dir, tc.pass)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			after, _ := os.ReadDir(dir)
			if len(after) != len(before) {
				t.Errorf("a refused restore changed %s: %v", dir, after)
			}
			siblings, _ := os.ReadDir(filepath.Dir(dir))
			for _, s := range siblings {
				if strings.HasPrefix(s.Name(), ".pncpki-restore-") {
					t.Errorf("left %s behind", s.Name())
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
				t.Error("an entry escaped the directory")
			}
		})
	}
}

// FuzzRestore feeds arbitrary files to Restore: it must refuse them
// without panicking and without leaving anything under the target name.
func FuzzRestore(f *testing.F) {
	d, err := datadir.Open(context.Background(), f.TempDir(), ca.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(context.Background(), datadir.InitConfig{}); err != nil {
		f.Fatal(err)
	}
	signer, err := d.AuditSigner(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := backup.Write(context.Background(), d, signer.Public(), &buf, backup.Options{}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), "restored")
		if _, err := backup.Restore(context.Background(), bytes.NewReader(data), dir, ""); err != nil {
			if _, serr := os.Stat(dir); serr == nil {
				t.Fatalf("a refused restore (%v) left %s", err, dir)
			}
		}
	})
}
