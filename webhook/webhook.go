// Package webhook delivers Open Plug&Charge events (OPNC's event API) to
// the endpoints tenants subscribe: root certificates added to or removed
// from the pool, contracts created, changed and deleted. A delivery is an
// HTTP POST of OPNC's webhook payload, signed with HMAC-SHA256 under the
// endpoint's secret (hex, in the headers OPNC names: payload-signature and
// X-Operator-Signature), retried with growing pauses until the endpoint
// answers 2xx or the attempts run out.
//
// Deliveries wait in a bounded in-memory queue: an event published while
// the queue is full, or still undelivered when pncd stops, is dropped and
// counted (pncpki_webhook_deliveries_total{result="dropped"}); the state it
// announces stays readable through the pools.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pncpki/pncpki/internal/egress"
	"github.com/pncpki/pncpki/store"
)

// Event types pncpki publishes (OPNC eventEnum and webhook payload).
const (
	RootAdded       = "root.cert.added"
	RootRevoked     = "root.cert.revoked"
	ContractCreated = "oem.contract.created"
	ContractUpdated = "oem.contract.updated"
	ContractDeleted = "oem.contract.deleted"
)

// Types lists the event types an endpoint can enable.
var Types = []string{RootAdded, RootRevoked, ContractCreated, ContractUpdated, ContractDeleted}

// Event is one thing that happened.
type Event struct {
	Type string
	// PCID is the vehicle a contract event is about ("" for root events):
	// endpoints with WMIs get only their vehicles' events.
	PCID string
	// Tenant owns what the event is about (the contract's eMSP); its own
	// endpoints, administrators' and OEMs' whose vehicles it concerns get
	// it. "" reaches every subscriber (root events).
	Tenant string
	// OEM is the tenant that registered the vehicle's provisioning
	// certificate, if any.
	OEM     string
	Payload map[string]any
}

// CheckURL says why an endpoint URL may not be registered ("" when it
// may): what the egress policy refuses, and more than 2,048 characters.
func (d *Dispatcher) CheckURL(s string) string {
	if s == "" {
		return "url is required"
	}
	if len(s) > MaxURL {
		return "url is longer than 2048 characters"
	}
	if err := d.Egress.CheckURL(s); err != nil {
		return "url: " + err.Error()
	}
	return ""
}

// MaxURL bounds an endpoint URL.
const MaxURL = 2048

// Signature is the hex HMAC-SHA256 of body under secret, as a receiver
// recomputes it.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Dispatcher publishes events to the subscribed endpoints.
type Dispatcher struct {
	Store store.Store
	// Egress is what endpoint URLs may reach, checked when an endpoint
	// is registered (CheckURL) and at every connection; nil allows public
	// addresses only.
	Egress *egress.Policy
	// Attempts per delivery (default 6) and the first pause between
	// them (default 1 s), doubled each time.
	Attempts int
	Backoff  time.Duration
	Log      *slog.Logger
	Now      func() time.Time

	once       sync.Once
	queue      chan delivery
	deliveries *prometheus.CounterVec
	client     *http.Client
}

type delivery struct {
	endpoint *store.EventEndpoint
	body     []byte
	typ      string
	attempt  int           // attempts made
	pause    time.Duration // before the next one
}

// QueueSize bounds the deliveries waiting.
const QueueSize = 10_000

// NewDispatcher returns a dispatcher whose counters are registered in reg
// (nil: not registered) and whose deliveries reach what policy allows.
func NewDispatcher(st store.Store, reg prometheus.Registerer, log *slog.Logger, policy *egress.Policy) *Dispatcher {
	d := &Dispatcher{Store: st, Log: log, Egress: policy}
	d.init()
	if reg != nil {
		reg.MustRegister(d.deliveries)
	}
	return d
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.queue = make(chan delivery, QueueSize)
		d.client = d.Egress.Client(10 * time.Second)
		if d.deliveries == nil {
			d.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_webhook_deliveries_total",
				Help: "Webhook deliveries by event type and result (delivered, failed after every attempt, dropped)."}, []string{"type", "result"})
		}
	})
}

func (d *Dispatcher) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Run delivers queued events with workers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, workers int) {
	d.init()
	if workers < 1 {
		workers = 1
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case dl := <-d.queue:
					d.deliver(ctx, dl)
				}
			}
		})
	}
	wg.Wait()
}

// Wants says whether an endpoint subscribes to an event.
func Wants(e *store.EventEndpoint, ev Event) bool {
	if !e.Enabled || !slices.Contains(e.Events, ev.Type) {
		return false
	}
	if ev.PCID != "" && len(e.WMIs) > 0 && !slices.ContainsFunc(e.WMIs, func(w string) bool { return strings.HasPrefix(ev.PCID, w) }) {
		return false
	}
	switch e.Tenant {
	case "", ev.Tenant, ev.OEM:
		return true
	}
	return ev.Tenant == "" // root events reach every tenant
}

