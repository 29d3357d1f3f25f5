// Command ocppload measures the OCPP-J proxy of pncd (run by bench/ocpp.sh):
// N simulated stations with real WebSocket connections on loopback send
// one Heartbeat per second each, first to a minimal upstream CSMS directly
// and then through pncd, and the added latency is reported; then stations
// do SignCertificate (answering the CertificateSigned) and
// GetCertificateStatus through pncd as fast as they can.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

func main() {
	data := flag.String("data", "", "data directory for pncd (created)")
	pncd := flag.String("pncd", "", "pncd binary")
	n := flag.Int("stations", 1000, "stations sending one Heartbeat per second each")
	dur := flag.Duration("duration", 10*time.Second, "length of each pass-through phase")
	certStations := flag.Int("cert-stations", 32, "stations doing certificate operations as fast as they can")
	certDur := flag.Duration("cert-duration", 10*time.Second, "length of the certificate phase")
	flag.Parse()
	if *data == "" || *pncd == "" {
		log.Fatal("-data and -pncd are required")
	}
	if err := prepare(*data, *n); err != nil {
		log.Fatal(err)
	}
	upPort, proxyPort, apiPort := freePort(), freePort(), freePort()
	go http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", upPort), upstream{})
	cmd := exec.Command(*pncd, "--data", *data, "--listen", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--ocpp-listen", fmt.Sprintf("127.0.0.1:%d", proxyPort), "--ocpp-upstream", fmt.Sprintf("ws://127.0.0.1:%d/ocpp", upPort),
		"--ocpp-sign-limit", "1000000") // the certificate phase signs as fast as it can
	logf, _ := os.Create(filepath.Join(*data, "pncd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitPort(proxyPort)
	waitPort(upPort)

	direct := passThrough(fmt.Sprintf("ws://127.0.0.1:%d/ocpp/", upPort), *n, *dur)
	cpu0 := cpuTime(cmd.Process.Pid)
	proxied := passThrough(fmt.Sprintf("ws://127.0.0.1:%d/ocpp/", proxyPort), *n, *dur)
	passCPU := cpuTime(cmd.Process.Pid) - cpu0
	cpu0 = cpuTime(cmd.Process.Pid)
	sign, status, elapsed := certificates(fmt.Sprintf("ws://127.0.0.1:%d/ocpp/", proxyPort), *certStations, *certDur)
	certCPU := cpuTime(cmd.Process.Pid) - cpu0

	fmt.Printf("%-44s %10s %9s %9s %9s %12s\n", "phase", "messages", "msg/s", "p50", "p99", "pncd CPU/msg")
	row := func(name string, l []time.Duration, secs float64, cpu time.Duration) {
		c := "-"
		if cpu > 0 && len(l) > 0 {
			c = (cpu / time.Duration(len(l))).Round(time.Microsecond).String()
		}
		fmt.Printf("%-44s %10d %9.0f %9s %9s %12s\n", name, len(l), float64(len(l))/secs, pct(l, 50), pct(l, 99), c)
	}
	row(fmt.Sprintf("Heartbeat direct to upstream (%d stations)", *n), direct, dur.Seconds(), 0)
	row(fmt.Sprintf("Heartbeat through pncd (%d stations)", *n), proxied, dur.Seconds(), passCPU)
	row(fmt.Sprintf("SignCertificate+CertificateSigned (%d)", *certStations), sign, elapsed.Seconds(), 0)
	row(fmt.Sprintf("GetCertificateStatus (%d stations)", *certStations), status, elapsed.Seconds(), 0)
	fmt.Printf("certificate phase: %.0f messages/s through pncd, pncd CPU %s per certificate operation\n",
		float64(len(sign)+len(status))/elapsed.Seconds(), (certCPU / time.Duration(max(1, len(sign)+len(status)))).Round(time.Microsecond))
	added := pctD(proxied, 99) - pctD(direct, 99)
	fmt.Printf("pass-through p99 added by the proxy: %s (target < 1ms with %d stations at 1 msg/s)\n", added.Round(time.Microsecond), *n)
}

func prepare(dir string, n int) error {
	ctx := store.WithActor(context.Background(), "bench")
	d, err := datadir.Open(ctx, dir, ca.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	if done, _ := d.Initialized(ctx); !done {
		if err := d.Init(ctx, datadir.InitConfig{Organization: "Bench"}); err != nil {
			return err
		}
		if err := d.Store.CreateTenant(ctx, &policies.Tenant{Name: "cpo1", Kind: policies.TenantCPO, Organization: "Bench CPO", OperatorIDs: []string{"DEABC"}}); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	for i := range n {
		st := &store.Station{ID: stationID(i), Tenant: "cpo1", SerialNumber: "SN" + strconv.Itoa(i), EVSEIDs: []string{evseID(i)}, OCPPVersion: "2.0.1", CreatedAt: now, UpdatedAt: now}
		if err := d.Store.PutStation(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

func stationID(i int) string { return fmt.Sprintf("S%05d", i) }
func evseID(i int) string    { return fmt.Sprintf("DEABCE%05d", i) }

// upstream is a minimal CSMS: every CALL gets an empty CALLRESULT at once.
type upstream struct{}

func (upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := (&websocket.Upgrader{Subprotocols: []string{"ocpp2.0.1"}}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var f []json.RawMessage
		if json.Unmarshal(data, &f) == nil && len(f) == 4 {
			c.WriteMessage(websocket.TextMessage, []byte(`[3,`+string(f[1])+`,{"currentTime":"2026-01-01T00:00:00Z"}]`))
		}
	}
}

func dial(base, id string) (*websocket.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{"ocpp2.0.1"}, HandshakeTimeout: 10 * time.Second}
	h := http.Header{}
	h.Set("Authorization", "Basic "+basic(id))
	c, _, err := d.Dial(base+id, h)
	return c, err
}

func basic(id string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(id, "bench")
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// passThrough connects n stations, each sending a Heartbeat every second
// (starts spread over the first second) for d, and returns the latencies.
func passThrough(base string, n int, d time.Duration) []time.Duration {
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, err := dial(base, stationID(i))
		if err != nil {
			log.Fatalf("station %d: %v", i, err)
		}
		conns[i] = c
	}
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			time.Sleep(time.Duration(mrand.Int64N(int64(time.Second))))
			var lat []time.Duration
			for seq := 0; time.Since(start) < d; seq++ {
				t0 := time.Now()
				msg := fmt.Sprintf(`[2,"%d-%d","Heartbeat",{}]`, i, seq)
				if c.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
					return
				}
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				lat = append(lat, time.Since(t0))
				time.Sleep(time.Second - time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

// certificates runs SignCertificate (with the CertificateSigned answered)
// and GetCertificateStatus for the issued certificate in a loop.
func certificates(base string, n int, d time.Duration) (sign, status []time.Duration, elapsed time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failures atomic.Int64
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(base, stationID(i))
			if err != nil {
				log.Fatalf("station %d: %v", i, err)
			}
			defer c.Close()
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: evseID(i)}}, key)
			csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
			signReq, _ := json.Marshal(ocppsec.SignCertificateRequest{CSR: csr, CertificateType: "V2GCertificate"})
			var ls, lg []time.Duration
			for seq := 0; time.Since(start) < d; seq++ {
				t0 := time.Now()
				c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`[2,"s%d",`, seq)+`"SignCertificate",`+string(signReq)+`]`))
				res, call := read(c), read(c)
				var signed ocppsec.CertificateSignedRequest
				if res == nil || call == nil || json.Unmarshal(call.Payload, &signed) != nil {
					failures.Add(1)
					return
				}
				c.WriteMessage(websocket.TextMessage, []byte(`[3,"`+call.ID+`",{"status":"Accepted"}]`))
				ls = append(ls, time.Since(t0))
				chain, err := ocppsec.ParsePEMChain([]byte(signed.CertificateChain))
				if err != nil {
					failures.Add(1)
					return
				}
				h, _ := ocppsec.HashDataOf(chain[0], chain[1], "SHA256")
				q, _ := json.Marshal(ocppsec.GetCertificateStatusRequest{OCSPRequestData: ocppsec.OCSPRequestData{HashAlgorithm: "SHA256",
					IssuerNameHash: h.IssuerNameHash, IssuerKeyHash: h.IssuerKeyHash, SerialNumber: h.SerialNumber, ResponderURL: "http://127.0.0.1/ocsp"}})
				t1 := time.Now()
				c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`[2,"g%d","GetCertificateStatus",%s]`, seq, q)))
				if f := read(c); f == nil || !strings.Contains(string(f.Payload), `"Accepted"`) {
					failures.Add(1)
					return
				}
				lg = append(lg, time.Since(t1))
			}
			mu.Lock()
			sign, status = append(sign, ls...), append(status, lg...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if failures.Load() > 0 {
		log.Fatalf("%d stations failed", failures.Load())
	}
	return sign, status, time.Since(start)
}

func read(c *websocket.Conn) *ocppsec.Frame {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		return nil
	}
	f, err := ocppsec.ParseFrame(ocppsec.OCPP201, data)
	if err != nil {
		return nil
	}
	return f
}

func pctD(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[int(math.Ceil(p/100*float64(len(s))))-1]
}

func pct(l []time.Duration, p float64) string {
	return pctD(l, p).Round(time.Microsecond).String()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(port int) {
	for range 500 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Fatalf("nothing listens on %d", port)
}

// cpuTime is the user+system CPU time of a process (Linux /proc).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
