package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// funcs are the templates' formatting helpers. NaN (no value in the last
// interval) prints as a dash.
var funcs = template.FuncMap{
	"pct": func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return formatValue(v, "%")
	},
	"rate": func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return formatValue(v, "/s")
	},
	"ms": func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.0f ms", v)
	},
	"count": func(v any) string {
		var f float64
		switch n := v.(type) {
		case float64:
			f = n
		case int64:
			f = float64(n)
		case uint64:
			f = float64(n)
		case int:
			f = float64(n)
		}
		return thousands(f)
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t).Round(time.Second)
		if d < time.Second {
			return "just now"
		}
		return shortDuration(d) + " ago"
	},
	"agoPtr": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		d := time.Since(*t).Round(time.Second)
		if d < time.Second {
			return "just now"
		}
		return shortDuration(d) + " ago"
	},
	"clock": func(t time.Time) string { return t.Local().Format("15:04:05") },
	"stamp": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join":  strings.Join,
	"kinds": func(m map[string]int64) string {
		parts := make([]string, 0, len(m))
		for k, v := range m {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(parts)
		return strings.Join(parts, ", ")
	},
	"inputs": func(m map[string]float64) string {
		keys := slices.Sorted(maps.Keys(m))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, m[k]))
		}
		return strings.Join(parts, "  ")
	},
	"plus1": func(i int) int { return i + 1 },
	"path":  url.PathEscape,
	"value": func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	},
	"json": jsonText,
	"samples": func(route, endpoint, field string) string {
		return samplesLink(route, endpoint, field)
	},
}

func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func shortDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return d.String()
}

// jsonText encodes name/value pairs as a JSON object, for the request
// bodies of action buttons (html/template escapes it for the attribute).
func jsonText(kv ...any) (string, error) {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		name, ok := kv[i].(string)
		if !ok {
			return "", fmt.Errorf("json: name %v is not a string", kv[i])
		}
		m[name] = kv[i+1]
	}
	b, err := json.Marshal(m)
	return string(b), err
}
