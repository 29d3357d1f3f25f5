// Package firstrun is what pncd's first start and 'pncctl init' both do for
// a new data directory: leave an administrator token to drive it with.
package firstrun

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store"
)

// AdminTokenFile is where a new data directory's administrator token is
// left.
const AdminTokenFile = "admin.token"

// WriteAdminToken mints a 30-day administrator token, writes it to
// AdminTokenFile with mode 0600 and audits it under ctx's actor; it returns
// the file's path (the value is never logged).
func WriteAdminToken(ctx context.Context, d *datadir.Dir, key *auth.Key) (string, error) {
	tok, err := key.Mint("first-start-admin", "", auth.RoleAdmin, 30*24*time.Hour, time.Now())
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.Path, AdminTokenFile)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := d.Store.AppendAudit(ctx, &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: "token.create", Object: "first-start-admin",
		Detail: `{"role":"admin","ttl":"720h0m0s","file":"` + AdminTokenFile + `"}`}); err != nil {
		return "", err
	}
	return path, nil
}
