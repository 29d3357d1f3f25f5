package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts API issuance and refused calls; a nil *Metrics counts
// nothing.
type Metrics struct {
	issued   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	authFail *prometheus.CounterVec
	fallback prometheus.Counter
}

// NewMetrics registers the API metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_api_issuance_total",
			Help: "SignCSR calls by profile and result (issued, refused, error)."}, []string{"profile", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pncpki_api_issuance_seconds",
			Help: "Time to issue and store a certificate, by profile.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"profile"}),
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_api_auth_failures_total",
			Help: "Refused API calls by reason (unauthenticated, forbidden)."}, []string{"reason"}),
		fallback: prometheus.NewCounter(prometheus.CounterOpts{Name: "pncpki_api_rate_limit_redis_errors_total",
			Help: "Rate limiter calls Redis did not answer; the replica then counts alone for 5 s."}),
	}
	if reg != nil {
		reg.MustRegister(m.issued, m.latency, m.authFail, m.fallback)
	}
	return m
}

func (m *Metrics) issuance(profile, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.issued.WithLabelValues(profile, result).Inc()
	if result == "issued" {
		m.latency.WithLabelValues(profile).Observe(d.Seconds())
	}
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.authFail.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) rateFallback() {
	if m != nil {
		m.fallback.Inc()
	}
}
