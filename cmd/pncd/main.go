// Command pncd is the pncpki server. On first start it initialises its data
// directory (SQLite store and file keys) with a demo hierarchy, as
// 'pncctl init' does; then it serves /healthz and each CA's CRL at
// /crl/{issuer}.crl.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("pncd stopped", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pncd", flag.ContinueOnError)
	data := fs.String("data", "./pncd-data", "data directory (SQLite store and file keys)")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	org := fs.String("init-org", "pncpki demo", "organization of the CAs created on first start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d, err := datadir.Open(ctx, *data, ca.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	done, err := d.Initialized(ctx)
	if err != nil {
		return err
	}
	if !done {
		log.Info("first start: creating the demo CA hierarchy; for production import your own CAs with 'pncctl init --import' instead", "data", d.Path, "organization", *org)
		if err := d.Init(ctx, datadir.InitConfig{Organization: *org}); err != nil {
			return fmt.Errorf("initialise %s: %w", d.Path, err)
		}
		if err := d.CA.Reload(ctx); err != nil {
			return err
		}
	}
	for _, a := range d.CA.Authorities() {
		log.Info("CA loaded", "name", a.Name, "profile", a.Profile.Name, "subject", a.Cert.Subject.CommonName, "not_after", a.Cert.NotAfter)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(d, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	log.Info("pncd listening", "addr", ln.Addr().String(), "data", d.Path,
		"healthz", "http://"+ln.Addr().String()+"/healthz", "crl", "http://"+ln.Addr().String()+"/crl/{issuer}.crl")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
