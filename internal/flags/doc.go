// Package flags evaluates feature flags written in flagd's definition
// format, in-process, with flagd's own evaluator
// (github.com/open-feature/flagd/core), so targeting, fractional
// bucketing and semantic-version rules give exactly flagd's answers.
//
// An Evaluator holds the running flag set. Load validates a new flag file
// completely (JSON syntax, flagd's schema, variants and default variants,
// targeting operators and $ref evaluators, the flags and variants routes
// require) before swapping it in atomically. It loads what flagd loads: a
// file flagd refuses is rejected with every problem named by flag key and
// the running flags stay; what flagd only logs (its schema findings) and
// umbra's lints are warnings in Info().Warnings. Evaluation errors are
// answered with flagd's own OFREP mapping.
// Evaluations read one atomic pointer and take no lock, so a reload never
// blocks the request path. Watch reloads the file when it changes.
//
// The same evaluation serves three consumers, and they agree because they
// build the evaluation context the same way (Context):
//
//   - Handler, the OFREP endpoint (OpenFeature Remote Evaluation
//     Protocol) callers and front ends evaluate flags through;
//   - Matcher, the router's flag condition (routes[].match.flag);
//   - ForwardHeader, the X-Umbra-Flags header sent upstream
//     (routes[].forward_flags).
//
// A route's evaluation context is the caller's key (routes[].key) as
// "targetingKey" plus the request attributes of routes[].flag_context; a
// front end that sends the same targetingKey over OFREP gets the same
// variant the router acts on.
package flags
