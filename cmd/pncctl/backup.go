package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/internal/backup"
)

// passphrase reads a backup passphrase from file ("-" is stdin) or, when
// none is named, from PNCPKI_BACKUP_PASSPHRASE; "" when neither is given.
func passphrase(file string) (string, error) {
	if file == "" {
		return os.Getenv("PNCPKI_BACKUP_PASSPHRASE"), nil
	}
	data, err := readBounded(file, 4096)
	if err != nil {
		return "", fmt.Errorf("--passphrase-file: %w", err)
	}
	p := strings.TrimRight(string(data), "\r\n")
	if p == "" {
		return "", errors.New("--passphrase-file: empty")
	}
	return p, nil
}

func (a *app) backupCmd() *cobra.Command {
	var out, passFile string
	var keys bool
	c := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write one consistent backup of the data directory while pncd runs (keys only with --keys, encrypted)",
		Long: `backup writes a gzip'd tar: a snapshot of the SQLite store (VACUUM INTO: one
read transaction, so pncd keeps issuing, and the snapshot holds exactly what
was committed when it began), config.json, the CPS leaf certificate, the
latest audit checkpoint and the audit key's public half. With --keys it adds
the private keys (keys/, ocsp/, admin.token) encrypted with a passphrase
(age, scrypt) from --passphrase-file or PNCPKI_BACKUP_PASSPHRASE.

On PostgreSQL the database is not in the file: back it up with pg_dump or
point-in-time recovery; the file then holds the keys and configuration only,
and backup says so. 'pncctl restore' checks a backup before it is used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			pass, err := passphrase(passFile)
			if err != nil {
				return err
			}
			if keys && pass == "" {
				return errors.New("--keys needs a passphrase: --passphrase-file FILE or PNCPKI_BACKUP_PASSPHRASE")
			}
			if !keys {
				pass = ""
			}
			ctx := cmd.Context()
			d, signer, err := a.auditKey(ctx)
			if err != nil {
				return err
			}
			defer d.Close()
			tmp := out + ".tmp"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer os.Remove(tmp)
			m, err := backup.Write(ctx, d, signer.Public(), f, backup.Options{Passphrase: pass})
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
			switch m.Store {
			case "sqlite":
				fmt.Fprintf(a.out, "%s: %d certificates, audit chain to entry %d, taken %s\n", out, m.Certificates, m.AuditSeq, m.Created.Format("2006-01-02T15:04:05Z"))
			default:
				fmt.Fprintf(a.out, "%s: configuration only; the store is PostgreSQL: back it up with pg_dump or point-in-time recovery\n", out)
			}
			if m.Keys {
				fmt.Fprintln(a.out, "private keys included, encrypted with the passphrase")
			} else {
				fmt.Fprintln(a.out, "private keys not included (--keys): keep keys/ (or the HSM) backed up apart")
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "the backup file to write")
	c.Flags().BoolVar(&keys, "keys", false, "include the private keys, encrypted with the passphrase")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (- for stdin; default PNCPKI_BACKUP_PASSPHRASE)")
	return c
}

func (a *app) restoreCmd() *cobra.Command {
	var passFile string
	c := &cobra.Command{
		Use:   "restore FILE --data DIR",
		Short: "Check a backup (every file's hash, certificate count, audit chain) and unpack it into a new data directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("data") && os.Getenv("PNCPKI_DATA") == "" {
				return errors.New("--data DIR is required: the new data directory (missing or empty)")
			}
			pass, err := passphrase(passFile)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := backup.Restore(cmd.Context(), f, a.data, pass)
			if err != nil {
				return err
			}
			m := rep.Manifest
			dir, _ := filepath.Abs(a.data)
			if rep.Audit == nil {
				fmt.Fprintf(a.out, "restored the configuration of %s into %s; restore the PostgreSQL database (pg_dump) apart\n", m.Created.Format("2006-01-02T15:04:05Z"), dir)
			} else {
				fmt.Fprintf(a.out, "restored %s into %s: %d certificates, audit chain intact (%d entries, %d signed checkpoints)\n",
					m.Created.Format("2006-01-02T15:04:05Z"), dir, m.Certificates, rep.Audit.Entries, rep.Audit.Checkpoints)
			}
			if m.Keys {
				fmt.Fprintf(a.out, "%d files of keys/, ocsp/ and admin.token restored (mode 0600)\n", rep.Keys)
			} else {
				fmt.Fprintln(a.out, "the backup holds no private keys: put keys/ back (or point config at the HSM) before starting pncd")
			}
			return nil
		},
	}
	c.Flags().StringVar(&passFile, "passphrase-file", "", "the passphrase of a backup with keys (- for stdin; default PNCPKI_BACKUP_PASSPHRASE)")
	return c
}
