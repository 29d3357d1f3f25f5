package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pncpki/pncpki/store"
)

const oauthCols = `id, tenant, role, secret_sha256, created_at, revoked_at`

func scanOAuthClient(row pgx.Row) (*store.OAuthClient, error) {
	var c store.OAuthClient
	var revoked *time.Time
	if err := row.Scan(&c.ID, &c.Tenant, &c.Role, &c.SecretSHA256, &c.CreatedAt, &revoked); err != nil {
		return nil, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	if revoked != nil {
		c.RevokedAt = revoked.UTC()
	}
	return &c, nil
}

// CreateOAuthClient implements store.Store.
func (db *DB) CreateOAuthClient(ctx context.Context, c *store.OAuthClient) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO oauth_clients(id, tenant, role, secret_sha256, created_at) VALUES($1,$2,$3,$4,$5)`,
			c.ID, c.Tenant, c.Role, c.SecretSHA256, c.CreatedAt); err != nil {
			if pgCode(err) == uniqueViolation {
				return fmt.Errorf("OAuth client %s: %w", c.ID, store.ErrExists)
			}
			return err
		}
		return appendAudit(ctx, tx, store.OAuthClientAudit(ctx, store.AuditOAuthClientCreate, c))
	})
}

// OAuthClient implements store.Store.
func (db *DB) OAuthClient(ctx context.Context, id string) (*store.OAuthClient, error) {
	c, err := scanOAuthClient(db.pool.QueryRow(ctx, `SELECT `+oauthCols+` FROM oauth_clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("OAuth client %s: %w", id, store.ErrNotFound)
	}
	return c, err
}

// ListOAuthClients implements store.Store.
func (db *DB) ListOAuthClients(ctx context.Context, tenant string) ([]*store.OAuthClient, error) {
	return queryAll(ctx, db.pool, scanOAuthClient, `SELECT `+oauthCols+` FROM oauth_clients WHERE $1 = '' OR tenant = $1 ORDER BY id`, tenant)
}

// RevokeOAuthClient implements store.Store.
func (db *DB) RevokeOAuthClient(ctx context.Context, id string, at time.Time) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		c, err := scanOAuthClient(tx.QueryRow(ctx, `SELECT `+oauthCols+` FROM oauth_clients WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("OAuth client %s: %w", id, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE oauth_clients SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, at, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.OAuthClientAudit(ctx, store.AuditOAuthClientRevoke, c))
	})
}
