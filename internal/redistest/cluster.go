// Package redistest starts a real three-master Redis Cluster for tests:
// three `redis-server --cluster-enabled yes` on free local ports in a
// temporary directory, joined with `redis-cli --cluster create`.
//
// A test package shares one cluster: its TestMain calls Main, and tests
// call Cluster, which skips when redis-server or redis-cli is missing
// unless RAILYARD_TEST_REDIS_CLUSTER=required (then it fails). With
// RAILYARD_TEST_REDIS_CLUSTER=off the cluster tests skip.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvVar says whether the cluster tests run: "required" fails them where
// redis-server is missing, "off" skips them; otherwise they run where it
// is installed.
const EnvVar = "RAILYARD_TEST_REDIS_CLUSTER"

// Masters is how many masters the test cluster has.
const Masters = 3

// TestCluster is a running cluster.
type TestCluster struct {
	Addrs []string // one per master, "127.0.0.1:port"
	dir   string
	procs []*exec.Cmd
}

var (
	once    sync.Once
	shared  *TestCluster
	startEr error
)

// Main runs the package's tests and then stops the cluster, if one was
// started. Call it from TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	return code
}

// Cluster returns the package's cluster, starting it on first use, or
// skips the test (see EnvVar). The package's TestMain must call Main.
func Cluster(t testing.TB) *TestCluster {
	t.Helper()
	mode := os.Getenv(EnvVar)
	if mode == "off" {
		t.Skipf("%s=off", EnvVar)
	}
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if mode == "required" {
				t.Fatalf("%s=required but %s is missing", EnvVar, bin)
			}
			t.Skipf("%s is not installed; the Redis Cluster test needs it", bin)
		}
	}
	once.Do(func() { shared, startEr = start() })
	if startEr != nil {
		t.Fatalf("start Redis Cluster: %v", startEr)
	}
	return shared
}

// Client returns a cluster client, closed when the test ends.
func (c *TestCluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis Cluster: %v", err)
	}
	return rdb
}

// Emptied returns a cluster client, as Client, after emptying every master:
// for tests that use fixed key names and so cannot share the cluster's
// contents with the tests before them.
func (c *TestCluster) Emptied(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := c.Client(t)
	err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error { return m.FlushAll(ctx).Err() })
	if err != nil {
		t.Fatalf("empty the cluster: %v", err)
	}
	return rdb
}

// URL is the cluster as RAILYARD_REDIS_URL names it (with
// RAILYARD_REDIS_CLUSTER=on): the first master, the others as addr=.
func (c *TestCluster) URL() string {
	u := "redis://" + c.Addrs[0]
	for i, a := range c.Addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// MasterOf returns the address of the master that serves key.
func (c *TestCluster) MasterOf(t testing.TB, rdb *redis.ClusterClient, key string) string {
	t.Helper()
	slot, err := rdb.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := rdb.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr
		}
	}
	t.Fatalf("no master serves slot %d", slot)
	return ""
}

func start() (c *TestCluster, err error) {
	dir, err := os.MkdirTemp("", "railyard-cluster-")
	if err != nil {
		return nil, err
	}
	c = &TestCluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	ports, err := freePorts(Masters)
	if err != nil {
		return nil, err
	}
	for i, port := range ports {
		node := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(node, 0o700); err != nil {
			return nil, err
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--dir", node, "--logfile", "redis.log")
		// The servers die with the test binary, even when it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		c.procs = append(c.procs, cmd)
		c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range c.Addrs {
		if err := await(ctx, func() error { return ping(ctx, a) }); err != nil {
			return nil, fmt.Errorf("node %s: %w (log in %s)", a, err, dir)
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	// Every node must agree that all slots are served before a client
	// can rely on any of them.
	for _, a := range c.Addrs {
		err := await(ctx, func() error {
			rdb := redis.NewClient(&redis.Options{Addr: a})
			defer rdb.Close()
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return errors.New("cluster_state is not ok")
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", a, err)
		}
	}
	return c, nil
}

func ping(ctx context.Context, addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	return rdb.Ping(ctx).Err()
}

// await polls f until it succeeds or ctx ends.
func await(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts finds n ports free now whose cluster bus ports (+10000) are
// free too, below the kernel's ephemeral range so the bus port is too.
func freePorts(n int) ([]int, error) {
	var ports []int
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		port := 20000 + rand.IntN(10000)
		if slices.Contains(ports, port) || !free(port) || !free(port+10000) {
			continue
		}
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, errors.New("no free ports for the cluster")
	}
	return ports, nil
}

func free(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (c *TestCluster) stop() {
	for _, p := range c.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	os.RemoveAll(c.dir)
}
