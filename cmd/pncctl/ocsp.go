package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
)

func (a *app) ocspCmd() *cobra.Command {
	c := &cobra.Command{Use: "ocsp", Short: "OCSP tools"}
	var issuerPath, responderURL, output string
	check := &cobra.Command{
		Use:   "check CERT",
		Short: "Ask for a certificate's status and print it with the response's times and signer",
		Long: `check asks --url when given; otherwise the local responder when --data holds
the issuing CA (signing with the CA key, so nothing is written), otherwise
the certificate's AIA OCSP URL. The response is verified: signed by the issuer or its delegated
responder, about this certificate, fresh. Exit status 0 for good, 1 for
revoked, unknown or any error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			certs, err := datadir.ReadCertificates(args[0])
			if err != nil {
				return err
			}
			issuers, err := datadir.ReadCertificates(issuerPath)
			if err != nil {
				return fmt.Errorf("--issuer-cert: %w", err)
			}
			client := &ocsp.Client{}
			if _, err := os.Stat(a.data); err == nil && responderURL == "" {
				d, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				defer d.Close()
				if client.Local, err = ocsp.New(cmd.Context(), ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, UseCAKey: true}); err != nil {
					return err
				}
			}
			r, err := client.Check(cmd.Context(), certs[0], issuers[0], responderURL)
			if err != nil {
				return err
			}
			status := [...]string{"good", "revoked", "unknown"}[r.Status]
			if structured(output) {
				out := map[string]any{"status": status, "this_update": r.ThisUpdate, "next_update": r.NextUpdate,
					"produced_at": r.ProducedAt, "signer": r.Signer.Subject.String(), "source": r.Source}
				if r.Status == ocsp.Revoked {
					out["revoked_at"], out["reason"] = r.RevokedAt, ca.ReasonName(r.Reason)
				}
				if err := a.json(out); err != nil {
					return err
				}
			} else {
				rows := [][]string{{"status", status}}
				if r.Status == ocsp.Revoked {
					rows = append(rows, []string{"revoked at", r.RevokedAt.Format(time.RFC3339)}, []string{"reason", ca.ReasonName(r.Reason)})
				}
				next := "-"
				if !r.NextUpdate.IsZero() {
					next = r.NextUpdate.Format(time.RFC3339)
				}
				rows = append(rows, []string{"this update", r.ThisUpdate.Format(time.RFC3339)}, []string{"next update", next},
					[]string{"produced at", r.ProducedAt.Format(time.RFC3339)}, []string{"signer", r.Signer.Subject.String()}, []string{"source", r.Source})
				a.table("FIELD\tVALUE", rows)
			}
			if r.Status != ocsp.Good {
				return exitError{1}
			}
			return nil
		},
	}
	check.Flags().StringVar(&issuerPath, "issuer-cert", "", "issuer certificate file (PEM or DER)")
	// --issuer is a CA name everywhere else; the old spelling still works.
	check.Flags().StringVar(&issuerPath, "issuer", "", "")
	check.Flags().MarkDeprecated("issuer", "use --issuer-cert (a file); --issuer names a CA elsewhere")
	check.Flags().StringVar(&responderURL, "url", "", "responder URL (default: the certificate's AIA)")
	check.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	check.MarkFlagsOneRequired("issuer-cert", "issuer")
	c.AddCommand(check, a.responderCSRCmd(), a.responderImportCmd())
	return c
}
