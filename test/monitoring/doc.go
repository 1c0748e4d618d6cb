// Package monitoringtest checks umbra's monitoring kit and metric docs
// against a real gateway under traffic that makes every metric family
// exist: live, canary and shadow requests (a healthy, a slow and a dead
// shadow target), comparisons with a secondary, a rollout that rolls back
// and one that holds, a flag-gated route, adoption fields, unmatched
// requests, and rejected config and flag files.
//
//   - TestMetricsDocumented scrapes /metrics and fails when a family or a
//     label is exported but not in docs/metrics.md, or documented but
//     not exported, naming each.
//   - TestMonitoringKitAgainstPrometheus starts Debian's prometheus
//     (skipped, saying so, when it is not installed; .ci/run installs it),
//     loads deploy/monitoring/umbra-rules.yml, scrapes the gateway, and
//     checks through Prometheus's HTTP API that every dashboard panel
//     expression parses and returns data and that every alert's
//     expression finds its series (the alert is pending or firing).
//   - TestDashboardWellFormed and TestRulesPromtool check the files alone.
//
// Run them with:
//
//	go test -race -count=1 ./test/monitoring/
package monitoringtest
