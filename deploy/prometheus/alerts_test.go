// Package prometheus_test checks the shipped alert rules: that Prometheus
// parses them, that every series they read is one pncd exports, and that
// they stay quiet on a fresh hierarchy and fire when its CAs, OCSP
// responder certificates and CRLs run out.
package prometheus_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/store"
)

// builtin are series Prometheus makes itself rather than scraping pncd.
var builtin = map[string]bool{"up": true}

type rule struct {
	alert    string
	metric   string
	matchers []*labels.Matcher
	op       string
	limit    float64
}

// loadRules parses alerts.yml the way Prometheus does and reduces each
// rule to "series op constant", the only shape this file uses, so the
// test can evaluate it without a Prometheus server.
func loadRules(t *testing.T) []rule {
	t.Helper()
	groups, errs := rulefmt.ParseFile("alerts.yml", false)
	if len(errs) > 0 {
		t.Fatalf("alerts.yml: %v", errs)
	}
	var rules []rule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q %q: want an alert with a severity and a summary", r.Alert, r.Expr)
			}
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			b, ok := expr.(*parser.BinaryExpr)
			if !ok || !b.Op.IsComparisonOperator() {
				t.Fatalf("%s: %q is not a comparison", r.Alert, r.Expr)
			}
			vs, ok := b.LHS.(*parser.VectorSelector)
			if !ok {
				t.Fatalf("%s: %q does not compare a series", r.Alert, r.Expr)
			}
			limit, err := constant(b.RHS)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			rl := rule{alert: r.Alert, metric: vs.Name, op: b.Op.String(), limit: limit}
			for _, m := range vs.LabelMatchers {
				if m.Name != "__name__" {
					rl.matchers = append(rl.matchers, m)
				}
			}
			rules = append(rules, rl)
		}
	}
	return rules
}

func constant(e parser.Expr) (float64, error) {
	switch e := e.(type) {
	case *parser.NumberLiteral:
		return e.Val, nil
	case *parser.ParenExpr:
		return constant(e.Expr)
	case *parser.BinaryExpr:
		l, err := constant(e.LHS)
		if err != nil {
			return 0, err
		}
		r, err := constant(e.RHS)
		if err != nil {
			return 0, err
		}
		switch e.Op {
		case parser.MUL:
			return l * r, nil
		case parser.ADD:
			return l + r, nil
		}
	}
	return 0, fmt.Errorf("%s is not a constant this test evaluates", e)
}

