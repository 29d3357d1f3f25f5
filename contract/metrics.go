package contract

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts installations and where their time goes; a nil *Metrics
// counts nothing.
type Metrics struct {
	results *prometheus.CounterVec
	stages  *prometheus.CounterVec
}

// NewMetrics registers the contract service's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_contract_installations_total",
			Help: "Installation and update requests, by action, variant (iso15118-2, iso15118-20-p521, iso15118-20-ed448, or iso15118-20 before the vehicle's variant is known) and result (OK, repeated, or the refusal reason)."}, []string{"action", "variant", "result"}),
		// Counters of seconds rather than histograms: the mean per stage is
		// what the benchmark and a dashboard compare, at no cost per call.
		stages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_contract_stage_seconds_total",
			Help: "Time spent in each stage of successful installations and updates (decode, verify, keygen, issue, store, encrypt, sign, encode), by variant."}, []string{"variant", "stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.results, m.stages)
	}
	return m
}

// The values of the metrics' variant label.
const (
	labelISO2       = "iso15118-2"
	labelISO20      = "iso15118-20" // not known yet: refused before the certificate was read
	labelISO20P521  = "iso15118-20-p521"
	labelISO20Ed448 = "iso15118-20-ed448"
)

func (m *Metrics) result(action Action, variant, result string) {
	if m != nil {
		m.results.WithLabelValues(string(action), variant, result).Inc()
	}
}

func (m *Metrics) observe(variant string, t Timings) {
	if m == nil {
		return
	}
	for _, s := range t.Stages() {
		m.stages.WithLabelValues(variant, s.Name).Add(s.D.Seconds())
	}
}

// Stage is one named stage of Timings.
type Stage struct {
	Name string
	D    time.Duration
}

// Stages lists the stages in the order they run.
func (t Timings) Stages() []Stage {
	return []Stage{{"decode", t.Decode}, {"verify", t.Verify}, {"keygen", t.KeyGen}, {"issue", t.Issue},
		{"store", t.Store}, {"encrypt", t.Encrypt}, {"sign", t.Sign}, {"encode", t.Encode}}
}
