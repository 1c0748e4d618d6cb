package dashboardtest

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestScreenshots writes a screenshot of each page to the directory in
// UMBRA_SCREENSHOTS (docs/screenshots in the repository):
//
//	UMBRA_SCREENSHOTS=$PWD/docs/screenshots go test ./test/dashboard -run TestScreenshots
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("UMBRA_SCREENSHOTS")
	if dir == "" {
		t.Skip("set UMBRA_SCREENSHOTS to a directory to write the dashboard's screenshots")
	}
	e := startEnv(t, envOptions{interval: 500 * time.Millisecond})
	ctx := browser(t)
	e.waitCanaryStep(t)
	e.traffic(t, 150)
	time.Sleep(20 * time.Second) // charts fill
	admin := e.gw.AdminURL
	do(t, ctx, "diffs page", chromedp.Navigate(admin+"/ui/diffs"))
	field := eval[string](t, ctx, `document.querySelector("tr.regression a.samples-link").getAttribute("href")`)
	pages := []struct {
		name, url string
		height    int64
	}{
		{"overview", admin + "/ui/", 1000},
		{"differences", admin + "/ui/diffs", 680},
		{"samples", admin + field, 820},
		{"rollouts", admin + "/ui/rollouts", 1000},
		{"flags", admin + "/ui/flags?context=alice%0Acountry%3Dde", 1250},
	}
	for _, p := range pages {
		do(t, ctx, "page "+p.name, chromedp.EmulateViewport(1440, p.height), chromedp.Navigate(p.url), chromedp.WaitVisible(chromedp.CSS("footer")),
			chromedp.Sleep(300*time.Millisecond))
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		writePNG(t, filepath.Join(dir, p.name+".png"), buf)
	}
}

// writePNG re-encodes a screenshot with the best compression.
func writePNG(t *testing.T, path string, raw []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&out, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d KiB", path, out.Len()/1024)
}
