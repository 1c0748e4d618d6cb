package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pos is a position in the config file, for error messages.
type Pos struct {
	Line int // from 1
	Col  int // from 1
}

// Duration is a time.Duration written as "5s", "250ms" or "1m30s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses Go duration syntax; bare numbers are rejected
// because "timeout: 5" is ambiguous (seconds? milliseconds?).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return typeError(n, "invalid duration %q (use a unit: 250ms, 5s, 1m)", n.Value)
	}
	if v < 0 {
		return typeError(n, "duration %q must not be negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON renders the duration as in the file ("5s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads what MarshalJSON writes, so that clients of the
// admin API (`umbra rollout`, which decodes rollout plans) can read it back.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written as a number of bytes or with a unit:
// 512, 64KiB, 1MiB, 1GiB, 10KB, 1MB (KB/MB are decimal, KiB/MiB binary).
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// parseByteSize parses a ByteSize string.
func parseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size")
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML accepts a plain integer or a number with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return typeError(n, "invalid size %q (examples: 4096, 64KiB, 1MiB)", n.Value)
	}
	*b = v
	return nil
}

// Percent is a share from 0 to 100; decimals are allowed ("0.5", "12.5%").
type Percent float64

// UnmarshalYAML parses a number with an optional trailing "%".
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"), 64)
	if err != nil || n.Kind != yaml.ScalarNode || v < 0 || v > 100 || v != v {
		return typeError(n, "invalid percent %q (a number from 0 to 100)", n.Value)
	}
	*p = Percent(v)
	return nil
}

// typeError returns an error yaml.v3 collects with its own errors and goes
// on decoding, so one run reports every problem in the file.
func typeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d:%d: %s", n.Line, n.Column, fmt.Sprintf(format, args...))}}
}
