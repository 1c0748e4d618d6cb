// Package compare diffs a live HTTP answer with a shadow's (or a second
// live instance's) and tells regressions from noise, as Twitter's Diffy
// does. It runs off the request path: the gateway captures answers and
// hands them to Comparator.Diff in a worker.
//
// # What is compared
//
// The status code, always (field "status"). Response headers, unless
// turned off: names case-insensitive, the values of one name joined with
// ", ", a header on one side only being missing (live only) or extra
// (other only), field "header:Name". DefaultIgnoredHeaders and
// Options.IgnoreHeaders are skipped. ETag and Last-Modified are compared by
// presence only, and Set-Cookie by cookie names and attributes (Path,
// Domain, Max-Age, Secure, HttpOnly, SameSite, Partitioned), not values or
// Expires dates, which change per response.
//
// Bodies are decoded first (Content-Encoding gzip, deflate as zlib or raw,
// br, or a list of them); a body that does not decode is a body_encoding
// difference. An empty body equals only an empty body. Then:
//
//   - both JSON (they parse as JSON, after an optional byte order mark,
//     whatever their Content-Type): a structural diff. Objects by key; arrays by index, or as multisets for
//     Options.UnorderedArrays; numbers by value within
//     Options.NumericTolerance; a reordered but otherwise equal ordered
//     array is one order difference.
//   - both text (text/* or valid UTF-8): one body_text difference showing
//     the first differing line and column.
//   - otherwise: one body_binary difference with lengths and hashes.
//
// A capture that hit its size limit (Response.Truncated) is not compared:
// Diff returns a single truncated difference.
//
// Difference.Field is the location used for counting; for JSON it is a
// path in the grammar below with array indices written [*] ("$.items[*].price"),
// so it can be pasted into Options.Ignore, and a JSON member called
// "status" or "body" is never confused with the status code or the whole
// body. Field "body" is a whole non-JSON body. Diff returns at most
// MaxInstancesPerField differences per field.
//
// JSON is parsed by a small parser of this package that accepts and decodes
// exactly what encoding/json does (the fuzz tests compare them) but is
// several times faster and, warm, does not allocate; subtrees written
// identically on both sides are equal without a walk.
//
// # Paths
//
// Options.Ignore and Options.UnorderedArrays take paths in a small subset
// of JSONPath:
//
//	path      = "$" { step }
//	step      = "." name | ".*" | "[" selector "]"           a child
//	          | ".." name | "..*" | "..[" selector "]"       a descendant at any depth
//	selector  = index | "*" | quoted
//	index     = "0" | digit1-9 { digit }                     an array element
//	quoted    = "'" { char | "\'" | "\\" } "'"               a key, any characters
//	          | '"' { char | "\"" | "\\" } '"'
//	name      = one or more characters other than . [ ] * ' " \ space and controls
//
// "$" is the document; ".key" and "['key']" select an object member; "[N]"
// an array element; "[*]" and ".*" any element or member; "..key" the
// member key of any object at any depth below. Examples: "$.created_at",
// "$.items[*].id", "$.meta" (with everything under it),
// "$..trace_id", "$['a.b']".
//
// An ignore path drops every difference at or under a location it
// matches, as if that part were absent on both sides. An unordered path
// makes the array at exactly the location it matches a multiset; use ".."
// for arrays at any depth. Paths are compiled once by New into one
// automaton; matching a location costs a few bit operations per step.
// Inside a multiset, elements have no position, so "[N]" steps do not match
// there (only "[*]" does).
//
// # Noise
//
// Thresholds.Regression applies Diffy's rule to a field's counts: the
// field changed if its live-vs-candidate difference rate exceeds its
// live-vs-secondary rate (the noise), by more than a share of itself and
// by more than an absolute margin.
package compare
