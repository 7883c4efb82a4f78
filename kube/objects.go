package kube

// The Kubernetes objects kube renders, as our own structs with only the fields it sets. Field
// names, JSON names and omitempty follow the official types (k8s.io/api core/v1 and apps/v1,
// k8s.io/apimachinery meta/v1) field for field, so the YAML is what those types would write;
// kube's tests decode every rendered document strictly into the official types and compare a
// re-encoding with our bytes. Fields the official types always write although they are empty
// ("strategy: {}", a StatefulSet's status counters) are kept for the same reason.
// Importing the official types instead would cost a quick-start build tens of seconds of
// compile time (k8s.io/api/core/v1 alone is the largest package stack would build).

// Object is one rendered Kubernetes object.
type Object interface {
	ObjectKind() string // "Deployment"
	ObjectName() string // metadata.name
}

// TypeMeta is apiVersion and kind.
type TypeMeta struct {
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
}

// ObjectKind returns the kind.
func (t TypeMeta) ObjectKind() string { return t.Kind }

// ObjectMeta is an object's metadata.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ObjectName returns metadata.name.
func (m ObjectMeta) ObjectName() string { return m.Name }

// Empty is an always-written empty block ({}).
type Empty struct{}

// Namespace is a core/v1 Namespace.
type Namespace struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       Empty `json:"spec"`
}

// Quantity is a resource quantity in canonical form ("512Mi", "500m"); see quantity.go.
type Quantity string

// ResourceList maps a resource name (cpu, memory, storage) to an amount.
type ResourceList map[string]Quantity

// Resource names.
const (
	ResourceCPU     = "cpu"
	ResourceMemory  = "memory"
	ResourceStorage = "storage"
)

// PersistentVolumeClaim is a core/v1 PersistentVolumeClaim. Status is set (to {}) only in a
// StatefulSet's volumeClaimTemplates, where the official types write it.
type PersistentVolumeClaim struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       PersistentVolumeClaimSpec `json:"spec"`
	Status     *Empty                    `json:"status,omitempty"`
}

// PersistentVolumeClaimSpec is a claim's spec.
type PersistentVolumeClaimSpec struct {
	AccessModes []string                   `json:"accessModes,omitempty"`
	Resources   VolumeResourceRequirements `json:"resources"`
}

// ReadWriteOnce is the access mode of every claim.
const ReadWriteOnce = "ReadWriteOnce"

// VolumeResourceRequirements is a claim's storage request.
type VolumeResourceRequirements struct {
	Limits   ResourceList `json:"limits,omitempty"`
	Requests ResourceList `json:"requests,omitempty"`
}

// LabelSelector selects by labels.
type LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Deployment is an apps/v1 Deployment.
type Deployment struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       DeploymentSpec `json:"spec"`
}

// DeploymentSpec is a Deployment's spec.
type DeploymentSpec struct {
	Replicas *int32          `json:"replicas,omitempty"`
	Selector *LabelSelector  `json:"selector"`
	Template PodTemplateSpec `json:"template"`
	Strategy Empty           `json:"strategy"`
}

// StatefulSet is an apps/v1 StatefulSet.
type StatefulSet struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       StatefulSetSpec   `json:"spec"`
	Status     StatefulSetStatus `json:"status"`
}

// StatefulSetSpec is a StatefulSet's spec.
type StatefulSetSpec struct {
	Replicas             *int32                  `json:"replicas,omitempty"`
	Selector             *LabelSelector          `json:"selector"`
	Template             PodTemplateSpec         `json:"template"`
	VolumeClaimTemplates []PersistentVolumeClaim `json:"volumeClaimTemplates,omitempty"`
	ServiceName          string                  `json:"serviceName"`
	UpdateStrategy       Empty                   `json:"updateStrategy"`
}

// StatefulSetStatus holds the two counters the official type always writes (as 0).
type StatefulSetStatus struct {
	Replicas          int32 `json:"replicas"`
	AvailableReplicas int32 `json:"availableReplicas"`
}

// PodTemplateSpec is a workload's Pod template.
type PodTemplateSpec struct {
	ObjectMeta `json:"metadata"`
	Spec       PodSpec `json:"spec"`
}

// PodSpec is a Pod's spec.
type PodSpec struct {
	Volumes                       []Volume            `json:"volumes,omitempty"`
	InitContainers                []Container         `json:"initContainers,omitempty"`
	Containers                    []Container         `json:"containers"`
	TerminationGracePeriodSeconds *int64              `json:"terminationGracePeriodSeconds,omitempty"`
	SecurityContext               *PodSecurityContext `json:"securityContext,omitempty"`
	Hostname                      string              `json:"hostname,omitempty"`
	Subdomain                     string              `json:"subdomain,omitempty"`
	HostAliases                   []HostAlias         `json:"hostAliases,omitempty"`
	DNSConfig                     *PodDNSConfig       `json:"dnsConfig,omitempty"`
}

// PodSecurityContext is a Pod's security context.
type PodSecurityContext struct {
	Sysctls []Sysctl `json:"sysctls,omitempty"`
}

