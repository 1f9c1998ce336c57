package imagecheck

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/k8s/images/baseimage"
)

// fakeService is a static build of testdata/fakeservice.
var fakeService = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "imagecheck")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fakeservice")
	build := exec.Command("go", "build", "-o", bin, "./testdata/fakeservice")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w: %s", err, out)
	}
	return os.ReadFile(bin)
})

// image is the base with a static build of testdata/fakeservice at
// /ko-app/<as>, the way ko lays it out.
func image(t *testing.T, as string, mode int64, cfg func(*v1.Config)) v1.Image {
	t.Helper()
	body, err := fakeService()
	require.NoError(t, err)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "ko-app/", Typeflag: tar.TypeDir, Mode: 0o755}))
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "ko-app/" + as, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))}))
	_, err = tw.Write(body)
	require.NoError(t, err)
	require.NoError(t, tw.Close())

	base, err := baseimage.Image(v1.Platform{OS: "linux", Architecture: "amd64"})
	require.NoError(t, err)
	tarBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarBytes)), nil })
	require.NoError(t, err)
	img, err := mutate.AppendLayers(base, layer)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.Config.Entrypoint = []string{"/ko-app/" + as}
	if cfg != nil {
		cfg(&cf.Config)
	}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	return img
}

func TestGoodImageFromTarball(t *testing.T) {
	img := image(t, "fakeservice", 0o755, nil)
	file := filepath.Join(t.TempDir(), "fakeservice.tar")
	require.NoError(t, tarball.WriteToFile(file, nil, img))

	res, err := CheckTarball(context.Background(), file, "fakeservice", t.TempDir())
	require.NoError(t, err)
	require.Equal(t, "65532:65532", res.User)
	require.Equal(t, "/ko-app/fakeservice", res.Binary)
	require.Equal(t, "Usage of fakeservice:", res.Usage)
	require.Positive(t, res.Size)
}

func TestBadImages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		img     func(t *testing.T) v1.Image
		service string
		want    string
	}{
		{name: "root user", service: "fakeservice", want: "root",
			img: func(t *testing.T) v1.Image {
				return image(t, "fakeservice", 0o755, func(c *v1.Config) { c.User = "0" })
			}},
		{name: "named user", service: "fakeservice", want: "numeric",
			img: func(t *testing.T) v1.Image {
				return image(t, "fakeservice", 0o755, func(c *v1.Config) { c.User = "nonroot" })
			}},
		{name: "no user", service: "fakeservice", want: "numeric",
			img: func(t *testing.T) v1.Image { return image(t, "fakeservice", 0o755, func(c *v1.Config) { c.User = "" }) }},
		{name: "other service's entrypoint", service: "query-service", want: "entrypoint",
			img: func(t *testing.T) v1.Image { return image(t, "fakeservice", 0o755, nil) }},
		{name: "usage of another name", service: "query-service", want: "printed",
			img: func(t *testing.T) v1.Image { return image(t, "query-service", 0o755, nil) }},
		{name: "not executable", service: "fakeservice", want: "not executable",
			img: func(t *testing.T) v1.Image { return image(t, "fakeservice", 0o644, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(context.Background(), tc.img(t), tc.service, t.TempDir())
			require.ErrorContains(t, err, tc.want)
		})
	}
}
