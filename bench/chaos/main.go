// Command chaos is pncpki's reliability suite: it does what the outside
// fault-injection pass did, repeatably, on loopback only and bounded in
// time, and fails on any loss.
//
//   - pncd killed (-9) under issuance and revocation load, several cycles,
//     on SQLite and on PostgreSQL: every acknowledged certificate and
//     revocation must be there after the restarts, OCSP must answer revoked
//     for every acknowledged revocation, and the audit chain must verify.
//   - PostgreSQL killed (-9) under load and started again: pncd recovers
//     without a restart, what fails meanwhile fails with 503
//     store.unavailable, and nothing acknowledged is lost.
//   - Redis killed and started again under load: the API keeps answering
//     (no 428, no 5xx), and OCSP answers.
//
// PostgreSQL and Redis are instances of its own, on ports of its own, so
// that killing them touches nothing else. It prints a table and exits 1 on
// any loss or unexpected error.
//
//	go run ./bench/chaos [-cycles 5] [-load 3s] [-short]
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

var (
	cycles = flag.Int("cycles", 5, "kill -9 cycles of pncd per store")
	load   = flag.Duration("load", 3*time.Second, "load before each kill")
	short  = flag.Bool("short", false, "two cycles of 1 s each (CI)")
	keep   = flag.Bool("keep", false, "keep the temporary directory")
)

func main() {
	flag.Parse()
	if *short {
		*cycles, *load = 2, time.Second
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// result is one scenario's line of the table.
type result struct {
	name                      string
	tried, acked, present     int64
	revTried, revAcked        int64
	revPresent, ocspRevoked   int64
	errors                    map[string]int64 // 5xx and transport errors by status and code
	unexpected, auditVerified bool
	note                      string
}

func (r *result) lost() int64 {
	return r.acked - r.present + r.revAcked - r.revPresent + r.revAcked - r.ocspRevoked
}

type suite struct {
	dir          string
	pncd, pncctl string
	results      []*result
}

func run() error {
	dir, err := os.MkdirTemp("", "pncpki-chaos-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("keeping", dir)
	}
	os.Chmod(dir, 0o755) // PostgreSQL runs as its own user below it
	s := &suite{dir: dir, pncd: filepath.Join(dir, "pncd"), pncctl: filepath.Join(dir, "pncctl")}
	for _, b := range [][2]string{{s.pncd, "./cmd/pncd"}, {s.pncctl, "./cmd/pncctl"}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b[1], err, out)
		}
	}
	if err := s.killPncd("sqlite", ""); err != nil {
		return err
	}
	pg, err := s.startPostgres()
	if err != nil {
		return err
	}
	defer pg.stop()
	if err := s.killPncd("postgres", pg.url("chaos_kill")); err != nil {
		return err
	}
	if err := s.killPostgres(pg); err != nil {
		return err
	}
	if err := s.killRedis(); err != nil {
		return err
	}
	return s.report()
}

// report prints the table and fails on any loss or unexpected answer.
func (s *suite) report() error {
	fmt.Printf("\n%-34s %7s %7s %7s %7s %9s %9s %9s %6s  %s\n", "scenario", "issued", "acked", "present", "revoked", "rev acked", "rev kept", "ocsp rev", "lost", "5xx / errors by code")
	bad := false
	for _, r := range s.results {
		var codes []string
		for k, v := range r.errors {
			codes = append(codes, fmt.Sprintf("%s x%d", k, v))
		}
		sort.Strings(codes)
		lost := r.lost()
		fmt.Printf("%-34s %7d %7d %7d %7d %9d %9d %9d %6d  %s\n", r.name, r.tried, r.acked, r.present, r.revTried, r.revAcked, r.revPresent, r.ocspRevoked, lost, strings.Join(codes, ", "))
		if r.note != "" {
			fmt.Printf("%-34s %s\n", "", r.note)
		}
		if lost != 0 || r.unexpected || !r.auditVerified {
			bad = true
		}
	}
	if bad {
		return errors.New("loss, unexpected errors or a broken audit chain (see the table)")
	}
	fmt.Println("\nno acknowledged certificate or revocation lost; audit chains verify")
	return nil
}

