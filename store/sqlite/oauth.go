package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pncpki/pncpki/store"
)

const oauthCols = `id, tenant, role, secret_sha256, created_at, revoked_at`

func scanOAuthClient(row scanner) (*store.OAuthClient, error) {
	var c store.OAuthClient
	var created, revoked int64
	if err := row.Scan(&c.ID, &c.Tenant, &c.Role, &c.SecretSHA256, &created, &revoked); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMS(created)
	if revoked != 0 {
		c.RevokedAt = fromMS(revoked)
	}
	return &c, nil
}

// CreateOAuthClient implements store.Store.
func (db *DB) CreateOAuthClient(ctx context.Context, c *store.OAuthClient) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients(`+oauthCols+`) VALUES(?,?,?,?,?,0)`,
			c.ID, c.Tenant, c.Role, c.SecretSHA256, ms(c.CreatedAt)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("OAuth client %s: %w", c.ID, store.ErrExists)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.OAuthClientAudit(ctx, store.AuditOAuthClientCreate, c))
	})
}

// OAuthClient implements store.Store.
func (db *DB) OAuthClient(ctx context.Context, id string) (*store.OAuthClient, error) {
	c, err := scanOAuthClient(db.queryRow(ctx, `SELECT `+oauthCols+` FROM oauth_clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("OAuth client %s: %w", id, store.ErrNotFound)
	}
	return c, err
}

// ListOAuthClients implements store.Store.
func (db *DB) ListOAuthClients(ctx context.Context, tenant string) ([]*store.OAuthClient, error) {
	return queryAll(ctx, db, scanOAuthClient, `SELECT `+oauthCols+` FROM oauth_clients WHERE ? = '' OR tenant = ? ORDER BY id`, tenant, tenant)
}

// RevokeOAuthClient implements store.Store.
func (db *DB) RevokeOAuthClient(ctx context.Context, id string, at time.Time) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		c, err := scanOAuthClient(tx.QueryRowContext(ctx, `SELECT `+oauthCols+` FROM oauth_clients WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("OAuth client %s: %w", id, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_clients SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ms(at), id); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.OAuthClientAudit(ctx, store.AuditOAuthClientRevoke, c))
	})
}
