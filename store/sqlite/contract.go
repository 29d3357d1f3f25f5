package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pncpki/pncpki/store"
)

// msOrZero stores a zero time as 0.
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

func fromMSOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMS(v)
}

// PutContract implements store.Store.
func (db *DB) PutContract(ctx context.Context, c *store.Contract) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		old, err := scanContract(tx.QueryRowContext(ctx, `SELECT `+contractCols+` FROM contracts WHERE emaid = ?`, c.EMAID))
		switch {
		case err == nil && old.Tenant != c.Tenant:
			return fmt.Errorf("contract %s belongs to another tenant: %w", c.EMAID, store.ErrExists)
		case err == nil && old.Cancelled():
			return fmt.Errorf("contract %s is cancelled: %w", c.EMAID, store.ErrExists)
		case err == nil:
			c.CreatedAt = old.CreatedAt
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if c.Default {
			if _, err := tx.ExecContext(ctx, `UPDATE contracts SET is_default = 0 WHERE pcid = ? AND emaid <> ?`, c.PCID, c.EMAID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO contracts(emaid, tenant, pcid, is_default, valid_until, created_at) VALUES(?,?,?,?,?,?)
			ON CONFLICT(emaid) DO UPDATE SET pcid = excluded.pcid, is_default = excluded.is_default, valid_until = excluded.valid_until`,
			c.EMAID, c.Tenant, c.PCID, c.Default, msOrZero(c.ValidUntil), ms(c.CreatedAt)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("contract %s: tenant %s: %w", c.EMAID, c.Tenant, store.ErrNotFound)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.ContractAudit(ctx, c))
	})
}

const contractCols = `emaid, tenant, pcid, is_default, valid_until, created_at, cancelled_at`

func scanContract(row scanner) (*store.Contract, error) {
	var c store.Contract
	var until, created, cancelled int64
	if err := row.Scan(&c.EMAID, &c.Tenant, &c.PCID, &c.Default, &until, &created, &cancelled); err != nil {
		return nil, err
	}
	c.ValidUntil, c.CreatedAt, c.CancelledAt = fromMSOrZero(until), fromMS(created), fromMSOrZero(cancelled)
	return &c, nil
}

// Contract implements store.Store.
func (db *DB) Contract(ctx context.Context, emaid string) (*store.Contract, error) {
	c, err := scanContract(db.queryRow(ctx, `SELECT `+contractCols+` FROM contracts WHERE emaid = ?`, emaid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("contract %s: %w", emaid, store.ErrNotFound)
	}
	return c, err
}

// ListContracts implements store.Store.
func (db *DB) ListContracts(ctx context.Context, tenant, pcid string) ([]*store.Contract, error) {
	return queryAll(ctx, db, scanContract, `SELECT `+contractCols+` FROM contracts
		WHERE (? = '' OR tenant = ?) AND (? = '' OR pcid = ?) ORDER BY emaid`, tenant, tenant, pcid, pcid)
}

// CancelContract implements store.Store.
func (db *DB) CancelContract(ctx context.Context, emaid string, at time.Time) (*store.Contract, error) {
	var c *store.Contract
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanContract(tx.QueryRowContext(ctx, `SELECT `+contractCols+` FROM contracts WHERE emaid = ?`, emaid))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("contract %s: %w", emaid, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if c.Cancelled() {
			return nil // cancelling twice changes nothing
		}
		c.CancelledAt, c.Default = at.UTC().Truncate(time.Millisecond), false
		if _, err := tx.ExecContext(ctx, `UPDATE contracts SET cancelled_at = ?, is_default = 0 WHERE emaid = ?`, ms(c.CancelledAt), emaid); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: store.AuditContractCancel, Object: emaid, Detail: "{}"})
	})
	return c, err
}

// PutProvisioningCertificate implements store.Store.
func (db *DB) PutProvisioningCertificate(ctx context.Context, p *store.ProvisioningCertificate) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		var tenant string
		err := tx.QueryRowContext(ctx, `SELECT tenant FROM provisioning_certificates WHERE pcid = ?`, p.PCID).Scan(&tenant)
		switch {
		case err == nil && tenant != p.Tenant:
			return fmt.Errorf("PCID %s belongs to another tenant: %w", p.PCID, store.ErrExists)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO provisioning_certificates(pcid, tenant, der, chain, created_at) VALUES(?,?,?,?,?)
			ON CONFLICT(pcid) DO UPDATE SET der = excluded.der, chain = excluded.chain, created_at = excluded.created_at`,
			p.PCID, p.Tenant, p.DER, append([]byte{}, p.Chain...), ms(p.CreatedAt)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("PCID %s: tenant %s: %w", p.PCID, p.Tenant, store.ErrNotFound)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.ProvisioningAudit(ctx, store.AuditProvisioningPut, p.PCID, p.Tenant, p.DER))
	})
}

