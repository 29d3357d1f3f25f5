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
	const ttl = 30 * 24 * time.Hour
	now := time.Now()
	tok, err := key.Mint("first-start-admin", "", auth.RoleAdmin, ttl, now)
	if err != nil {
		return "", err
	}
	c, err := key.Verify(tok, now)
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.Path, AdminTokenFile)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := d.Store.AppendAudit(ctx, store.TokenAudit(ctx, c.Subject, store.TokenDetail{ID: c.ID, Role: auth.RoleAdmin, TTL: ttl.String(),
		ExpiresAt: c.ExpiresAt.Time.UTC()})); err != nil {
		return "", err
	}
	return path, nil
}
