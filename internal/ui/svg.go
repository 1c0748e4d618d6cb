package ui

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Line is one series of a chart.
type Line struct {
	Label  string
	Class  string // colour, from the stylesheet: live, shadow, canary, noise, raw
	Points []Point
	Step   bool // draw as steps (a value holds until the next point)
}

// Chart is a small time-series chart drawn as inline SVG on the server,
// so it shows with JavaScript off and needs no chart library.
type Chart struct {
	W, H   int
	Unit   string  // "%", "ms", "/s"
	Max    float64 // fixed top of the y axis; 0: from the data
	Lines  []Line
	Legend bool
}

// chart margins: room for the y labels on the left.
const (
	padL, padR, padT, padB = 34, 6, 6, 14
)

// SVG renders the chart. Gaps (NaN) break a line.
func (c Chart) SVG() template.HTML {
	t0, t1, ymax, hasData := c.bounds()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		c.W, c.H, c.W, c.H, template.HTMLEscapeString(c.label()))
	pw, ph := float64(c.W-padL-padR), float64(c.H-padT-padB)
	for i := 0; i <= 2; i++ { // grid: 0, half, top
		y := float64(padT) + ph*float64(i)/2
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, y, c.W-padR, y)
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y+3, formatValue(ymax*float64(2-i)/2, c.Unit))
	}
	if !hasData {
		fmt.Fprintf(&b, `<text class="empty" x="%.1f" y="%.1f" text-anchor="middle">no data yet</text>`, float64(padL)+pw/2, float64(padT)+ph/2+3)
	} else {
		span := t1.Sub(t0).Seconds()
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d">%s</text>`, padL, c.H-2, ago(t1.Sub(t0)))
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="end">now</text>`, c.W-padR, c.H-2)
		for _, l := range c.Lines {
			x := func(t time.Time) float64 {
				if span <= 0 {
					return float64(padL) + pw
				}
				return float64(padL) + pw*t.Sub(t0).Seconds()/span
			}
			y := func(v float64) float64 { return float64(padT) + ph*(1-math.Min(v, ymax)/ymax) }
			fmt.Fprintf(&b, `<path class="line %s" d="%s"><title>%s</title></path>`, l.Class, path(l, x, y, t1),
				template.HTMLEscapeString(l.Label))
		}
	}
	b.WriteString(`</svg>`)
	if c.Legend {
		b.WriteString(`<div class="legend">`)
		for _, l := range c.Lines {
			fmt.Fprintf(&b, `<span class="key %s">%s</span>`, l.Class, template.HTMLEscapeString(l.Label))
		}
		b.WriteString(`</div>`)
	}
	return template.HTML(b.String())
}

func (c Chart) label() string {
	names := make([]string, 0, len(c.Lines))
	for _, l := range c.Lines {
		names = append(names, l.Label)
	}
	return "chart of " + strings.Join(names, ", ")
}

// bounds are the time range and the top of the y axis.
func (c Chart) bounds() (t0, t1 time.Time, ymax float64, hasData bool) {
	for _, l := range c.Lines {
		for _, p := range l.Points {
			if t0.IsZero() || p.T.Before(t0) {
				t0 = p.T
			}
			if p.T.After(t1) {
				t1 = p.T
			}
			if !math.IsNaN(p.V) {
				hasData = true
				ymax = math.Max(ymax, p.V)
			}
		}
	}
	switch {
	case c.Max > 0:
		ymax = c.Max
	case ymax == 0 && c.Unit == "%":
		ymax = 0.01 // an all-zero rate: 0-1%, not 0-100%
	default:
		ymax = niceCeil(ymax)
	}
	return t0, t1, ymax, hasData
}

// path draws a line's points; steps hold a value until the next point and
// the last one until end.
func path(l Line, x func(time.Time) float64, y func(float64) float64, end time.Time) string {
	var b strings.Builder
	pen := false
	var lastY float64
	for _, p := range l.Points {
		if math.IsNaN(p.V) {
			pen = false
			continue
		}
		switch {
		case !pen:
			fmt.Fprintf(&b, "M%.1f %.1f", x(p.T), y(p.V))
			if !l.Step {
				// A lone point between gaps would not show: give it width.
				fmt.Fprintf(&b, "h0.01")
			}
		case l.Step:
			fmt.Fprintf(&b, "H%.1fV%.1f", x(p.T), y(p.V))
		default:
			fmt.Fprintf(&b, "L%.1f %.1f", x(p.T), y(p.V))
		}
		pen, lastY = true, y(p.V)
	}
	if l.Step && pen {
		fmt.Fprintf(&b, "H%.1fV%.1f", x(end), lastY)
	}
	return b.String()
}

// niceCeil rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// formatValue prints a number compactly with its unit.
func formatValue(v float64, unit string) string {
	if unit == "%" {
		v *= 100
	}
	var s string
	switch {
	case v == 0:
		s = "0"
	case math.Abs(v) >= 1000:
		s = fmt.Sprintf("%.3gk", v/1000)
	case math.Abs(v) >= 10:
		s = fmt.Sprintf("%.0f", v)
	default:
		s = strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
	return s + unit
}

// ago renders a span as "30m ago".
func ago(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%.0fh ago", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.0fm ago", d.Minutes())
	default:
		return fmt.Sprintf("%.0fs ago", d.Seconds())
	}
}
