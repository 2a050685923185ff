package main

import "github.com/sbx-sandbox/sbx/profiles"

// AppFlags are the flags for real applications: a kept home, build
// caches, and the parts of the desktop a graphical program gets. Each has
// a profile key (filesystem.home, filesystem.cache, desktop.*); unset, the
// profile decides.
type AppFlags struct {
	Home    string   `name:"home" placeholder:"DIR|tmpfs" help:"Keep the sandbox's home in DIR (made if missing) instead of an empty tmpfs; tmpfs: an empty one even if the profile keeps one."`
	Cache   []string `name:"cache" sep:"," placeholder:"NAME" help:"Keep these build caches between runs, in ~/.cache/sbx/cache, apart from the host's: go, npm, yarn, pip, cargo, ccache, maven, gradle."`
	X11     string   `name:"x11" enum:",none,auto" default:"" placeholder:"none|auto" help:"X11: none, or auto (the socket of $DISPLAY only, and its cookie). Default: the profile's."`
	Wayland *bool    `name:"wayland" negatable:"" help:"Share the Wayland compositor's socket ($WAYLAND_DISPLAY). Default: the profile's."`
	Audio   *bool    `name:"audio" negatable:"" help:"Share the PulseAudio and PipeWire sockets. Default: the profile's."`
	GPU     *bool    `name:"gpu" negatable:"" help:"Share /dev/dri. Default: the profile's."`
	DBus    *bool    `name:"dbus" negatable:"" help:"Share the D-Bus session bus (every desktop service is behind it). Default: the profile's, off in every built-in one."`
}

// into copies the flags into the profile layer of the command line.
func (a AppFlags) into(f *profiles.Flags) {
	f.Home, f.Cache, f.X11 = a.Home, a.Cache, a.X11
	f.Wayland, f.Audio, f.GPU, f.DBus = a.Wayland, a.Audio, a.GPU, a.DBus
}
