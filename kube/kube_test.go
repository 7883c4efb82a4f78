package kube

import (
	"bytes"
	"go/build"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"

	"github.com/stackrun/stack/spec"
)

// strictDecode decodes every document of a rendered stream with apimachinery's strict
// deserializer (the one client-go uses; unknown or duplicate fields are errors), proving the
// output is valid input for kubectl apply, and checks that each decoded object, written back
// by the official types, gives our bytes: kube's own structs and quantities write what
// k8s.io/api would.
func strictDecode(t *testing.T, stream []byte) []runtime.Object {
	t.Helper()
	sch := runtime.NewScheme()
	if err := corev1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	if err := appsv1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	dec := serializer.NewCodecFactory(sch, serializer.EnableStrict).UniversalDeserializer()
	var out []runtime.Object
	for i, doc := range strings.Split(string(stream), "\n---\n") {
		o, _, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("document %d does not decode strictly: %v\n%s", i, err, doc)
		}
		if again := officialYAML(t, o); strings.TrimSuffix(again, "\n") != strings.TrimSuffix(doc, "\n") {
			t.Fatalf("document %d differs from what k8s.io/api writes for it:\n%s", i, firstDiff(again, doc))
		}
		out = append(out, o)
	}
	return out
}

// officialYAML writes o as kube wrote its objects with the official types: sigs.k8s.io/yaml,
// without the null creation timestamps and empty top-level status blocks those types carry.
func officialYAML(t *testing.T, o runtime.Object) string {
	t.Helper()
	b, err := yaml.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "creationTimestamp: null" || line == "status: {}" {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func webDBCache() *spec.Stack {
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	grace := sec(20)
	return &spec.Stack{
		Name: "shop",
		Services: map[string]*spec.Service{
			"web": {
				Name: "web", Image: "registry.local/shop/web:1.4",
				Command:     []string{"serve", "--port", "8000"},
				Environment: map[string]string{"DB_HOST": "db", "CACHE": "cache:6379"},
				Ports:       []spec.Port{{HostIP: "127.0.0.1", Published: 8080, Target: 8000, Protocol: "tcp"}},
				DependsOn: map[string]spec.Dependency{
					"db":    {Condition: spec.ConditionHealthy, Required: true},
					"cache": {Condition: spec.ConditionStarted, Required: true},
				},
				Resources:       spec.Resources{MemoryLimit: 256 << 20, CPUs: 0.5, CPUShares: 512},
				Replicas:        2,
				User:            "1000:1000",
				ReadOnly:        true,
				CapDrop:         []string{"ALL"},
				StopGracePeriod: &grace,
				Mounts:          []spec.Mount{{Type: spec.MountTmpfs, Target: "/tmp", TmpfsSize: 16 << 20}},
			},
			"db": {
				Name: "db", Image: "postgres:16",
				Environment: map[string]string{"POSTGRES_PASSWORD": "example"},
				Expose:      []spec.Port{{Target: 5432, Protocol: "tcp"}},
				Healthcheck: &spec.Healthcheck{Test: []string{"CMD-SHELL", "pg_isready -U postgres"}, Interval: sec(5), Timeout: sec(3), Retries: 5, StartPeriod: sec(10)},
				Mounts:      []spec.Mount{{Type: spec.MountVolume, Source: "dbdata", Target: "/var/lib/postgresql/data"}},
				Resources:   spec.Resources{MemoryLimit: 512 << 20, MemoryReservation: 128 << 20, PidsLimit: 100},
				Restart:     spec.RestartPolicy{Name: "always"},
			},
			"cache": {
				Name: "cache", Image: "redis:7",
				Command:     []string{"redis-server", "--save", ""},
				Expose:      []spec.Port{{Target: 6379, Protocol: "tcp"}},
				Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "redis-cli", "ping"}, Interval: sec(10), Retries: 3},
			},
		},
		Volumes: map[string]*spec.Volume{"dbdata": {Key: "dbdata", Name: "shop_dbdata"}},
	}
}

