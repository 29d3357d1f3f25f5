package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/pncpki/pncpki/internal/browsertest"
)

// TestOpenAPIPageInBrowser renders /openapi/ in headless Chromium: every
// documented operation is listed, the filter narrows the list, and the
// page loads nothing its Content-Security-Policy refuses.
func TestOpenAPIPageInBrowser(t *testing.T) {
	b := browsertest.New(t)
	srv := httptest.NewServer(limitHeaders(allRoutes(t)))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	ops := 0
	for _, item := range doc.Paths {
		ops += len(item)
	}

	if err := chromedp.Do(b.Ctx,
		chromedp.Navigate(srv.URL+"/openapi/"),
		chromedp.WaitVisible(chromedp.CSS("main details")),
	); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("main details")].filter(d => !d.hidden).length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != ops {
		t.Errorf("the page lists %d operations, the document has %d", n, ops)
	}
	if err := chromedp.Do(b.Ctx, chromedp.SendKeys(chromedp.CSS("#filter"), "oauth-clients revoke")); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("filtering for one operation leaves %d", n)
	}
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("console errors: %q", p)
	}
}
