// Package imagecheck checks a service image that ko wrote as a tarball:
// it runs as a non-root user, its entrypoint is the service binary, the
// binary is static (it runs on the empty base), and the binary starts and
// answers --help with its usage when run from the image's own file system.
package imagecheck

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Result is what Check found out about one image.
type Result struct {
	Service string
	User    string
	Binary  string // path of the binary inside the image
	Size    int64  // bytes of the binary
	Usage   string // first line of --help
}

// CheckTarball loads the single image of a ko tarball and checks it as the
// image of service. Files are extracted under work.
func CheckTarball(ctx context.Context, file, service, work string) (Result, error) {
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return Result{Service: service}, fmt.Errorf("loading %s: %w", file, err)
	}
	return Check(ctx, img, service, work)
}

// Check checks img as the image of service.
func Check(ctx context.Context, img v1.Image, service, work string) (Result, error) {
	res := Result{Service: service}
	cf, err := img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("reading the image config: %w", err)
	}
	res.User = cf.Config.User
	if err := nonRoot(cf.Config.User); err != nil {
		return res, err
	}
	want := "/ko-app/" + service
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != want {
		return res, fmt.Errorf("entrypoint is %q, want [%q]", cf.Config.Entrypoint, want)
	}
	res.Binary = want

	bin := filepath.Join(work, service)
	size, err := extract(img, strings.TrimPrefix(want, "/"), bin)
	if err != nil {
		return res, err
	}
	res.Size = size
	if err := staticELF(bin); err != nil {
		return res, err
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--help")
	// Only the image's own environment: nothing from the host may make it
	// work.
	cmd.Env = cf.Config.Env
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("%s --help: %w; output:\n%s", want, err, out)
	}
	usage := "Usage of " + service + ":"
	first, _, _ := strings.Cut(string(out), "\n")
	if first != usage {
		return res, fmt.Errorf("%s --help printed %q first, want %q", want, first, usage)
	}
	res.Usage = first
	return res, nil
}

// nonRoot accepts a numeric user (and group) other than 0: Kubernetes'
// runAsNonRoot can only verify a numeric user.
func nonRoot(user string) error {
	u, _, _ := strings.Cut(user, ":")
	id, err := strconv.Atoi(u)
	if err != nil {
		return fmt.Errorf("image user is %q, want a numeric non-root user", user)
	}
	if id == 0 {
		return fmt.Errorf("image user is %q (root)", user)
	}
	return nil
}

// extract writes the file at name in img's flattened file system to dst.
func extract(img v1.Image, name, dst string) (int64, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("/%s is not in the image", name)
		}
		if err != nil {
			return 0, fmt.Errorf("reading the image's file system: %w", err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "/")) != name {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return 0, fmt.Errorf("/%s is not a regular file", name)
		}
		if h.Mode&0o111 == 0 {
			return 0, fmt.Errorf("/%s is not executable (mode %o)", name, h.Mode)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return n, err
	}
}

// staticELF fails for a binary that needs a dynamic loader: the base image
// has none.
func staticELF(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("reading %s as ELF: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return fmt.Errorf("%s is linked dynamically (interpreter %s); the base image has no libc", filepath.Base(bin), bytes.TrimRight(interp, "\x00"))
		}
	}
	return nil
}
