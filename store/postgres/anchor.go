package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pncpki/pncpki/store"
)

// AddTrustAnchor implements store.Store.
func (db *DB) AddTrustAnchor(ctx context.Context, a *store.TrustAnchor) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO trust_anchors(purpose, sha256, der, source, added_at) VALUES($1,$2,$3,$4,$5)`,
			a.Use, a.SHA256, a.DER, a.Source, a.AddedAt); err != nil {
			if pgCode(err) == uniqueViolation {
				return fmt.Errorf("trust anchor %s %s: %w", a.Use, a.SHA256, store.ErrExists)
			}
			return err
		}
		return appendAudit(ctx, tx, store.TrustAnchorAudit(ctx, store.AuditTrustAnchorAdd, a))
	})
}

// ListTrustAnchors implements store.Store.
func (db *DB) ListTrustAnchors(ctx context.Context) ([]*store.TrustAnchor, error) {
	return queryAll(ctx, db.pool, func(row pgx.Row) (*store.TrustAnchor, error) {
		var a store.TrustAnchor
		if err := row.Scan(&a.Use, &a.SHA256, &a.DER, &a.Source, &a.AddedAt); err != nil {
			return nil, err
		}
		a.AddedAt = a.AddedAt.UTC()
		return &a, nil
	}, `SELECT purpose, sha256, der, source, added_at FROM trust_anchors ORDER BY purpose, sha256`)
}

// RemoveTrustAnchor implements store.Store.
func (db *DB) RemoveTrustAnchor(ctx context.Context, use, sha256 string) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		a := &store.TrustAnchor{Use: use, SHA256: sha256}
		err := tx.QueryRow(ctx, `DELETE FROM trust_anchors WHERE purpose = $1 AND sha256 = $2 RETURNING source`, use, sha256).Scan(&a.Source)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("trust anchor %s %s: %w", use, sha256, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.TrustAnchorAudit(ctx, store.AuditTrustAnchorRemove, a))
	})
}

const endpointCols = `id, tenant, url, description, events, wmis, secret, enabled, created_at, updated_at`

func scanEndpoint(row pgx.Row) (*store.EventEndpoint, error) {
	var e store.EventEndpoint
	if err := row.Scan(&e.ID, &e.Tenant, &e.URL, &e.Description, &e.Events, &e.WMIs, &e.Secret, &e.Enabled, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return nil, err
	}
	if len(e.WMIs) == 0 {
		e.WMIs = nil
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return &e, nil
}

// PutEventEndpoint implements store.Store.
func (db *DB) PutEventEndpoint(ctx context.Context, e *store.EventEndpoint) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		var tenant string
		err := tx.QueryRow(ctx, `SELECT tenant FROM event_endpoints WHERE id = $1 FOR UPDATE`, e.ID).Scan(&tenant)
		switch {
		case err == nil && tenant != e.Tenant:
			return fmt.Errorf("event endpoint %s belongs to another tenant: %w", e.ID, store.ErrExists)
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		wmis := e.WMIs
		if wmis == nil {
			wmis = []string{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO event_endpoints(`+endpointCols+`) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
			ON CONFLICT(id) DO UPDATE SET url = excluded.url, description = excluded.description, events = excluded.events,
				wmis = excluded.wmis, secret = excluded.secret, enabled = excluded.enabled, updated_at = excluded.updated_at`,
			e.ID, e.Tenant, e.URL, e.Description, e.Events, wmis, e.Secret, e.Enabled, e.CreatedAt, e.UpdatedAt); err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.EventEndpointAudit(ctx, store.AuditEventEndpointPut, e))
	})
}

// EventEndpoint implements store.Store.
func (db *DB) EventEndpoint(ctx context.Context, id string) (*store.EventEndpoint, error) {
	e, err := scanEndpoint(db.pool.QueryRow(ctx, `SELECT `+endpointCols+` FROM event_endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("event endpoint %s: %w", id, store.ErrNotFound)
	}
	return e, err
}

// ListEventEndpoints implements store.Store.
func (db *DB) ListEventEndpoints(ctx context.Context, tenant string) ([]*store.EventEndpoint, error) {
	return queryAll(ctx, db.pool, scanEndpoint, `SELECT `+endpointCols+` FROM event_endpoints WHERE $1 = '' OR tenant = $1 ORDER BY id`, tenant)
}

// DeleteEventEndpoint implements store.Store.
func (db *DB) DeleteEventEndpoint(ctx context.Context, id string) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		e, err := scanEndpoint(tx.QueryRow(ctx, `DELETE FROM event_endpoints WHERE id = $1 RETURNING `+endpointCols, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("event endpoint %s: %w", id, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.EventEndpointAudit(ctx, store.AuditEventEndpointDelete, e))
	})
}
