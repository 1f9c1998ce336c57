// Package baseimage builds the base image of every orderstream service
// image: an empty root file system with what a static Go binary may need
// (CA certificates, /etc/passwd and /etc/group with the nonroot user 65532,
// nsswitch.conf, /tmp) and a config that runs as that user. ko adds the
// binary on top (make images).
//
// The image is built from this repository and pinned modules alone, byte
// for byte the same on every machine, so .ko.yaml names it by digest and a
// build never pulls a base from a registry: `make images` writes it into
// ko's local image cache (KOCACHE) before ko runs.
package baseimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// NonRoot is the user and group the services run as (distroless's
// "nonroot", which ko's default base also uses).
const NonRoot = 65532

// Platforms are the platforms of the base index.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// CACertificatesPath is where the CA bundle lies, the first place Go's
// crypto/x509 looks on Linux.
const CACertificatesPath = "etc/ssl/certs/ca-certificates.crt"

// epoch is every timestamp in the image: none depends on when it was built.
var epoch = time.Unix(0, 0).UTC()

type file struct {
	name     string
	mode     int64
	uid, gid int
	body     string // a directory when name ends in "/"
}

// files are the contents of the base image's only layer, in tar order.
func files() ([]file, error) {
	certs, err := caBundle()
	if err != nil {
		return nil, err
	}
	nr := NonRoot
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, body: "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"},
		{name: "etc/nsswitch.conf", mode: 0o644, body: "hosts: files dns\n"},
		{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: CACertificatesPath, mode: 0o644, body: certs},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nr, gid: nr},
		{name: "root/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
	}, nil
}

// caBundle is the Mozilla NSS root store as x/crypto ships it, in PEM.
// Roots with a distrust-after constraint are left out: a PEM bundle cannot
// carry the constraint, and trusting them without it would trust more than
// NSS does.
func caBundle() (string, error) {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return "", fmt.Errorf("encoding a CA certificate: %w", err)
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("the CA bundle is empty")
	}
	return b.String(), nil
}

// Layer returns the tar of files, gzipped without compression: stored
// deflate blocks are the same bytes whatever the Go version, while
// compressed output may change with it, and so would the digest. (An
// uncompressed layer would be the simplest, but tools that read docker
// tarballs guess all layers' compression from the first.)
func Layer() (v1.Layer, error) {
	fs, err := files()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range fs {
		h := &tar.Header{
			Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: epoch,
			Typeflag: tar.TypeReg, Size: int64(len(f.body)), Format: tar.FormatPAX,
		}
		if f.name[len(f.name)-1] == '/' {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.name, err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	blob := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// Image is the base image for one platform.
func Image(p v1.Platform) (v1.Image, error) {
	layer, err := Layer()
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "orderstream k8s/images/baseimage", Comment: "CA certificates, passwd and group with nonroot 65532, nsswitch.conf, /tmp"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: epoch}
	cf.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"SSL_CERT_FILE=/" + CACertificatesPath,
	}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "orderstream-base",
		"org.opencontainers.image.description": "Empty base for static Go binaries: CA certificates, nonroot user 65532, /tmp.",
	}
	return mutate.ConfigFile(img, cf)
}

// Index is the multi-platform base image that .ko.yaml names by digest.
func Index() (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range Platforms {
		img, err := Image(p)
		if err != nil {
			return nil, fmt.Errorf("building the %s/%s base: %w", p.OS, p.Architecture, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

// Ref is the reference .ko.yaml and skaffold.yaml give the base: a name
// that resolves nowhere (.invalid), so that ko can only find the image in
// its local cache, and the index's digest.
func Ref(idx v1.ImageIndex) (string, error) {
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return Name + "@" + d.String(), nil
}

// Name is the repository part of Ref.
const Name = "orderstream.invalid/base"

// WriteLayout writes idx as an OCI image layout at dir (ko's image cache is
// one: $KOCACHE/img), replacing what was there. Each platform's image is
// listed at the top of index.json too, since ko looks images up there by
// digest.
func WriteLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the layout at %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx); err != nil {
		return fmt.Errorf("writing the base index: %w", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if err := p.AppendImage(img, layout.WithPlatform(*d.Platform)); err != nil {
			return fmt.Errorf("writing the %s base: %w", d.Platform, err)
		}
	}
	return nil
}
