package store

import (
	"strings"
	"testing"
	"time"
)

func TestVerifyAuditDetectsTampering(t *testing.T) {
	var entries []*AuditEntry
	var seq int64
	var prev []byte
	for i, a := range []string{"tenant.create", "certificate.issue", "certificate.revoke"} {
		e := &AuditEntry{Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Actor: "x", Action: a, Object: "o", Detail: "{}"}
		Chain(e, seq, prev)
		seq, prev = e.Seq, e.Hash
		entries = append(entries, e)
	}
	if _, _, err := VerifyAudit(0, nil, entries); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	clone := func() []*AuditEntry {
		out := make([]*AuditEntry, len(entries))
		for i, e := range entries {
			c := *e
			out[i] = &c
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		mutate func([]*AuditEntry) []*AuditEntry
		want   string
	}{
		{"changed field", func(es []*AuditEntry) []*AuditEntry { es[1].Object = "other"; return es }, "altered"},
		{"removed entry", func(es []*AuditEntry) []*AuditEntry { return append(es[:1], es[2:]...) }, "missing"},
		{"rechained entry", func(es []*AuditEntry) []*AuditEntry {
			es[1].Actor = "mallory"
			Chain(es[1], 1, es[0].Hash)
			return es
		}, "does not carry"},
	} {
		_, _, err := VerifyAudit(0, nil, tt.mutate(clone()))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
