// Command otlpsink is the OTLP/HTTP collector of the tracing benchmarks:
// it accepts trace exports (POST /v1/traces), reads and discards them,
// and answers 200 with an empty ExportTraceServiceResponse (an empty
// protobuf message is zero bytes). It counts exports and bytes and prints
// them on SIGTERM or SIGINT, so a run shows that spans did flow. Decoding
// is left out on purpose: it would only take CPU from the load generator
// that shares its core.
//
// Standard library only; bench/lib.sh starts it pinned to the
// load-generator core when UMBRA_TRACE_RATIO is set.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18317", "listen address")
	flag.Parse()
	var exports, bytes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		exports.Add(1)
		bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	// bench_wait_http probes GET /: answer it like the upstream does.
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "umbra-bench otlpsink")
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		log.Printf("otlpsink: %d exports, %d bytes", exports.Load(), bytes.Load())
		os.Exit(0)
	}()
	log.Printf("otlpsink listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
