package console

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/apiclient"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/policies"
)

// chart is a bar chart drawn on the server as SVG: no script, no
// charting library, and the numbers are in each bar's title for screen
// readers and hovering.
type chart struct {
	Title  string
	Labels []string // one per bar
	Series []series
}

type series struct {
	Name   string
	Counts []int64
}

// svg draws c as stacked bars, one colour class (of ten) per series.
func (c chart) SVG() template.HTML {
	const w, h, pad = 720, 180, 24
	n := len(c.Labels)
	if n == 0 {
		return ""
	}
	totals := make([]int64, n)
	var top int64 = 1
	for _, s := range c.Series {
		for i, v := range s.Counts {
			totals[i] += v
			top = max(top, totals[i])
		}
	}
	bw := float64(w-2*pad) / float64(n)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h+pad, template.HTMLEscapeString(c.Title))
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="12">%d</text>`, 0, top)
	for i := range n {
		y := float64(h)
		for k, s := range c.Series {
			v := s.Counts[i]
			if v == 0 {
				continue
			}
			bh := float64(v) / float64(top) * float64(h-pad)
			y -= bh
			fmt.Fprintf(&b, `<rect class="s%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s, %s: %d</title></rect>`,
				k%10, float64(pad)+float64(i)*bw+1, y, max(bw-2, 1), bh, template.HTMLEscapeString(s.Name), template.HTMLEscapeString(c.Labels[i]), v)
		}
		if n <= 24 || i%(n/12) == 0 {
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d">%s</text>`, float64(pad)+float64(i)*bw+1, h+16, template.HTMLEscapeString(c.Labels[i]))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Legend lists the series with their colour classes.
func (c chart) Legend() []struct {
	Name  string
	Class string
} {
	var out []struct{ Name, Class string }
	for k, s := range c.Series {
		out = append(out, struct{ Name, Class string }{s.Name, fmt.Sprintf("s%d", k%10)})
	}
	return out
}

// histogram asks the API for one chart's series.
func histogram(r *http.Request, c *apiclient.Client, by, profile string, from time.Time, width time.Duration, n int) ([]series, error) {
	resp, err := c.Certs.CertificateHistogram(r.Context(), apiclient.Call(c, &pncpkiv1.CertificateHistogramRequest{By: by, Profile: profile,
		From: timestamppb.New(from), BucketSeconds: int64(width / time.Second), Buckets: int32(n)}))
	if err != nil {
		return nil, err
	}
	var out []series
	for _, s := range resp.Msg.Series {
		out = append(out, series{s.Issuer, s.Counts})
	}
	return out, nil
}

func (h *Handler) charts(w http.ResponseWriter, r *http.Request, s *session, c *apiclient.Client) {
	now := h.opts.Now().UTC()
	// Expiry by week over the next 13: the renewals to plan. A year
	// would read half of a store's certificates on every view.
	day := now.Truncate(24 * time.Hour)
	var weeks []string
	for i := range 13 {
		weeks = append(weeks, day.Add(time.Duration(i)*7*24*time.Hour).Format("Jan 2"))
	}
	hour := now.Truncate(time.Hour).Add(-47 * time.Hour)
	var hours []string
	for i := range 48 {
		hours = append(hours, hour.Add(time.Duration(i)*time.Hour).Format("Jan 2 15h"))
	}
	expiry, err := histogram(r, c, "expiry", "", day, 7*24*time.Hour, 13)
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	issued, err := histogram(r, c, "issuance", "", hour, time.Hour, 48)
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	installed, err := histogram(r, c, "issuance", policies.ISO2Contract, hour, time.Hour, 48)
	if err != nil {
		h.apiFail(w, r, s, err)
		return
	}
	data := []chart{
		{Title: "Unrevoked certificates expiring per week, next 13 weeks, by CA", Labels: weeks, Series: expiry},
		{Title: "Certificates issued per hour, last 48 hours, by CA", Labels: hours, Series: issued},
		{Title: "Contract certificates issued for installations per hour, last 48 hours", Labels: hours, Series: installed},
	}
	h.render(w, http.StatusOK, "charts", &page{Title: "Charts", Session: s, Nav: "charts", Data: data})
}
