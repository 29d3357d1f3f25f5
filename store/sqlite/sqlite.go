// Package sqlite implements store.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go) in WAL mode with durable commits
// (synchronous=FULL). Concurrent certificate inserts are grouped into one
// transaction, so many issuances share one fsync without giving up
// durability: PutCertificate returns only after its row is committed.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/groupcommit"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// maxBatch bounds one group commit.
const maxBatch = 256

// CommitDelay is the longest the committer holds a certificate for others
// to join its commit (0: only what queued during the last commit joins).
// A commit (its WAL frames and the fsync) costs as much CPU as a few
// issuances, so under load sharing it matters; a certificate that comes
// alone is not held (groupcommit). With 1 ms, bench/api.sh used 190 µs of
// CPU per certificate against 220 µs with 300 µs, at a lower p50.
var CommitDelay = time.Millisecond

// DB is a store.Store on SQLite.
type DB struct {
	w, r *sql.DB // w has one connection: SQLite has one writer

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	// The committer's statements are prepared once on w's only connection, so
	// the committer does not parse SQL per batch.
	insert, insertAudit, auditHead *sql.Stmt

	puts *groupcommit.Queue[*putReq]
	wg   sync.WaitGroup
}

type putReq struct {
	c     *store.Certificate
	audit *store.AuditEntry // built by the caller, chained by the committer
	err   chan error
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path.
func Open(path string) (*DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	var stmts [3]*sql.Stmt
	for i, q := range []string{insertCert, insertAuditSQL, auditHeadSQL} {
		if stmts[i], err = w.Prepare(q); err != nil {
			w.Close()
			r.Close()
			return nil, err
		}
	}
	db := &DB{w: w, r: r, insert: stmts[0], insertAudit: stmts[1], auditHead: stmts[2], puts: groupcommit.NewQueue[*putReq](maxBatch, CommitDelay)}
	db.wg.Add(1)
	go db.committer()
	return db, nil
}

var schema = []string{
	`CREATE TABLE tenants (
		name TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		organization TEXT NOT NULL DEFAULT '',
		operator_ids TEXT NOT NULL DEFAULT '',
		provider_ids TEXT NOT NULL DEFAULT '',
		dns_domains TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE cas (
		name TEXT PRIMARY KEY,
		profile TEXT NOT NULL,
		parent TEXT NOT NULL DEFAULT '',
		cert_der BLOB,
		key_uri TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		crl_number INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE certificates (
		issuer TEXT NOT NULL REFERENCES cas(name),
		serial TEXT NOT NULL,
		profile TEXT NOT NULL,
		tenant TEXT NOT NULL DEFAULT '',
		common_name TEXT NOT NULL DEFAULT '',
		not_before INTEGER NOT NULL,
		not_after INTEGER NOT NULL,
		der BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		revoked_at INTEGER,
		reason INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (issuer, serial)
	)`,
	`CREATE INDEX certificates_serial ON certificates(serial)`,
	`CREATE INDEX certificates_tenant ON certificates(tenant, created_at)`,
	`CREATE INDEX certificates_not_after ON certificates(not_after)`,
}

// migrations are applied in order; PRAGMA user_version counts the done ones.
var migrations = [][]string{
	schema,
	{
		// Revocations get a sequence number, so that every process can
		// follow them in order (store.Revocations).
		`ALTER TABLE certificates ADD COLUMN revocation_seq INTEGER`,
		`CREATE INDEX certificates_revocation_seq ON certificates(revocation_seq) WHERE revocation_seq IS NOT NULL`,
	},
	{
		`CREATE TABLE audit (
			seq INTEGER PRIMARY KEY,
			time INTEGER NOT NULL,
			actor TEXT NOT NULL,
			action TEXT NOT NULL,
			object TEXT NOT NULL,
			detail TEXT NOT NULL,
			prev_hash BLOB,
			hash BLOB NOT NULL
		)`,
	},
	{
		`CREATE TABLE stations (
			id TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			serial_number TEXT NOT NULL DEFAULT '',
			evse_ids TEXT NOT NULL DEFAULT '',
			secc_ids TEXT NOT NULL DEFAULT '',
			ocpp_version TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			updated_at INTEGER NOT NULL
		)`,
		`CREATE INDEX stations_tenant ON stations(tenant, id)`,
	},
	{
		`CREATE TABLE station_calls (
			seq INTEGER PRIMARY KEY,
			station TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
			id TEXT NOT NULL,
			action TEXT NOT NULL,
			dialect TEXT NOT NULL,
			payload BLOB NOT NULL,
			created INTEGER NOT NULL,
			UNIQUE (station, id)
		)`,
		`CREATE TABLE station_certificates (
			station TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
			type TEXT NOT NULL,
			hash_algorithm TEXT NOT NULL,
			issuer_name_hash TEXT NOT NULL,
			issuer_key_hash TEXT NOT NULL,
			serial_number TEXT NOT NULL,
			seen_at INTEGER NOT NULL,
			PRIMARY KEY (station, type, issuer_key_hash, serial_number)
		)`,
	},
	{
		`CREATE TABLE token_revocations (
			id TEXT PRIMARY KEY,
			expires_at INTEGER NOT NULL
		)`,
	},
	{
		`CREATE TABLE contracts (
			emaid TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			pcid TEXT NOT NULL,
			is_default INTEGER NOT NULL DEFAULT 0,
			valid_until INTEGER NOT NULL DEFAULT 0,
			created_at INTEGER NOT NULL,
			cancelled_at INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX contracts_pcid ON contracts(pcid)`,
		`CREATE INDEX contracts_tenant ON contracts(tenant, emaid)`,
	},
	{
		`CREATE TABLE provisioning_certificates (
			pcid TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			der BLOB NOT NULL,
			chain BLOB NOT NULL,
			created_at INTEGER NOT NULL
		)`,
		`CREATE INDEX provisioning_tenant ON provisioning_certificates(tenant, pcid)`,
	},
	{
		`CREATE TABLE oem_sub_cas (
			sha256 TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			der BLOB NOT NULL,
			created_at INTEGER NOT NULL
		)`,
	},
	{
		`CREATE TABLE contract_deposits (
			pcid TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			emaid TEXT NOT NULL,
			chain BLOB NOT NULL,
			encrypted_key BLOB NOT NULL,
			dh_public_key BLOB NOT NULL,
			created_at INTEGER NOT NULL
		)`,
		`CREATE INDEX contract_deposits_tenant ON contract_deposits(tenant, pcid)`,
	},
	{
		`CREATE TABLE oauth_clients (
			id TEXT PRIMARY KEY,
			tenant TEXT NOT NULL DEFAULT '',
			role TEXT NOT NULL,
			secret_sha256 BLOB NOT NULL,
			created_at INTEGER NOT NULL,
			revoked_at INTEGER NOT NULL DEFAULT 0
		)`,
	}, {
		`CREATE INDEX certificates_common_name ON certificates(common_name)`,
	}, {
		`CREATE TABLE trust_anchors (
			purpose TEXT NOT NULL,
			sha256 TEXT NOT NULL,
			der BLOB NOT NULL,
			source TEXT NOT NULL,
			added_at INTEGER NOT NULL,
			PRIMARY KEY (purpose, sha256)
		)`,
		`CREATE TABLE event_endpoints (
			id TEXT PRIMARY KEY,
			tenant TEXT NOT NULL DEFAULT '',
			url TEXT NOT NULL,
			description TEXT NOT NULL DEFAULT '',
			events TEXT NOT NULL,
			wmis TEXT NOT NULL DEFAULT '',
			secret TEXT NOT NULL,
			enabled INTEGER NOT NULL,
			created_at INTEGER NOT NULL,
			updated_at INTEGER NOT NULL
		)`,
		`CREATE INDEX event_endpoints_tenant ON event_endpoints(tenant, id)`,
	}, {
		// The primary key leads with the serial, so that it also serves
		// lookups by serial alone: the separate serial index was a second
		// random B-tree insert for every issued certificate.
		`CREATE TABLE certificates_v2 (
			issuer TEXT NOT NULL REFERENCES cas(name),
			serial TEXT NOT NULL,
			profile TEXT NOT NULL,
			tenant TEXT NOT NULL DEFAULT '',
			common_name TEXT NOT NULL DEFAULT '',
			not_before INTEGER NOT NULL,
			not_after INTEGER NOT NULL,
			der BLOB NOT NULL,
			created_at INTEGER NOT NULL,
			revoked_at INTEGER,
			reason INTEGER NOT NULL DEFAULT 0,
			revocation_seq INTEGER,
			PRIMARY KEY (serial, issuer)
		)`,
		`INSERT INTO certificates_v2 SELECT ` + certCols + `, revocation_seq FROM certificates ORDER BY rowid`,
		`DROP TABLE certificates`,
		`ALTER TABLE certificates_v2 RENAME TO certificates`,
		`CREATE INDEX certificates_tenant ON certificates(tenant, created_at)`,
		`CREATE INDEX certificates_not_after ON certificates(not_after)`,
		`CREATE INDEX certificates_revocation_seq ON certificates(revocation_seq) WHERE revocation_seq IS NOT NULL`,
		`CREATE INDEX certificates_common_name ON certificates(common_name)`,
	},
	{
		// A station's own exiResponse limit (base64 characters, 0: its
		// OCPP version's), registered or reported through FieldLength.
		`ALTER TABLE stations ADD COLUMN exi_response_limit INTEGER NOT NULL DEFAULT 0`,
	},
	{
		// When a CA takes over issuance for its profile (rollover),
		// milliseconds since the epoch; 0: from its creation.
		`ALTER TABLE cas ADD COLUMN issue_from INTEGER NOT NULL DEFAULT 0`,
		// The CRLs of offline CAs, signed elsewhere and imported.
		`CREATE TABLE imported_crls (
			issuer TEXT PRIMARY KEY REFERENCES cas(name),
			der BLOB NOT NULL,
			imported_at INTEGER NOT NULL
		)`,
	},
	{
		// AuditActions (the tokens minted, an action's history).
		`CREATE INDEX audit_action ON audit(action, seq)`,
	},
	{
		// Listing every tenant's certificates newest first, a page at a
		// time (the console, ListCertificates without a tenant).
		`CREATE INDEX certificates_created ON certificates(created_at DESC, issuer, serial)`,
		// What expires when among the unrevoked, of all tenants and of
		// one (the console's counts).
		`CREATE INDEX certificates_live_not_after ON certificates(not_after, issuer) WHERE revoked_at IS NULL`,
		`CREATE INDEX certificates_live_tenant ON certificates(tenant, not_after, issuer) WHERE revoked_at IS NULL`,
		// When a station last spoke through the proxy (ms; 0: never).
		`ALTER TABLE stations ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0`,
	},
	{
		// The installation log: every answered Get15118EVCertificate.
		`CREATE TABLE installations (
			seq INTEGER PRIMARY KEY,
			at INTEGER NOT NULL,
			station TEXT NOT NULL,
			action TEXT NOT NULL,
			pcid TEXT NOT NULL,
			emaid TEXT NOT NULL,
			emsp TEXT NOT NULL,
			oem TEXT NOT NULL,
			response_code TEXT NOT NULL,
			reason TEXT NOT NULL,
			source TEXT NOT NULL,
			size INTEGER NOT NULL,
			size_limit INTEGER NOT NULL
		)`,
		`CREATE INDEX installations_emsp ON installations(emsp, seq) WHERE emsp <> ''`,
		`CREATE INDEX installations_oem ON installations(oem, seq) WHERE oem <> ''`,
		`CREATE INDEX installations_pcid ON installations(pcid, seq)`,
		`CREATE INDEX installations_emaid ON installations(emaid, seq) WHERE emaid <> ''`,
	},
}

func migrate(db *sql.DB) error {
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	for ; v < len(migrations); v++ {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for _, s := range migrations[v] {
			if _, err := tx.Exec(s); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the committer and closes the database.
func (db *DB) Close() error {
	db.puts.Close()
	db.wg.Wait()
	db.stmtMu.Lock()
	errs := []error{db.insert.Close(), db.insertAudit.Close(), db.auditHead.Close()}
	for _, s := range db.stmts {
		errs = append(errs, s.Close())
	}
	db.stmts = nil
	db.stmtMu.Unlock()
	return errors.Join(append(errs, db.w.Close(), db.r.Close())...)
}

// maxStmts bounds the prepared statement cache: the queries are constant
// or built from a few optional filters.
const maxStmts = 256

// prepared returns the reader pool's prepared statement for q, preparing
// it once: modernc's SQLite takes longer to prepare the point lookups of
// the OCPP and contract paths than to run them. Past maxStmts it returns
// nil and the caller queries unprepared.
func (db *DB) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if s, ok := db.stmts[q]; ok || len(db.stmts) >= maxStmts {
		return s, nil
	}
	s, err := db.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if db.stmts == nil {
		db.stmts = map[string]*sql.Stmt{}
	}
	db.stmts[q] = s
	return s, nil
}

// queryRow is QueryRowContext on a cached prepared statement.
func (db *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s, err := db.prepared(ctx, q); err == nil && s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	// Unprepared; a preparation error comes back from Scan.
	return db.r.QueryRowContext(ctx, q, args...)
}

func ms(t time.Time) int64 { return t.UnixMilli() }
func fromMS(v int64) time.Time {
	return time.UnixMilli(v).UTC()
}

func join(s []string) string { return strings.Join(s, ",") }
func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func isForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY")
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

type scanner interface{ Scan(...any) error }

// queryAll runs a query and scans every row with scan.
func queryAll[T any](ctx context.Context, db *DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	var rows *sql.Rows
	stmt, err := db.prepared(ctx, q)
	if err == nil && stmt != nil {
		rows, err = stmt.QueryContext(ctx, args...)
	} else {
		rows, err = db.r.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// writeTx runs fn in a transaction on the writer connection.
func (db *DB) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

const (
	insertAuditSQL = `INSERT INTO audit(seq, time, actor, action, object, detail, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?)`
	auditHeadSQL   = `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`
)

// appendAudit chains entries after the log's head inside tx.
func (db *DB) appendAudit(ctx context.Context, tx *sql.Tx, entries ...*store.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var seq int64
	var prev []byte
	err := tx.StmtContext(ctx, db.auditHead).QueryRowContext(ctx).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit head: %w", err)
	}
	stmt := tx.StmtContext(ctx, db.insertAudit)
	for _, e := range entries {
		store.Chain(e, seq, prev)
		if _, err := stmt.ExecContext(ctx, e.Seq, e.Time.UnixMicro(), e.Actor, e.Action, e.Object, e.Detail, e.PrevHash, e.Hash); err != nil {
			return fmt.Errorf("append audit: %w", err)
		}
		seq, prev = e.Seq, e.Hash
	}
	return nil
}

// AppendAudit implements store.Store.
func (db *DB) AppendAudit(ctx context.Context, entries ...*store.AuditEntry) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error { return db.appendAudit(ctx, tx, entries...) })
}

// AuditLog implements store.Store.
func (db *DB) AuditLog(ctx context.Context, after int64, limit int) ([]*store.AuditEntry, error) {
	return db.audit(ctx, `seq > ?`, store.PageLimit(limit), after)
}

// AuditActions implements store.Store.
func (db *DB) AuditActions(ctx context.Context, actions []string, after int64, limit int) ([]*store.AuditEntry, error) {
	if len(actions) == 0 {
		return nil, nil
	}
	args := []any{after}
	for _, a := range actions {
		args = append(args, a)
	}
	return db.audit(ctx, `seq > ? AND action IN (?`+strings.Repeat(`,?`, len(actions)-1)+`)`, store.PageLimit(limit), args...)
}

// audit returns up to limit entries matching where, in order.
func (db *DB) audit(ctx context.Context, where string, limit int, args ...any) ([]*store.AuditEntry, error) {
	return queryAll(ctx, db, func(row scanner) (*store.AuditEntry, error) {
		var e store.AuditEntry
		var us int64
		if err := row.Scan(&e.Seq, &us, &e.Actor, &e.Action, &e.Object, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.Time = time.UnixMicro(us).UTC()
		return &e, nil
	}, `SELECT seq, time, actor, action, object, detail, prev_hash, hash FROM audit WHERE `+where+` ORDER BY seq LIMIT ?`, append(args, limit)...)
}

// AuditHead implements store.Store.
func (db *DB) AuditHead(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := db.queryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	return seq, hash, err
}

// CreateTenant implements store.Store.
func (db *DB) CreateTenant(ctx context.Context, t *policies.Tenant) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants(name, kind, organization, operator_ids, provider_ids, dns_domains) VALUES(?,?,?,?,?,?)`,
			t.Name, string(t.Kind), t.Organization, join(t.OperatorIDs), join(t.ProviderIDs), join(t.DNSDomains)); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.TenantAudit(ctx, t))
	})
	if isUnique(err) {
		return fmt.Errorf("tenant %s: %w", t.Name, store.ErrExists)
	}
	return err
}

const tenantCols = `name, kind, organization, operator_ids, provider_ids, dns_domains`

func scanTenant(row scanner) (*policies.Tenant, error) {
	var t policies.Tenant
	var kind, ops, provs, dns string
	if err := row.Scan(&t.Name, &kind, &t.Organization, &ops, &provs, &dns); err != nil {
		return nil, err
	}
	t.Kind = policies.TenantKind(kind)
	t.OperatorIDs, t.ProviderIDs, t.DNSDomains = split(ops), split(provs), split(dns)
	return &t, nil
}

// Tenant implements store.Store.
func (db *DB) Tenant(ctx context.Context, name string) (*policies.Tenant, error) {
	t, err := scanTenant(db.queryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tenant %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

// Tenants implements store.Store.
func (db *DB) Tenants(ctx context.Context) ([]*policies.Tenant, error) {
	return queryAll(ctx, db, scanTenant, `SELECT `+tenantCols+` FROM tenants ORDER BY name`)
}

// CreateCA implements store.Store.
func (db *DB) CreateCA(ctx context.Context, ca *store.CA) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cas(name, profile, parent, cert_der, key_uri, created_at, issue_from) VALUES(?,?,?,?,?,?,?)`,
			ca.Name, ca.Profile, ca.Parent, ca.CertDER, ca.KeyURI, ms(ca.CreatedAt), issueFromMS(ca.IssueFrom)); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.CAAudit(ctx, ca))
	})
	if isUnique(err) {
		return fmt.Errorf("CA %s: %w", ca.Name, store.ErrExists)
	}
	return err
}

