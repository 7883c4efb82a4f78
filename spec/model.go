package spec

import "time"

// Stack is a loaded, merged, interpolated and validated stack file, in stack's own model. Every
// other package works from this, never from compose-go's types.
type Stack struct {
	Name       string              // project name, after Compose's naming rules
	WorkingDir string              // project directory (absolute)
	Files      []string            // the files that were merged, in order
	Services   map[string]*Service // by service name
	Networks   map[string]*Network // by key in the file; "default" is always present when a service uses it
	Volumes    map[string]*Volume  // by key in the file
	Warnings   []*Problem          // informational keys stack does not implement, and similar
}

// ServiceNames returns the service names sorted.
func (s *Stack) ServiceNames() []string { return sortedKeys(s.Services) }

// Service is one service of the stack, fully resolved.
type Service struct {
	Name          string
	ContainerName string // container_name, empty when not set
	Image         string // image reference; for build-only services, the name Compose would tag
	Build         *Build
	PullPolicy    string

	// Command and Entrypoint: nil means "use the image's", an empty non-nil slice means "explicitly empty".
	Command    []string
	Entrypoint []string

	Environment map[string]string // resolved environment, env_file values first, then environment:
	EnvFiles    []EnvFile         // the env files read, with a digest of their content

	Ports    []Port  // published ports, one entry per port (ranges expanded)
	Expose   []Port  // exposed ports (not published)
	Mounts   []Mount // volumes:, tmpfs: in the order given
	Networks map[string]*ServiceNetwork
	// NetworkMode is "" (the networks above) or "none" (no network at all, Networks is empty).
	NetworkMode string
	DependsOn   map[string]Dependency

	Healthcheck *Healthcheck
	Restart     RestartPolicy
	Resources   Resources
	Replicas    int

	User       string
	WorkingDir string
	Hostname   string
	Domainname string
	Labels     map[string]string

	StopSignal      string
	StopGracePeriod *time.Duration

	Init       bool
	ReadOnly   bool
	Privileged bool
	CapAdd     []string // upper case without the CAP_ prefix (NET_ADMIN), or ALL
	CapDrop    []string // same spelling as CapAdd
	Ulimits    map[string]Ulimit
	Sysctls    map[string]string
	ExtraHosts []ExtraHost
	DNS        []string
	DNSSearch  []string
	DNSOptions []string // dns_opt
	ShmSize    int64
	Tty        bool
	StdinOpen  bool
	Logging    *Logging
	Profiles   []string

	// Hash is the canonical config hash (see hash.go for what goes into it).
	Hash string
}

// Build is the build: section of a service.
type Build struct {
	Context    string // absolute path
	Dockerfile string // relative to Context unless absolute
	// DockerfileInline is dockerfile_inline: the Dockerfile's content, when given in the file.
	DockerfileInline string
	Tags             []string
	Args             map[string]string
	Target           string
	Labels           map[string]string
	Network          string
	NoCache          bool
	Pull             bool
}

// EnvFile is an env_file entry as read.
type EnvFile struct {
	Path     string
	Required bool
	Digest   string // sha256 of the content, "" when the file is optional and missing
}

// Port is one published or exposed port.
type Port struct {
	HostIP    string // "" means all addresses
	Published uint16 // 0 means "pick a free port" (or: not published, for Expose)
	Target    uint16
	Protocol  string // "tcp" or "udp"
}

// MountType is the kind of a service mount.
type MountType string

const (
	MountVolume MountType = "volume"
	MountBind   MountType = "bind"
	MountTmpfs  MountType = "tmpfs"
)

// Mount is one entry of volumes: or tmpfs:.
type Mount struct {
	Type     MountType
	Source   string // volume key for MountVolume (empty: anonymous), absolute host path for MountBind
	Target   string
	ReadOnly bool

	// bind
	Propagation    string
	CreateHostPath bool
	// volume
	NoCopy bool
	// tmpfs
	TmpfsSize int64
	TmpfsMode uint32
	// Options are further tmpfs mount flags from the short syntax (tmpfs: /run:noexec,nosuid).
	Options []string
}

// ServiceNetwork is a service's attachment to one network.
type ServiceNetwork struct {
	Aliases     []string
	IPv4Address string
}

// Dependency condition values, as Compose spells them.
const (
	ConditionStarted             = "service_started"
	ConditionHealthy             = "service_healthy"
	ConditionCompletedSuccessful = "service_completed_successfully"
)

// Dependency is one depends_on entry.
type Dependency struct {
	Condition string
	Restart   bool
	Required  bool
}

// Healthcheck is a resolved healthcheck. Disable is set for test: NONE / disable: true.
type Healthcheck struct {
	Test          []string // "CMD", args... or "CMD-SHELL", cmd
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	Retries       int
	Disable       bool
}

// RestartPolicy is restart: split into its name and the on-failure retry bound.
type RestartPolicy struct {
	Name       string // "no", "always", "on-failure", "unless-stopped"
	MaxRetries int    // on-failure:N, 0 = unbounded
}

// Resources holds the limits; zero means unset.
type Resources struct {
	MemoryLimit       int64 // bytes
	MemoryReservation int64 // bytes
	MemorySwap        int64 // bytes, -1 unlimited
	CPUs              float64
	CPUShares         int64
	PidsLimit         int64
}

// Ulimit is one ulimits entry.
type Ulimit struct {
	Soft int64
	Hard int64
}

// ExtraHost is one extra_hosts entry.
type ExtraHost struct {
	Host string
	IP   string
}

// Logging is the logging: section.
type Logging struct {
	Driver  string
	Options map[string]string
}

// Network is a top-level network.
type Network struct {
	Key      string // key in the file
	Name     string // actual name: <project>_<key> unless name: or external
	Driver   string
	Internal bool
	External bool
	Subnet   string
	Gateway  string
	Labels   map[string]string
}

// Volume is a top-level named volume.
type Volume struct {
	Key      string
	Name     string // actual name: <project>_<key> unless name: or external
	Driver   string
	External bool
	Labels   map[string]string
}
