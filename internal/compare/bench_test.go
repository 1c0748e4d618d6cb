package compare

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// orderBody renders a realistic JSON API answer (an order with its lines)
// of at least size bytes. tax is the field the candidate changes;
// createdAt and traceID differ between instances and are ignored.
func orderBody(size int, tax, createdAt, traceID string) []byte {
	var items []string
	body := func() string {
		return fmt.Sprintf(`{"order_id":"ord_8f14e45fceea167a","status":"paid","currency":"EUR","created_at":%q,`+
			`"customer":{"id":48213,"name":"Ann Example","email":"ann@example.com","vip":false,`+
			`"address":{"street":"12 Rue de la Paix","city":"Paris","zip":"75002","country":"FR"}},`+
			`"items":[%s],`+
			`"totals":{"subtotal":142.5,"tax":%s,"shipping":4.99,"discount":null,"total":176.49},`+
			`"links":{"self":"/v1/orders/ord_8f14e45fceea167a","invoice":"/v1/invoices/inv_1679091c"},`+
			`"meta":{"trace_id":%q,"api_version":"2024-06-01"}}`,
			createdAt, strings.Join(items, ","), tax, traceID)
	}
	for i := 0; len(body()) < size; i++ {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%05d","name":"Widget model %d","qty":%d,"unit_price":%d.%02d,`+
			`"tags":["hardware","blue","sale"],"attributes":{"color":"blue","size":"M","weight_g":%d},"in_stock":true}`,
			i*37, i, 1+i%3, 5+i%40, i%100, 100+i))
	}
	return []byte(body())
}

func benchResponses(size int, gz bool) (live, other *Response) {
	mk := func(body []byte, date, reqID string) *Response {
		h := http.Header{
			"Content-Type":  {"application/json; charset=utf-8"},
			"Cache-Control": {"private, max-age=0"},
			"Vary":          {"Accept-Encoding"},
			"Date":          {date},
			"X-Request-Id":  {reqID},
			"Etag":          {`W/"` + reqID + `"`},
		}
		if gz {
			h.Set("Content-Encoding", "gzip")
			body = gzipBytes(body)
		}
		h.Set("Content-Length", fmt.Sprint(len(body)))
		return &Response{Status: 200, Header: h, Body: body}
	}
	live = mk(orderBody(size, "29.00", "2024-06-01T10:00:00Z", "4bf92f3577b34da6"), "Sat, 01 Jun 2024 10:00:00 GMT", "r1")
	other = mk(orderBody(size, "29.01", "2024-06-01T10:00:01Z", "a3ce929d0e0e4736"), "Sat, 01 Jun 2024 10:00:01 GMT", "r2")
	return live, other
}

var benchOptions = Options{
	Ignore:          []string{"$.created_at", "$..trace_id"},
	UnorderedArrays: []string{"$.items[*].tags"},
}

func benchDiff(b *testing.B, size int) {
	c := mustNew(b, benchOptions)
	for _, gz := range []bool{false, true} {
		name := "plain"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			live, other := benchResponses(size, gz)
			if ds := c.Diff(live, other); len(ds) != 1 || ds[0].Field != "$.totals.tax" {
				b.Fatalf("want one difference at $.totals.tax, got %q", brief(ds))
			}
			b.SetBytes(int64(len(orderBody(size, "29.00", "2024-06-01T10:00:00Z", "4bf92f3577b34da6"))))
			b.ReportAllocs()
			loop(b, func() { c.Diff(live, other) })
		})
	}
	b.Run("identical", func(b *testing.B) {
		live, _ := benchResponses(size, false)
		b.ReportAllocs()
		loop(b, func() { c.Diff(live, live) })
	})
}

func BenchmarkDiff1KB(b *testing.B)  { benchDiff(b, 1<<10) }
func BenchmarkDiff10KB(b *testing.B) { benchDiff(b, 10<<10) }

// loop runs f b.N times and reports, besides wall time, the process CPU
// time per operation ("cpu-ns/op"), which other load on the machine does
// not inflate.
func loop(b *testing.B, f func()) {
	start := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if cpu := cpuTime() - start; cpu > 0 && n > 0 {
		b.ReportMetric(float64(cpu)/float64(n), "cpu-ns/op")
	}
}

// BenchmarkParse10KB compares the package's JSON parser with decoding into
// interface values with encoding/json, the alternative it replaces.
func BenchmarkParse10KB(b *testing.B) {
	body := orderBody(10<<10, "29.00", "2024-06-01T10:00:00Z", "4bf92f3577b34da6")
	b.Run("compare", func(b *testing.B) {
		var p parser
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		loop(b, func() {
			if _, ok := p.parse(bytesView(body)); !ok {
				b.Fatal("invalid")
			}
			p.release()
		})
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		loop(b, func() {
			if _, err := decodeStd(body); err != nil {
				b.Fatal(err)
			}
		})
	})
}
