// Command uiopen keeps one umbra dashboard page open in headless Chromium
// with its live updates running, for bench/cpu.sh dashboard: it opens
// -url, waits until the page's script reports live updates ("live" in
// #live-status), prints "ready fetches=N" and then waits for SIGTERM or
// SIGINT, on which it prints "fetches=N" (the page's fetch requests so
// far, from the Resource Timing API: its refreshes of the live sections)
// and closes the browser. The counts show that the page really polled
// umbra while it was being measured.
//
//	uiopen -url http://127.0.0.1:19901/ui/
//
// Chromium comes from -chromium or the PATH (chromium, chromium-browser,
// google-chrome). Run it pinned (taskset): the browser inherits the
// affinity.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
)

// fetchCount counts the page's fetch() requests: the live refreshes (and
// actions, which nobody clicks here).
const fetchCount = `performance.getEntriesByType("resource").filter(e => e.initiatorType === "fetch").length`

func main() {
	url := flag.String("url", "http://127.0.0.1:19901/ui/", "dashboard page to keep open")
	bin := flag.String("chromium", "", "Chromium binary (default: chromium, chromium-browser or google-chrome from the PATH)")
	timeout := flag.Duration("timeout", 30*time.Second, "how long the page may take to start its live updates")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("uiopen: ")
	path, err := chromium(*bin)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "uiopen-profile-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // the bench runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A hidden headless tab must keep its timers at full speed, as an
		// operator's visible tab does.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1440, 900),
	)
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	// The first action starts the browser and binds it to its context:
	// the long-lived one, not open's, whose timeout would close it.
	if err := chromedp.Do(ctx); err != nil {
		log.Fatalf("starting %s: %v", path, err)
	}
	n, err := open(ctx, *url, *timeout)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ready fetches=%d\n", n)
	<-sig
	n, err = chromedp.Run(ctx, chromedp.Evaluate[int](fetchCount))
	if err != nil {
		log.Fatalf("reading the page's fetch count: %v", err)
	}
	fmt.Printf("fetches=%d\n", n)
}

// open navigates to url and waits until the page's script runs its live
// updates; it returns the page's fetch count at that moment.
func open(ctx context.Context, url string, timeout time.Duration) (int, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url)); err != nil {
		return 0, fmt.Errorf("opening %s: %w", url, err)
	}
	// The buffer holds 250 entries by default; a long run would stop counting.
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[chromedp.Void](`performance.setResourceTimingBufferSize(1000000)`)); err != nil {
		return 0, err
	}
	for {
		status, err := chromedp.Run(tctx, chromedp.Evaluate[string](`(document.querySelector("#live-status") || {}).textContent || ""`))
		if err != nil {
			return 0, fmt.Errorf("%s: the page's live updates did not start: %w", url, err)
		}
		if status == "live" {
			break
		}
		select {
		case <-tctx.Done():
			return 0, fmt.Errorf("%s: live status %q after %v, want \"live\" (is it a dashboard page? a token needed?)", url, status, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return chromedp.Run(tctx, chromedp.Evaluate[int](fetchCount))
}

func chromium(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium in the PATH (apt-get install chromium), or give -chromium")
}
