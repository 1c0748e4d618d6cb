package testkit

import "github.com/umbragw/umbra/internal/diffs"

// Endpoint finds an endpoint by name in a diffs report (of any route).
func Endpoint(rep diffs.Report, name string) (diffs.EndpointReport, bool) {
	for _, r := range rep.Routes {
		for _, e := range r.Endpoints {
			if e.Endpoint == name {
				return e, true
			}
		}
	}
	return diffs.EndpointReport{}, false
}

// Field finds a field by name in the lists of a report (regressions,
// noise, or both).
func Field(name string, lists ...[]diffs.FieldReport) (diffs.FieldReport, bool) {
	for _, list := range lists {
		for _, f := range list {
			if f.Field == name {
				return f, true
			}
		}
	}
	return diffs.FieldReport{}, false
}
