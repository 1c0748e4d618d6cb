// Package testkit is the one kit the end-to-end suites under test/ share,
// so that no suite redefines how to start umbra or wait for it:
//
//   - config.go: the standard config top (Top: loopback ports, data_dir,
//     log, shutdown grace), backends blocks, file writes (atomic too);
//   - gateway.go: a gateway started in process (Launch, LaunchText, Start,
//     TryStart for other goroutines), rewritten and reloaded, restarted on
//     its data, or one running in another process (Remote); Wait and Slow,
//     the bounds of every poll;
//   - admin.go: admin API calls (JSON, token) and /metrics reads and waits;
//   - upstream.go: recording upstreams (Upstream, Seen, Echo);
//   - process.go: the umbra binary built once per flavour (Umbra, Main),
//     run to completion (Run) or kept running with its output (Proc);
//   - wait.go: Recv, goroutine counts, Parallel, background Loops,
//     latency summaries; poll.go: Poll; client.go: Send and Do;
//   - metrics.go, diffs.go: parsed scrapes and diffs report lookups;
//   - etcd.go, tcpproxy.go, rawserver.go, deadaddr_*.go, storedamage.go,
//     tls.go: etcd, partitions, raw sockets, dead addresses, damaged
//     stores and self-signed certificates.
//
// What stays in a suite is what only it needs: its fake services (an
// egress payment provider, OTLP receivers, a browser) and wrappers of the
// admin API it tests.
package testkit