// node is one pncd process on a data directory.
type node struct {
	s          *suite
	data, addr string
	store      string // PostgreSQL URL, "" for SQLite
	redis      string
	cmd        *exec.Cmd
	token      string
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newNode initialises a data directory (and store) and mints an admin
// token.
func (s *suite) newNode(name, storeURL, redisURL string) (*node, error) {
	n := &node{s: s, data: filepath.Join(s.dir, name), addr: freeAddr(), store: storeURL, redis: redisURL}
	if out, err := n.pncctl("init", "--public-url", "http://"+n.addr); err != nil {
		return nil, fmt.Errorf("init: %v\n%s", err, out)
	}
	out, err := n.pncctl("token", "create", "--role", "admin", "--ttl", "2h")
	if err != nil {
		return nil, fmt.Errorf("token: %v\n%s", err, out)
	}
	n.token = strings.TrimSpace(string(out))
	return n, nil
}

func (n *node) pncctl(args ...string) ([]byte, error) {
	full := append([]string{"--data", n.data}, args...)
	if n.store != "" {
		full = append([]string{"--store", n.store}, full...)
	}
	cmd := exec.Command(n.s.pncctl, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return append(out.Bytes(), errb.Bytes()...), err
	}
	return out.Bytes(), nil
}

// start runs pncd and waits until it is ready.
func (n *node) start() error {
	args := []string{"--data", n.data, "--listen", n.addr, "--audit-checkpoint-interval", "0", "--api-rate", "0"}
	if n.store != "" {
		args = append(args, "--store", n.store)
	}
	if n.redis != "" {
		args = append(args, "--redis", n.redis)
	}
	n.cmd = exec.Command(n.s.pncd, args...)
	logf, err := os.OpenFile(n.data+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	n.cmd.Stderr = logf
	if err := n.cmd.Start(); err != nil {
		return err
	}
	go func() { n.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + n.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("pncd on %s not ready in 30 s (log %s.log)", n.addr, n.data)
}

func (n *node) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *node) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(300 * time.Millisecond)
		n.cmd.Process.Signal(syscall.SIGKILL)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// call makes an API call and returns the status, the error code of a
// refusal and the body.
func (n *node) call(method, path string, body any) (int, string, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+n.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	code := ""
	if resp.StatusCode >= 400 {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(b, &e)
		code, _, _ = strings.Cut(e.Message, ":")
	}
	return resp.StatusCode, code, b, nil
}

// loader issues SECC certificates and revokes every third acknowledged
// one from several goroutines until stopped, recording what pncd
// acknowledged.
type loader struct {
	n                  *node
	tried, revTried    atomic.Int64
	mu                 sync.Mutex
	acked, revAcked    []string
	errors             map[string]int64
	unexpected         []string
	allow503, allowAny bool
}

func newLoader(n *node) *loader { return &loader{n: n, errors: map[string]int64{}} }

var csrs = make(chan string, 64)

func init() {
	go func() {
		for i := 0; ; i++ {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("DE*ABC*E%d", i+1)}}, key)
			csrs <- string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		}
	}()
}

func (l *loader) failure(what string, status int, code string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := fmt.Sprintf("%d %s", status, code)
	if err != nil {
		key = "transport"
	}
	l.errors[key]++
	expected := err != nil || l.allowAny || l.allow503 && status == 503 && code == "store.unavailable"
	if !expected && len(l.unexpected) < 5 {
		l.unexpected = append(l.unexpected, fmt.Sprintf("%s: %s %v", what, key, err))
	}
}

// run loads n until ctx ends, with workers goroutines.
func (l *loader) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				l.tried.Add(1)
				status, code, body, err := l.n.call("POST", "/v1/certificates", map[string]any{"profile": "iso15118-2/secc", "csr": <-csrs})
				if err != nil || status != 200 {
					l.failure("issue", status, code, err)
					continue
				}
				var out struct {
					Certificate struct {
						Serial string `json:"serial"`
					} `json:"certificate"`
				}
				json.Unmarshal(body, &out)
				l.mu.Lock()
				l.acked = append(l.acked, out.Certificate.Serial)
				l.mu.Unlock()
				if i%3 == 2 {
					l.revTried.Add(1)
					status, code, _, err := l.n.call("POST", "/v1/certificates/"+out.Certificate.Serial+":revoke", map[string]any{"reason": "keyCompromise"})
					if err != nil || status != 200 {
						l.failure("revoke", status, code, err)
						continue
					}
					l.mu.Lock()
					l.revAcked = append(l.revAcked, out.Certificate.Serial)
					l.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}

