package main

import (
	"slices"
	"testing"
)

func TestImageEnvIsTheImagesWithTheCallersTerminalAndExplicitSettings(t *testing.T) {
	got := imageEnv(
		[]string{"PATH=/opt/bin", "LANG=C", "APP=1"},
		[]string{"PATH=/usr/bin", "HOME=/home/u", "TERM=xterm", "LANG=en_US.UTF-8", "APP=2", "SECRET=x"},
		false, []string{"APP=2"})
	want := []string{"PATH=/opt/bin", "LANG=en_US.UTF-8", "APP=2", "TERM=xterm"}
	if !slices.Equal(got, want) {
		t.Fatalf("imageEnv = %q, want %q", got, want)
	}
	if got := imageEnv(nil, nil, false, nil); !slices.Equal(got, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
		t.Fatalf("an image without PATH gets %q", got)
	}
}
