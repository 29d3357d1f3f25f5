package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/testcerts"
)

func (a *app) lintCmd() *cobra.Command {
	var profile, output string
	c := &cobra.Command{
		Use:   "lint FILE...",
		Short: "Check certificates against their ISO 15118 / OCPP profile",
		Long: `lint checks every certificate in the files (PEM, several per file, or DER)
against a profile, detected from the certificate when --profile is not given.
It exits 0 when all are clean and 1 with the violations otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.checkOutput(output, "text", "json"); err != nil {
				return err
			}
			forms, err := a.forms()
			if err != nil {
				return err
			}
			var fixed *policies.Profile
			if profile != "" {
				if fixed, err = policies.Lookup(profile); err != nil {
					return err
				}
			}
			type result struct {
				File       string               `json:"file"`
				Index      int                  `json:"index"`
				Subject    string               `json:"subject"`
				Profile    string               `json:"profile"`
				Violations []policies.Violation `json:"violations"`
			}
			var results []result
			bad := 0
			for _, f := range args {
				certs, err := datadir.ReadCertificates(f)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				for i, c := range certs {
					p, vs := fixed, policies.Violations(nil)
					if p != nil {
						vs = p.Check(c, forms)
					} else {
						p, vs = policies.Detect(c, forms)
					}
					if vs == nil {
						vs = policies.Violations{}
					}
					if len(vs) > 0 {
						bad++
					}
					results = append(results, result{File: f, Index: i, Subject: ca.FormatName(c.RawSubject), Profile: p.Name, Violations: vs})
				}
			}
			if structured(output) {
				if err := a.json(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					status := "ok"
					if len(r.Violations) > 0 {
						status = fmt.Sprintf("%d violation(s)", len(r.Violations))
					}
					fmt.Fprintf(a.out, "%s[%d] %s as %s: %s\n", r.File, r.Index, r.Subject, r.Profile, status)
					for _, v := range r.Violations {
						fmt.Fprintf(a.out, "  - %s\n", v)
					}
				}
			}
			if bad > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	c.Flags().StringVar(&profile, "profile", "", "profile to check against (default: detect)")
	c.Flags().StringVarP(&output, "output", "o", "text", "text, json or yaml")
	return c
}

func (a *app) testpkiCmd() *cobra.Command {
	var out string
	var seed uint64
	var iso20, ed bool
	c := &cobra.Command{
		Use:   "testpki",
		Short: "Write a complete, deterministic test PKI (never for production)",
		Long: `testpki writes every ISO 15118-2 hierarchy (V2G/CPO, CPS, MO, OEM) and the OCPP
one with a leaf of each kind, as DIR/certs/NAME.pem and .der, DIR/keys/NAME.key
(PEM, mode 0600) and DIR/chains/NAME.pem (the certificate and its sub-CAs,
without the root). The keys derive from --seed: the same seed on the same day
writes the same files. With --iso15118-20 it writes the ISO 15118-20
hierarchies instead (secp521r1: P-521 keys, ecdsa-with-SHA512); with
--iso15118-20 --ed448 those of the Ed448 variant, with the vehicle's X448
key in DIR/keys/oem-prov.x448.key.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			generate := testcerts.Generate
			switch {
			case ed && !iso20:
				return usageError{errors.New("--ed448 is an ISO 15118-20 variant: add --iso15118-20")}
			case ed:
				generate = testcerts.Generate20Ed448
			case iso20:
				generate = testcerts.Generate20
			}
			pki, err := generate(seed, time.Now())
			if err != nil {
				return err
			}
			if err := writePKI(out, pki); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "test PKI of %d certificates (seed %d) in %s: certs/, chains/, keys/\n", len(pki.Entries), seed, out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "output directory")
	c.Flags().Uint64Var(&seed, "seed", 1, "seed of the keys and serials")
	c.Flags().BoolVar(&iso20, "iso15118-20", false, "the ISO 15118-20 hierarchies (P-521) instead of the ISO 15118-2 and OCPP ones")
	c.Flags().BoolVar(&ed, "ed448", false, "with --iso15118-20: the Ed448 variant")
	c.MarkFlagRequired("out")
	return c
}

func writePKI(dir string, pki *testcerts.PKI) error {
	for _, sub := range []string{"certs", "chains"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	for _, e := range pki.Entries {
		files := map[string][]byte{
			filepath.Join("certs", e.Name+".pem"): datadir.EncodePEM(e.Cert),
			filepath.Join("certs", e.Name+".der"): e.Cert.Raw,
		}
		if e.Parent != "" {
			chain := []*x509.Certificate{e.Cert}
			for _, c := range pki.Chain(e.Name) {
				if c != pki.Root(e.Name).Cert {
					chain = append(chain, c)
				}
			}
			files[filepath.Join("chains", e.Name+".pem")] = datadir.EncodePEM(chain...)
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return err
			}
		}
		keyPath := filepath.Join(dir, "keys", e.Name+".key")
		os.Remove(keyPath) // rewriting a test PKI replaces its keys
		if err := ca.WriteKeyFile(keyPath, e.Signer()); err != nil {
			return err
		}
		if e.X448Key != nil {
			x448Path := filepath.Join(dir, "keys", e.Name+".x448.key")
			os.Remove(x448Path)
			if err := ca.WriteKeyData(x448Path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ed448x509.MarshalX448PKCS8(e.X448Key)})); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *app) profilesCmd() *cobra.Command {
	var profilesOut string
	c := &cobra.Command{
		Use:   "profiles",
		Short: "List the certificate profiles with their key points",
		RunE: func(*cobra.Command, []string) error {
			var rows [][]string
			for _, p := range policies.All() {
				path := "-"
				if p.IsCA() {
					path = fmt.Sprint(p.PathLen)
				}
				maxDER := "-"
				if p.MaxDER > 0 {
					maxDER = fmt.Sprint(p.MaxDER)
				}
				rows = append(rows, []string{p.Name, p.Role.String(), p.Keys.String(), dash(p.DC), p.CN.String(), policies.KeyUsageString(p.KeyUsage), path, p.MaxValidity.String(), maxDER})
			}
			return a.rows(profilesOut, "PROFILE\tROLE\tKEY\tDC\tCN\tKEY USAGE\tPATHLEN\tMAX VALIDITY\tMAX DER", rows)
		},
	}
	a.outputFlag(c, &profilesOut)
	return c
}
