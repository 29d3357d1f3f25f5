// Command signload is the load generator of bench/api.sh: C concurrent
// keep-alive HTTPS clients sign CSRs for a duration, with every request
// prepared before the timed phase, and it prints one line: requests,
// certificates/s, p50, p99, the server's CPU time per certificate
// (utime+stime of -pid from /proc) and failures. It drives pncd's
// POST /v1/certificates (a bearer token) and step-ca's POST /1.0/sign (a
// one-time JWK provisioner token per request, minted here from the
// provisioner key in step-ca's ca.json). With -rate it offers a fixed
// load instead, to measure latency at a given rate.
package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.step.sm/crypto/jose"
)

func main() {
	mode := flag.String("mode", "pncd", "pncd, step, ev (Get15118EVCertificate through the OCPP API) or ev20 (the same for an ISO 15118-20 vehicle, over OCPP 2.1)")
	variant := flag.String("variant", "p521", "ev20: the vehicle's ISO 15118-20 variant, p521 or ed448")
	station := flag.String("station", "CS-1", "ev: the station the requests come through")
	seed := flag.Uint64("seed", 1, "ev: testcerts seed of the simulated vehicle")
	setup := flag.String("setup", "", "ev: write the vehicle's OEM root and provisioning chain to this directory, print its PCID and exit")
	url := flag.String("url", "", "endpoint: https://host:port/v1/certificates or https://host:port/1.0/sign")
	token := flag.String("token", "", "pncd: bearer token")
	profile := flag.String("profile", "iso15118-2/secc", "pncd: certificate profile")
	cn := flag.String("cn", "DE*ABC*E1", "CSR common name (step: also its DNS SAN)")
	caConfig := flag.String("ca-config", "", "step: ca.json")
	password := flag.String("password-file", "", "step: password of the provisioner key")
	root := flag.String("root", "", "step: root certificate (its fingerprint goes into the tokens)")
	conns := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 15*time.Second, "timed phase")
	warm := flag.Duration("warmup", 3*time.Second, "untimed warm-up")
	maxRate := flag.Int("prepare", 4000, "step: tokens prepared per second of warm-up and timed phase")
	pid := flag.Int("pid", 0, "server process, for CPU time")
	rate := flag.Int("rate", 0, "open loop: start this many requests per second on a fixed schedule, on up to -c connections, latency counted from the scheduled start (0: closed loop, -c clients back to back)")
	flag.Parse()
	if *setup != "" {
		if *mode == "ev20" {
			ev20Setup(*setup, *seed, *variant)
		} else {
			evSetup(*setup, *seed)
		}
		return
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: *cn}}
	if *mode == "step" {
		tmpl.DNSNames = []string{*cn}
	} else {
		tmpl.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: []int{0, 9, 2342, 19200300, 100, 1, 25}, Value: "CPO"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		log.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))

	var next func() (body []byte, header http.Header, ok bool)
	check := func([]byte) error { return nil }
	var s0 map[string]float64
	var ok0 float64
	stagesBefore, stagesAfter := func() {}, func() {}
	switch *mode {
	case "pncd":
		body, _ := json.Marshal(map[string]string{"profile": *profile, "csr": csr})
		h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + *token}}
		next = func() ([]byte, http.Header, bool) { return body, h, true }
	case "step":
		bodies := stepBodies(*caConfig, *password, *root, *url, *cn, csr, int(float64(*maxRate)*(dur.Seconds()+warm.Seconds())))
		var i atomic.Int64
		h := http.Header{"Content-Type": {"application/json"}}
		next = func() ([]byte, http.Header, bool) {
			n := i.Add(1) - 1
			if n >= int64(len(bodies)) {
				return nil, nil, false
			}
			return bodies[n], h, true
		}
	case "ev", "ev20":
		base := strings.TrimSuffix(*url, "/pncpki.v1.OCPPService/HandleRequest")
		n := int(float64(*maxRate) * (dur.Seconds() + warm.Seconds()))
		var bodies [][]byte
		label := "iso15118-2"
		if *mode == "ev20" {
			bodies, label = ev20Bodies(base, *token, *station, *seed, *variant, n), "iso15118-20-"+*variant
		} else {
			bodies = evBodies(base, *token, *station, *seed, n)
		}
		var i atomic.Int64
		h := http.Header{"Content-Type": {"application/json"}, "Connect-Protocol-Version": {"1"}, "Authorization": {"Bearer " + *token}}
		next = func() ([]byte, http.Header, bool) {
			n := i.Add(1) - 1
			if n >= int64(len(bodies)) {
				return nil, nil, false
			}
			return bodies[n], h, true
		}
		check = evCheck
		stagesBefore = func() { s0, ok0 = stageMetrics(base, label) }
		stagesAfter = func() { s1, ok1 := stageMetrics(base, label); defer printStages(s0, ok0, s1, ok1) }
	default:
		log.Fatalf("-mode %q", *mode)
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: *conns} //nolint:gosec // loopback benchmark
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var timed atomic.Bool
	var mu sync.Mutex
	var lat []time.Duration
	var fails atomic.Int64
	var firstErr atomic.Value
	fail := func(err string) {
		fails.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	// send makes one request and reports whether it got a good answer.
	send := func(body []byte, h http.Header) bool {
		req, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
		req.Header = h.Clone()
		resp, err := client.Do(req)
		if err != nil {
			fail(err.Error())
			return false
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			fail(fmt.Sprintf("HTTP %d %s", resp.StatusCode, msg))
			return false
		}
		if err := check(msg); err != nil {
			fail(err.Error())
			return false
		}
		return true
	}
	stop := time.Now().Add(*warm + *dur)
	// start waits for a request's turn and returns when its latency counts
	// from; false when the run is over. Closed loop: at once.
	start := func() (time.Time, bool) {
		now := time.Now()
		return now, now.Before(stop)
	}
	if *rate > 0 {
		// Open loop: requests start on a fixed schedule whatever the
		// answers do, and latency counts from the scheduled start, so a
		// slow answer cannot hide the requests it held up.
		due := make(chan time.Time, *rate*int((*warm+*dur).Seconds()+1))
		go func() {
			defer close(due)
			t0 := time.Now()
			for i := 0; ; i++ {
				at := t0.Add(time.Duration(i) * time.Second / time.Duration(*rate))
				if at.After(stop) {
					return
				}
				time.Sleep(time.Until(at))
				due <- at
			}
		}()
		start = func() (time.Time, bool) {
			at, ok := <-due
			return at, ok
		}
	}
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				at, ok := start()
				if !ok {
					break
				}
				body, h, ok := next()
				if !ok {
					break
				}
				counted := timed.Load()
				if send(body, h) && counted {
					mine = append(mine, time.Since(at))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(*warm)
	c0 := cpuTime(*pid)
	stagesBefore()
	t0 := time.Now()
	timed.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	c1 := cpuTime(*pid)
	slices.Sort(lat)
	pct := func(p float64) string {
		if len(lat) == 0 {
			return "-"
		}
		return lat[int(math.Ceil(p/100*float64(len(lat))))-1].Round(10 * time.Microsecond).String()
	}
	cpu := "-"
	if *pid != 0 && len(lat) > 0 {
		cpu = strconv.Itoa(int((c1 - c0).Microseconds() / int64(len(lat))))
	}
	errText, _ := firstErr.Load().(string)
	fmt.Printf("%d %.0f %s %s %s %d %q\n", len(lat), float64(len(lat))/elapsed.Seconds(), pct(50), pct(99), cpu, fails.Load(), errText)
	stagesAfter()
}

// stepBodies prepares n /1.0/sign bodies, each with its own one-time
// token of the first JWK provisioner in ca.json.
func stepBodies(caConfig, passwordFile, rootFile, url, cn, csr string, n int) [][]byte {
	var cfg struct {
		Authority struct {
			Provisioners []struct {
				Type         string `json:"type"`
				Name         string `json:"name"`
				EncryptedKey string `json:"encryptedKey"`
			} `json:"provisioners"`
		} `json:"authority"`
	}
	data, err := os.ReadFile(caConfig)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		log.Fatal(err)
	}
	if len(cfg.Authority.Provisioners) == 0 || cfg.Authority.Provisioners[0].Type != "JWK" {
		log.Fatal("ca.json: no JWK provisioner")
	}
	p := cfg.Authority.Provisioners[0]
	pw, err := os.ReadFile(passwordFile)
	if err != nil {
		log.Fatal(err)
	}
	plain, err := jose.Decrypt([]byte(p.EncryptedKey), jose.WithPassword(bytes.TrimSpace(pw)))
	if err != nil {
		log.Fatalf("provisioner key: %v", err)
	}
	jwk, err := jose.ParseKey(plain)
	if err != nil {
		log.Fatal(err)
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok {
		log.Fatalf("provisioner key %T", jwk.Key)
	}
	rootPEM, err := os.ReadFile(rootFile)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := pem.Decode(rootPEM)
	if b == nil {
		log.Fatal("root: no PEM")
	}
	fp := sha256.Sum256(b.Bytes)
	host := strings.TrimSuffix(strings.TrimPrefix(url, "https://"), "/1.0/sign")
	hostOnly := host[:strings.LastIndex(host, ":")]
	aud := jwt.ClaimStrings{"https://" + host + "/1.0/sign", "https://" + hostOnly + "/1.0/sign"}
	out := make([][]byte, n)
	var wg sync.WaitGroup
	per := (n + 1) / 2
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			for i := from; i < to && i < n; i++ {
				now := time.Now()
				id := make([]byte, 16)
				rand.Read(id)
				claims := jwt.MapClaims{"iss": p.Name, "aud": aud, "sub": cn, "sans": []string{cn}, "sha": hex.EncodeToString(fp[:]),
					"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(id)}
				tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
				tok.Header["kid"] = jwk.KeyID
				s, err := tok.SignedString(signer)
				if err != nil {
					log.Fatal(err)
				}
				out[i], _ = json.Marshal(map[string]string{"csr": csr, "ott": s})
			}
		}(w*per, (w+1)*per)
	}
	wg.Wait()
	return out
}

func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100
}