func scanProvisioning(row scanner) (*store.ProvisioningCertificate, error) {
	var p store.ProvisioningCertificate
	var created int64
	if err := row.Scan(&p.PCID, &p.Tenant, &p.DER, &p.Chain, &created); err != nil {
		return nil, err
	}
	p.CreatedAt = fromMS(created)
	return &p, nil
}

// ProvisioningCertificate implements store.Store.
func (db *DB) ProvisioningCertificate(ctx context.Context, pcid string) (*store.ProvisioningCertificate, error) {
	p, err := scanProvisioning(db.queryRow(ctx, `SELECT pcid, tenant, der, chain, created_at FROM provisioning_certificates WHERE pcid = ?`, pcid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("PCID %s: %w", pcid, store.ErrNotFound)
	}
	return p, err
}

// ListProvisioningCertificates implements store.Store.
func (db *DB) ListProvisioningCertificates(ctx context.Context, tenant string) ([]*store.ProvisioningCertificate, error) {
	return queryAll(ctx, db, scanProvisioning, `SELECT pcid, tenant, der, chain, created_at FROM provisioning_certificates
		WHERE ? = '' OR tenant = ? ORDER BY pcid`, tenant, tenant)
}

// DeleteProvisioningCertificate implements store.Store.
func (db *DB) DeleteProvisioningCertificate(ctx context.Context, pcid string) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		var tenant string
		if err := tx.QueryRowContext(ctx, `DELETE FROM provisioning_certificates WHERE pcid = ? RETURNING tenant`, pcid).Scan(&tenant); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("PCID %s: %w", pcid, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.ProvisioningAudit(ctx, store.AuditProvisioningDelete, pcid, tenant, nil))
	})
}

// PutOEMSubCA implements store.Store.
func (db *DB) PutOEMSubCA(ctx context.Context, c *store.OEMSubCA) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		var tenant string
		err := tx.QueryRowContext(ctx, `SELECT tenant FROM oem_sub_cas WHERE sha256 = ?`, c.SHA256).Scan(&tenant)
		switch {
		case err == nil && tenant != c.Tenant:
			return fmt.Errorf("sub-CA %s belongs to another tenant: %w", c.SHA256, store.ErrExists)
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO oem_sub_cas(sha256, tenant, der, created_at) VALUES(?,?,?,?)`,
			c.SHA256, c.Tenant, c.DER, ms(c.CreatedAt)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("tenant %s: %w", c.Tenant, store.ErrNotFound)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.OEMSubCAAudit(ctx, store.AuditOEMSubCAPut, c))
	})
}

// OEMSubCAs implements store.Store.
func (db *DB) OEMSubCAs(ctx context.Context, tenant string) ([]*store.OEMSubCA, error) {
	return queryAll(ctx, db, func(row scanner) (*store.OEMSubCA, error) {
		var c store.OEMSubCA
		var created int64
		if err := row.Scan(&c.SHA256, &c.Tenant, &c.DER, &created); err != nil {
			return nil, err
		}
		c.CreatedAt = fromMS(created)
		return &c, nil
	}, `SELECT sha256, tenant, der, created_at FROM oem_sub_cas WHERE ? = '' OR tenant = ? ORDER BY sha256`, tenant, tenant)
}

// DeleteOEMSubCA implements store.Store.
func (db *DB) DeleteOEMSubCA(ctx context.Context, sha256 string) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		c := &store.OEMSubCA{SHA256: sha256}
		if err := tx.QueryRowContext(ctx, `DELETE FROM oem_sub_cas WHERE sha256 = ? RETURNING tenant`, sha256).Scan(&c.Tenant); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sub-CA %s: %w", sha256, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.OEMSubCAAudit(ctx, store.AuditOEMSubCADelete, c))
	})
}

const depositCols = `pcid, tenant, emaid, chain, encrypted_key, dh_public_key, created_at`

func scanDeposit(row scanner) (*store.ContractDeposit, error) {
	var d store.ContractDeposit
	var created int64
	if err := row.Scan(&d.PCID, &d.Tenant, &d.EMAID, &d.Chain, &d.EncryptedKey, &d.DHPublicKey, &created); err != nil {
		return nil, err
	}
	d.CreatedAt = fromMS(created)
	return &d, nil
}

// PutContractDeposit implements store.Store.
func (db *DB) PutContractDeposit(ctx context.Context, d *store.ContractDeposit) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		var tenant string
		err := tx.QueryRowContext(ctx, `SELECT tenant FROM contract_deposits WHERE pcid = ?`, d.PCID).Scan(&tenant)
		switch {
		case err == nil && tenant != d.Tenant:
			return fmt.Errorf("PCID %s has a deposit of another tenant: %w", d.PCID, store.ErrExists)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO contract_deposits(`+depositCols+`) VALUES(?,?,?,?,?,?,?)
			ON CONFLICT(pcid) DO UPDATE SET emaid = excluded.emaid, chain = excluded.chain, encrypted_key = excluded.encrypted_key,
			dh_public_key = excluded.dh_public_key, created_at = excluded.created_at`,
			d.PCID, d.Tenant, d.EMAID, d.Chain, d.EncryptedKey, d.DHPublicKey, ms(d.CreatedAt)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("tenant %s: %w", d.Tenant, store.ErrNotFound)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.DepositAudit(ctx, store.AuditDepositPut, d))
	})
}

