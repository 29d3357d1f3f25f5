// Command ocspdata fills a pncpki data directory with many SECC
// certificates for the OCSP benchmark (bench/ocsp.sh) and writes what the
// load generator and the other responders need:
//
//	OUT/issuer.pem, OUT/chain.pem   the issuing CA and its chain
//	OUT/paths.txt                   GET paths (/ocsp/{percent-encoded base64}) for the hot set
//	OUT/index.txt                   an openssl ocsp index of every certificate
//	OUT/responses.txt               pre-signed responses of the hot set, base64, for cfssl ocspserve
//
// Not a test fixture: it issues real certificates into the given directory.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

func main() {
	data := flag.String("data", "", "data directory (created and initialised if new)")
	out := flag.String("out", "", "output directory")
	n := flag.Int("n", 100_000, "certificates to have under cpo-sub2")
	hot := flag.Int("hot", 10_000, "certificates in the requested hot set")
	flag.Parse()
	if *data == "" || *out == "" {
		log.Fatal("usage: ocspdata -data DIR -out DIR [-n N] [-hot N]")
	}
	if err := run(*data, *out, *n, *hot); err != nil {
		log.Fatal(err)
	}
}

func run(dataDir, out string, n, hot int) error {
	ctx := context.Background()
	d, err := datadir.Open(ctx, dataDir, ca.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	if done, err := d.Initialized(ctx); err != nil {
		return err
	} else if !done {
		if err := d.Init(ctx, datadir.InitConfig{Organization: "pncpki bench"}); err != nil {
			return err
		}
	}
	have, err := count(ctx, d.Store)
	if err != nil {
		return err
	}
	// One key for all: the benchmark is about status lookups, not keys.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	start := time.Now()
	var next atomic.Int64
	next.Store(int64(have))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				_, err := d.CA.IssueForKey(ctx, policies.ISO2SECC, "cpo-sub2", key.Public(),
					policies.Subject{CommonName: fmt.Sprintf("DE*PNC*E%d", i)}, policies.Period{})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if n > have {
		fmt.Fprintf(os.Stderr, "issued %d certificates in %v\n", n-have, time.Since(start).Round(time.Millisecond))
	}

	a, err := d.CA.Authority("cpo-sub2")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	write := func(name string, b []byte) error { return os.WriteFile(filepath.Join(out, name), b, 0o644) }
	if err := write("issuer.pem", datadir.EncodePEM(a.Cert)); err != nil {
		return err
	}
	if err := write("chain.pem", datadir.EncodePEM(a.Chain...)); err != nil {
		return err
	}

	var all []store.CertStatus
	for after := ""; ; {
		page, err := d.Store.Live(ctx, "cpo-sub2", time.Now(), after, store.MaxPage)
		if err != nil {
			return err
		}
		all = append(all, page...)
		if len(page) < store.MaxPage {
			break
		}
		after = page[len(page)-1].Serial
	}
	var index strings.Builder
	for _, c := range all {
		fmt.Fprintf(&index, "V\t%s\t\t%s\tunknown\t/CN=%s\n", c.NotAfter.UTC().Format("060102150405Z"), strings.ToUpper(c.Serial), c.Serial)
	}
	if err := write("index.txt", []byte(index.String())); err != nil {
		return err
	}
	if err := write("index.txt.attr", []byte("unique_subject = no\n")); err != nil {
		return err
	}

	// The hot set, with the responses pncd will serve for it.
	r, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path})
	if err != nil {
		return err
	}
	mrand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var paths, responses strings.Builder
	for _, c := range all[:min(hot, len(all))] {
		serial, _ := new(big.Int).SetString(c.Serial, 16)
		der, err := ocsp.MarshalRequest(crypto.SHA1, a.Cert, serial, nil)
		if err != nil {
			return err
		}
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			return err
		}
		ans, err := r.Respond(ctx, req)
		if err != nil {
			return err
		}
		paths.WriteString("/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(der)) + "\n")
		responses.WriteString(base64.StdEncoding.EncodeToString(ans.DER) + "\n")
	}
	if err := write("paths.txt", []byte(paths.String())); err != nil {
		return err
	}
	return write("responses.txt", []byte(responses.String()))
}

func count(ctx context.Context, s store.Store) (int, error) {
	n := 0
	for after := ""; ; {
		page, err := s.Live(ctx, "cpo-sub2", time.Now(), after, store.MaxPage)
		if err != nil {
			return 0, err
		}
		n += len(page)
		if len(page) < store.MaxPage {
			return n, nil
		}
		after = page[len(page)-1].Serial
	}
}
