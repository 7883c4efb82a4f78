package compose

import (
	"github.com/stackrun/stack/spec"

	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Names from the stack file that become paths, interface names or record names: ".", "..",
// 200-character names and names sharing a long prefix are refused with their position, or
// mapped to names that are safe and distinct.
func TestHostileNames(t *testing.T) {
	long := strings.Repeat("a", 200)
	tests := []struct {
		name string
		yaml string
		want string // the error, or "" when the file loads
	}{
		{"service .", "name: shop\nservices:\n  \".\":\n    image: busybox\n",
			`stack.yaml:3:3: services..: service name "." cannot be a hostname: use letters, digits and '-', at most 63, not starting or ending with '-'`},
		{"service ..", "name: shop\nservices:\n  \"..\":\n    image: busybox\n",
			`stack.yaml:3:3: services...: service name ".." cannot be a hostname: use letters, digits and '-', at most 63, not starting or ending with '-'`},
		{"service of 200 characters", "name: shop\nservices:\n  " + long + ":\n    image: busybox\n",
			`stack.yaml:3:3: services.` + long + `: service name "` + long + `" cannot be a hostname: use letters, digits and '-', at most 63, not starting or ending with '-'`},
		{"project name: ..", "name: \"..\"\nservices:\n  web:\n    image: busybox\n",
			`stack.yaml:1:7: name: project name ".." has nothing left once normalized: it needs a letter or digit (Compose keeps lowercase letters, digits, '-' and '_')`},
		{"project name of 200 characters", "name: " + long + "\nservices:\n  web:\n    image: busybox\n",
			`stack.yaml:1:7: name: project name "aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa" is 200 characters long; at most 120 (its networks and volumes are named <project>_<key>, at most 128)`},
		{"network name: ../../etc", "name: shop\nservices:\n  web:\n    image: busybox\n    networks: [n]\nnetworks:\n  n:\n    name: ../../etc\n",
			`stack.yaml:8:11: networks.n.name: network name "../../etc": use letters, digits, '_', '.' and '-', starting with a letter or digit`},
		{"external network ..", "name: shop\nservices:\n  web:\n    image: busybox\n    networks: [n]\nnetworks:\n  n:\n    external: true\n    name: \"..\"\n",
			`stack.yaml:9:11: networks.n.name: network name "..": use letters, digits, '_', '.' and '-', starting with a letter or digit`},
		{"network key of 200 characters", "name: shop\nservices:\n  web:\n    image: busybox\n    networks: [" + long + "]\nnetworks:\n  " + long + ": {}\n",
			`stack.yaml:7:3: networks.` + long + `: network name "shop_aaaaaaaaaaaaaaa...aaaaaaaaaaaa" is 205 characters long; at most 128 (named <project>_<key>: shorten the key or the project name, or set name:)`},
		{"volume name: .", "name: shop\nservices:\n  web:\n    image: busybox\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n    name: \".\"\n",
			`stack.yaml:8:11: volumes.data.name: volume name ".": use letters, digits, '_', '.' and '-', starting with a letter or digit`},
		{"volume key of 200 characters", "name: shop\nservices:\n  web:\n    image: busybox\n    volumes: [\"" + long + ":/data\"]\nvolumes:\n  " + long + ": {}\n",
			`stack.yaml:7:3: volumes.` + long + `: volume name "shop_aaaaaaaaaaaaaaa...aaaaaaaaaaaa" is 205 characters long; at most 128 (named <project>_<key>: shorten the key or the project name, or set name:)`},
		{"container_name ..", "name: shop\nservices:\n  web:\n    image: busybox\n    container_name: \"..\"\n",
			`stack.yaml:5:21: services.web.container_name: '..' does not match pattern '[a-zA-Z0-9][a-zA-Z0-9_.-]+'`},
		// Keys "." and ".." are mapped: <project>_. and <project>_.. are names like any other
		// (no slash, no leading dot).
		{"network and volume keys . and ..", "name: shop\nservices:\n  web:\n    image: busybox\n    networks: [\".\", \"..\"]\n" +
			"    volumes:\n      - {type: volume, source: \".\", target: /a}\n      - {type: volume, source: \"..\", target: /b}\n" +
			"networks:\n  \".\": {}\n  \"..\": {}\nvolumes:\n  \".\": {}\n  \"..\": {}\n", ""},
		{"container_name of 200 characters", "name: shop\nservices:\n  web:\n    image: busybox\n    container_name: " + long + "\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, got := loadInline(t, map[string]string{"stack.yaml": tc.yaml})
			if tc.want == "" {
				if got != "" {
					t.Fatalf("refused: %s", got)
				}
				for _, n := range st.Networks {
					if spec.ValidObjectName("network", n.Name) != nil {
						t.Errorf("network %q got name %q", n.Key, n.Name)
					}
				}
				for _, v := range st.Volumes {
					if spec.ValidObjectName("volume", v.Name) != nil {
						t.Errorf("volume %q got name %q", v.Key, v.Name)
					}
				}
				return
			}
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// The keys "." and ".." map to distinct names; so do two long keys sharing a prefix.
func TestNamesMappedDistinct(t *testing.T) {
	k1, k2 := strings.Repeat("k", 100)+"1", strings.Repeat("k", 100)+"2"
	st, errText := loadInline(t, map[string]string{"stack.yaml": "name: shop\nservices:\n  web:\n    image: busybox\n" +
		"    networks: [\".\", \"..\", " + k1 + ", " + k2 + "]\n" +
		"networks:\n  \".\": {}\n  \"..\": {}\n  " + k1 + ": {}\n  " + k2 + ": {}\n"})
	if errText != "" {
		t.Fatal(errText)
	}
	seen := map[string]string{}
	for k, n := range st.Networks {
		if other, dup := seen[n.Name]; dup {
			t.Errorf("networks %q and %q are both named %q", k, other, n.Name)
		}
		seen[n.Name] = k
	}
	if st.Networks["."].Name != "shop_." || st.Networks[".."].Name != "shop_.." {
		t.Errorf("names of . and ..: %q %q", st.Networks["."].Name, st.Networks[".."].Name)
	}
}

// A project name that does not come from the file (-p) and is too long is refused without a
// position in the file.
func TestLongProjectNameFromFlag(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(p, []byte("services:\n  web:\n    image: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadStack(context.Background(), spec.Options{Environ: []string{}, NumCPU: 2, ProjectDirectory: dir, Files: []string{p},
		ProjectName: strings.Repeat("p", 121)})
	want := `project name "pppppppppppppppppppp...pppppppppppp" is 121 characters long; at most 120 (its networks and volumes are named <project>_<key>, at most 128) (from -p, COMPOSE_PROJECT_NAME or the directory name)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, err := loadStack(context.Background(), spec.Options{Environ: []string{}, NumCPU: 2, ProjectDirectory: dir, Files: []string{p},
		ProjectName: strings.Repeat("p", 120)}); err != nil {
		t.Errorf("a 120-character project name: %v", err)
	}
}
