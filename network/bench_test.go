package network_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/network"
)

// BenchmarkAttach measures attaching one container to an existing network: veth pair with the
// peer made in the container's namespace, bridge port, addresses, MAC, links up, default route,
// and the record written. Detach runs outside the timer. Reports the median too.
func BenchmarkAttach(b *testing.B) {
	s := newSandbox(b)
	ctx := context.Background()
	n, err := s.m.EnsureNetwork(ctx, network.Spec{Project: "p", Name: "p_default"})
	if err != nil {
		b.Fatal(err)
	}
	ns := s.container()
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := s.m.Attach(ctx, n.Name, "c", ns, network.AttachOptions{}); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		if err := s.m.Detach(ctx, n.Name, "c"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "µs-median")
	if err := s.m.RemoveNetwork(ctx, n.Name); err != nil {
		b.Fatal(err)
	}
}

var wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// TestWrkThroughput (bench/network.sh sets STACK_BENCH_WRK=1) compares HTTP throughput through
// a published port (127.0.0.1, DNAT + masquerade) with throughput straight to the container's
// address, both from the host namespace over the bridge, with wrk.
func TestWrkThroughput(t *testing.T) {
	if os.Getenv("STACK_BENCH_WRK") == "" {
		t.Skip("benchmark: run bench/network.sh (STACK_BENCH_WRK=1)")
	}
	s := newSandbox(t)
	testutil.RequireBinary(t, "wrk")
	ctx := context.Background()
	n, err := s.m.EnsureNetwork(ctx, network.Spec{Project: "p", Name: "p_default"})
	if err != nil {
		t.Fatal(err)
	}
	c := s.container()
	at, err := s.m.Attach(ctx, n.Name, "web", c, network.AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	if err := testutil.DoInNetNS(c, func() error {
		var err error
		l, err = net.Listen("tcp4", ":80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	pub, err := s.m.PublishPorts(ctx, "web", []network.PortBinding{{HostPort: 18080, ContainerPort: 80, Protocol: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })

	dur := os.Getenv("STACK_BENCH_DURATION")
	if dur == "" {
		dur = "3s"
	}
	rps := func(url string) float64 {
		out, err := testutil.RunInNetNS(s.host, 2*time.Minute, "wrk", "-t1", "-c16", "-d"+dur, url)
		if err != nil {
			t.Fatalf("wrk %s: %v\n%s", url, err, out)
		}
		m := wrkRPS.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("wrk output without Requests/sec:\n%s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("wrk %s: %s req/s", url, m[1])
		return v
	}
	// The machine is shared: interleave the three targets for several rounds and compare medians.
	var ds, ps, hs []float64
	for range 3 {
		ds = append(ds, rps(fmt.Sprintf("http://%s:80/", at.IPv4)))
		ps = append(ps, rps("http://127.0.0.1:18080/"))
		hs = append(hs, rps(fmt.Sprintf("http://%s:18080/", n.Gateway)))
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	direct, published, viaHostAddr := median(ds), median(ps), median(hs)
	fmt.Printf("direct %.0f req/s, published 127.0.0.1 %.0f req/s (ratio %.2f), published bridge address %.0f req/s (ratio %.2f)\n",
		direct, published, published/direct, viaHostAddr, viaHostAddr/direct)
}