// Publish queues the event for every endpoint that wants it; it does not
// wait for the deliveries.
func (d *Dispatcher) Publish(ctx context.Context, ev Event) {
	d.init()
	endpoints, err := d.Store.ListEventEndpoints(ctx, "")
	if err != nil {
		d.log().Error("webhook endpoints not read; event not delivered", "type", ev.Type, "err", err)
		d.deliveries.WithLabelValues(ev.Type, "dropped").Inc()
		return
	}
	var body []byte
	for _, e := range endpoints {
		if !Wants(e, ev) {
			continue
		}
		if body == nil {
			if body, err = d.payload(ev); err != nil {
				d.log().Error("webhook payload", "type", ev.Type, "err", err)
				return
			}
		}
		select {
		case d.queue <- delivery{endpoint: e, body: body, typ: ev.Type}:
		default:
			d.deliveries.WithLabelValues(ev.Type, "dropped").Inc()
			d.log().Warn("webhook queue full; event dropped", "type", ev.Type, "endpoint", e.ID)
		}
	}
}

// payload is OPNC's webhook body.
func (d *Dispatcher) payload(ev Event) ([]byte, error) {
	body := map[string]any{
		"timestamp": d.now().UTC().Format(time.RFC3339),
		"eventId":   uuid.NewString(),
		"eventType": ev.Type,
		"payload":   ev.Payload,
	}
	if ev.PCID != "" {
		body["xsdMsgDefNamespace"] = "urn:iso:15118:2:2013:MsgDef"
	}
	return json.Marshal(body)
}

// deliver makes one attempt; a failed one is queued again after its
// pause, so that an endpoint that does not answer holds no worker.
func (d *Dispatcher) deliver(ctx context.Context, dl delivery) {
	attempts := d.Attempts
	if attempts <= 0 {
		attempts = 6
	}
	if dl.pause <= 0 {
		if dl.pause = d.Backoff; dl.pause <= 0 {
			dl.pause = time.Second
		}
	}
	err := d.post(ctx, dl)
	dl.attempt++
	switch {
	case err == nil:
		d.deliveries.WithLabelValues(dl.typ, "delivered").Inc()
		return
	case dl.attempt >= attempts:
		d.deliveries.WithLabelValues(dl.typ, "failed").Inc()
		d.log().Warn("webhook not delivered", "endpoint", dl.endpoint.ID, "type", dl.typ, "attempts", dl.attempt, "err", err)
		return
	}
	d.log().Info("webhook delivery failed; retrying", "endpoint", dl.endpoint.ID, "type", dl.typ, "attempt", dl.attempt, "in", dl.pause, "err", err)
	next := dl
	next.pause *= 2
	time.AfterFunc(dl.pause, func() {
		select {
		case <-ctx.Done():
			d.deliveries.WithLabelValues(dl.typ, "dropped").Inc()
		case d.queue <- next:
		default:
			d.deliveries.WithLabelValues(dl.typ, "dropped").Inc()
			d.log().Warn("webhook queue full; retry dropped", "type", dl.typ, "endpoint", dl.endpoint.ID)
		}
	})
}

func (d *Dispatcher) post(ctx context.Context, dl delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.endpoint.URL, bytes.NewReader(dl.body))
	if err != nil {
		return err
	}
	sig := Signature(dl.endpoint.Secret, dl.body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("payload-signature", sig)
	req.Header.Set("X-Operator-Signature", sig)
	d.init()
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// contractTypes maps contract.Pool's changes to their events.
var contractTypes = map[string]string{"created": ContractCreated, "updated": ContractUpdated, "deleted": ContractDeleted}

// ContractChanged publishes the event of a contract change ("created",
// "updated" or "deleted", as contract.Pool.Changed tells them). The OEM
// that registered the vehicle's provisioning certificate hears of it.
func (d *Dispatcher) ContractChanged(ctx context.Context, change string, c *store.Contract) {
	typ, ok := contractTypes[change]
	if !ok {
		return
	}
	oem := ""
	if p, err := d.Store.ProvisioningCertificate(ctx, c.PCID); err == nil {
		oem = p.Tenant
	}
	d.Publish(context.WithoutCancel(ctx), Event{Type: typ, PCID: c.PCID, Tenant: c.Tenant, OEM: oem,
		Payload: map[string]any{"emaid": c.EMAID, "pcid": c.PCID}})
}
