// Package browsertest starts a real headless Chromium for tests of the
// pages pncd serves, driven through the DevTools protocol (chromedp).
// Tests skip when no Chromium is installed; .ci/run installs Debian's.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path finds the Chromium binary: $PNCPKI_CHROMIUM, or chromium or
// chromium-browser on $PATH.
func Path() string {
	if p := os.Getenv("PNCPKI_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is a headless Chromium tab.
type Browser struct {
	// Ctx runs actions in the tab: chromedp.Do(b.Ctx, ...).
	Ctx context.Context

	mu       sync.Mutex
	problems []string
}

// New starts a headless Chromium with an empty profile, closed with the
// test. Background networking is off: the test machines' network is
// closed, and the browser should reach only the page under test.
func New(t *testing.T) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		t.Skip("no Chromium (install Debian's chromium, or set PNCPKI_CHROMIUM): browser tests skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first run starts the browser, on a context without a deadline:
	// a deadline there would stop the browser (the test's own -timeout
	// bounds it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	b := &Browser{Ctx: ctx}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" {
				b.mu.Lock()
				b.problems = append(b.problems, m.String()+" ("+m.URL+")")
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// Problems returns the errors the pages wrote to the console so far:
// uncaught exceptions, failed loads and Content-Security-Policy
// violations among them.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}
