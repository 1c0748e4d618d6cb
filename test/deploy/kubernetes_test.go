package deploytest

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var kustomizations = []string{
	filepath.Join(root, "deploy", "kubernetes", "base"),
	filepath.Join(root, "deploy", "kubernetes", "overlays", "production"),
}

// strictDecoder decodes YAML into the typed objects of the kinds the
// manifests use, failing on an unknown kind, an unknown or duplicated
// field, as the API server's strict field validation does.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}

// objects is one kustomize build, decoded.
type objects struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	configMaps map[string]*corev1.ConfigMap
	accounts   map[string]*corev1.ServiceAccount
}

// build runs kustomize (the library kubectl apply -k uses) on dir and
// decodes every object strictly.
func build(t *testing.T, dir string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	dec := strictDecoder(t)
	out := objects{configMaps: map[string]*corev1.ConfigMap{}, accounts: map[string]*corev1.ServiceAccount{}}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := dec.Decode(y, nil, nil)
		if err != nil {
			t.Fatalf("kustomize build %s: %s %s does not decode strictly: %v\n%s", dir, r.GetKind(), r.GetName(), err, y)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			out.deployment = o
		case *corev1.Service:
			out.service = o
		case *policyv1.PodDisruptionBudget:
			out.pdb = o
		case *corev1.ConfigMap:
			out.configMaps[o.Name] = o
		case *corev1.ServiceAccount:
			out.accounts[o.Name] = o
		default:
			t.Errorf("%s: unexpected %T", dir, obj)
		}
	}
	if out.deployment == nil || out.service == nil || out.pdb == nil || len(out.configMaps) != 2 || len(out.accounts) != 1 {
		t.Fatalf("%s: want a Deployment, a Service, a PodDisruptionBudget, a ServiceAccount and 2 ConfigMaps, got %+v", dir, out)
	}
	return out
}

// TestKubernetesSourcesStrict decodes each manifest file of the base
// strictly too, so a misspelled field is pointed at in its own file.
func TestKubernetesSourcesStrict(t *testing.T) {
	dec := strictDecoder(t)
	base := kustomizations[0]
	var kz struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal([]byte(read(t, filepath.Join(base, "kustomization.yaml"))), &kz); err != nil {
		t.Fatal(err)
	}
	if len(kz.Resources) == 0 {
		t.Fatal("the base's kustomization lists no resources")
	}
	for _, f := range kz.Resources {
		if _, _, err := dec.Decode([]byte(read(t, filepath.Join(base, f))), nil, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestKubernetesManifests builds every kustomization and checks the
// objects agree with each other and with the config they carry.
func TestKubernetesManifests(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			checkObjects(t, build(t, dir))
		})
	}
}

func checkObjects(t *testing.T, o objects) {
	d := o.deployment
	pod := d.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// Selectors: the Deployment's, the Service's and the PDB's select the
	// pods.
	podLabels := labels.Set(pod.Labels)
	if d.Spec.Selector == nil || !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector, pod.Labels)
	}
	if len(o.service.Spec.Selector) == 0 || !labels.SelectorFromSet(o.service.Spec.Selector).Matches(podLabels) {
		t.Errorf("the Service's selector %v does not select the pods %v", o.service.Spec.Selector, pod.Labels)
	}
	if o.pdb.Spec.Selector == nil || !labels.SelectorFromSet(o.pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the pods %v", o.pdb.Spec.Selector, pod.Labels)
	}
	if min := o.pdb.Spec.MinAvailable; min == nil || d.Spec.Replicas == nil || min.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget minAvailable %v with %v replicas: a drain could never evict a pod", min, d.Spec.Replicas)
	}

	// The config the container runs: the ConfigMap mounted where -c points.
	cfgPath := argAfter(c.Args, "-c")
	cm, key := mountedConfigMap(t, pod.Spec, c, o.configMaps, cfgPath)
	text := cm.Data[key]
	flagsCM, flagsKey := mountedConfigMap(t, pod.Spec, c, o.configMaps, "/etc/umbra/flags/flags.json")
	tokenMount := mountOf(c, "/etc/umbra/admin-token/token")
	if tokenMount == nil || volume(pod.Spec, tokenMount.Name).Secret == nil {
		t.Errorf("the admin token file is not mounted from a Secret")
	}
	cfg := validateConfig(t, "the ConfigMap's "+key, text, map[string]string{
		"/etc/umbra/flags/flags.json":  flagsCM.Data[flagsKey],
		"/etc/umbra/admin-token/token": "test-token\n",
	})
	if cfg.Flags == nil || cfg.Flags.File != "" && !strings.HasSuffix(cfg.Flags.File, "/etc/umbra/flags/flags.json") {
		t.Errorf("the config's flag file is not the mounted one")
	}
	if m := mountOf(c, "/var/lib/umbra/x"); m == nil || m.ReadOnly {
		t.Errorf("data_dir /var/lib/umbra is not on a writable volume (the root file system is read-only)")
	}

	// Ports and probes: the container's named ports are the config's
	// listeners; the probes use the admin listener's open endpoints.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := portOf(t, cfg.Listen); ports["http"] != want {
		t.Errorf("container port http %d, config listen %q", ports["http"], cfg.Listen)
	}
	if want := portOf(t, cfg.Admin.Listen); ports["admin"] != want {
		t.Errorf("container port admin %d, config admin.listen %q", ports["admin"], cfg.Admin.Listen)
	}
	for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe %+v, want GET %s on the admin port", name, probe, want)
		}
	}
	for _, sp := range o.service.Spec.Ports {
		if _, ok := ports[sp.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %q, which the container does not name", sp.Name, sp.TargetPort.String())
		}
	}

	// Resources and security.
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	sc, psc := c.SecurityContext, pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) == 0 {
		t.Errorf("security contexts %+v %+v: want non-root, read-only root, no privilege escalation, capabilities dropped", psc, sc)
	}
	// The pod outlives umbra's drain.
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	preStop := time.Duration(0)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if drain := cfg.Server.ShutdownGrace.D(); grace <= drain+preStop {
		t.Errorf("terminationGracePeriodSeconds %v does not cover preStop %v + server.shutdown_grace %v", grace, preStop, drain)
	}
}

// mountedConfigMap finds the ConfigMap and key the container sees at path.
func mountedConfigMap(t *testing.T, spec corev1.PodSpec, c corev1.Container, cms map[string]*corev1.ConfigMap, path string) (*corev1.ConfigMap, string) {
	t.Helper()
	m := mountOf(c, path)
	if m == nil {
		t.Fatalf("nothing is mounted at %s", path)
	}
	v := volume(spec, m.Name)
	if v.ConfigMap == nil {
		t.Fatalf("%s is not mounted from a ConfigMap", path)
	}
	cm := cms[v.ConfigMap.Name]
	if cm == nil {
		t.Fatalf("volume %s names ConfigMap %q, which the build does not have", v.Name, v.ConfigMap.Name)
	}
	key := strings.TrimPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
	if _, ok := cm.Data[key]; !ok {
		t.Fatalf("ConfigMap %s has no key %q for %s", cm.Name, key, path)
	}
	return cm, key
}

// mountOf is the container's volume mount under which path lies.
func mountOf(c corev1.Container, path string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volume(spec corev1.PodSpec, name string) corev1.Volume {
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{}
}

func argAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}
