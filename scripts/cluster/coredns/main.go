// Command coredns is the local cluster's DNS server (scripts/cluster.sh):
// CoreDNS with only the plugins the cluster's Corefile uses, so that the
// build pulls no cloud SDK. The kubelet names it as the pods' nameserver
// (clusterDNS); it answers <service>.<namespace>.svc.cluster.local from the
// API server's Services and EndpointSlices, including the Services without
// selectors that describe the host's Cassandra and Kafka.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The plugins of k8s/local/Corefile.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives are CoreDNS's own order (plugin.cfg), restricted to the
// plugins compiled in.
var directives = []string{
	"reload",
	"bind",
	"ready",
	"health",
	"prometheus",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
