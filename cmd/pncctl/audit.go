package main

import (
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/checkpoint"
)

func (a *app) auditCmd() *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Show and verify the hash-chained audit log"}
	var after int64
	var limit int
	var output string
	list := &cobra.Command{
		Use: "list", Short: "List audit entries, oldest first",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			es, err := a.auditLog(cmd, after, limit)
			if err != nil {
				return err
			}
			if structured(output) {
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
	list.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	var external string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain: every hash, every signed checkpoint, every revocation against its certificate; exit 1 on the first failure",
		Long: `verify walks the whole audit chain and checks every link, every checkpoint in
it (signed by the audit key, and naming the hash the chain has), and that
each revoked certificate is still revoked in the store. It also checks that
the chain still holds the entry of a checkpoint kept outside the database,
with its hash, so that entries cut from its end are found: the latest one
pncd or 'pncctl audit checkpoint' kept in the data directory, or
--checkpoint FILE ('pncctl audit checkpoint --out FILE', or a line of pncd's
log).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			d, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer d.Close()
			pub, err := d.AuditPublicKey(ctx)
			if err != nil {
				return err
			}
			var ext *checkpoint.Checkpoint
			if external == "" {
				// The latest checkpoint pncd or pncctl kept outside the
				// database, if any.
				if kept := filepath.Join(d.Path, datadir.CheckpointFile); fileExists(kept) {
					external = kept
				}
			}
			if external != "" {
				data, err := readBounded(external, 64<<10)
				if err != nil {
					return err
				}
				ext = new(checkpoint.Checkpoint)
				if err := json.Unmarshal(data, ext); err != nil {
					return fmt.Errorf("--checkpoint %s: %w", external, err)
				}
			}
			r, err := checkpoint.Verify(ctx, d.Store, pub, ext)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "audit chain intact: %d entries, %d signed checkpoints, covered up to entry %d, %d revocations match their certificates\n",
				r.Entries, r.Checkpoints, r.Covered, r.Revocations)
			if r.Covered < r.Entries {
				fmt.Fprintf(a.out, "entries %d to %d are after the last checkpoint: 'pncctl audit checkpoint' covers them\n", r.Covered+1, r.Entries)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&external, "checkpoint", "", "a checkpoint (JSON) kept outside the database, to detect truncation (default: DIR/"+datadir.CheckpointFile+", which pncd and 'audit checkpoint' keep)")
	var out string
	take := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign the head of the audit chain with the audit key, append the checkpoint to the chain and print it (keep a copy outside the database)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			d, signer, err := a.auditKey(ctx)
			if err != nil {
				return err
			}
			defer d.Close()
			c, err := checkpoint.Take(ctx, d.Store, signer, time.Now())
			if err != nil {
				return err
			}
			data, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				return err
			}
			if err := d.WriteCheckpoint(data); err != nil {
				return err
			}
			return a.writeOut(out, append(data, '\n'))
		},
	}
	take.Flags().StringVar(&out, "out", "", "write the checkpoint to this file instead of stdout")
	c.AddCommand(remote(list), verify, take)
	return c
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// auditKey opens the data directory and the key that signs its audit
// checkpoints.
func (a *app) auditKey(ctx context.Context) (*datadir.Dir, crypto.Signer, error) {
	d, err := a.open(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	signer, err := d.AuditSigner(ctx)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, signer, nil
}

// auditLog reads the log through the API (local or --server).
func (a *app) auditLog(cmd *cobra.Command, after int64, limit int) ([]*store.AuditEntry, error) {
	c, done, err := a.api(cmd.Context())
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := c.Audit.ListAudit(cmd.Context(), call(c, &pncpkiv1.ListAuditRequest{After: after, PageSize: int32(limit)}))
	if err != nil {
		return nil, err
	}
	var out []*store.AuditEntry
	for _, e := range resp.Msg.Entries {
		out = append(out, &store.AuditEntry{Seq: e.Seq, Time: e.Time.AsTime(), Actor: e.Actor, Action: e.Action, Object: e.Object,
			Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	return out, nil
}
