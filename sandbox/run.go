package sandbox

import "github.com/sbx-sandbox/sbx/spec"

// Run starts the sandbox described by s and returns the exit status sbx should exit with.
func Run(s *spec.Spec) int { return 125 }

// IsInit reports whether this process is a sandbox's init.
func IsInit() bool { return false }

// Init is the sandbox's PID 1.
func Init() int { return 125 }

// Environment builds the command's environment.
func Environment(environ []string, keep bool, set, unset []string) ([]string, error) {
	return environ, nil
}
