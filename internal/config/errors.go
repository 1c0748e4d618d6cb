package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a config file, reported as FILE:LINE:COL: reason.
type Error struct {
	// The config file (or what stood for it).
	File string
	// Line of the problem, from 1; 0 when the problem is the file as a whole.
	Line int
	// Column of the problem, from 1.
	Col int
	// What is wrong, and how to put it right where that helps.
	Msg string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// ErrorList is every problem found in one config file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Col < l[j].Col
	})
	return l
}
