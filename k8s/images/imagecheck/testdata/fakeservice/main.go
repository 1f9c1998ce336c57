// Command fakeservice answers --help the way an orderstream service does.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "Usage of fakeservice:")
		fmt.Fprintln(os.Stderr, "      --config string   path to a config file")
		return
	}
	os.Exit(2)
}
