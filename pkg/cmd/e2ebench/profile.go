package main

// CPU profiles of the Go services under load (-profile): each service's
// admin port serves Go's profiles with admin.pprof (on in `make up`),
// behind the admin bearer token.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// adminPorts are the admin ports of `make up`'s services (README).
var adminPorts = map[string]int{
	"command-service": 9081, "query-service": 9082, "dlq-service": 9083, "cdc-relay": 9084,
	"projector-order-read-model": 9085, "projector-orders-by-customer": 9086,
	"projector-orders-by-status": 9087, "projector-customer-read-model": 9088,
}

// profiles takes a CPU profile of every Go service for seconds, all at
// once, into dir as <tag>-<service>.pprof, and writes each one's top
// functions (go tool pprof -top) into <tag>-top.txt. It returns at once;
// wait waits for the profiles and reports what failed.
func profiles(ctx context.Context, dir, tag string, seconds int) (wait func() error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	files := make([]string, len(stackServices))
	for i, name := range stackServices {
		wg.Go(func() {
			file := filepath.Join(dir, tag+"-"+name+".pprof")
			if err := profile(ctx, adminPorts[name], seconds, file); err != nil {
				mu.Lock()
				errs = append(errs, name+": "+err.Error())
				mu.Unlock()
				return
			}
			files[i] = file
		})
	}
	return func() error {
		wg.Wait()
		var top bytes.Buffer
		for i, f := range files {
			if f == "" {
				continue
			}
			out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", f).CombinedOutput()
			if err != nil {
				errs = append(errs, fmt.Sprintf("go tool pprof %s: %v: %s", f, err, out))
				continue
			}
			fmt.Fprintf(&top, "==== %s ====\n%s\n", stackServices[i], out)
		}
		if top.Len() > 0 {
			file := filepath.Join(dir, tag+"-top.txt")
			if err := os.WriteFile(file, top.Bytes(), 0o644); err != nil {
				errs = append(errs, err.Error())
			} else {
				fmt.Fprintf(os.Stderr, "profiles: %s\n", file)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("profiles: %s", strings.Join(errs, "; "))
		}
		return nil
	}
}

// profile fetches one CPU profile from the admin port into file.
func profile(ctx context.Context, port, seconds int, file string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, seconds), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+*adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s (is admin.pprof on, and -admin-token its admin.token?): %.200s", resp.Status, body)
	}
	return os.WriteFile(file, body, 0o644)
}
