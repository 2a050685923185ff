package fetch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-sandbox/sbx/images/imagetest"
	"github.com/sbx-sandbox/sbx/images/store"
)

// tarLayer is a layer of regular files.
func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	var e []imagetest.Entry
	for n, b := range files {
		e = append(e, imagetest.Entry{Name: n, Body: b})
	}
	return imagetest.Layer(t, e...)
}

func image(t *testing.T, layers ...v1.Layer) v1.Image {
	return imagetest.Image(t, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}, WorkingDir: "/work"}, layers...)
}

func TestSecondImageFetchesOnlyItsNewLayer(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	base := tarLayer(t, map[string]string{"bin/busybox": "elf"})
	app := tarLayer(t, map[string]string{"app/run": "#!/bin/sh"})
	baseRef := reg.Push(t, "t/base:1", image(t, base))
	appRef := reg.Push(t, "t/app:1", image(t, base, app))
	s, _ := store.Open(t.TempDir())
	if _, err := Pull(context.Background(), s, baseRef, Options{}); err != nil {
		t.Fatal(err)
	}
	before := len(reg.Served())
	img, err := Pull(context.Background(), s, appRef, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appDigest, _ := app.Digest()
	baseDigest, _ := base.Digest()
	for _, b := range reg.Served()[before:] {
		if b == baseDigest.String() {
			t.Fatal("the shared base layer was downloaded again")
		}
	}
	found := false
	for _, b := range reg.Served()[before:] {
		found = found || b == appDigest.String()
	}
	if !found {
		t.Fatalf("new layer not fetched; fetched %v", reg.Served())
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "layers"))
	if len(ents) != 2 || len(img.Layers) != 2 {
		t.Fatalf("store holds %d layers, image lists %d; want 2 and 2", len(ents), len(img.Layers))
	}
	if img.Config.WorkingDir != "/work" || img.Config.Cmd[0] != "/bin/sh" {
		t.Fatalf("config not kept: %+v", img.Config)
	}
}

func TestImportDockerArchiveAndOCILayout(t *testing.T) {
	img := image(t, tarLayer(t, map[string]string{"etc/hostname": "x"}))
	dir := t.TempDir()
	archive := filepath.Join(dir, "save.tar")
	tag, _ := name.NewTag("example.org/saved:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	s, _ := store.Open(t.TempDir())
	got, err := Import(context.Background(), s, archive, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Refs[0] != "example.org/saved:v1" {
		t.Fatalf("imported %+v", got)
	}
	lp, err := layout.Write(filepath.Join(dir, "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	got, err = Import(context.Background(), s, filepath.Join(dir, "oci"), "local/oci:1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Refs[0] != "docker.io/local/oci:1" {
		t.Fatalf("refs %v", got[0].Refs)
	}
	all, _ := s.Images()
	if len(all) != 1 || len(all[0].Refs) != 2 {
		t.Fatalf("the same image imported twice should be one image with two names: %+v", all)
	}
}

func TestNormalizeSpellsDockerHubOneWay(t *testing.T) {
	for in, want := range map[string]string{
		"alpine":               "docker.io/library/alpine:latest",
		"docker.io/alpine:3":   "docker.io/library/alpine:3",
		"127.0.0.1:5000/a/b:c": "127.0.0.1:5000/a/b:c",
	} {
		if got, err := Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
