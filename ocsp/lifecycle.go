package ocsp

import (
	"crypto/x509"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lifecycle exports, at every scrape, how long each CA, its OCSP responder
// certificate and its current CRL have left: the numbers that
// deploy/prometheus/alerts.yml watches so that an operator renews a sub-CA
// or notices a CRL that stopped being refreshed before relying parties do.
type lifecycle struct {
	r                         *Responder
	caExpiry, responderExpiry *prometheus.Desc
	crlAge, crlNextUpdate     *prometheus.Desc
}

func newLifecycle(r *Responder) *lifecycle {
	// ca_key tells the CAs pncd signs for (online) from those whose
	// CRLs and responder certificates come from a key ceremony
	// (offline): their alerts differ.
	labels := []string{"ca", "ca_key"}
	return &lifecycle{
		r:               r,
		caExpiry:        prometheus.NewDesc("pncpki_ca_expiry_seconds", "Seconds until the CA certificate's notAfter (negative once expired).", labels, nil),
		responderExpiry: prometheus.NewDesc("pncpki_ocsp_responder_expiry_seconds", "Seconds until the notAfter of the certificate that signs the CA's OCSP answers (the CA itself with --ocsp-ca-key).", labels, nil),
		crlAge:          prometheus.NewDesc("pncpki_crl_age_seconds", "Seconds since the thisUpdate of the CA's current CRL; absent until this process produced one.", labels, nil),
		crlNextUpdate:   prometheus.NewDesc("pncpki_crl_next_update_seconds", "Seconds until the nextUpdate of the CA's current CRL (negative once relying parties must reject it).", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (l *lifecycle) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.caExpiry
	ch <- l.responderExpiry
	ch <- l.crlAge
	ch <- l.crlNextUpdate
}

// ResponderCert is the certificate that signs the OCSP answers for the CA
// named ca (the CA's own with --ocsp-ca-key); nil when it has none here.
func (r *Responder) ResponderCert(ca string) *x509.Certificate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if is := r.byName[ca]; is != nil && is.signer != nil {
		return is.signer.Cert
	}
	return nil
}

// Collect implements prometheus.Collector.
func (l *lifecycle) Collect(ch chan<- prometheus.Metric) {
	now := l.r.opts.Now()
	seconds := func(d time.Duration) float64 { return d.Seconds() }
	// Every CA, including offline ones, which have no responder here
	// unless one was made while their key was.
	for _, a := range l.r.opts.CA.Authorities() {
		name, key := a.Name, "online"
		if a.Offline {
			key = "offline"
		}
		ch <- prometheus.MustNewConstMetric(l.caExpiry, prometheus.GaugeValue, seconds(a.Cert.NotAfter.Sub(now)), name, key)
		if responder := l.r.ResponderCert(name); responder != nil {
			ch <- prometheus.MustNewConstMetric(l.responderExpiry, prometheus.GaugeValue, seconds(responder.NotAfter.Sub(now)), name, key)
		}
		if this, next, ok := l.r.opts.CA.CRLTimes(name); ok {
			ch <- prometheus.MustNewConstMetric(l.crlAge, prometheus.GaugeValue, seconds(now.Sub(this)), name, key)
			ch <- prometheus.MustNewConstMetric(l.crlNextUpdate, prometheus.GaugeValue, seconds(next.Sub(now)), name, key)
		}
	}
}
