// Package ui is umbra's web dashboard, served at /ui/ on the admin
// listener: an overview of every route's traffic, the comparison results
// with their sample pairs, the rollouts with their decisions, and the
// flags and their adoption.
//
// Pages are rendered on the server (html/template, charts as inline SVG),
// so they read with JavaScript off; a small script (static/app.js) keeps
// them fresh by fetching the page again and swapping its live sections,
// carries the admin token in an Authorization header (kept in
// sessionStorage, never in a URL), and runs the operator actions through
// the admin API after a confirmation. Everything is embedded: the
// dashboard works without internet access.
//
// The dashboard adds no work to the request path: the Sampler reads the
// registries the proxy already fills (Prometheus counters and histograms,
// the comparison recorder, rollout states, adoption counts) on its own
// ticker into a bounded History, and pages read that.
package ui

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options size the dashboard's history.
type Options struct {
	// Interval between samples; default 5s.
	Interval time.Duration
	// Ticks kept per series; default 720 (an hour at 5s).
	Ticks int
	// MaxSeries bounds the series kept; default 1024.
	MaxSeries int
}

// Dashboard serves the pages.
type Dashboard struct {
	src     Sources
	hist    *History
	sampler *Sampler
	tmpl    *template.Template
	static  http.Handler
	started time.Time
}

// New builds the dashboard; Run starts its sampler.
func New(src Sources, o Options) *Dashboard {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Ticks <= 0 {
		o.Ticks = 720
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = 1024
	}
	hist := NewHistory(o.Ticks, o.MaxSeries)
	sub, _ := fs.Sub(staticFS, "static")
	return &Dashboard{
		src: src, hist: hist, sampler: NewSampler(src, hist, o.Interval),
		tmpl:    template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")),
		static:  http.StripPrefix("/ui/static/", staticHandler(http.FileServerFS(sub))),
		started: time.Now(),
	}
}

// Run samples the registries until ctx ends.
func (d *Dashboard) Run(ctx context.Context) { d.sampler.Run(ctx) }

// Sample takes one sample now (tests and the first page load).
func (d *Dashboard) Sample() { d.sampler.Sample(time.Now()) }

// History is the sampled history.
func (d *Dashboard) History() *History { return d.hist }

// Mux is where the dashboard registers: the admin server, whose Handle
// requires the token off loopback and whose HandlePublic does not.
type Mux interface {
	Handle(pattern string, h http.HandlerFunc)
	HandlePublic(pattern string, h http.Handler)
	Authorized(r *http.Request) bool
}

// Register adds the dashboard's pages to the admin server. The pages
// check the token themselves: without it they answer the login page
// (status 401) instead of the admin API's JSON error. Static files carry
// no data and need no token.
func (d *Dashboard) Register(m Mux) {
	m.HandlePublic("GET /ui/static/", d.static)
	m.HandlePublic("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	pages := map[string]func(*http.Request) (any, error){
		"GET /ui/{$}":      d.overview,
		"GET /ui/diffs":    d.differences,
		"GET /ui/rollouts": d.rollouts,
		"GET /ui/flags":    d.flags,
	}
	names := map[string]string{"GET /ui/{$}": "overview", "GET /ui/diffs": "diffs", "GET /ui/rollouts": "rollouts", "GET /ui/flags": "flags"}
	for pattern, build := range pages {
		name := names[pattern]
		m.HandlePublic(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !m.Authorized(r) {
				d.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Nav: name})
				return
			}
			data, err := build(r)
			if err != nil {
				d.render(w, http.StatusNotFound, "error", page{Title: "Not found", Nav: name, Data: err.Error()})
				return
			}
			d.render(w, http.StatusOK, name, page{Title: titles[name], Nav: name, Data: data})
		}))
	}
	m.HandlePublic("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.render(w, http.StatusNotFound, "error", page{Title: "Not found", Data: "no dashboard page " + r.URL.Path})
	}))
}

var titles = map[string]string{"overview": "Overview", "diffs": "Differences", "rollouts": "Rollouts", "flags": "Flags and adoption"}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Version string
	Now     time.Time
	Data    any
}

func (d *Dashboard) render(w http.ResponseWriter, status int, name string, p page) {
	p.Version, p.Now = d.src.Version, time.Now()
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		http.Error(w, "dashboard template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Everything the page loads is its own: no inline script, no other
	// origin, no framing.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// staticHandler serves the embedded assets with a short cache lifetime
// (a new binary may change them under the same name).
func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
