package fetch

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-sandbox/sbx/images/store"
	"github.com/sbx-sandbox/sbx/images/unpack"
)

// Import reads a `docker save` archive, or an OCI image layout as a
// directory or a tar, and records its images in s. ref, when given, names
// the image (the archive must then hold exactly one); otherwise the names
// recorded in the archive are used.
func Import(ctx context.Context, s *store.Store, path, ref string, opt Options) ([]store.Image, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if st.IsDir() {
		return importLayout(s, path, ref, opt)
	}
	names, err := tarNames(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: not a docker save archive or OCI layout tar: %w", path, err)
	}
	switch {
	case names["manifest.json"]:
		return importDockerArchive(s, path, ref, opt)
	case names["oci-layout"]:
		// Unpacked with the layer unpacker: a hostile archive stays in its directory.
		dir, err := os.MkdirTemp("", "sbx-import-")
		if err != nil {
			return nil, err
		}
		defer unpack.RemoveAll(dir)
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		err = unpack.Layer(f, dir, unpack.Options{})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		return importLayout(s, dir, ref, opt)
	}
	return nil, fmt.Errorf("import %s: neither manifest.json (docker save) nor oci-layout (OCI layout) in the archive", path)
}

func tarNames(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		names[strings.TrimPrefix(hdr.Name, "./")] = true
	}
}

func importDockerArchive(s *store.Store, path, ref string, opt Options) ([]store.Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if ref != "" && len(m) != 1 {
		return nil, fmt.Errorf("import %s: the archive holds %d images; a name fits only one", path, len(m))
	}
	var out []store.Image
	for i, d := range m {
		var tag *name.Tag
		refs := []string{}
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("import %s: %w", path, err)
			}
			tag = &t
			for _, rt := range d.RepoTags {
				if n, err := Normalize(rt); err == nil {
					refs = append(refs, n)
				}
			}
		} else if len(m) > 1 {
			return nil, fmt.Errorf("import %s: image %d has no name, and an archive of several images can only be read by name", path, i)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		if ref != "" {
			n, err := Normalize(ref)
			if err != nil {
				return nil, err
			}
			refs = []string{n}
		}
		rec, err := save(s, img, refs, false, opt)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func importLayout(s *store.Store, dir, ref string, opt Options) ([]store.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("import %s: not an OCI layout: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", dir, err)
	}
	plat := HostPlatform()
	if opt.Platform != nil {
		plat = *opt.Platform
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", dir, err)
	}
	if ref != "" && len(im.Manifests) != 1 {
		return nil, fmt.Errorf("import %s: the layout holds %d images; a name fits only one", dir, len(im.Manifests))
	}
	var out []store.Image
	for _, d := range im.Manifests {
		img, err := imageFor(idx, d, plat)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", dir, err)
		}
		var refs []string
		n := ref
		if n == "" {
			n = d.Annotations["io.containerd.image.name"]
		}
		if n == "" {
			n = d.Annotations["org.opencontainers.image.ref.name"]
			if n != "" && !strings.ContainsAny(n, "/:") {
				// A bare tag: name it after the layout.
				n = "localhost/" + layoutName(dir) + ":" + n
			}
		}
		if n != "" {
			norm, err := Normalize(n)
			if err != nil {
				return nil, err
			}
			refs = append(refs, norm)
		}
		rec, err := save(s, img, refs, false, opt)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// imageFor resolves a descriptor of an index to an image, choosing the
// host's platform from a nested index.
func imageFor(idx v1.ImageIndex, d v1.Descriptor, plat v1.Platform) (v1.Image, error) {
	if d.MediaType.IsImage() {
		return idx.Image(d.Digest)
	}
	if !d.MediaType.IsIndex() {
		return nil, fmt.Errorf("descriptor %s has media type %s, neither image nor index", d.Digest, d.MediaType)
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, err
	}
	m, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, cd := range m.Manifests {
		if cd.Platform != nil && cd.Platform.Satisfies(plat) {
			return imageFor(child, cd, plat)
		}
	}
	return nil, fmt.Errorf("no image for %s in index %s", plat, d.Digest)
}

func layoutName(dir string) string {
	b := strings.ToLower(filepath.Base(filepath.Clean(dir)))
	var sb strings.Builder
	for _, r := range b {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.' {
			sb.WriteRune(r)
		}
	}
	if sb.Len() == 0 || strings.HasPrefix(sb.String(), "sbx-import-") {
		return "imported"
	}
	return sb.String()
}
