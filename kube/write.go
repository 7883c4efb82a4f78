package kube

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Marshal renders one object as YAML. Empty status blocks and null creation timestamps, which
// the Go types always carry, are dropped so the output is what a person would write.
func Marshal(o runtime.Object) ([]byte, error) {
	b, err := yaml.Marshal(o)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "creationTimestamp: null" || line == "status: {}" {
			continue
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n")), nil
}

// WriteStream writes all objects as one multi-document YAML stream.
func WriteStream(w io.Writer, objs []runtime.Object) error {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := Marshal(o)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// FileName is the file an object is written to by WriteDir: NN-kind-name.yaml, numbered in the
// order kubectl should apply them (the namespace first).
func FileName(i int, o runtime.Object) string {
	kind := strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind)
	name := ""
	if m, ok := o.(metav1.Object); ok {
		name = m.GetName()
	}
	return fmt.Sprintf("%02d-%s-%s.yaml", i, kind, name)
}

// WriteDir writes one file per object into dir (created if missing), for `kubectl apply -f dir/`.
func WriteDir(dir string, objs []runtime.Object) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, o := range objs {
		b, err := Marshal(o)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, FileName(i, o)), b, 0o644); err != nil {
			return fmt.Errorf("write manifests: %w", err)
		}
	}
	return nil
}
