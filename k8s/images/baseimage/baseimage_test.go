package baseimage

import (
	"archive/tar"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/stretchr/testify/require"
)

// The digest depends on nothing but the code and the pinned modules.
func TestIndexIsReproducible(t *testing.T) {
	a, err := Index()
	require.NoError(t, err)
	b, err := Index()
	require.NoError(t, err)
	da, err := a.Digest()
	require.NoError(t, err)
	db, err := b.Digest()
	require.NoError(t, err)
	require.Equal(t, da, db)

	m, err := a.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, len(Platforms))
	for i, d := range m.Manifests {
		require.Equal(t, Platforms[i], *d.Platform)
	}
}

func TestImageRunsAsNonRootWithCertificates(t *testing.T) {
	img, err := Image(v1.Platform{OS: "linux", Architecture: "amd64"})
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, "65532:65532", cf.Config.User)
	require.Equal(t, "amd64", cf.Architecture)
	require.Empty(t, cf.Config.Entrypoint, "ko sets the entrypoint")

	got := map[string][]byte{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Zero(t, h.ModTime.Unix(), h.Name)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		got[h.Name] = body
	}
	require.Contains(t, string(got["etc/passwd"]), "nonroot:x:65532:65532:")
	require.Contains(t, string(got["etc/group"]), "nonroot:x:65532:")
	_, tmp := got["tmp"]
	require.True(t, tmp, "/tmp exists")

	pool := x509.NewCertPool()
	rest, n := got[CACertificatesPath], 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		pool.AddCert(c)
		n++
	}
	require.Greater(t, n, 100, "the NSS store has well over 100 roots")
}

// .ko.yaml and skaffold.yaml name the base by the digest this code builds;
// a change here (or a new CA bundle) must update them.
func TestConfigsNameCurrentDigest(t *testing.T) {
	idx, err := Index()
	require.NoError(t, err)
	ref, err := Ref(idx)
	require.NoError(t, err)
	pinned := regexp.MustCompile(regexp.QuoteMeta(Name) + `@sha256:[0-9a-f]{64}`)
	for _, f := range []string{".ko.yaml", "skaffold.yaml"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "..", f))
		require.NoError(t, err)
		refs := pinned.FindAllString(string(body), -1)
		require.NotEmpty(t, refs, "%s names no base image", f)
		for _, r := range refs {
			require.Equal(t, ref, r, "%s names an old base; put `go run ./k8s/images/cmd/baseimage` output there", f)
		}
	}
}

// ko finds the base, and each platform's image, by digest in its cache.
func TestLayoutHasIndexAndImages(t *testing.T) {
	idx, err := Index()
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "img")
	require.NoError(t, WriteLayout(dir, idx))
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	top, err := p.ImageIndex()
	require.NoError(t, err)
	m, err := top.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, 1+len(Platforms))
	d, err := idx.Digest()
	require.NoError(t, err)
	require.Equal(t, d, m.Manifests[0].Digest)
	for _, md := range m.Manifests[1:] {
		img, err := top.Image(md.Digest)
		require.NoError(t, err)
		layers, err := img.Layers()
		require.NoError(t, err)
		require.Len(t, layers, 1)
	}
}
