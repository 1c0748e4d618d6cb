package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestClusterDefaults(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("cluster: {etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /fleet}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	c := cfg.Cluster
	if c.Node != host || c.Etcd.Prefix != "/fleet/" || c.LeaseTTL != DefaultCluster.LeaseTTL ||
		c.PublishInterval != DefaultCluster.PublishInterval || c.Etcd.DialTimeout != DefaultCluster.Etcd.DialTimeout ||
		c.Etcd.RequestTimeout != DefaultCluster.Etcd.RequestTimeout {
		t.Errorf("defaults: %+v", c)
	}
	cfg, err = Parse("c.yaml", []byte("listen: 127.0.0.1:1\n"))
	if err != nil || cfg.Cluster != nil {
		t.Errorf("no cluster block: %v %+v", err, cfg.Cluster)
	}
}

func TestClusterErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty"), "\n")
	writeFile(t, filepath.Join(dir, "ca.pem"), "not a certificate\n")
	runErrCases(t, []errCase{
		{"no endpoints", "cluster: {node: a}\n", []string{`1:10 cluster.etcd needs endpoints`}},
		{"bad values", `cluster:
  node: "a/b"
  etcd: {endpoints: ["127.0.0.1:2379", "http://h:1/x", "https://h:2"]}
  publish_interval: 1ms
  lease_ttl: 1500ms
`, []string{`2:9 node name "a/b"`, `3:22 etcd endpoint "127.0.0.1:2379"`, `3:40 etcd endpoint "http://h:1/x"`,
			`4:21 publish_interval 1ms`, `5:14 lease_ttl 1.5s: etcd leases count whole seconds`}},
		{"auth and tls", "cluster:\n  etcd:\n    endpoints: [\"https://h:2379\"]\n    username: u\n    tls: {ca_file: " + dir + "/ca.pem}\n", []string{
			`3:5 username and password_file go together`, `5:10 holds no PEM certificate`}},
		{"password file", "cluster:\n  etcd:\n    endpoints: [\"https://h:2379\"]\n    username: u\n    password_file: " + dir + "/empty\n    tls: {cert_file: x}\n", []string{
			`5:20 is empty`, `6:10 cert_file and key_file go together`}},
	})
}
