package main

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/store"
)

func (a *app) auditCmd() *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Show and verify the hash-chained audit log"}
	var after int64
	var limit int
	var output string
	list := &cobra.Command{
		Use: "list", Short: "List audit entries, oldest first",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			es, err := d.Store.AuditLog(cmd.Context(), after, limit)
			if err != nil {
				return err
			}
			if output == "json" {
				type entry struct {
					Seq    int64     `json:"seq"`
					Time   time.Time `json:"time"`
					Actor  string    `json:"actor"`
					Action string    `json:"action"`
					Object string    `json:"object"`
					Detail string    `json:"detail"`
					Hash   string    `json:"hash"`
				}
				out := make([]entry, len(es))
				for i, e := range es {
					out[i] = entry{e.Seq, e.Time, e.Actor, e.Action, e.Object, e.Detail, hex.EncodeToString(e.Hash)}
				}
				return a.json(out)
			}
			var rows [][]string
			for _, e := range es {
				rows = append(rows, []string{fmt.Sprint(e.Seq), e.Time.Format(time.RFC3339), e.Actor, e.Action, e.Object, e.Detail})
			}
			a.table("SEQ\tTIME\tACTOR\tACTION\tOBJECT\tDETAIL", rows)
			return nil
		},
	}
	list.Flags().Int64Var(&after, "after", 0, "start after this sequence number")
	list.Flags().IntVar(&limit, "limit", 100, "entries to show")
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every hash of the audit chain; exit 1 on the first broken link",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer d.Close()
			var seq int64
			var prev []byte
			for {
				page, err := d.Store.AuditLog(cmd.Context(), seq, store.MaxPage)
				if err != nil {
					return err
				}
				if seq, prev, err = store.VerifyAudit(seq, prev, page); err != nil {
					return err
				}
				if len(page) < store.MaxPage {
					break
				}
			}
			fmt.Fprintf(a.out, "audit chain intact: %d entries, head %s\n", seq, hex.EncodeToString(prev))
			return nil
		},
	}
	c.AddCommand(list, verify)
	return c
}
