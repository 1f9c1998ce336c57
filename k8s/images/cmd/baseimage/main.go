// Command baseimage builds the services' base image (package baseimage),
// prints its digest reference, optionally writes it into ko's local image
// cache, and checks that the config files name that digest.
//
//	go run ./k8s/images/cmd/baseimage -layout .cache/ko/img -check .ko.yaml -check skaffold.yaml
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/orderstream/orderstream/k8s/images/baseimage"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var (
		dir   = flag.String("layout", "", "write the image as an OCI layout into this folder (ko reads $KOCACHE/img)")
		check files
	)
	flag.Var(&check, "check", "fail unless this file names the base by its current digest (repeatable)")
	flag.Parse()
	if err := run(*dir, check); err != nil {
		fmt.Fprintln(os.Stderr, "baseimage:", err)
		os.Exit(1)
	}
}

func run(dir string, check []string) error {
	idx, err := baseimage.Index()
	if err != nil {
		return err
	}
	ref, err := baseimage.Ref(idx)
	if err != nil {
		return err
	}
	fmt.Println(ref)
	var errs []error
	for _, f := range check {
		body, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !bytes.Contains(body, []byte(ref)) {
			errs = append(errs, fmt.Errorf("%s does not name the base image %s; the base changed (a new CA bundle or baseimage code): put the new reference there", f, ref))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if dir != "" {
		return baseimage.WriteLayout(dir, idx)
	}
	return nil
}
