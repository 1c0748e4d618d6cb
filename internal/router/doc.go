// Package router picks the route for a request.
//
// Compile turns the config's routes into a Table. A Table never changes after
// Compile, so the gateway swaps whole tables on reload and any number of
// goroutines call Match at once without locks. Match does not allocate and
// does not scan the route list: hosts and exact paths are map lookups,
// templates a segment trie and prefixes a byte radix trie, all ordered at
// compile time.
//
// # Conditions
//
// A route matches a request when every condition of its match block holds.
//
//   - host is compared with r.Host, ASCII case-insensitively, after removing
//     the port ("host:port", "[::1]:port"; IPv6 brackets are dropped too) and
//     one trailing dot. "shop.example.com" matches that host only.
//     "*.example.com" matches every subdomain at any depth ("a.example.com",
//     "a.b.example.com") but not "example.com". No host matches any host. A
//     request host longer than 255 bytes is no DNS name and matches only
//     routes without a host.
//   - path is matched against r.URL.Path (decoded). Without braces it is an
//     exact path. With braces it is a template: every segment between slashes
//     is either literal or a whole "{name}", which matches exactly one
//     non-empty segment. The last segment may be "{name...}" or "{*}", which
//     matches the rest of the path, zero or more segments, slashes included:
//     "/files/{p...}" matches "/files/", "/files/a" and "/files/a/b/" but not
//     "/files".
//   - path_prefix is a plain string prefix, as in Envoy and Traefik:
//     "/checkout" matches "/checkout", "/checkout/x" and "/checkouts".
//   - Without path and path_prefix every path matches.
//   - methods: r.Method must equal one of them, case-sensitively (config
//     validation upper-cases them; an empty r.Method counts as GET). No
//     methods: any method.
//   - headers: every listed condition must hold. With value, one of the
//     header's values (each field line on its own, not split at commas) must
//     equal it; with regex, one value must match it (Regexp.MatchString, so
//     the pattern is unanchored unless it anchors itself); with present: false
//     the header must be absent; otherwise the header must be present, with
//     any value, even empty. A condition on "Host" tests r.Host, since
//     net/http moves that header out of r.Header.
//   - query: like headers, over the parameters of r.URL.RawQuery decoded as
//     net/url.ParseQuery does ('+' is a space; pairs containing ';' or a bad
//     %-escape are ignored; more than 10,000 parameters count as none).
//   - flag: the flag named by key must evaluate to variant for the
//     request. The Table asks its FlagMatcher (Options.Flags, given to
//     CompileWith; flags.Matcher builds the evaluation context from the
//     route's caller key and flag_context). It is tested last, after every
//     other condition held, since it is the only one that may allocate.
//
// # Precedence
//
// Match returns the most specific route whose every condition holds:
//
//  1. By host: routes with the exact host first, then wildcard hosts from the
//     longest suffix to the shortest, then routes without a host.
//  2. Within one host, by path: exact paths first; then templates, compared
//     segment by segment from the left, where at the first segment whose kind
//     differs a literal beats "{name}", which beats a final "{name...}"; then
//     path prefixes, the longest first; then routes without a path condition.
//  3. Ties keep config order.
//
// Methods, headers, query and flag do not rank routes: when one of them
// fails, matching goes on with the next route in this order, into lower host
// levels too. So a route that matches only POST can sit beside a catch-all
// that takes the other methods, and a flag-gated route beside the route
// serving everyone else.
//
// # Dark routes
//
// A dark route (routes[].dark, which requires a flag condition) is
// reachable only for callers its flag lets in. When its host, path,
// methods, headers and query hold but its flag does not, Match returns nil
// (the gateway answers 404 as if no route existed) instead of falling
// through: a less specific route, perhaps served by the same new version,
// must not expose the endpoint to everyone. Routes ranked before the dark
// route are not affected.
package router