// check counts what pncd acknowledged that it still has: certificates in
// the store, revocations stored and answered by OCSP; and verifies the
// audit chain.
func (l *loader) check(r *result) error {
	n := l.n
	r.tried, r.acked, r.revTried, r.revAcked = l.tried.Load(), int64(len(l.acked)), l.revTried.Load(), int64(len(l.revAcked))
	r.errors = l.errors
	r.unexpected = len(l.unexpected) > 0
	if r.unexpected {
		r.note = "unexpected: " + strings.Join(l.unexpected, "; ")
	}
	issuer, err := n.issuer()
	if err != nil {
		return err
	}
	revoked := map[string]bool{}
	for _, s := range l.revAcked {
		revoked[s] = true
	}
	for _, serial := range l.acked {
		status, _, body, err := n.call("GET", "/v1/certificates/"+serial, nil)
		if err != nil || status != 200 {
			continue
		}
		r.present++
		if !revoked[serial] {
			continue
		}
		var c struct {
			Certificate struct {
				Status string `json:"status"`
				PEM    string `json:"pem"`
			} `json:"certificate"`
		}
		json.Unmarshal(body, &c)
		if c.Certificate.Status == "revoked" {
			r.revPresent++
		}
		if n.ocspRevoked(c.Certificate.PEM, issuer) {
			r.ocspRevoked++
		}
	}
	out, err := n.pncctl("audit", "verify")
	r.auditVerified = err == nil
	if err != nil {
		r.note += " audit verify: " + strings.TrimSpace(string(out))
	}
	return nil
}

// issuer is the certificate of the SECC issuer, cpo-sub2.
func (n *node) issuer() (*x509.Certificate, error) {
	status, _, body, err := n.call("GET", "/v1/authorities", nil)
	if err != nil || status != 200 {
		return nil, fmt.Errorf("authorities: %d %v", status, err)
	}
	var out struct {
		Authorities []struct {
			Name  string   `json:"name"`
			Chain []string `json:"chain"` // PEM, the CA's own first
		} `json:"authorities"`
	}
	json.Unmarshal(body, &out)
	for _, a := range out.Authorities {
		if a.Name != "cpo-sub2" || len(a.Chain) == 0 {
			continue
		}
		block, _ := pem.Decode([]byte(a.Chain[0]))
		if block == nil {
			break
		}
		return x509.ParseCertificate(block.Bytes)
	}
	return nil, fmt.Errorf("no cpo-sub2 in %s", body)
}

// ocspRevoked asks pncd's responder about a certificate.
func (n *node) ocspRevoked(certPEM string, issuer *x509.Certificate) bool {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	req, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return false
	}
	resp, err := client.Post("http://"+n.addr+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	r, err := xocsp.ParseResponseForCert(der, cert, issuer)
	return err == nil && r.Status == xocsp.Revoked
}

// killPncd is scenario (a): pncd killed -9 under load, cycles times.
func (s *suite) killPncd(storeName, storeURL string) error {
	n, err := s.newNode("kill-"+storeName, storeURL, "")
	if err != nil {
		return err
	}
	l := newLoader(n)
	l.allowAny = true // a kill breaks calls in flight: transport errors are expected
	for range *cycles {
		if err := n.start(); err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.run(ctx, 8); close(done) }()
		time.Sleep(*load)
		n.kill() // while requests are in flight
		cancel()
		<-done
	}
	if err := n.start(); err != nil {
		return err
	}
	defer n.stop()
	r := &result{name: fmt.Sprintf("pncd kill -9 x%d (%s)", *cycles, storeName)}
	s.results = append(s.results, r)
	return l.check(r)
}

// postgres is an instance of the suite's own.
type postgres struct {
	bin, data, sock string
	port            int
	owner           *user.User
}

