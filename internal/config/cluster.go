package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Cluster turns on fleet mode: replicas share rollout state through etcd
// (docs/fleet.md). Without it a replica works alone on its embedded store.
type Cluster struct {
	// Node names this replica in the fleet; default the host name.
	Node string `yaml:"node" json:"node"`
	// How to reach the etcd cluster.
	Etcd ClusterEtcd `yaml:"etcd" json:"etcd"`
	// PublishInterval is how often a replica publishes its rollout
	// windows (counts and latency samples) for the leader to merge.
	PublishInterval Duration `yaml:"publish_interval" json:"publish_interval"`
	// ShareInterval is how often a replica publishes its comparison
	// results and adoption counts (one bounded summary each) for the
	// others to merge on read.
	ShareInterval Duration `yaml:"share_interval" json:"share_interval"`
	// LeaseTTL bounds how long a dead replica keeps its leadership and
	// its published windows: a survivor takes over within it.
	LeaseTTL Duration `yaml:"lease_ttl" json:"lease_ttl"`
}

// ClusterEtcd is how to reach the etcd cluster.
type ClusterEtcd struct {
	// etcd client URLs, http://host:port or https://host:port.
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
	// Prefix is put before every key umbra writes, so several fleets (or
	// other programs) can share one etcd; it always ends with '/'.
	Prefix string `yaml:"prefix" json:"prefix"`
	// Time to connect to etcd, and a starting replica's wait for the fleet's state.
	DialTimeout Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// Bound of each etcd request; a slower one counts as etcd trouble.
	RequestTimeout Duration `yaml:"request_timeout" json:"request_timeout"`
	// etcd user (etcd's role-based access); needs PasswordFile.
	Username string `yaml:"username" json:"username,omitempty"`
	// PasswordFile holds the password of Username (whitespace trimmed).
	PasswordFile string `yaml:"password_file" json:"password_file,omitempty"`
	// TLS to etcd, for https endpoints with a private CA or client certificates.
	TLS *ClusterTLS `yaml:"tls" json:"tls,omitempty"`
}

// ClusterTLS secures the connections to etcd.
type ClusterTLS struct {
	// PEM CA bundle that signs the etcd servers' certificates.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// PEM client certificate (etcd's --client-cert-auth).
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	// PEM private key of CertFile.
	KeyFile string `yaml:"key_file" json:"key_file,omitempty"`
}

// ClientConfig loads the TLS files into a client configuration.
func (t *ClusterTLS) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load TLS key pair: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func (p *parser) validateCluster(c *Config) {
	cl := c.Cluster
	if cl == nil {
		return
	}
	path := at("cluster")
	if cl.Node == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			p.errorf(path, "cluster.node is not set and the host name is unknown (%v): name this replica", err)
		} else {
			cl.Node = host
		}
	} else if !nameRe.MatchString(cl.Node) {
		p.errorf(join(path, "node"), "node name %q: use letters, digits, '.', '_' and '-'", cl.Node)
	}
	if d := cl.ShareInterval.D(); d < 10*time.Millisecond {
		p.errorf(join(path, "share_interval"), "share_interval %v: use at least 10ms", d)
	}
	if d := cl.PublishInterval.D(); d < 10*time.Millisecond {
		p.errorf(join(path, "publish_interval"), "publish_interval %v: use at least 10ms", d)
	}
	if d := cl.LeaseTTL.D(); d < 2*time.Second || d%time.Second != 0 {
		p.errorf(join(path, "lease_ttl"), "lease_ttl %v: etcd leases count whole seconds; use 2s or more", d)
	}
	p.validateEtcd(&cl.Etcd, join(path, "etcd"))
}

func (p *parser) validateEtcd(e *ClusterEtcd, path []any) {
	if len(e.Endpoints) == 0 {
		p.errorf(path, "cluster.etcd needs endpoints, for example [\"http://127.0.0.1:2379\"]")
	}
	for i, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			p.errorf(join(path, "endpoints", i), "etcd endpoint %q: use http://host:port or https://host:port", ep)
		}
	}
	if !strings.HasSuffix(e.Prefix, "/") {
		e.Prefix += "/"
	}
	if (e.Username == "") != (e.PasswordFile == "") {
		p.errorf(path, "cluster.etcd: username and password_file go together")
	}
	if e.PasswordFile != "" {
		if _, err := ReadToken(e.PasswordFile); err != nil {
			p.errorf(join(path, "password_file"), "%v", err)
		}
	}
	if e.TLS != nil {
		if (e.TLS.CertFile == "") != (e.TLS.KeyFile == "") {
			p.errorf(join(path, "tls"), "cluster.etcd.tls: cert_file and key_file go together")
		} else if _, err := e.TLS.ClientConfig(); err != nil {
			p.errorf(join(path, "tls"), "%v", err)
		}
	}
}
