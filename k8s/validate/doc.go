// Package validate checks orderstream's Kubernetes delivery offline: the
// Helm charts of charts/ and the cluster manifests of k8s/.
//
// Its tests run the pinned helm (HELM, or .cache/bin/helm from
// scripts/install-helm.sh): `helm lint --strict` and `helm template` for
// every chart with every ci/*-values.yaml. Every rendered document is
// decoded strictly into its Kubernetes API type (k8s.io/api, the Prometheus
// Operator's monitoring.coreos.com/v1, the Gateway API's
// gateway.networking.k8s.io/v1): an unknown or duplicated field, or a kind
// no scheme knows, fails. Then the workloads are held to the security and
// probe invariants, the objects' references to each other are resolved, each
// rendered config file is loaded by the real service binary, and the
// umbrella chart's rendering is diffed against golden files in
// testdata/golden (go test ./k8s/validate/... -update rewrites them).
package validate
