// Package mlog is a stand-in for monis.app/mlog: the names the upstream
// secrets-store-csi-driver v1.6.0 calls (Setup, Format, FormatText,
// FormatJSON, ValidateAndSetKlogLevelAndFormatGlobally, Error, Fatal),
// implemented on klog. It only routes log lines; it changes no behaviour of
// the driver.
package mlog

import (
	"context"
	"fmt"
	"os"

	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
)

// Format selects how log lines are written.
type Format string

const (
	FormatText Format = "text"
	FormatJSON Format = "json"
)

// Setup prepares logging and returns the function that flushes it on exit.
func Setup() func() {
	return klog.Flush
}

// ValidateAndSetKlogLevelAndFormatGlobally checks the verbosity the driver
// read from klog's flags and switches klog to JSON lines when asked.
func ValidateAndSetKlogLevelAndFormatGlobally(_ context.Context, level klog.Level, format Format) error {
	if level < 0 || level > 10 {
		return fmt.Errorf("log level %d is out of range 0..10", level)
	}
	switch format {
	case FormatText:
		return nil
	case FormatJSON:
		klog.SetLogger(funcr.NewJSON(func(obj string) { fmt.Fprintln(os.Stderr, obj) }, funcr.Options{Verbosity: int(level)}))
		return nil
	default:
		return fmt.Errorf("unknown log format %q", format)
	}
}

// Error logs err with a message.
func Error(msg string, err error, keysAndValues ...any) {
	klog.ErrorS(err, msg, keysAndValues...)
}

// Fatal logs err and exits with status 1.
func Fatal(err error, keysAndValues ...any) {
	klog.ErrorS(err, "fatal error", keysAndValues...)
	klog.Flush()
	os.Exit(1)
}
