package spec

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func diffBase() *Service {
	grace := 10 * time.Second
	return &Service{
		Name:        "web",
		Image:       "nginx:1",
		Command:     []string{"run"},
		Environment: map[string]string{"A": "1", "DB_HOST": "db"},
		Ports:       []Port{{Published: 8080, Target: 80, Protocol: "tcp"}},
		Mounts:      []Mount{{Type: MountVolume, Source: "data", Target: "/data"}},
		Networks:    map[string]*ServiceNetwork{"default": nil, "back": {Aliases: []string{"w"}}},
		Healthcheck: &Healthcheck{Test: []string{"CMD", "true"}, Interval: time.Second},
		Restart:     RestartPolicy{Name: "always"},
		Resources:   Resources{MemoryLimit: 64 << 20},
		Labels:      map[string]string{"x": "y"},
		Logging:     &Logging{Driver: "json-file", Options: map[string]string{"max-size": "1m"}},
		Replicas:    1,

		StopGracePeriod: &grace,
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *Service)
		want   []string
	}{
		{"same", func(s *Service) {}, nil},
		{"image", func(s *Service) { s.Image = "nginx:2" }, []string{"image"}},
		{"env changed", func(s *Service) { s.Environment["DB_HOST"] = "db2" }, []string{"environment.DB_HOST"}},
		{"env added and removed", func(s *Service) { delete(s.Environment, "A"); s.Environment["Z"] = "" }, []string{"environment.A", "environment.Z"}},
		{"port published", func(s *Service) { s.Ports[0].Published = 8081 }, []string{"ports[0].published"}},
		{"port added", func(s *Service) { s.Ports = append(s.Ports, Port{Target: 443}) }, []string{"ports[1]"}},
		{"command nil vs empty", func(s *Service) { s.Command = []string{} }, []string{"command"}},
		{"entrypoint nil vs empty", func(s *Service) { s.Entrypoint = []string{} }, []string{"entrypoint"}},
		{"volume source", func(s *Service) { s.Mounts[0].Source = "other" }, []string{"volumes[0].source"}},
		{"volume removed", func(s *Service) { s.Mounts = nil }, []string{"volumes[0]"}},
		{"network added", func(s *Service) { s.Networks["front"] = nil }, []string{"networks.front"}},
		{"network alias", func(s *Service) { s.Networks["back"].Aliases = nil }, []string{"networks.back.aliases"}},
		{"nil network same as empty", func(s *Service) { s.Networks["default"] = &ServiceNetwork{} }, nil},
		{"healthcheck removed", func(s *Service) { s.Healthcheck = nil }, []string{"healthcheck"}},
		{"healthcheck interval", func(s *Service) { s.Healthcheck.Interval = 2 * time.Second }, []string{"healthcheck.interval"}},
		{"restart", func(s *Service) { s.Restart.Name = "no" }, []string{"restart"}},
		{"mem_limit and cpus", func(s *Service) { s.Resources.MemoryLimit = 1; s.Resources.CPUs = 0.5 }, []string{"mem_limit", "cpus"}},
		{"stop_grace_period unset", func(s *Service) { s.StopGracePeriod = nil }, []string{"stop_grace_period"}},
		{"stop_grace_period same value, other pointer", func(s *Service) { d := 10 * time.Second; s.StopGracePeriod = &d }, nil},
		{"logging option", func(s *Service) { s.Logging.Options["max-size"] = "2m" }, []string{"logging.options.max-size"}},
		{"ignored fields", func(s *Service) {
			s.Replicas = 3
			s.PullPolicy = "always"
			s.Profiles = []string{"dev"}
			s.DependsOn = map[string]Dependency{"db": {Condition: ConditionHealthy}}
			s.Build = &Build{Context: "/x"}
			s.Hash = "other"
		}, nil},
		{"order follows the file's keys", func(s *Service) {
			s.Logging = nil
			s.Image = "x"
			s.Environment["A"] = "2"
			s.User = "1000"
		}, []string{"image", "environment.A", "user", "logging"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := diffBase(), diffBase()
			tt.change(new)
			if got := Diff(old, new); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
			if got := Diff(new, new); got != nil {
				t.Errorf("Diff(x, x) = %q, want none", got)
			}
		})
	}
}

// TestDiffCoversEveryField changes every leaf field of Service in turn and checks that Diff
// notices, so a field added to the model without a line in Diff fails here.
func TestDiffCoversEveryField(t *testing.T) {
	ignored := map[string]bool{"Name": true, "Replicas": true, "PullPolicy": true, "Profiles": true,
		"DependsOn": true, "Build": true, "Hash": true}
	typ := reflect.TypeFor[Service]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		for _, path := range leafPaths(f.Type, []int{i}) {
			name := f.Name + path.name
			t.Run(name, func(t *testing.T) {
				old, new := &Service{}, &Service{}
				setNonZero(reflect.ValueOf(new).Elem(), path.index)
				got := Diff(old, new)
				if ignored[f.Name] {
					if len(got) != 0 {
						t.Errorf("Diff = %q, want none for a field outside the hash", got)
					}
					return
				}
				if len(got) == 0 {
					t.Errorf("changing %s is not reported by Diff", name)
				}
			})
		}
	}
}

type leaf struct {
	name  string
	index []int
}

// leafPaths lists the fields to mutate: struct fields are walked into, everything else is a leaf.
func leafPaths(t reflect.Type, index []int) []leaf {
	if t.Kind() != reflect.Struct {
		return []leaf{{index: index}}
	}
	var out []leaf
	for i := range t.NumField() {
		for _, l := range leafPaths(t.Field(i).Type, append(slices.Clone(index), i)) {
			out = append(out, leaf{name: "." + t.Field(i).Name + l.name, index: l.index})
		}
	}
	return out
}

func setNonZero(v reflect.Value, index []int) {
	f := v.FieldByIndex(index)
	switch f.Kind() {
	case reflect.String:
		f.SetString("x")
	case reflect.Bool:
		f.SetBool(true)
	case reflect.Int, reflect.Int64:
		f.SetInt(1)
	case reflect.Uint16, reflect.Uint32:
		f.SetUint(1)
	case reflect.Float64:
		f.SetFloat(1)
	case reflect.Slice:
		f.Set(reflect.MakeSlice(f.Type(), 1, 1))
	case reflect.Map:
		m := reflect.MakeMap(f.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.Zero(f.Type().Elem()))
		f.Set(m)
	case reflect.Pointer:
		f.Set(reflect.New(f.Type().Elem()))
	default:
		panic("setNonZero: unhandled kind " + f.Kind().String())
	}
}
