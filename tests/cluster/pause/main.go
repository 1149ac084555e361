// Command pause is the pod sandbox image of the real-node tests (tests/cluster/images builds it
// into the `pause` ref). It holds the pod's namespaces open and does nothing else: it waits for
// SIGTERM or SIGINT and exits 0. Unlike the upstream pause it reaps no zombies, which only
// matters for pods that share one PID namespace (shareProcessNamespace), which the tests do not use.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