// selects reports whether a series' labels match the rule's matchers.
func (r rule) selects(ls []*dto.LabelPair) bool {
	for _, m := range r.matchers {
		v := ""
		for _, l := range ls {
			if l.GetName() == m.Name {
				v = l.GetValue()
			}
		}
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

func (r rule) holds(v float64) bool {
	switch r.op {
	case "<":
		return v < r.limit
	case "<=":
		return v <= r.limit
	case ">":
		return v > r.limit
	case ">=":
		return v >= r.limit
	case "==":
		return v == r.limit
	}
	return v != r.limit
}

// firing evaluates rules on what reg exports: alert name to the CAs it
// fires for. Every series a rule reads must be exported.
func firing(t *testing.T, rules []rule, reg *prometheus.Registry) map[string][]string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string][]string{}
	for _, r := range rules {
		if builtin[r.metric] {
			continue
		}
		found := false
		for _, f := range families {
			if f.GetName() != r.metric {
				continue
			}
			found = true
			for _, m := range f.GetMetric() {
				if r.selects(m.GetLabel()) && r.holds(m.GetGauge().GetValue()) {
					for _, l := range m.GetLabel() {
						if l.GetName() == "ca" {
							fired[r.alert] = append(fired[r.alert], l.GetValue())
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("%s reads %s, which pncd does not export", r.alert, r.metric)
		}
	}
	for _, cas := range fired {
		sort.Strings(cas)
	}
	return fired
}

func TestAlertRules(t *testing.T) {
	rules := loadRules(t)
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Stadtwerke Musterstadt Ladeinfrastruktur GmbH", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	var first *ca.Authority
	for _, a := range d.CA.Authorities() {
		if _, err := d.CA.CurrentCRL(ctx, a.Name); err != nil {
			t.Fatal(err)
		}
		if first == nil || a.Cert.NotAfter.Before(first.Cert.NotAfter) {
			first = a
		}
	}
	at := func(now time.Time) map[string][]string {
		t.Helper()
		reg := prometheus.NewRegistry()
		if _, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, Registerer: reg, Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
		return firing(t, rules, reg)
	}

	if fired := at(time.Now()); len(fired) > 0 {
		t.Errorf("a fresh hierarchy fires %v", fired)
	}

	// Ten days before the first CA expires: its 90- and 30-day alerts
	// fire, it has not expired, the 30-day responder certificates and
	// week-long CRLs signed today have run out.
	fired := at(first.Cert.NotAfter.Add(-10 * 24 * time.Hour))
	for _, alert := range []string{"PncpkiCAExpiresIn90Days", "PncpkiCAExpiresIn30Days"} {
		if !slices.Contains(fired[alert], first.Name) {
			t.Errorf("%s fires for %v, want %s among them", alert, fired[alert], first.Name)
		}
	}
	if len(fired["PncpkiCAExpired"]) > 0 {
		t.Errorf("PncpkiCAExpired fires for %v before any CA expired", fired["PncpkiCAExpired"])
	}
	for _, alert := range []string{"PncpkiOCSPResponderCertExpiring", "PncpkiOCSPResponderCertExpiresToday", "PncpkiCRLStale", "PncpkiCRLNextUpdateSoon"} {
		if got, want := len(fired[alert]), len(d.CA.Authorities()); got != want {
			t.Errorf("%s fires for %d CAs (%v), want all %d", alert, got, fired[alert], want)
		}
	}
	if fired := at(first.Cert.NotAfter.Add(time.Second)); !slices.Contains(fired["PncpkiCAExpired"], first.Name) {
		t.Errorf("PncpkiCAExpired fires for %v after %s expired", fired["PncpkiCAExpired"], first.Name)
	}

	// The V2G root goes offline with a 90-day CRL it signed and its
	// responder certificate: the online rules leave it alone, the offline
	// ones call for a ceremony two weeks ahead.
	crl, err := d.CA.CRL(ctx, "v2g-root", 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ocsp.New(ctx, ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path}); err != nil {
		t.Fatal(err)
	}
	if err := d.Store.SetCAKey(ctx, "v2g-root", store.OfflineKeyURI); err != nil {
		t.Fatal(err)
	}
	if err := d.CA.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.CA.ImportCRL(ctx, crl); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CA.CurrentCRL(ctx, "v2g-root"); err != nil {
		t.Fatal(err)
	}
	if fired := at(time.Now().Add(2 * time.Hour)); slices.Contains(fired["PncpkiCRLStale"], "v2g-root") || len(fired["PncpkiOfflineCRLDue"]) > 0 {
		t.Errorf("two hours on: CRLStale %v, OfflineCRLDue %v", fired["PncpkiCRLStale"], fired["PncpkiOfflineCRLDue"])
	}
	// 20 days on, the 30-day responder certificate has 10 left; 80 days
	// on, the 90-day CRL has 10 left.
	for _, tc := range []struct {
		days  int
		alert string
	}{{20, "PncpkiOfflineResponderDue"}, {80, "PncpkiOfflineCRLDue"}} {
		fired := at(time.Now().Add(time.Duration(tc.days) * 24 * time.Hour))
		if !slices.Equal(fired[tc.alert], []string{"v2g-root"}) {
			t.Errorf("%d days on: %s fires for %v, want [v2g-root]", tc.days, tc.alert, fired[tc.alert])
		}
		if slices.Contains(fired["PncpkiCRLStale"], "v2g-root") || slices.Contains(fired["PncpkiOCSPResponderCertExpiring"], "v2g-root") {
			t.Errorf("%d days on: online rules fire for the offline root: %v", tc.days, fired)
		}
	}
}