func (p *postgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// as runs a PostgreSQL program as its owner (PostgreSQL refuses root).
func (p *postgres) as(name string, args ...string) *exec.Cmd {
	prog := filepath.Join(p.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", p.owner.Username, "--", prog}, args...)...)
	}
	return exec.Command(prog, args...)
}

func (s *suite) startPostgres() (*postgres, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, errors.New("PostgreSQL binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
	}
	sort.Strings(bins)
	p := &postgres{bin: filepath.Dir(bins[len(bins)-1]), data: filepath.Join(s.dir, "pg"), sock: filepath.Join(s.dir, "pgsock")}
	_, port, _ := net.SplitHostPort(freeAddr())
	p.port, _ = strconv.Atoi(port)
	os.MkdirAll(p.data, 0o700)
	os.MkdirAll(p.sock, 0o755)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user to run PostgreSQL: %w", err)
		}
		p.owner = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{p.data, p.sock} {
			os.Chown(d, uid, gid)
		}
	}
	if out, err := p.as("initdb", "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := p.start(); err != nil {
		return nil, err
	}
	for _, db := range []string{"chaos_kill", "chaos_pg"} {
		if out, err := p.as("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres", "-c", "CREATE DATABASE "+db).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("create database: %v\n%s", err, out)
		}
	}
	return p, nil
}

func (p *postgres) start() error {
	out, err := p.as("pg_ctl", "-D", p.data, "-w", "-t", "60", "-l", filepath.Join(p.sock, "postgres.log"), "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on", p.port, p.sock), "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	return nil
}

// kill9 kills the postmaster with SIGKILL, as a crash would.
func (p *postgres) kill9() error {
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

func (p *postgres) stop() {
	p.as("pg_ctl", "-D", p.data, "-m", "immediate", "stop").Run()
}

// killPostgres is scenario (b): PostgreSQL killed under load and started
// again; pncd is not restarted.
func (s *suite) killPostgres(pg *postgres) error {
	n, err := s.newNode("pg-outage", pg.url("chaos_pg"), "")
	if err != nil {
		return err
	}
	if err := n.start(); err != nil {
		return err
	}
	defer n.stop()
	l := newLoader(n)
	l.allow503 = true
	err = l.outages(pg.kill9, func() error {
		// A killed postmaster leaves its backends to notice; give them a
		// moment before starting again on the same directory.
		var err error
		for range 50 {
			if err = pg.start(); err == nil {
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("outage of PostgreSQL: %w", err)
	}
	r := &result{name: fmt.Sprintf("PostgreSQL kill -9 x%d", *cycles)}
	s.results = append(s.results, r)
	// Recovered: the API answers again before anything is counted.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, _, err := n.call("GET", "/v1/authorities", nil)
		if err == nil && status == 200 {
			break
		}
		if time.Now().After(deadline) {
			r.unexpected, r.note = true, "pncd did not recover within 30 s of PostgreSQL's restart"
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return l.check(r)
}

// outages runs the load through cycles outages of a service: half a load
// period up, kill, half a period down, restart, half a period up again.
func (l *loader) outages(kill, restart func() error) error {
	for range *cycles {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.run(ctx, 8); close(done) }()
		time.Sleep(*load / 2)
		err := kill()
		if err == nil {
			time.Sleep(*load / 2) // the load meets the outage
			err = restart()
		}
		if err == nil {
			time.Sleep(*load / 2) // and the recovery
		}
		cancel()
		<-done
		if err != nil {
			return err
		}
	}
	return nil
}

// killRedis is scenario (c): Redis killed and started again under load.
func (s *suite) killRedis() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server not found (apt-get install redis-server)")
	}
	_, port, _ := net.SplitHostPort(freeAddr())
	startRedis := func() (*exec.Cmd, error) {
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		go cmd.Wait()
		for i := 0; i < 50; i++ {
			if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
				c.Close()
				return cmd, nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return nil, errors.New("redis-server did not start")
	}
	rds, err := startRedis()
	if err != nil {
		return err
	}
	n, err := s.newNode("redis-outage", "", "redis://127.0.0.1:"+port+"/0")
	if err != nil {
		return err
	}
	if err := n.start(); err != nil {
		return err
	}
	defer n.stop()
	l := newLoader(n)
	defer func() { rds.Process.Signal(syscall.SIGKILL) }()
	err = l.outages(func() error { return rds.Process.Signal(syscall.SIGKILL) }, func() (err error) {
		rds, err = startRedis()
		return err
	})
	if err != nil {
		return fmt.Errorf("outage of Redis: %w", err)
	}
	r := &result{name: fmt.Sprintf("Redis kill -9 x%d", *cycles)}
	s.results = append(s.results, r)
	return l.check(r)
}
