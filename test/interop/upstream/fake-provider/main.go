// Command upstream-fake-provider serves the mock provider that the upstream
// secrets-store-csi-driver module ships for its own tests
// (sigs.k8s.io/secrets-store-csi-driver/provider/fake, MockCSIProviderServer)
// on a unix socket, so our driver can be shown to serve a provider that
// neither we nor Azure wrote. What Mount returns (files, object versions, a
// provider error code, or a gRPC error) comes from a JSON file.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/fake"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// mountResult is the JSON the --mount-result file holds.
type mountResult struct {
	// Files returned by Mount; contents are text.
	Files []struct {
		Path     string `json:"path"`
		Mode     int32  `json:"mode"`
		Contents string `json:"contents"`
	} `json:"files"`
	// Objects maps object id to version.
	Objects map[string]string `json:"objects"`
	// ErrorCode is put in MountResponse.error.code.
	ErrorCode string `json:"errorCode"`
	// ReturnError makes Mount fail with this gRPC status instead.
	ReturnError *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"returnError"`
}

func grpcCode(name string) (codes.Code, error) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.EqualFold(c.String(), name) {
			return c, nil
		}
	}
	return codes.Unknown, fmt.Errorf("unknown gRPC code %q", name)
}

func run() error {
	endpoint := flag.String("endpoint", "", "unix socket to serve the provider API on (path or unix:// URL)")
	resultFile := flag.String("mount-result", "", "JSON file with what Mount returns")
	flag.Parse()
	socket := strings.TrimPrefix(*endpoint, "unix://")
	if socket == "" || *resultFile == "" {
		return fmt.Errorf("--endpoint and --mount-result are required")
	}
	raw, err := os.ReadFile(*resultFile)
	if err != nil {
		return err
	}
	var result mountResult
	if err := json.Unmarshal(raw, &result); err != nil {
		return fmt.Errorf("%s: %w", *resultFile, err)
	}

	server, err := fake.NewMocKCSIProviderServer(socket)
	if err != nil {
		return err
	}
	files := make([]*v1alpha1.File, 0, len(result.Files))
	for _, f := range result.Files {
		files = append(files, &v1alpha1.File{Path: f.Path, Mode: f.Mode, Contents: []byte(f.Contents)})
	}
	server.SetFiles(files)
	server.SetObjects(result.Objects)
	server.SetProviderErrorCode(result.ErrorCode)
	if result.ReturnError != nil {
		code, err := grpcCode(result.ReturnError.Code)
		if err != nil {
			return err
		}
		server.SetReturnError(status.Error(code, result.ReturnError.Message))
	}
	if err := server.Start(); err != nil {
		return err
	}
	fmt.Printf("upstream-fake-provider listening on %s\n", socket)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	server.Stop()
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "upstream-fake-provider: %v\n", err)
		os.Exit(1)
	}
}
