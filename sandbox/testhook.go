package sandbox

import (
	"fmt"
	"os"
	"time"
)

// testPauseEnv is a test hook, not a feature: SBX_TEST_PAUSE=STAGE makes
// sbx say "sbx: test pause at STAGE" on stderr and stop there for a minute,
// so that the fault tests (tests/faults_test.go) can kill sbx at that
// stage of start-up reliably. Stages: userns (the parent, init started but
// its id maps not yet written), mounts (init, half-way through building
// the root), network (init, the TAP handed to the parent's user-mode
// network). It only ever delays; it opens nothing.
const testPauseEnv = "SBX_TEST_PAUSE"

func testPause(stage string) {
	if os.Getenv(testPauseEnv) != stage {
		return
	}
	fmt.Fprintf(os.Stderr, "sbx: test pause at %s\n", stage)
	time.Sleep(time.Minute)
}

// initEnv is init's environment: empty, but for the test hook.
func initEnv() []string {
	if v := os.Getenv(testPauseEnv); v != "" {
		return []string{testPauseEnv + "=" + v}
	}
	return []string{}
}