// Sysctl is one namespaced sysctl.
type Sysctl struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HostAlias is an /etc/hosts entry.
type HostAlias struct {
	IP        string   `json:"ip"`
	Hostnames []string `json:"hostnames,omitempty"`
}

// PodDNSConfig is a Pod's resolver configuration.
type PodDNSConfig struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Searches    []string `json:"searches,omitempty"`
}

// Volume is a Pod volume.
type Volume struct {
	Name string `json:"name"`
	VolumeSource
}

// VolumeSource is where a volume comes from; exactly one is set.
type VolumeSource struct {
	HostPath              *HostPathVolumeSource              `json:"hostPath,omitempty"`
	EmptyDir              *EmptyDirVolumeSource              `json:"emptyDir,omitempty"`
	PersistentVolumeClaim *PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
}

// HostPathVolumeSource is a node directory.
type HostPathVolumeSource struct {
	Path string `json:"path"`
}

// EmptyDirVolumeSource is a scratch directory, in memory when Medium is StorageMediumMemory.
type EmptyDirVolumeSource struct {
	Medium    string    `json:"medium,omitempty"`
	SizeLimit *Quantity `json:"sizeLimit,omitempty"`
}

// StorageMediumMemory makes an emptyDir a tmpfs.
const StorageMediumMemory = "Memory"

// PersistentVolumeClaimVolumeSource mounts a claim.
type PersistentVolumeClaimVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Container is one container of a Pod.
type Container struct {
	Name            string               `json:"name"`
	Image           string               `json:"image,omitempty"`
	Command         []string             `json:"command,omitempty"`
	Args            []string             `json:"args,omitempty"`
	WorkingDir      string               `json:"workingDir,omitempty"`
	Ports           []ContainerPort      `json:"ports,omitempty"`
	Env             []EnvVar             `json:"env,omitempty"`
	Resources       ResourceRequirements `json:"resources"`
	VolumeMounts    []VolumeMount        `json:"volumeMounts,omitempty"`
	LivenessProbe   *Probe               `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe               `json:"readinessProbe,omitempty"`
	SecurityContext *SecurityContext     `json:"securityContext,omitempty"`
	Stdin           bool                 `json:"stdin,omitempty"`
	TTY             bool                 `json:"tty,omitempty"`
}

// ContainerPort is a port the container listens on.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

// Protocols of ports.
const (
	ProtocolTCP = "TCP"
	ProtocolUDP = "UDP"
)

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// ResourceRequirements is a container's limits and requests.
type ResourceRequirements struct {
	Limits   ResourceList `json:"limits,omitempty"`
	Requests ResourceList `json:"requests,omitempty"`
}

// VolumeMount mounts a Pod volume into the container.
type VolumeMount struct {
	Name      string `json:"name"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	MountPath string `json:"mountPath"`
}

// Probe is an exec probe (the official ProbeHandler's exec, inlined as there).
type Probe struct {
	Exec                *ExecAction `json:"exec,omitempty"`
	InitialDelaySeconds int32       `json:"initialDelaySeconds,omitempty"`
	TimeoutSeconds      int32       `json:"timeoutSeconds,omitempty"`
	PeriodSeconds       int32       `json:"periodSeconds,omitempty"`
	FailureThreshold    int32       `json:"failureThreshold,omitempty"`
}

// ExecAction runs a command in the container.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// SecurityContext is a container's security settings.
type SecurityContext struct {
	Capabilities           *Capabilities `json:"capabilities,omitempty"`
	Privileged             *bool         `json:"privileged,omitempty"`
	RunAsUser              *int64        `json:"runAsUser,omitempty"`
	RunAsGroup             *int64        `json:"runAsGroup,omitempty"`
	ReadOnlyRootFilesystem *bool         `json:"readOnlyRootFilesystem,omitempty"`
}

// Capabilities are added and dropped capability names (without CAP_).
type Capabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// Service is a core/v1 Service.
type Service struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       ServiceSpec   `json:"spec"`
	Status     ServiceStatus `json:"status"`
}

// ServiceSpec is a Service's spec.
type ServiceSpec struct {
	Ports     []ServicePort     `json:"ports,omitempty"`
	Selector  map[string]string `json:"selector,omitempty"`
	ClusterIP string            `json:"clusterIP,omitempty"`
	Type      string            `json:"type,omitempty"`
}

// Service types, and the ClusterIP of a headless Service.
const (
	ServiceTypeClusterIP    = "ClusterIP"
	ServiceTypeNodePort     = "NodePort"
	ServiceTypeLoadBalancer = "LoadBalancer"
	ClusterIPNone           = "None"
)

// ServicePort is one port of a Service; the target is always a number here.
type ServicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Port       int32  `json:"port"`
	TargetPort int32  `json:"targetPort"`
}

// ServiceStatus is the empty load-balancer status the official type always writes.
type ServiceStatus struct {
	LoadBalancer Empty `json:"loadBalancer"`
}
