package kube

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/stackrun/stack/spec"
)

// VolumeMode says how named volumes become storage.
type VolumeMode string

const (
	// VolumesPVC makes one PersistentVolumeClaim per named volume, shared by every service that
	// mounts it, as a Compose named volume is shared. Workloads stay Deployments.
	VolumesPVC VolumeMode = "pvc"
	// VolumesStatefulSet makes each service that mounts named volumes a StatefulSet whose
	// volumeClaimTemplates give every replica its own claim.
	VolumesStatefulSet VolumeMode = "statefulset"
)

// PublishMode says what Service type published ports get.
type PublishMode string

const (
	PublishNodePort     PublishMode = "nodeport"
	PublishLoadBalancer PublishMode = "loadbalancer"
)

// Options steers the rendering.
type Options struct {
	Namespace     string // default: the project name
	Volumes       VolumeMode
	Publish       PublishMode
	AllowHostPath bool   // map bind mounts to hostPath volumes instead of refusing them
	Strict        bool   // every finding is an error
	ClaimSize     string // storage request of each claim, default 1Gi
	WaitImage     string // image of the init containers that wait for dependencies, default busybox:1.36
}

// Finding is one thing of the stack file that could not be carried over exactly.
type Finding struct {
	Service string // "" for top-level keys
	Key     string // Compose key, e.g. "pids_limit"
	Message string
	Error   bool // the output would be wrong without it: refused unless the user changes the file or a flag
}

func (f Finding) String() string {
	where := f.Key
	if f.Service != "" {
		where = "services." + f.Service + "." + f.Key
	}
	sev := "warning"
	if f.Error {
		sev = "error"
	}
	return fmt.Sprintf("%s: %s: %s", sev, where, f.Message)
}

// Result is the rendered objects, in a stable order, and what could not be carried over.
type Result struct {
	Objects  []Object
	Findings []Finding
}

// Err returns an error listing the error findings (all findings when strict), or nil.
func (r *Result) Err(strict bool) error {
	var msgs []string
	for _, f := range r.Findings {
		if f.Error || strict {
			msgs = append(msgs, f.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("cannot export to Kubernetes:\n  %s", strings.Join(msgs, "\n  "))
}

// Labels every object carries.
const (
	LabelProject = "stack.dev/project"
	LabelService = "stack.dev/service"
	LabelVolume  = "stack.dev/volume"
	AnnDependsOn = "stack.dev/depends-on"
)

// Render converts st into Kubernetes objects. It returns an error only for inputs it cannot
// represent at all (names that collide, a claim size that is no quantity); everything else is
// a Finding in the result.
func Render(st *spec.Stack, opts Options) (*Result, error) {
	opts = withDefaults(opts, st)
	claimSize, err := parseQuantity(opts.ClaimSize)
	if err != nil {
		return nil, fmt.Errorf("claim size: %w", err)
	}
	services := st.ServiceNames()
	svcNames, err := nameMap("service", services)
	if err != nil {
		return nil, err
	}
	volKeys := sortedKeys(st.Volumes)
	volNames, err := nameMap("volume", volKeys)
	if err != nil {
		return nil, err
	}
	r := &renderer{st: st, opts: opts, claimSize: claimSize, svcNames: svcNames, volNames: volNames, res: &Result{}}
	r.namespace()
	if opts.Volumes == VolumesPVC {
		for _, k := range volKeys {
			r.claim(k)
		}
	}
	for _, name := range services {
		r.service(st.Services[name])
	}
	r.topLevel()
	slices.SortStableFunc(r.res.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Key, b.Key))
	})
	return r.res, nil
}

func withDefaults(o Options, st *spec.Stack) Options {
	if o.Namespace == "" {
		o.Namespace = dnsLabel(st.Name)
	}
	if o.Volumes == "" {
		o.Volumes = VolumesPVC
	}
	if o.Publish == "" {
		o.Publish = PublishNodePort
	}
	if o.ClaimSize == "" {
		o.ClaimSize = "1Gi"
	}
	if o.WaitImage == "" {
		o.WaitImage = "busybox:1.36"
	}
	return o
}

type renderer struct {
	st        *spec.Stack
	opts      Options
	claimSize Quantity // opts.ClaimSize, canonical
	svcNames  map[string]string
	volNames  map[string]string
	res       *Result
}

func (r *renderer) add(o Object) { r.res.Objects = append(r.res.Objects, o) }

func (r *renderer) warn(service, key, format string, args ...any) {
	r.res.Findings = append(r.res.Findings, Finding{Service: service, Key: key, Message: fmt.Sprintf(format, args...)})
}

func (r *renderer) fail(service, key, format string, args ...any) {
	r.res.Findings = append(r.res.Findings, Finding{Service: service, Key: key, Message: fmt.Sprintf(format, args...), Error: true})
}

func (r *renderer) meta(name string, extra map[string]string) ObjectMeta {
	labels := map[string]string{LabelProject: dnsLabel(r.st.Name)}
	for k, v := range extra {
		labels[k] = v
	}
	return ObjectMeta{Name: name, Namespace: r.opts.Namespace, Labels: labels}
}

func (r *renderer) namespace() {
	r.add(&Namespace{
		TypeMeta:   TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: ObjectMeta{Name: r.opts.Namespace, Labels: map[string]string{LabelProject: dnsLabel(r.st.Name)}},
	})
}

func (r *renderer) claimSpec() PersistentVolumeClaimSpec {
	return PersistentVolumeClaimSpec{
		AccessModes: []string{ReadWriteOnce},
		Resources:   VolumeResourceRequirements{Requests: ResourceList{ResourceStorage: r.claimSize}},
	}
}

func (r *renderer) claim(key string) {
	v := r.st.Volumes[key]
	if v.External {
		r.warn("", "volumes."+key+".external", "external volume: a PersistentVolumeClaim named %q must already exist in namespace %q", r.volNames[key], r.opts.Namespace)
		return
	}
	r.add(&PersistentVolumeClaim{
		TypeMeta:   TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: r.meta(r.volNames[key], map[string]string{LabelVolume: r.volNames[key]}),
		Spec:       r.claimSpec(),
	})
}

func (r *renderer) topLevel() {
	for _, k := range sortedKeys(r.st.Networks) {
		n := r.st.Networks[k]
		if n.Internal {
			r.warn("", "networks."+k+".internal", "internal networks are not rendered: every Pod in the namespace can reach every other; add a NetworkPolicy to isolate")
		}
		if n.Subnet != "" {
			r.warn("", "networks."+k+".ipam", "subnets are chosen by the cluster's network plugin")
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }

func seconds(d interface{ Seconds() float64 }) int32 {
	s := int32(d.Seconds())
	if s < 1 {
		s = 1
	}
	return s
}

func portName(proto string, port uint16) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(proto), port)
}

func protocol(p string) string {
	if strings.EqualFold(p, "udp") {
		return ProtocolUDP
	}
	return ProtocolTCP
}
