// The pod sandbox's init process for the node tier: it holds the pod's
// namespaces, reaps orphaned children and exits on SIGINT or SIGTERM, as the
// pause image does. Built statically by install-tools.sh and packed into the
// sandbox image registry.k8s.io/pause:3.10 by test/harness/node-images.ts.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("pause: warning: not running as PID 1\n")
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Stderr.WriteString("pause: shutting down on " + sig.String() + "\n")
			os.Exit(0)
		}
		// Reap every exited child; a PID namespace's init must not leave zombies.
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
