package backend

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
)

func TestEjectionAndReadmission(t *testing.T) {
	logs := captureLogs(t)
	dead, live := closedPort(t), echoServer(t, "live")
	b := newBackend(t, config.Backend{
		// Long enough that ten requests finish inside it on a loaded machine.
		Health: config.HealthCheck{MaxFails: 2, EjectFor: ms(200)},
		Retry:  config.Retry{Disable: true}, // let the failures through
	}, dead, live.URL)

	// Round robin alternates: dead, live, dead (second failure ejects).
	for i := range 3 {
		_, err := do(t, b, http.MethodGet, nil)
		if wantErr := i%2 == 0; (err != nil) != wantErr {
			t.Fatalf("request %d: err = %v", i, err)
		}
	}
	st := statusOf(t, b, dead)
	if st.Healthy || st.ConsecutiveFailures != 2 || st.EjectedUntil.IsZero() {
		t.Fatalf("after 2 failures status = %+v, want ejected", st)
	}
	for i := range 10 {
		if name, err := do(t, b, http.MethodGet, nil); err != nil || name != "live" {
			t.Fatalf("request %d while ejected: %q, %v", i, name, err)
		}
	}
	if got := statusOf(t, b, dead).Requests; got != 2 {
		t.Errorf("ejected endpoint got %d requests, want 2", got)
	}

	if wait := time.Until(st.EjectedUntil); wait <= 0 || wait > 200*time.Millisecond {
		t.Errorf("ejected for %v more, want at most EjectFor", wait)
	}
	time.Sleep(time.Until(st.EjectedUntil) + 10*time.Millisecond)
	if !statusOf(t, b, dead).Healthy {
		t.Error("endpoint still ejected after EjectFor")
	}
	// Back in rotation, one more failure ejects it again.
	failures := 0
	for range 2 {
		if _, err := do(t, b, http.MethodGet, nil); err != nil {
			failures++
		}
	}
	if st := statusOf(t, b, dead); failures != 1 || st.Healthy || st.ConsecutiveFailures != 3 {
		t.Errorf("after readmission: %d failures, status %+v; want 1 failure and ejected again", failures, st)
	}
	if e, r := logs.count("endpoint ejected"), logs.count("endpoint readmitted"); e != 2 || r != 1 {
		t.Errorf("logged %d ejections and %d readmissions, want 2 and 1", e, r)
	}
}

func TestSuccessResetsFailureCount(t *testing.T) {
	port := closedPort(t)
	b := newBackend(t, config.Backend{Health: config.HealthCheck{MaxFails: 3}}, port)
	for range 2 {
		if _, err := do(t, b, http.MethodGet, nil); err == nil {
			t.Fatal("want a refused connection")
		}
	}
	if got := statusOf(t, b, port).ConsecutiveFailures; got != 2 {
		t.Fatalf("failures = %d, want 2", got)
	}
	reopen(t, port, "back")
	if name, err := do(t, b, http.MethodGet, nil); err != nil || name != "back" {
		t.Fatalf("after reopening: %q, %v", name, err)
	}
	if st := statusOf(t, b, port); st.ConsecutiveFailures != 0 || !st.Healthy {
		t.Errorf("status after success = %+v, want 0 failures, healthy", st)
	}
}

// TestPanicMode: with every endpoint ejected, requests still go out
// rather than failing with no_endpoint.
func TestPanicMode(t *testing.T) {
	logs := captureLogs(t)
	port := closedPort(t)
	b := newBackend(t, config.Backend{Health: config.HealthCheck{MaxFails: 1, EjectFor: config.Duration(time.Minute)}}, port)
	_, err := do(t, b, http.MethodGet, nil)
	if KindOf(err) != KindConnect {
		t.Fatalf("first request: %v (kind %s), want connect", err, KindOf(err))
	}
	if statusOf(t, b, port).Healthy {
		t.Fatal("endpoint not ejected after MaxFails=1")
	}
	// Still tried while ejected: the error is the dial's, not no_endpoint.
	if _, err := do(t, b, http.MethodGet, nil); KindOf(err) != KindConnect {
		t.Fatalf("ejected request: %v, want a connect error", err)
	}
	reopen(t, port, "recovered")
	if name, err := do(t, b, http.MethodGet, nil); err != nil || name != "recovered" {
		t.Fatalf("panic mode request: %q, %v", name, err)
	}
	if n := logs.count("panic mode"); n != 1 {
		t.Errorf("panic mode logged %d times, want once per transition", n)
	}
}

func TestPanicModeAllDead(t *testing.T) {
	d1, d2 := closedPort(t), closedPort(t)
	b := newBackend(t, config.Backend{Health: config.HealthCheck{MaxFails: 1, EjectFor: config.Duration(time.Minute)}}, d1, d2)
	for i := range 6 {
		_, err := do(t, b, http.MethodGet, nil)
		if err == nil || errors.Is(err, ErrNoEndpoint) {
			t.Fatalf("request %d: %v, want a dial error", i, err)
		}
	}
	for _, st := range b.Status() {
		if st.Healthy {
			t.Errorf("%+v: want ejected", st)
		}
	}
}

func TestStatus(t *testing.T) {
	dead, live := closedPort(t), echoServer(t, "live")
	b := newBackend(t, config.Backend{Name: "checkout-v1", Retry: config.Retry{Disable: true}}, live.URL, dead)
	if b.Name() != "checkout-v1" {
		t.Errorf("Name() = %q", b.Name())
	}
	for range 4 {
		do(t, b, http.MethodGet, nil)
	}
	got := b.Status()
	want := []EndpointStatus{
		{URL: live.URL, Healthy: true, Requests: 2},
		{URL: dead, Healthy: true, ConsecutiveFailures: 2, Requests: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("Status() = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Status()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestConcurrentFailuresEjectOnce hammers a dead endpoint from many
// goroutines: exactly one ejection is logged and the counters stay sane.
func TestConcurrentFailuresEjectOnce(t *testing.T) {
	logs := captureLogs(t)
	dead, live := closedPort(t), echoServer(t, "live")
	b := newBackend(t, config.Backend{Balance: BalanceLeastRequest, Health: config.HealthCheck{EjectFor: config.Duration(time.Minute)}}, dead, live.URL)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := do(t, b, http.MethodGet, nil); err != nil {
					t.Error(err) // the retry must hide every dial failure
				}
			}
		})
	}
	wg.Wait()
	if n := logs.count("endpoint ejected"); n != 1 {
		t.Errorf("logged %d ejections, want 1", n)
	}
	for _, st := range b.Status() {
		if st.InFlight != 0 {
			t.Errorf("%s in flight = %d", st.URL, st.InFlight)
		}
	}
	if st := statusOf(t, b, dead); st.Healthy || st.Requests > 3+8 {
		t.Errorf("dead endpoint status %+v: want ejected after few attempts", st)
	}
}
