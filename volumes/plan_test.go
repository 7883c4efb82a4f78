package volumes

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/spec"
)

func testPlanOptions() PlanOptions {
	return PlanOptions{
		Project:    "shop",
		Container:  "shop-web-1",
		ProjectDir: "/home/ann/shop",
		HomeDir:    "/home/ann",
		StateRoot:  "/var/lib/stack",
		RunRoot:    "/run/stack",
		Volumes: map[string]*spec.Volume{
			"data":  {Key: "data", Name: "shop_data", Labels: map[string]string{"tier": "db"}},
			"cache": {Key: "cache", Name: "global-cache"},
			"ext":   {Key: "ext", Name: "outside", External: true},
			"nfs":   {Key: "nfs", Name: "shop_nfs", Driver: "nfs"},
		},
	}
}

func TestPlan(t *testing.T) {
	anon := AnonymousName("shop", "shop-web-1", "/scratch")
	for _, tc := range []struct {
		name  string
		mount spec.Mount
		opts  func(*PlanOptions)
		want  Planned
	}{
		{
			name:  "named volume",
			mount: spec.Mount{Type: spec.MountVolume, Source: "data", Target: "/var/lib/db"},
			want: Planned{
				Type:   spec.MountVolume,
				Mount:  specs.Mount{Destination: "/var/lib/db", Type: "bind", Source: "/var/lib/stack/volumes/shop_data/_data", Options: []string{"rbind", "rprivate"}},
				Volume: &Spec{Name: "shop_data", Project: "shop", Key: "data", Labels: map[string]string{"tier": "db"}},
			},
		},
		{
			name:  "named volume read-only nocopy, explicit name:",
			mount: spec.Mount{Type: spec.MountVolume, Source: "cache", Target: "/cache/", ReadOnly: true, NoCopy: true},
			want: Planned{
				Type:   spec.MountVolume,
				Mount:  specs.Mount{Destination: "/cache", Type: "bind", Source: "/var/lib/stack/volumes/global-cache/_data", Options: []string{"rbind", "rprivate", "ro"}},
				Volume: &Spec{Name: "global-cache", Project: "shop", Key: "cache"},
				NoCopy: true,
			},
		},
		{
			name:  "external volume",
			mount: spec.Mount{Type: spec.MountVolume, Source: "ext", Target: "/ext"},
			want: Planned{
				Type:   spec.MountVolume,
				Mount:  specs.Mount{Destination: "/ext", Type: "bind", Source: "/var/lib/stack/volumes/outside/_data", Options: []string{"rbind", "rprivate"}},
				Volume: &Spec{Name: "outside", Key: "ext", External: true},
			},
		},
		{
			name:  "volume without a name in the model is <project>_<key>",
			mount: spec.Mount{Type: spec.MountVolume, Source: "logs", Target: "/logs"},
			opts:  func(o *PlanOptions) { o.Volumes["logs"] = &spec.Volume{Key: "logs"} },
			want: Planned{
				Type:   spec.MountVolume,
				Mount:  specs.Mount{Destination: "/logs", Type: "bind", Source: "/var/lib/stack/volumes/shop_logs/_data", Options: []string{"rbind", "rprivate"}},
				Volume: &Spec{Name: "shop_logs", Project: "shop", Key: "logs"},
			},
		},
		{
			name:  "anonymous volume",
			mount: spec.Mount{Type: spec.MountVolume, Target: "/scratch"},
			want: Planned{
				Type:   spec.MountVolume,
				Mount:  specs.Mount{Destination: "/scratch", Type: "bind", Source: "/var/lib/stack/volumes/" + anon + "/_data", Options: []string{"rbind", "rprivate"}},
				Volume: &Spec{Name: anon, Project: "shop", Anonymous: true, Labels: map[string]string{LabelContainer: "shop-web-1", LabelTarget: "/scratch"}},
			},
		},
		{
			name:  "bind, relative source, short syntax creates it",
			mount: spec.Mount{Type: spec.MountBind, Source: "./conf", Target: "/etc/app", CreateHostPath: true},
			want: Planned{
				Type:         spec.MountBind,
				Mount:        specs.Mount{Destination: "/etc/app", Type: "bind", Source: "/home/ann/shop/conf", Options: []string{"rbind", "rprivate"}},
				CreateSource: true,
				Protected:    []string{"/var/lib/stack", "/run/stack"},
				Confine:      "/home/ann/shop",
			},
		},
		{
			name:  "bind, ~ expanded, read-only, rslave",
			mount: spec.Mount{Type: spec.MountBind, Source: "~/notes", Target: "/notes", ReadOnly: true, Propagation: "rslave"},
			want: Planned{
				Type:      spec.MountBind,
				Mount:     specs.Mount{Destination: "/notes", Type: "bind", Source: "/home/ann/notes", Options: []string{"rbind", "rslave", "ro"}},
				Protected: []string{"/var/lib/stack", "/run/stack"},
			},
		},
		{
			name:  "bind, relative source may leave the project dir, as in Compose",
			mount: spec.Mount{Type: spec.MountBind, Source: "../shared", Target: "/shared"},
			want: Planned{
				Type:      spec.MountBind,
				Mount:     specs.Mount{Destination: "/shared", Type: "bind", Source: "/home/ann/shared", Options: []string{"rbind", "rprivate"}},
				Protected: []string{"/var/lib/stack", "/run/stack"},
			},
		},
		{
			name:  "bind of a socket below /var/run",
			mount: spec.Mount{Type: spec.MountBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
			want: Planned{
				Type:      spec.MountBind,
				Mount:     specs.Mount{Destination: "/var/run/docker.sock", Type: "bind", Source: "/var/run/docker.sock", Options: []string{"rbind", "rprivate"}},
				Protected: []string{"/var/lib/stack", "/run/stack"},
			},
		},
		{
			name:  "bind of /sys/fs/cgroup is allowed (inside /sys, not /sys itself)",
			mount: spec.Mount{Type: spec.MountBind, Source: "/sys/fs/cgroup", Target: "/sys/fs/cgroup", ReadOnly: true},
			want: Planned{
				Type:      spec.MountBind,
				Mount:     specs.Mount{Destination: "/sys/fs/cgroup", Type: "bind", Source: "/sys/fs/cgroup", Options: []string{"rbind", "rprivate", "ro"}},
				Protected: []string{"/var/lib/stack", "/run/stack"},
			},
		},
		{
			name:  "bind of the host's / when forced",
			mount: spec.Mount{Type: spec.MountBind, Source: "/", Target: "/host", ReadOnly: true},
			opts:  func(o *PlanOptions) { o.AllowHostMounts = true },
			want: Planned{
				Type:      spec.MountBind,
				Mount:     specs.Mount{Destination: "/host", Type: "bind", Source: "/", Options: []string{"rbind", "rprivate", "ro"}},
				AllowHost: true,
			},
		},
		{
			name:  "tmpfs with size and mode",
			mount: spec.Mount{Type: spec.MountTmpfs, Target: "/run/app", TmpfsSize: 64 << 20, TmpfsMode: 0o1777},
			want: Planned{
				Type:  spec.MountTmpfs,
				Mount: specs.Mount{Destination: "/run/app", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=67108864", "mode=1777"}},
			},
		},
		{
			name:  "tmpfs short syntax flags",
			mount: spec.Mount{Type: spec.MountTmpfs, Target: "/run", Options: []string{"exec", "uid=1000"}, TmpfsMode: 0o755},
			want: Planned{
				Type:  spec.MountTmpfs,
				Mount: specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "exec", "uid=1000", "mode=755"}},
			},
		},
		{
			name:  "tmpfs read-only, defaults",
			mount: spec.Mount{Type: spec.MountTmpfs, Target: "/tmp", ReadOnly: true},
			want: Planned{
				Type:  spec.MountTmpfs,
				Mount: specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "ro"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testPlanOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			got, err := Plan([]spec.Mount{tc.mount}, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("Plan =\n%+v\nwant\n%+v", got, tc.want)
				if len(got) == 1 && got[0].Volume != nil && tc.want.Volume != nil {
					t.Errorf("volume = %+v, want %+v", *got[0].Volume, *tc.want.Volume)
				}
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mounts []spec.Mount
		opts   func(*PlanOptions)
		is     error
		says   []string
	}{
		{"relative target", []spec.Mount{{Type: spec.MountTmpfs, Target: "tmp"}}, nil, ErrInvalid, []string{"absolute"}},
		{"target /", []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/"}}, nil, ErrInvalid, []string{"container's /"}},
		{"empty target", []spec.Mount{{Type: spec.MountVolume, Source: "data"}}, nil, ErrInvalid, []string{"empty mount target"}},
		{"undeclared volume", []spec.Mount{{Type: spec.MountVolume, Source: "nope", Target: "/x"}}, nil, ErrInvalid, []string{`"nope" is not declared`}},
		{"other driver", []spec.Mount{{Type: spec.MountVolume, Source: "nfs", Target: "/x"}}, nil, ErrInvalid, []string{`driver "nfs"`}},
		{"anonymous without container", []spec.Mount{{Type: spec.MountVolume, Target: "/x"}}, func(o *PlanOptions) { o.Container = "" }, ErrInvalid, []string{"container name"}},
		{"unknown type", []spec.Mount{{Type: "npipe", Source: "x", Target: "/x"}}, nil, ErrInvalid, []string{`"npipe"`}},
		{"bad propagation", []spec.Mount{{Type: spec.MountBind, Source: "/srv", Target: "/x", Propagation: "wide"}}, nil, ErrInvalid, []string{`"wide"`}},
		{"~user", []spec.Mount{{Type: spec.MountBind, Source: "~bob/x", Target: "/x"}}, nil, ErrInvalid, []string{"~user"}},
		{"~ without home", []spec.Mount{{Type: spec.MountBind, Source: "~/x", Target: "/x"}}, func(o *PlanOptions) { o.HomeDir = "" }, ErrInvalid, []string{"home directory"}},
		{"relative without project dir", []spec.Mount{{Type: spec.MountBind, Source: "./x", Target: "/x"}}, func(o *PlanOptions) { o.ProjectDir = "" }, ErrInvalid, []string{"project directory"}},
		{"tmpfs bad mode", []spec.Mount{{Type: spec.MountTmpfs, Target: "/t", TmpfsMode: 0o17777}}, nil, ErrInvalid, []string{"mode"}},
		{"duplicate target", []spec.Mount{
			{Type: spec.MountVolume, Source: "data", Target: "/data"},
			{Type: spec.MountTmpfs, Target: "/data/"},
		}, nil, ErrInvalid, []string{"duplicate mount target /data", "mount 2"}},
		{"host /", []spec.Mount{{Type: spec.MountBind, Source: "/", Target: "/host"}}, nil, ErrRefused, []string{"host's root directory", LabelAllowHostMount + "=true"}},
		{"host / through ../..", []spec.Mount{{Type: spec.MountBind, Source: "../../..", Target: "/host"}}, nil, ErrRefused, []string{"bind source / is"}},
		{"host /proc", []spec.Mount{{Type: spec.MountBind, Source: "/proc", Target: "/p"}}, nil, ErrRefused, []string{"/proc"}},
		{"inside /proc", []spec.Mount{{Type: spec.MountBind, Source: "/proc/1/root", Target: "/p"}}, nil, ErrRefused, []string{"/proc"}},
		{"host /sys", []spec.Mount{{Type: spec.MountBind, Source: "/sys/", Target: "/s"}}, nil, ErrRefused, []string{"host's /sys"}},
		{"host /dev", []spec.Mount{{Type: spec.MountBind, Source: "/dev", Target: "/d"}}, nil, ErrRefused, []string{"host's /dev"}},
		{"state root", []spec.Mount{{Type: spec.MountBind, Source: "/var/lib/stack", Target: "/s"}}, nil, ErrRefused, []string{"state directory /var/lib/stack"}},
		{"inside state root", []spec.Mount{{Type: spec.MountBind, Source: "/var/lib/stack/volumes/other_db/_data", Target: "/s"}}, nil, ErrRefused, []string{"inside it"}},
		{"above state root", []spec.Mount{{Type: spec.MountBind, Source: "/var/lib", Target: "/s"}}, nil, ErrRefused, []string{"parent of stack's state directory"}},
		{"run root", []spec.Mount{{Type: spec.MountBind, Source: "/run/stack/x", Target: "/s"}}, nil, ErrRefused, []string{"/run/stack"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testPlanOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			got, err := Plan(tc.mounts, o)
			if err == nil {
				t.Fatalf("Plan = %+v, want an error", got)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestPlanReportsEveryProblem(t *testing.T) {
	_, err := Plan([]spec.Mount{
		{Type: spec.MountBind, Source: "/proc", Target: "/p"},
		{Type: spec.MountTmpfs, Target: "/ok"},
		{Type: spec.MountVolume, Source: "nope", Target: "/n"},
	}, testPlanOptions())
	if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %q should carry both problems", err)
	}
	for _, s := range []string{"mount 1 (/proc -> /p)", "mount 3 (nope -> /n)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestPlanOrdersParentsFirst(t *testing.T) {
	got, err := Plan([]spec.Mount{
		{Type: spec.MountTmpfs, Target: "/data/cache/tmp"},
		{Type: spec.MountVolume, Source: "cache", Target: "/data/cache"},
		{Type: spec.MountTmpfs, Target: "/run"},
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
	}, testPlanOptions())
	if err != nil {
		t.Fatal(err)
	}
	var dests []string
	for _, p := range got {
		dests = append(dests, p.Mount.Destination)
	}
	if want := []string{"/run", "/data", "/data/cache", "/data/cache/tmp"}; !reflect.DeepEqual(dests, want) {
		t.Errorf("order = %v, want %v", dests, want)
	}
}

func TestPlanServiceLabelAllowsHostMounts(t *testing.T) {
	st := &spec.Stack{Name: "ops", WorkingDir: "/srv/ops", Volumes: map[string]*spec.Volume{}}
	svc := &spec.Service{Name: "agent", Mounts: []spec.Mount{{Type: spec.MountBind, Source: "/proc", Target: "/host/proc", ReadOnly: true}}}
	o := PlanOptions{Container: "ops-agent-1", StateRoot: "/var/lib/stack"}
	if _, err := PlanService(st, svc, o); !errors.Is(err, ErrRefused) {
		t.Fatalf("PlanService without label = %v, want ErrRefused", err)
	}
	svc.Labels = map[string]string{LabelAllowHostMount: "true"}
	got, err := PlanService(st, svc, o)
	if err != nil {
		t.Fatalf("PlanService with %s=true: %v", LabelAllowHostMount, err)
	}
	if got[0].Mount.Source != "/proc" || !got[0].AllowHost {
		t.Errorf("planned %+v", got[0])
	}
}

func TestAnonymousName(t *testing.T) {
	a := AnonymousName("shop", "shop-web-1", "/data")
	if a != AnonymousName("shop", "shop-web-1", "/data") {
		t.Error("not deterministic: a recreated container would lose its anonymous volume")
	}
	for _, other := range []string{
		AnonymousName("shop", "shop-web-2", "/data"),
		AnonymousName("shop", "shop-web-1", "/other"),
		AnonymousName("blog", "shop-web-1", "/data"),
	} {
		if other == a {
			t.Errorf("two containers/targets/projects share anonymous volume %s", a)
		}
	}
	if err := ValidateName(a); err != nil {
		t.Error(err)
	}
}

func TestTmpfsOptions(t *testing.T) {
	for _, tc := range []struct {
		ro    bool
		size  int64
		mode  uint32
		extra []string
		want  string
	}{
		{want: "nosuid,nodev,noexec"},
		{ro: true, size: 1024, mode: 0o700, want: "nosuid,nodev,noexec,ro,size=1024,mode=700"},
		{extra: []string{"exec"}, want: "nosuid,nodev,exec"},
		{extra: []string{"exec", "suid", "dev", "noatime"}, want: "exec,suid,dev,noatime"},
		{extra: []string{"uid=1000", "gid=1000"}, mode: 0o755, want: "nosuid,nodev,noexec,uid=1000,gid=1000,mode=755"},
		{ro: true, extra: []string{"rw"}, want: "nosuid,nodev,noexec"},
		{extra: []string{"noexec"}, want: "nosuid,nodev,noexec"},
	} {
		got, err := tmpfsOptions(tc.ro, tc.size, tc.mode, tc.extra)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("tmpfsOptions(%v, %d, %o, %v) = %v, %v; want %s", tc.ro, tc.size, tc.mode, tc.extra, got, err, tc.want)
		}
	}
	if _, err := tmpfsOptions(false, 0, 0, []string{"huge=always"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown option: %v, want ErrInvalid", err)
	}
}
