// Command app is the example application of examples/stack.yaml: one static binary with three
// roles, so the example image needs nothing but it and busybox.
//
//	app store  keeps a counter per key in a file on its volume (/data), answers /healthz
//	app api    counts visits in the store, reachable by the service name "store"
//	app web    serves the page on :80 and asks "api" for the count
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: app store|api|web")
	}
	addr := ":" + env("PORT", "80")
	var h http.Handler
	switch os.Args[1] {
	case "store":
		h = newStore(env("DATA_DIR", "/data"))
	case "api":
		h = api{store: "http://" + env("STORE_ADDR", "store:7000")}
	case "web":
		h = web{api: "http://" + env("API_ADDR", "api:9000"), title: env("TITLE", "stack example")}
	default:
		log.Fatalf("unknown role %q", os.Args[1])
	}
	log.Printf("%s listening on %s", os.Args[1], addr)
	log.Fatal((&http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}).ListenAndServe())
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// store keeps counters in counters.json, rewritten atomically on every change.
type store struct {
	mu   sync.Mutex
	path string
}

func newStore(dir string) *store { return &store{path: filepath.Join(dir, "counters.json")} }

func (s *store) load() map[string]int {
	m := map[string]int{}
	if b, err := os.ReadFile(s.path); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func (s *store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		fmt.Fprintln(w, "ok")
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/incr/")
	if key == "" || key == r.URL.Path {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.load()
	m[key]++
	b, _ := json.Marshal(m)
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil || os.Rename(tmp, s.path) != nil {
		http.Error(w, "cannot save", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, m[key])
}

type api struct{ store string }

func (a api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := http.Post(a.store+"/incr/visits", "text/plain", nil)
	if err != nil {
		http.Error(w, "store unreachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	io.Copy(w, resp.Body)
}

type web struct{ api, title string }

func (v web) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := http.Get(v.api + "/visit")
	if err != nil {
		http.Error(w, "api unreachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	host, _ := os.Hostname()
	fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1><p>visits: %d</p><p>served by %s</p>\n", v.title, v.title, n, host)
}
