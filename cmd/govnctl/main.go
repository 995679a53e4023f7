// Command govnctl is the govn client. All commands live in package cli.
package main

import (
	"os"

	"github.com/govn/govn/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
