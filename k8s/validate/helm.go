package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Helm runs one helm binary with homes of its own, so that no repository,
// plugin or kube context of the user's takes part.
type Helm struct {
	Bin string
	env []string
}

// ErrNoHelm is returned by FindHelm when there is no helm to run.
var ErrNoHelm = errors.New("no helm: run scripts/install-helm.sh (make check-charts does), or set HELM")

// FindHelm returns the helm named by $HELM, else root/.cache/bin/helm.
func FindHelm(root string) (string, error) {
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(root, ".cache", "bin", "helm")
	}
	if _, err := exec.LookPath(bin); err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNoHelm, err)
	}
	return bin, nil
}

// NewHelm returns a runner of bin whose cache, config and data live under
// home, with no kubeconfig.
func NewHelm(bin, home string) *Helm {
	env := os.Environ()
	env = append(env,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
		"HELM="+bin,
	)
	return &Helm{Bin: bin, env: env}
}

// Run runs helm with args and returns its standard output; a failure
// carries the standard error.
func (h *Helm) Run(ctx context.Context, args ...string) ([]byte, error) {
	return h.run(ctx, h.Bin, args...)
}

// Script runs a bash script with this helm as $HELM.
func (h *Helm) Script(ctx context.Context, script string, args ...string) ([]byte, error) {
	return h.run(ctx, "bash", append([]string{script}, args...)...)
}

func (h *Helm) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}
