package ocppsec

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the bridge and the proxy do; a nil *Metrics counts
// nothing.
type Metrics struct {
	messages    *prometheus.CounterVec
	frames      *prometheus.CounterVec
	refused     *prometheus.CounterVec
	connections prometheus.Gauge
	certRefused prometheus.Counter
}

// NewMetrics registers the OCPP metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_ocpp_messages_total",
			Help: "Station requests handled by pncpki, by action and outcome (answered, error)."}, []string{"action", "outcome"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_ocpp_frames_forwarded_total",
			Help: "Frames the proxy passed on unchanged, by direction (upstream, station)."}, []string{"direction"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_ocpp_connections_refused_total",
			Help: "Station connections refused, by reason (auth, upstream, request)."}, []string{"reason"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pncpki_ocpp_connections",
			Help: "Stations connected through the proxy."}),
		certRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "pncpki_ocpp_certificate_rejected_total",
			Help: "Certificates pncpki issued that a station rejected (CertificateSignedResponse Rejected): alert on it."}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.frames, m.refused, m.connections, m.certRefused)
	}
	return m
}

func (m *Metrics) message(action, outcome string) {
	if m != nil {
		m.messages.WithLabelValues(action, outcome).Inc()
	}
}

func (m *Metrics) forwarded(direction string) {
	if m != nil {
		m.frames.WithLabelValues(direction).Inc()
	}
}

func (m *Metrics) refusedConn(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) connected(delta float64) {
	if m != nil {
		m.connections.Add(delta)
	}
}

func (m *Metrics) certificateRejected() {
	if m != nil {
		m.certRefused.Inc()
	}
}
