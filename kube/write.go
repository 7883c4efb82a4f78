package kube

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Marshal renders one object as YAML: its JSON form (the field names and omitempty rules of
// the official types) converted to YAML with sorted keys, as kubectl and client-go write it.
func Marshal(o Object) ([]byte, error) {
	return yaml.Marshal(o)
}

// WriteStream writes all objects as one multi-document YAML stream.
func WriteStream(w io.Writer, objs []Object) error {
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
func FileName(i int, o Object) string {
	return fmt.Sprintf("%02d-%s-%s.yaml", i, strings.ToLower(o.ObjectKind()), o.ObjectName())
}

// WriteDir writes one file per object into dir (created if missing), for `kubectl apply -f dir/`.
func WriteDir(dir string, objs []Object) error {
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
