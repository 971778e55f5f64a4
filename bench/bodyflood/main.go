// Command bodyflood measures what unsigned webhook bodies cost the bot: it
// starts the bot binary it is given, sends it concurrent POSTs of large
// bodies with a wrong X-Hub-Signature-256, and prints the bot's resident
// memory (VmRSS, and VmHWM, its peak, from /proc/PID/status) before and
// after, with the answers it got. Linux only.
//
//	go build -o /tmp/bot ./cmd/bot && go run ./bench/bodyflood -bot /tmp/bot
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	bot := flag.String("bot", "", "the bot binary to start (required)")
	n := flag.Int("n", 20, "concurrent requests")
	size := flag.Int64("size", 24_000_000, "bytes per request body")
	rounds := flag.Int("rounds", 1, "requests each client sends, one after the other")
	flag.Parse()
	if *bot == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bot, *n, *rounds, *size); err != nil {
		fmt.Fprintln(os.Stderr, "bodyflood:", err)
		os.Exit(1)
	}
}

func run(bot string, n, rounds int, size int64) error {
	dir, err := os.MkdirTemp("", "bodyflood")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})

	cmd := exec.Command(bot)
	cmd.Dir = dir // no .env of the caller's
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"GITHUB_APP_INTEGRATION_ID=1",
		"GITHUB_APP_WEBHOOK_SECRET=the real secret",
		"GITHUB_APP_PRIVATE_KEY=" + string(pemKey),
		"GITHUB_V3_API_URL=http://127.0.0.1:1/", // never called: no delivery gets past its signature
		"RAILYARD_ADDR=" + addr,
		"RAILYARD_WORKDIR=" + filepath.Join(dir, "work"),
		"RAILYARD_LOG_LEVEL=error",
	}
	cmd.Env = append(cmd.Env, passThrough()...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	base := "http://" + addr
	if err := awaitHealthy(base); err != nil {
		return err
	}
	idle, err := memory(cmd.Process.Pid)
	if err != nil {
		return err
	}

	start := time.Now()
	answers := flood(base+"/api/github/hook", n, rounds, size)
	elapsed := time.Since(start)
	after, err := memory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("%d clients × %d requests of %d bytes, unsigned, in %v\n", n, rounds, size, elapsed.Round(time.Millisecond))
	fmt.Printf("answers: %s\n", answers)
	fmt.Printf("bot VmRSS idle %d MB, after %d MB; VmHWM (peak) %d MB\n", idle.rss>>20, after.rss>>20, after.hwm>>20)
	return nil
}

// passThrough keeps settings a run may want to vary, such as the intake
// budget or GOGC.
func passThrough() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RAILYARD_INTAKE_") || strings.HasPrefix(kv, "GO") {
			out = append(out, kv)
		}
	}
	return out
}

func freeAddr() (string, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func awaitHealthy(base string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the bot did not answer /healthz within 20 s")
}

// flood has n clients send rounds POSTs each of size zero bytes, generated
// as they are sent, and tallies the answers (or errors).
func flood(url string, n, rounds int, size int64) string {
	var mu sync.Mutex
	tally := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for round := range rounds {
				what := send(url, fmt.Sprintf("flood-%d-%d", i, round), size)
				mu.Lock()
				tally[what]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var parts []string
	for k, v := range tally {
		parts = append(parts, fmt.Sprintf("%d × %s", v, k))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// send POSTs one unsigned body and says what came of it.
func send(url, delivery string, size int64) string {
	req, err := http.NewRequest(http.MethodPost, url, io.LimitReader(zeros{}, size))
	if err != nil {
		return err.Error()
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Status
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type mem struct{ rss, hwm int64 }

// memory reads the bot's VmRSS and VmHWM, in bytes.
func memory(pid int) (mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}, err
	}
	defer f.Close()
	var m mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kb); err == nil {
			m.rss = kb << 10
		}
		if _, err := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &kb); err == nil {
			m.hwm = kb << 10
		}
	}
	return m, sc.Err()
}
