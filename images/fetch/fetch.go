// Package fetch brings images into the store: pulled from a registry or read
// from a `docker save` archive or an OCI image layout. Only layers the store
// lacks are read; each is verified and unpacked once.
package fetch

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"

	"github.com/sbx-sandbox/sbx/images/store"
	"github.com/sbx-sandbox/sbx/images/subids"
	"github.com/sbx-sandbox/sbx/images/unpack"
)

// Options are shared by Pull and Import.
type Options struct {
	// Progress receives the progress display (a bar when it is a terminal,
	// plain lines otherwise); nil means silent.
	Progress io.Writer
	// Unpack is passed to the unpacker for every new layer.
	Unpack unpack.Options
	// Platform defaults to the host's.
	Platform *v1.Platform
}

// HostPlatform is the platform images are chosen for.
func HostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// Normalize gives a reference the one spelling the store records:
// "alpine" becomes "docker.io/library/alpine:latest".
func Normalize(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	n := r.Name()
	if rest, ok := strings.CutPrefix(n, name.DefaultRegistry+"/"); ok {
		n = "docker.io/" + rest
	}
	return n, nil
}

// Pull fetches ref from its registry (credentials from the docker config
// file when present) and records it in s.
func Pull(ctx context.Context, s *store.Store, ref string, opt Options) (store.Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return store.Image{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	plat := HostPlatform()
	if opt.Platform != nil {
		plat = *opt.Platform
	}
	img, err := remote.Image(r,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(plat),
		remote.WithUserAgent("sbx"),
	)
	if err != nil {
		return store.Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	norm, err := Normalize(ref)
	if err != nil {
		return store.Image{}, err
	}
	return save(s, img, []string{norm}, true, opt)
}

// save stores img's missing layers and records it under refs. compressed
// says whether reading the compressed blobs is the cheap way (a registry)
// or the uncompressed one (an archive of plain tars).
func save(s *store.Store, img v1.Image, refs []string, compressed bool, opt Options) (store.Image, error) {
	// Litter of pulls that were killed is swept when no pull is running.
	if unlock, err := s.TryLock(); err == nil {
		s.SweepTmp()
		unlock()
	}
	unlock, err := s.Lock(false)
	if err != nil {
		return store.Image{}, err
	}
	defer unlock()
	digest, err := img.Digest()
	if err != nil {
		return store.Image{}, fmt.Errorf("image digest: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return store.Image{}, fmt.Errorf("image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return store.Image{}, fmt.Errorf("image layers: %w", err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return store.Image{}, fmt.Errorf("image %s: manifest lists %d layers, config %d", digest, len(layers), len(cf.RootFS.DiffIDs))
	}
	p := newProgress(opt.Progress)
	if note := opt.Unpack.Note; note != nil && p.tty {
		// A note must not land in the middle of the redrawn bar.
		opt.Unpack.Note = func(n string) {
			fmt.Fprint(p.w, "\r\x1b[K")
			note(n)
		}
	}
	out := store.Image{
		Digest:   digest.String(),
		Refs:     refs,
		Platform: cf.OS + "/" + cf.Architecture,
		Config: store.Config{
			Env:        cf.Config.Env,
			WorkingDir: cf.Config.WorkingDir,
			Entrypoint: cf.Config.Entrypoint,
			Cmd:        cf.Config.Cmd,
			User:       cf.Config.User,
		},
	}
	for i, l := range layers {
		diffID := cf.RootFS.DiffIDs[i].String()
		out.Layers = append(out.Layers, diffID)
		if s.HasLayer(diffID) {
			p.line("%s already in the store", short(diffID))
			out.Size += s.LayerSize(diffID)
			continue
		}
		if err := putLayer(s, l, diffID, compressed, p, opt); err != nil {
			return store.Image{}, err
		}
		out.Size += s.LayerSize(diffID)
	}
	if err := s.AddImage(out); err != nil {
		return store.Image{}, err
	}
	p.line("%s %s", strings.Join(refs, " "), out.Digest)
	return out, nil
}

func putLayer(s *store.Store, l v1.Layer, diffID string, compressed bool, p *progress, opt Options) error {
	var (
		rc   io.ReadCloser
		size int64 = -1
		err  error
	)
	if compressed {
		rc, err = l.Compressed()
		if sz, serr := l.Size(); serr == nil {
			size = sz
		}
	} else {
		rc, err = l.Uncompressed()
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer rc.Close()
	counted := p.reader(rc, short(diffID), size)
	tarStream, err := decompress(counted)
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer tarStream.Close()
	put := s.PutLayer
	if s.Mapped() {
		put = func(d string, r io.Reader, o unpack.Options) error { return subids.PutLayer(s, d, r, o.Note) }
	}
	if err := put(diffID, tarStream, opt.Unpack); err != nil {
		p.abort()
		return err
	}
	p.done()
	return nil
}

// decompress recognises gzip and zstd by their magic numbers, so a layer is
// read right whatever its media type claims.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return gzip.NewReader(br)
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

func short(digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}