// SetCACertificate implements store.Store.
func (db *DB) SetCACertificate(ctx context.Context, name string, der []byte) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE cas SET cert_der = ? WHERE name = ?`, der, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("CA %s: %w", name, store.ErrNotFound)
		}
		return db.appendAudit(ctx, tx, store.CACertificateAudit(ctx, name, der))
	})
}

// SetCAKey implements store.Store.
func (db *DB) SetCAKey(ctx context.Context, name, keyURI string) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE cas SET key_uri = ? WHERE name = ?`, keyURI, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("CA %s: %w", name, store.ErrNotFound)
		}
		return db.appendAudit(ctx, tx, store.CAKeyAudit(ctx, name, keyURI))
	})
}

const caCols = `name, profile, parent, cert_der, key_uri, created_at, issue_from`

func scanCA(row scanner) (*store.CA, error) {
	var ca store.CA
	var created, from int64
	if err := row.Scan(&ca.Name, &ca.Profile, &ca.Parent, &ca.CertDER, &ca.KeyURI, &created, &from); err != nil {
		return nil, err
	}
	ca.CreatedAt = fromMS(created)
	if from != 0 {
		ca.IssueFrom = fromMS(from)
	}
	return &ca, nil
}

// issueFromMS stores a zero switch time as 0.
func issueFromMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// CA implements store.Store.
func (db *DB) CA(ctx context.Context, name string) (*store.CA, error) {
	ca, err := scanCA(db.queryRow(ctx, `SELECT `+caCols+` FROM cas WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("CA %s: %w", name, store.ErrNotFound)
	}
	return ca, err
}

// CAs implements store.Store.
func (db *DB) CAs(ctx context.Context) ([]*store.CA, error) {
	return queryAll(ctx, db, scanCA, `SELECT `+caCols+` FROM cas ORDER BY created_at, name`)
}

// PutCertificate implements store.Store. The row is handed to the
// committer, which writes it with whatever else is waiting in one
// transaction; the call returns after that transaction commits.
func (db *DB) PutCertificate(ctx context.Context, c *store.Certificate) error {
	req := &putReq{c: c, audit: store.IssueAudit(store.ActorFrom(ctx), c), err: make(chan error, 1)}
	if err := db.puts.Put(ctx, req); err != nil {
		return err
	}
	// Once queued the row may be committed: wait for the outcome even if
	// ctx ends, so the caller never drops a stored certificate.
	return <-req.err
}

// committer commits the queued certificates in batches until Close.
func (db *DB) committer() {
	defer db.wg.Done()
	batch := make([]*putReq, 0, maxBatch)
	for {
		var ok bool
		if batch, ok = db.puts.Next(batch); !ok {
			return
		}
		db.commit(batch)
	}
}

const insertCert = `INSERT INTO certificates(issuer, serial, profile, tenant, common_name, not_before, not_after, der, created_at)
	VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(serial, issuer) DO NOTHING`

func (db *DB) commit(batch []*putReq) {
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := db.w.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmt := tx.Stmt(db.insert)
		var audit []*store.AuditEntry
		for i, r := range batch {
			c := r.c
			res, err := stmt.Exec(c.Issuer, c.Serial, c.Profile, c.Tenant, c.CommonName, ms(c.NotBefore), ms(c.NotAfter), c.DER, ms(c.CreatedAt))
			if err != nil {
				if isForeignKey(err) {
					errs[i] = fmt.Errorf("issuer %s: %w", c.Issuer, store.ErrNotFound)
					continue
				}
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				errs[i] = fmt.Errorf("issuer %s serial %s: %w", c.Issuer, c.Serial, store.ErrDuplicateSerial)
				continue
			}
			audit = append(audit, r.audit)
		}
		if err := db.appendAudit(context.Background(), tx, audit...); err != nil {
			return err
		}
		return tx.Commit()
	}()
	for i, r := range batch {
		if err != nil {
			r.err <- fmt.Errorf("store certificate: %w", err)
		} else {
			r.err <- errs[i]
		}
	}
}

const certCols = `issuer, serial, profile, tenant, common_name, not_before, not_after, der, created_at, revoked_at, reason`

func scanCert(row scanner) (*store.Certificate, error) {
	var c store.Certificate
	var nb, na, created int64
	var revoked sql.NullInt64
	if err := row.Scan(&c.Issuer, &c.Serial, &c.Profile, &c.Tenant, &c.CommonName, &nb, &na, &c.DER, &created, &revoked, &c.Reason); err != nil {
		return nil, err
	}
	c.NotBefore, c.NotAfter, c.CreatedAt = fromMS(nb), fromMS(na), fromMS(created)
	if revoked.Valid {
		c.RevokedAt = fromMS(revoked.Int64)
	}
	return &c, nil
}

// Certificate implements store.Store.
func (db *DB) Certificate(ctx context.Context, issuer, serial string) (*store.Certificate, error) {
	c, err := scanCert(db.queryRow(ctx, `SELECT `+certCols+` FROM certificates WHERE issuer = ? AND serial = ?`, issuer, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("certificate %s/%s: %w", issuer, serial, store.ErrNotFound)
	}
	return c, err
}

// Certificates implements store.Store.
func (db *DB) Certificates(ctx context.Context, f store.Filter) ([]*store.Certificate, error) {
	where, args := db.where(f)
	args = append(args, store.PageLimit(f.Limit), max(f.Offset, 0))
	return queryAll(ctx, db, scanCert, `SELECT `+certCols+` FROM certificates`+where+f.OrderBy()+` LIMIT ? OFFSET ?`, args...)
}

// CountCertificates implements store.Store.
func (db *DB) CountCertificates(ctx context.Context, f store.Filter) (int64, error) {
	where, args := db.where(f)
	var n int64
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM certificates`+where, args...).Scan(&n)
	return n, err
}

// ProfileCounts implements store.Store.
func (db *DB) ProfileCounts(ctx context.Context, tenant string, at time.Time) ([]store.ProfileCount, error) {
	where, args := db.where(store.Filter{Tenant: tenant})
	now := ms(at)
	return queryAll(ctx, db, scanProfileCount, `SELECT profile, SUM(revoked_at IS NULL AND not_after >= ?), SUM(revoked_at IS NULL AND not_after < ?),
		SUM(revoked_at IS NOT NULL) FROM certificates`+where+` GROUP BY profile ORDER BY profile`, append([]any{now, now}, args...)...)
}

func scanProfileCount(row scanner) (store.ProfileCount, error) {
	var c store.ProfileCount
	err := row.Scan(&c.Profile, &c.Valid, &c.Expired, &c.Revoked)
	return c, err
}

// Histogram implements store.Store. It asks bucket by bucket: each is a
// range of an index grouped by issuer, where one query over all buckets
// would sort every row of the range by its computed bucket first.
func (db *DB) Histogram(ctx context.Context, f store.Filter, col store.HistogramColumn, from time.Time, width time.Duration, n int) (map[string][]int64, error) {
	if col != store.HistogramExpiry && col != store.HistogramIssuance || width < time.Millisecond || n <= 0 {
		return nil, fmt.Errorf("histogram of %q in %d buckets of %s", col, n, width)
	}
	where, args := db.where(f)
	cond := " WHERE "
	if where != "" {
		cond = where + " AND "
	}
	// For a week of expiries SQLite's planner prefers the plain notAfter
	// index and reads every row behind it; the live ones hold notAfter
	// with the issuer, and answer from the index alone, ten times faster.
	table := "certificates"
	if col == store.HistogramExpiry && f.Revoked != nil && !*f.Revoked {
		table += " INDEXED BY certificates_live_not_after"
		if f.Tenant != "" {
			table = "certificates INDEXED BY certificates_live_tenant"
		}
	}
	q := `SELECT issuer, COUNT(*) FROM ` + table + cond + string(col) + ` >= ? AND ` + string(col) + ` < ? GROUP BY issuer`
	out := map[string][]int64{}
	for b := range n {
		lo := from.Add(time.Duration(b) * width)
		rows, err := db.r.QueryContext(ctx, q, append(args, ms(lo), ms(lo.Add(width)))...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var issuer string
			var count int64
			if err := rows.Scan(&issuer, &count); err != nil {
				rows.Close()
				return nil, err
			}
			if out[issuer] == nil {
				out[issuer] = make([]int64, n)
			}
			out[issuer][b] = count
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// where is f's WHERE clause; SQLite compares TEXT bytewise already.
func (db *DB) where(f store.Filter) (string, []any) {
	return f.Where(func(int) string { return "?" }, func(t time.Time) any { return ms(t) }, "common_name")
}

// Revoke implements store.Store.
func (db *DB) Revoke(ctx context.Context, issuer, serial string, reason int, at time.Time) (*store.Certificate, error) {
	var n int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE certificates SET revoked_at = ?, reason = ?,
			revocation_seq = (SELECT COALESCE(MAX(revocation_seq), 0) + 1 FROM certificates WHERE revocation_seq IS NOT NULL)
			WHERE issuer = ? AND serial = ? AND revoked_at IS NULL`,
			ms(at), reason, issuer, serial)
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return nil
		}
		return db.appendAudit(ctx, tx, store.RevokeAudit(ctx, issuer, serial, reason, at))
	})
	if err != nil {
		return nil, fmt.Errorf("revoke %s/%s: %w", issuer, serial, err)
	}
	c, err := db.Certificate(ctx, issuer, serial)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return c, fmt.Errorf("certificate %s/%s: %w", issuer, serial, store.ErrAlreadyRevoked)
	}
	return c, nil
}

// Revoked implements store.Store.
func (db *DB) Revoked(ctx context.Context, issuer string, notAfterFrom time.Time) ([]*store.Certificate, error) {
	return queryAll(ctx, db, scanCert, `SELECT `+certCols+` FROM certificates WHERE issuer = ? AND revoked_at IS NOT NULL AND not_after >= ? ORDER BY revoked_at, serial`,
		issuer, ms(notAfterFrom))
}

// Live implements store.Store.
func (db *DB) Live(ctx context.Context, issuer string, at time.Time, after string, limit int) ([]store.CertStatus, error) {
	limit = store.PageLimit(limit)
	return queryAll(ctx, db, func(row scanner) (store.CertStatus, error) {
		var c store.CertStatus
		var na int64
		var revoked sql.NullInt64
		if err := row.Scan(&c.Serial, &c.Profile, &na, &revoked, &c.Reason); err != nil {
			return c, err
		}
		c.NotAfter = fromMS(na)
		if revoked.Valid {
			c.RevokedAt = fromMS(revoked.Int64)
		}
		return c, nil
	}, `SELECT serial, profile, not_after, revoked_at, reason FROM certificates WHERE issuer = ? AND serial > ? AND not_after >= ? ORDER BY serial LIMIT ?`,
		issuer, after, ms(at), limit)
}

// Revocations implements store.Store.
func (db *DB) Revocations(ctx context.Context, after int64, limit int) ([]store.Revocation, error) {
	limit = store.PageLimit(limit)
	return queryAll(ctx, db, func(row scanner) (store.Revocation, error) {
		var r store.Revocation
		return r, row.Scan(&r.Seq, &r.Issuer, &r.Serial)
	}, `SELECT revocation_seq, issuer, serial FROM certificates WHERE revocation_seq > ? ORDER BY revocation_seq LIMIT ?`, after, limit)
}

// RevocationCursor implements store.Store.
func (db *DB) RevocationCursor(ctx context.Context) (int64, error) {
	var n int64
	err := db.queryRow(ctx, `SELECT COALESCE(MAX(revocation_seq), 0) FROM certificates WHERE revocation_seq IS NOT NULL`).Scan(&n)
	return n, err
}

// NextCRLNumber implements store.Store.
func (db *DB) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	var n int64
	err := db.w.QueryRowContext(ctx, `UPDATE cas SET crl_number = crl_number + 1 WHERE name = ? RETURNING crl_number`, issuer).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("CA %s: %w", issuer, store.ErrNotFound)
	}
	return n, err
}

// RevokeToken implements store.Store.
func (db *DB) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO token_revocations(id, expires_at) VALUES(?,?) ON CONFLICT(id) DO NOTHING`, id, ms(expiresAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM token_revocations WHERE expires_at < ?`, ms(time.Now())); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: store.AuditTokenRevoke, Object: id,
			Detail: fmt.Sprintf(`{"expires_at":%q}`, expiresAt.UTC().Format(time.RFC3339))})
	})
}

// RevokedTokens implements store.Store.
func (db *DB) RevokedTokens(ctx context.Context, at time.Time) ([]string, error) {
	return queryAll(ctx, db, func(row scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT id FROM token_revocations WHERE expires_at > ?`, ms(at))
}

// PutImportedCRL implements store.Store.
func (db *DB) PutImportedCRL(ctx context.Context, issuer string, der []byte, audit *store.AuditEntry) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO imported_crls(issuer, der, imported_at) VALUES(?,?,?)
			ON CONFLICT(issuer) DO UPDATE SET der = excluded.der, imported_at = excluded.imported_at`, issuer, der, ms(time.Now())); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, audit)
	})
}

// ImportedCRL implements store.Store.
func (db *DB) ImportedCRL(ctx context.Context, issuer string) ([]byte, error) {
	var der []byte
	err := db.queryRow(ctx, `SELECT der FROM imported_crls WHERE issuer = ?`, issuer).Scan(&der)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("imported CRL of %s: %w", issuer, store.ErrNotFound)
	}
	return der, err
}

// Snapshot writes a consistent copy of the whole database to path (which
// must not exist) with VACUUM INTO: one read transaction, so it runs while
// pncd issues and holds exactly what was committed when it began.
func (db *DB) Snapshot(ctx context.Context, path string) error {
	if _, err := db.r.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("snapshot to %s: %w", path, err)
	}
	return nil
}