// ContractDeposit implements store.Store.
func (db *DB) ContractDeposit(ctx context.Context, pcid string) (*store.ContractDeposit, error) {
	d, err := scanDeposit(db.queryRow(ctx, `SELECT `+depositCols+` FROM contract_deposits WHERE pcid = ?`, pcid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("deposit for %s: %w", pcid, store.ErrNotFound)
	}
	return d, err
}

// ListContractDeposits implements store.Store.
func (db *DB) ListContractDeposits(ctx context.Context, tenant string) ([]*store.ContractDeposit, error) {
	return queryAll(ctx, db, scanDeposit, `SELECT `+depositCols+` FROM contract_deposits WHERE ? = '' OR tenant = ? ORDER BY pcid`, tenant, tenant)
}

// DeleteContractDeposit implements store.Store.
func (db *DB) DeleteContractDeposit(ctx context.Context, pcid string) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		d := &store.ContractDeposit{PCID: pcid}
		if err := tx.QueryRowContext(ctx, `DELETE FROM contract_deposits WHERE pcid = ? RETURNING tenant, emaid`, pcid).Scan(&d.Tenant, &d.EMAID); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("deposit for %s: %w", pcid, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.DepositAudit(ctx, store.AuditDepositDelete, d))
	})
}

const installationCols = `seq, at, station, action, pcid, emaid, emsp, oem, response_code, reason, source, size, size_limit`

// PutInstallation implements store.Store.
func (db *DB) PutInstallation(ctx context.Context, r *store.InstallationRecord) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO installations(at, station, action, pcid, emaid, emsp, oem, response_code, reason, source, size, size_limit)
			VALUES(?,?,?,?,?,?,?,?,?,?,?,?) RETURNING seq`,
			ms(r.At), r.Station, r.Action, r.PCID, r.EMAID, r.EMSP, r.OEM, r.ResponseCode, r.Reason, r.Source, r.Size, r.Limit).Scan(&r.Seq)
	})
}

func scanInstallation(row scanner) (*store.InstallationRecord, error) {
	var r store.InstallationRecord
	var at int64
	if err := row.Scan(&r.Seq, &at, &r.Station, &r.Action, &r.PCID, &r.EMAID, &r.EMSP, &r.OEM, &r.ResponseCode, &r.Reason, &r.Source, &r.Size, &r.Limit); err != nil {
		return nil, err
	}
	r.At = fromMS(at)
	return &r, nil
}

// ListInstallations implements store.Store.
func (db *DB) ListInstallations(ctx context.Context, f store.InstallationFilter) ([]*store.InstallationRecord, error) {
	where, args := f.Where(func(int) string { return "?" })
	return queryAll(ctx, db, scanInstallation, `SELECT `+installationCols+` FROM installations`+where+` ORDER BY seq DESC LIMIT ?`, append(args, f.Limit)...)
}
