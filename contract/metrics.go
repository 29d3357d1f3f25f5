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
			Help: "ISO 15118-2 installation and update requests, by action and result (OK, repeated, or the refusal reason)."}, []string{"action", "result"}),
		// Counters of seconds rather than histograms: the mean per stage is
		// what the benchmark and a dashboard compare, at no cost per call.
		stages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_contract_stage_seconds_total",
			Help: "Time spent in each stage of successful installations and updates (decode, verify, keygen, issue, store, encrypt, sign, encode)."}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.results, m.stages)
	}
	return m
}

func (m *Metrics) result(action Action, result string) {
	if m != nil {
		m.results.WithLabelValues(string(action), result).Inc()
	}
}

func (m *Metrics) observe(t Timings) {
	if m == nil {
		return
	}
	for _, s := range t.Stages() {
		m.stages.WithLabelValues(s.Name).Add(s.D.Seconds())
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
