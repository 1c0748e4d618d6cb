package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/umbragw/umbra/internal/admin"
)

// Handlers are the admin API endpoints of rollouts.
func (m *Manager) Handlers() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/v1/rollouts":                    m.handleList,
		"GET /api/v1/rollouts/{route}":            m.handleGet,
		"POST /api/v1/rollouts/{route}/{command}": m.handleCommand,
	}
}

func (m *Manager) handleList(w http.ResponseWriter, _ *http.Request) {
	admin.WriteJSON(w, http.StatusOK, map[string]any{"rollouts": m.Statuses()})
}

func (m *Manager) handleGet(w http.ResponseWriter, r *http.Request) {
	c, ok := m.Get(r.PathValue("route"))
	if !ok {
		admin.WriteError(w, http.StatusNotFound, "not_found", "route "+r.PathValue("route")+" has no rollout plan")
		return
	}
	admin.WriteJSON(w, http.StatusOK, c.Status())
}

func (m *Manager) handleCommand(w http.ResponseWriter, r *http.Request) {
	c, ok := m.Get(r.PathValue("route"))
	if !ok {
		admin.WriteError(w, http.StatusNotFound, "not_found", "route "+r.PathValue("route")+" has no rollout plan")
		return
	}
	if err := m.command(r.Context(), c, Action(r.PathValue("command"))); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errNotAllowed) {
			status = http.StatusConflict
		}
		if errors.Is(err, errNotShared) {
			status = http.StatusServiceUnavailable
		}
		admin.WriteError(w, status, "rejected", err.Error())
		return
	}
	admin.WriteJSON(w, http.StatusOK, c.Status())
}

// command runs an operator command here, or on the route's leader in a
// fleet (returning once this replica applied the leader's new state).
func (m *Manager) command(ctx context.Context, c *Controller, cmd Action) error {
	m.mu.Lock()
	member := m.member
	m.mu.Unlock()
	if member == nil {
		return c.Command(cmd)
	}
	if !member.Leading(c.route) {
		return member.Forward(ctx, c.route, cmd)
	}
	if err := c.Command(cmd); err != nil {
		return err
	}
	if err := member.Flush(ctx, c.route); err != nil {
		return fmt.Errorf("%s: done on this replica (the leader), but not yet written for the others (it will be once etcd answers): %w", cmd, errNotShared)
	}
	return nil
}

// errNotShared: a leader's command took effect but etcd has not got it yet.
var errNotShared = errors.New("etcd unreachable")
