// A logging-only stand-in for monis.app/mlog v0.0.2, which the Go module proxy
// does not serve. The upstream driver uses five names from it; this module
// provides exactly those on top of klog, so the driver builds unmodified.
module monis.app/mlog

go 1.25

require (
	github.com/go-logr/logr v1.4.3
	k8s.io/klog/v2 v2.120.1
)
