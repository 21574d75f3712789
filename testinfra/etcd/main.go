// Command etcd is a thin wrapper that builds the upstream etcd server for the test suite.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
