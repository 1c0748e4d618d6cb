package cluster

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/umbragw/umbra/internal/rollout"
)

// Key layout under the configured prefix P (docs/fleet.md, "Keys"):
//
//	P members/NODE                         member record, under NODE's lease
//	P rollouts/ROUTE/state                 the rollout's state, written by its leader
//	P rollouts/ROUTE/leader/...            the route's election (concurrency.Election)
//	P rollouts/ROUTE/windows/NODE          NODE's window of the running step, under its lease
//	P rollouts/ROUTE/commands/ID           an operator command for the leader, under the sender's lease
//	P results/ID                           the leader's answer to command ID, under its lease
//
// Route and node names cannot hold '/' (config validation), so a key
// splits unambiguously.
const (
	membersDir  = "members/"
	rolloutsDir = "rollouts/"
	resultsDir  = "results/"
)

// formatVersion is written in every value; a value of another version
// (a newer umbra during an upgrade, or anything else) is ignored.
const formatVersion = 1

type keys struct{ prefix string }

func (k keys) member(node string) string   { return k.prefix + membersDir + node }
func (k keys) rollout(route string) string { return k.prefix + rolloutsDir + route + "/" }
func (k keys) state(route string) string   { return k.rollout(route) + "state" }
func (k keys) election(route string) string {
	return k.rollout(route) + "leader/"
}
func (k keys) window(route, node string) string { return k.rollout(route) + "windows/" + node }
func (k keys) command(route, id string) string  { return k.rollout(route) + "commands/" + id }
func (k keys) commands(route string) string     { return k.rollout(route) + "commands/" }
func (k keys) result(id string) string          { return k.prefix + resultsDir + id }

// parsed is a key of the layout, taken apart.
type parsed struct {
	kind  string // member, state, leader, window, command, result
	route string
	name  string // node or id
}

func (k keys) parse(key string) (parsed, bool) {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return parsed{}, false
	}
	switch {
	case strings.HasPrefix(rest, membersDir):
		return parsed{kind: "member", name: rest[len(membersDir):]}, true
	case strings.HasPrefix(rest, resultsDir):
		return parsed{kind: "result", name: rest[len(resultsDir):]}, true
	case strings.HasPrefix(rest, "compare/") || strings.HasPrefix(rest, "adoption/"):
		return parseShared(rest)
	case strings.HasPrefix(rest, rolloutsDir):
		route, sub, ok := strings.Cut(rest[len(rolloutsDir):], "/")
		if !ok || route == "" {
			return parsed{}, false
		}
		if sub == "state" {
			return parsed{kind: "state", route: route}, true
		}
		dir, name, ok := strings.Cut(sub, "/")
		if !ok || name == "" {
			return parsed{}, false
		}
		switch dir {
		case "leader":
			return parsed{kind: "leader", route: route, name: name}, true
		case "windows":
			return parsed{kind: "window", route: route, name: name}, true
		case "commands":
			return parsed{kind: "command", route: route, name: name}, true
		}
	}
	return parsed{}, false
}

// stateValue is a rollout state as stored: who wrote it and when, so a
// replica can tell the propagation delay.
type stateValue struct {
	V     int           `json:"v"`
	Node  string        `json:"node"`
	At    time.Time     `json:"at"`
	State rollout.State `json:"state"`
}

type windowValue struct {
	V      int                   `json:"v"`
	Window rollout.WindowSummary `json:"window"`
}

type memberValue struct {
	V       int       `json:"v"`
	Node    string    `json:"node"`
	Started time.Time `json:"started"`
}

type commandValue struct {
	V        int            `json:"v"`
	Command  rollout.Action `json:"command"`
	From     string         `json:"from"`
	Deadline time.Time      `json:"deadline"`
}

type resultValue struct {
	V        int    `json:"v"`
	Error    string `json:"error,omitempty"`
	Conflict bool   `json:"conflict,omitempty"` // refused in this phase (409)
	Rev      int64  `json:"rev"`                // the revision of the state the command wrote
}

// decode reads a value of the layout: anything that is not JSON of the
// right shape and version is an error, so garbage is logged and ignored.
// Unknown fields are allowed: a newer replica may add some without
// changing the version.
func decode(b []byte, v any, version func() int) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if got := version(); got != formatVersion {
		return fmt.Errorf("format version %d, this replica reads %d", got, formatVersion)
	}
	return nil
}

func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are encoded
	}
	return string(b)
}