func render(t *testing.T, st *spec.Stack, opts Options) (*Result, []runtime.Object) {
	t.Helper()
	res, err := Render(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteStream(&buf, res.Objects); err != nil {
		t.Fatal(err)
	}
	return res, strictDecode(t, buf.Bytes())
}

func TestWebDBCacheObjectsMatchTheStack(t *testing.T) {
	_, objs := render(t, webDBCache(), Options{})
	services := map[string]*corev1.Service{}
	deployments := map[string]*appsv1.Deployment{}
	claims := map[string]*corev1.PersistentVolumeClaim{}
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Service:
			services[v.Name] = v
		case *appsv1.Deployment:
			deployments[v.Name] = v
		case *corev1.PersistentVolumeClaim:
			claims[v.Name] = v
		}
	}
	for _, name := range []string{"web", "db", "cache"} {
		if services[name] == nil || deployments[name] == nil {
			t.Fatalf("service %s: want a Service and a Deployment named %s; have services %v deployments %v", name, name, keys(services), keys(deployments))
		}
		if services[name].Namespace != "shop" {
			t.Errorf("service %s in namespace %q, want shop", name, services[name].Namespace)
		}
	}
	// Service ports: published -> NodePort with port 8080 -> 8000; expose -> ClusterIP.
	web := services["web"]
	if web.Spec.Type != corev1.ServiceTypeNodePort || web.Spec.Ports[0].Port != 8080 || web.Spec.Ports[0].TargetPort.IntValue() != 8000 {
		t.Errorf("web Service: %+v", web.Spec)
	}
	if db := services["db"]; db.Spec.Type != corev1.ServiceTypeClusterIP || db.Spec.Ports[0].Port != 5432 {
		t.Errorf("db Service: %+v", db.Spec)
	}
	// Probes match the healthchecks.
	dbc := deployments["db"].Spec.Template.Spec.Containers[0]
	if dbc.ReadinessProbe == nil || strings.Join(dbc.ReadinessProbe.Exec.Command, " ") != "/bin/sh -c pg_isready -U postgres" ||
		dbc.ReadinessProbe.PeriodSeconds != 5 || dbc.ReadinessProbe.TimeoutSeconds != 3 ||
		dbc.ReadinessProbe.FailureThreshold != 5 || dbc.ReadinessProbe.InitialDelaySeconds != 10 {
		t.Errorf("db readiness probe: %+v", dbc.ReadinessProbe)
	}
	if dbc.LivenessProbe == nil || dbc.LivenessProbe.Exec.Command[0] != "/bin/sh" {
		t.Errorf("db liveness probe: %+v", dbc.LivenessProbe)
	}
	cc := deployments["cache"].Spec.Template.Spec.Containers[0]
	if got := strings.Join(cc.ReadinessProbe.Exec.Command, " "); got != "redis-cli ping" {
		t.Errorf("cache probe command %q", got)
	}
	if got := cc.Args; len(got) != 3 || got[2] != "" {
		t.Errorf("cache args %q: the empty argument must survive", got)
	}
	// Limits and requests.
	wc := deployments["web"].Spec.Template.Spec.Containers[0]
	wantQ := func(what string, got resource.Quantity, want string) {
		if got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s = %s, want %s", what, got.String(), want)
		}
	}
	wantQ("web limits.memory", wc.Resources.Limits[corev1.ResourceMemory], "256Mi")
	wantQ("web limits.cpu", wc.Resources.Limits[corev1.ResourceCPU], "500m")
	wantQ("web requests.cpu (cpu_shares 512)", wc.Resources.Requests[corev1.ResourceCPU], "500m")
	wantQ("db limits.memory", dbc.Resources.Limits[corev1.ResourceMemory], "512Mi")
	wantQ("db requests.memory", dbc.Resources.Requests[corev1.ResourceMemory], "128Mi")
	if *deployments["web"].Spec.Replicas != 2 {
		t.Errorf("web replicas %d", *deployments["web"].Spec.Replicas)
	}
	sc := wc.SecurityContext
	if sc == nil || *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 || !*sc.ReadOnlyRootFilesystem || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("web securityContext %+v", sc)
	}
	// PVCs match the named volumes, mounted by claim name.
	if claims["dbdata"] == nil || len(claims) != 1 {
		t.Fatalf("claims %v, want exactly dbdata", keys(claims))
	}
	dbpod := deployments["db"].Spec.Template.Spec
	if dbpod.Volumes[0].PersistentVolumeClaim.ClaimName != "dbdata" || dbc.VolumeMounts[0].MountPath != "/var/lib/postgresql/data" {
		t.Errorf("db volumes %+v mounts %+v", dbpod.Volumes, dbc.VolumeMounts)
	}
	// tmpfs -> memory emptyDir with the size.
	wpod := deployments["web"].Spec.Template.Spec
	if ed := wpod.Volumes[0].EmptyDir; ed == nil || ed.Medium != corev1.StorageMediumMemory || ed.SizeLimit.Cmp(resource.MustParse("16Mi")) != 0 {
		t.Errorf("web tmpfs volume %+v", wpod.Volumes)
	}
	// depends_on: one init container per dependency, waiting for its Service; the annotation says why.
	if n := len(wpod.InitContainers); n != 2 {
		t.Fatalf("web init containers: %d, want 2", n)
	}
	if got := strings.Join(wpod.InitContainers[1].Command, " "); !strings.Contains(got, "nc -z db 5432") {
		t.Errorf("wait-for-db command %q", got)
	}
	if ann := deployments["web"].Spec.Template.Annotations[AnnDependsOn]; !strings.Contains(ann, "db (service_healthy)") {
		t.Errorf("depends-on annotation %q", ann)
	}
	if *wpod.TerminationGracePeriodSeconds != 20 {
		t.Errorf("grace %d", *wpod.TerminationGracePeriodSeconds)
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

func TestStatefulSetModeUsesClaimTemplates(t *testing.T) {
	_, objs := render(t, webDBCache(), Options{Volumes: VolumesStatefulSet, Publish: PublishLoadBalancer})
	var sts *appsv1.StatefulSet
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.StatefulSet:
			sts = v
		case *corev1.PersistentVolumeClaim:
			t.Errorf("standalone claim %s in statefulset mode", v.Name)
		case *corev1.Service:
			if v.Name == "web" && v.Spec.Type != corev1.ServiceTypeLoadBalancer {
				t.Errorf("web Service type %s, want LoadBalancer", v.Spec.Type)
			}
		}
	}
	if sts == nil || sts.Name != "db" || sts.Spec.VolumeClaimTemplates[0].Name != "dbdata" || sts.Spec.ServiceName != "db" {
		t.Fatalf("want db as a StatefulSet with a dbdata claim template, got %+v", sts)
	}
	if m := sts.Spec.Template.Spec.Containers[0].VolumeMounts[0]; m.Name != "dbdata" {
		t.Errorf("db mount %+v", m)
	}
}

