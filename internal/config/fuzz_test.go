package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse feeds arbitrary text to Parse. It must never panic; it either
// returns a config with its defaults applied and every reference resolved,
// or an ErrorList in file order whose every entry is positioned
// (FILE:LINE:COL). Parsing the same text twice gives the same errors.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatal("no testdata configs", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if docs, err := os.ReadFile(docsFile); err == nil {
		if example, _, err := exampleIn(string(docs)); err == nil {
			f.Add([]byte(example))
		}
	}
	for _, s := range []string{
		"",
		"listen: a: b\n",
		"routes: [\n",
		"log: &l {format: *l}\n",
		"x: &a {percent: 200}\nroutes: [{name: a, backend: b, shadow: [{<<: *a, backend: c}]}]\n",
		"listen: \":8080\"\n---\nlisten: \":8081\"\n",
		"# caf\xe9\n",
		"backends: {a: ~}\nroutes: [~, {shadow: [~]}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Keys naming files (token_file, tls, ca_file) are read while
		// validating; keep the fuzzer away from device and proc files,
		// which can block or never end.
		if mentionsSystemFiles(data) {
			t.Skip()
		}
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			checkValid(t, cfg)
			return
		}
		if cfg != nil {
			t.Fatalf("Parse returned a config and an error: %v", err)
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("error is %T, want ErrorList: %v", err, err)
		}
		if len(list) == 0 {
			t.Fatal("empty ErrorList")
		}
		for i, e := range list {
			if e == nil || e.File != "fuzz.yaml" || e.Line <= 0 || e.Col <= 0 || e.Msg == "" {
				t.Fatalf("error %d is not positioned: %#v", i, e)
			}
			if want := fmt.Sprintf("fuzz.yaml:%d:%d: ", e.Line, e.Col); !strings.HasPrefix(e.Error(), want) {
				t.Fatalf("error %d reads %q", i, e.Error())
			}
			if i > 0 && (e.Line < list[i-1].Line || e.Line == list[i-1].Line && e.Col < list[i-1].Col) {
				t.Fatalf("errors not in file order:\n%v", err)
			}
		}
		if _, err2 := Parse("fuzz.yaml", data); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("second parse differs:\n%v\n---\n%v", err, err2)
		}
	})
}

// checkValid asserts what a caller may rely on in an accepted config.
func checkValid(t *testing.T, cfg *Config) {
	t.Helper()
	if cfg == nil {
		t.Fatal("nil config without error")
	}
	if cfg.File != "fuzz.yaml" || cfg.Listen == "" || cfg.Admin.Listen == "" || cfg.DataDir == "" ||
		cfg.Log.Format == "" || cfg.Log.Level == "" || cfg.Server.ReadHeaderTimeout <= 0 ||
		cfg.Server.IdleTimeout <= 0 || cfg.Server.MaxHeaderBytes <= 0 || cfg.Server.ShutdownGrace <= 0 {
		t.Fatalf("defaults missing: %+v", cfg)
	}
	if !isLoopback(cfg.Admin.Listen) && cfg.Admin.TokenFile == "" {
		t.Fatalf("admin off loopback without a token: %q", cfg.Admin.Listen)
	}
	for name, b := range cfg.Backends {
		if b == nil || b.Name != name || len(b.Endpoints) == 0 {
			t.Fatalf("backend %q: %+v", name, b)
		}
		for _, e := range b.Endpoints {
			if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				t.Fatalf("backend %q: endpoint %v", name, e)
			}
		}
	}
	names := map[string]bool{}
	for i, r := range cfg.Routes {
		if r == nil || r.Name == "" || names[r.Name] || cfg.Backends[r.Backend] == nil {
			t.Fatalf("route %+v", r)
		}
		names[r.Name] = true
		if cfg.Position("routes", i).Line <= 0 {
			t.Fatalf("route %q has no position", r.Name)
		}
		for _, s := range r.Shadow {
			if s == nil || cfg.Backends[s.Backend] == nil || s.Backend == r.Backend ||
				s.Percent < 0 || s.Percent > 100 || s.MaxBody <= 0 || s.Timeout <= 0 ||
				s.MaxInFlight <= 0 || s.QueueSize <= 0 || s.Breaker.Failures <= 0 || s.Breaker.OpenFor <= 0 ||
				(s.Unsafe != "skip" && s.Unsafe != "mark" && s.Unsafe != "allow") {
				t.Fatalf("route %q: shadow %+v", r.Name, s)
			}
		}
		if c := r.Canary; c != nil && (cfg.Backends[c.Backend] == nil || c.Backend == r.Backend || c.Cookie == "") {
			t.Fatalf("route %q: canary %+v", r.Name, c)
		}
		if c := r.Compare; c != nil && (c.Target == "" || c.MaxBody <= 0 || c.Secondary != "" && cfg.Backends[c.Secondary] == nil) {
			t.Fatalf("route %q: compare %+v", r.Name, c)
		}
	}
}

// mentionsSystemFiles reports whether some value or key of the YAML text,
// after unescaping, could name a device, proc or sys file.
func mentionsSystemFiles(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return false // Parse stops before reading any file
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		v := strings.ToLower(n.Value)
		if strings.Contains(v, "dev") || strings.Contains(v, "proc") || strings.Contains(v, "sys") {
			return true
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(&doc)
}
