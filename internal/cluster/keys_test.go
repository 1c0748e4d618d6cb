package cluster

import "testing"

func TestKeysRoundTrip(t *testing.T) {
	k := keys{"/umbra/shop/"}
	for _, c := range []struct {
		key  string
		want parsed
	}{
		{k.member("gw-1"), parsed{kind: "member", name: "gw-1"}},
		{k.state("checkout"), parsed{kind: "state", route: "checkout"}},
		{k.election("checkout") + "694d8b1f", parsed{kind: "leader", route: "checkout", name: "694d8b1f"}},
		{k.window("checkout", "gw-2"), parsed{kind: "window", route: "checkout", name: "gw-2"}},
		{k.command("checkout", "abc"), parsed{kind: "command", route: "checkout", name: "abc"}},
		{k.result("abc"), parsed{kind: "result", name: "abc"}},
	} {
		got, ok := k.parse(c.key)
		if !ok || got != c.want {
			t.Errorf("parse(%q) = %+v %v, want %+v", c.key, got, ok, c.want)
		}
	}
	for _, bad := range []string{"/other/members/x", "/umbra/shop/", "/umbra/shop/rollouts/", "/umbra/shop/rollouts/r",
		"/umbra/shop/rollouts/r/windows/", "/umbra/shop/rollouts/r/nope/x", "/umbra/shop/rollouts//state", "/umbra/shop/config"} {
		if got, ok := k.parse(bad); ok {
			t.Errorf("parse(%q) = %+v, want not ours", bad, got)
		}
	}
}

func TestDecodeRefusesOtherVersions(t *testing.T) {
	var v stateValue
	for _, b := range []string{``, `not json`, `{"v":2,"state":{}}`, `{"state":{}}`, `[]`, `{"v":"1"}`} {
		v = stateValue{}
		if err := decode([]byte(b), &v, func() int { return v.V }); err == nil {
			t.Errorf("decode(%q) accepted", b)
		}
	}
	if err := decode([]byte(`{"v":1,"node":"a","state":{"route":"r","phase":"idle"},"new_field":true}`), &v, func() int { return v.V }); err != nil {
		t.Errorf("a value with an added field was refused: %v", err)
	}
}
