// Command imagecheck checks service images that ko wrote as tarballs
// (make images): each runs as a non-root user and its binary, taken from
// the image, starts and prints its usage for --help. The service is the
// file's name without .tar.
//
//	go run ./k8s/images/cmd/imagecheck .cache/images/*.tar
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/orderstream/orderstream/k8s/images/imagecheck"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: imagecheck SERVICE.tar...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	work, err := os.MkdirTemp("", "imagecheck")
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagecheck:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(work)
	failed := 0
	for _, file := range flag.Args() {
		service := strings.TrimSuffix(filepath.Base(file), ".tar")
		res, err := imagecheck.CheckTarball(context.Background(), file, service, work)
		if err != nil {
			fmt.Printf("FAIL %-30s %v\n", service, err)
			failed++
			continue
		}
		fmt.Printf("ok   %-30s user %-12s %s (%.1f MiB) --help: %s\n", service, res.User, res.Binary, float64(res.Size)/(1<<20), res.Usage)
	}
	if failed > 0 {
		fmt.Printf("%d of %d images failed\n", failed, flag.NArg())
		os.Exit(1)
	}
}
