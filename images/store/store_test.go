package store

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-sandbox/sbx/images/unpack"
)

func tarOf(t *testing.T, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), "sha256:" + hex.EncodeToString(sum[:])
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestLayerWithWrongDigestIsNotStored(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := tarOf(t, map[string]string{"a": "x"})
	lie := digestOf("something else")
	if err := s.PutLayer(lie, bytes.NewReader(data), unpackOpts()); err == nil {
		t.Fatal("layer with a wrong digest accepted")
	}
	if s.HasLayer(lie) {
		t.Fatal("layer with a wrong digest is in the store")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
		t.Fatalf("temporary layer left behind: %v", ents)
	}
}

func TestInterruptedLayerLeavesNothingUsable(t *testing.T) {
	s, _ := Open(t.TempDir())
	data, d := tarOf(t, map[string]string{"a": strings.Repeat("x", 10000)})
	if err := s.PutLayer(d, bytes.NewReader(data[:5000]), unpackOpts()); err == nil {
		t.Fatal("truncated layer accepted")
	}
	if s.HasLayer(d) {
		t.Fatal("truncated layer is in the store")
	}
	if err := s.PutLayer(d, bytes.NewReader(data), unpackOpts()); err != nil {
		t.Fatal(err)
	}
	dir, _ := s.LayerDir(d)
	if b, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || len(b) != 10000 {
		t.Fatalf("layer content: %d %v", len(b), err)
	}
	if s.LayerSize(d) != int64(len(data)) {
		t.Fatalf("size %d want %d", s.LayerSize(d), len(data))
	}
}

func TestRemoveKeepsLayersAnotherImageUses(t *testing.T) {
	s, _ := Open(t.TempDir())
	base, baseID := tarOf(t, map[string]string{"bin/busybox": "elf"})
	top, topID := tarOf(t, map[string]string{"app": "app"})
	for _, l := range []struct {
		data []byte
		id   string
	}{{base, baseID}, {top, topID}} {
		if err := s.PutLayer(l.id, bytes.NewReader(l.data), unpackOpts()); err != nil {
			t.Fatal(err)
		}
	}
	a := Image{Digest: digestOf("a"), Refs: []string{"r/base:1"}, Layers: []string{baseID}}
	b := Image{Digest: digestOf("b"), Refs: []string{"r/app:1"}, Layers: []string{baseID, topID}}
	for _, img := range []Image{a, b} {
		if err := s.AddImage(img); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := s.Remove("r/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != topID {
		t.Fatalf("removed %v, want only %s", removed, topID)
	}
	if !s.HasLayer(baseID) || s.HasLayer(topID) {
		t.Fatal("wrong layers left")
	}
	if _, err := s.Lookup("r/app:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed image still found: %v", err)
	}
	if img, err := s.Lookup(strings.TrimPrefix(a.Digest, "sha256:")[:12]); err != nil || img.Refs[0] != "r/base:1" {
		t.Fatalf("lookup by digest prefix: %v %v", img, err)
	}
}

func TestTagMovesToTheNewImage(t *testing.T) {
	s, _ := Open(t.TempDir())
	data, id := tarOf(t, map[string]string{"a": "x"})
	s.PutLayer(id, bytes.NewReader(data), unpackOpts())
	s.AddImage(Image{Digest: digestOf("old"), Refs: []string{"r/x:latest"}, Layers: []string{id}})
	s.AddImage(Image{Digest: digestOf("new"), Refs: []string{"r/x:latest"}, Layers: []string{id}})
	all, _ := s.Images()
	if len(all) != 1 || all[0].Digest != digestOf("new") {
		t.Fatalf("images after retag: %+v", all)
	}
}

func unpackOpts() unpack.Options { return unpack.Options{} }