func TestUnsupportedKeysReport(t *testing.T) {
	st := webDBCache()
	db := st.Services["db"]
	db.Ulimits = map[string]spec.Ulimit{"nofile": {Soft: 1024, Hard: 2048}}
	db.User = "postgres"
	db.Restart = spec.RestartPolicy{Name: "on-failure", MaxRetries: 3}
	st.Services["web"].Mounts = append(st.Services["web"].Mounts, spec.Mount{Type: spec.MountBind, Source: "/srv/static", Target: "/static", ReadOnly: true})
	st.Services["web"].Networks = map[string]*spec.ServiceNetwork{"front": {Aliases: []string{"www"}}}
	st.Services["worker"] = &spec.Service{Name: "worker", Image: "shop-worker", Build: &spec.Build{Context: "/src/worker"}}

	res, _ := Render(st, Options{})
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.String())
	}
	want := []string{
		"warning: services.db.pids_limit: no per-Pod field: the kubelet's --pod-max-pids applies instead",
		"warning: services.db.restart: restart: on-failure has no Deployment equivalent: Pods are always restarted",
		"warning: services.db.ulimits: Kubernetes has no per-container rlimits: the container runtime's defaults apply",
		`warning: services.db.user: user "postgres" is a name: Kubernetes needs a numeric uid, the image's default user applies`,
		"warning: services.web.networks.front.aliases: aliases are not rendered: only the Service name \"web\" resolves",
		"warning: services.web.ports: host IP 127.0.0.1 is not rendered: the Service listens on every node address",
		"warning: services.web.ports: published ports become a NodePort Service: the node port is chosen by the cluster (30000-32767), not the published number",
		"error: services.web.volumes: bind mount /srv/static:/static: a cluster node does not have the project's files; use a volume, or --allow-hostpath to map it to a hostPath on whichever node runs the Pod",
		"error: services.worker.build: a cluster cannot build from a local context: set image: to a pushed image",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := res.Err(false); err == nil || !strings.Contains(err.Error(), "services.worker.build") || strings.Contains(err.Error(), "ulimits") {
		t.Errorf("non-strict error should list only errors: %v", err)
	}
	if err := res.Err(true); err == nil || !strings.Contains(err.Error(), "ulimits") {
		t.Errorf("strict error should list warnings too: %v", err)
	}

	// --allow-hostpath turns the refusal into a hostPath volume with a warning.
	res, _ = Render(st, Options{AllowHostPath: true})
	for _, f := range res.Findings {
		if f.Error && f.Key == "volumes" {
			t.Errorf("bind mount still refused with AllowHostPath: %s", f)
		}
	}
}

func TestNamesThatCollideAfterMappingAreRefused(t *testing.T) {
	st := &spec.Stack{Name: "p", Services: map[string]*spec.Service{
		"web_1": {Name: "web_1", Image: "a"}, "web-1": {Name: "web-1", Image: "a"},
	}}
	_, err := Render(st, Options{})
	if err == nil || !strings.Contains(err.Error(), `services "web-1" and "web_1" both become "web-1"`) {
		t.Fatalf("got %v", err)
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	var first string
	for i := 0; i < 5; i++ {
		res, err := Render(webDBCache(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteStream(&buf, res.Objects); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = buf.String()
		} else if buf.String() != first {
			t.Fatal("two renders of the same stack differ")
		}
	}
	if strings.Contains(first, "creationTimestamp") || strings.Contains(first, "status: {}") {
		t.Error("output carries empty status or null timestamps")
	}
}

// TestNoKubernetesModulesOutsideTests keeps k8s.io/api and k8s.io/apimachinery out of stack's
// build: they are most of its compile time from a clean checkout (make up).
func TestNoKubernetesModulesOutsideTests(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if strings.HasPrefix(imp, "k8s.io/") {
			t.Errorf("kube imports %s outside its tests", imp)
		}
	}
}
