#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for orderstream's
# chart, skaffold and rolling-upgrade tests (make cluster-up / cluster-down /
# test-cluster). docs/deploy.md, "Try it in a local cluster", explains it.
#
# Usage: scripts/cluster.sh up|down|status|env
#
# Everything runs in a network namespace of its own, orderstream-k8s, joined
# to the host by one veth pair (host end 10.243.0.1, cluster end 10.243.0.2):
#   etcd (Debian etcd-server)             127.0.0.1:2379 in the namespace
#   kube-apiserver                        https://10.243.0.2:6443
#   kube-controller-manager, kube-scheduler
#   containerd + runc + kubelet           one node, CNI bridge 10.244.0.0/24,
#                                         in a private mount namespace too
#   image registry (go-containerregistry) http://10.243.0.2:5000 (ko, skaffold
#                                         and crane push; containerd pulls)
#   Traefik (Gateway API + Ingress)       http://10.243.0.2:8000 (entrypoint web)
#   Prometheus (built from source)        http://10.243.0.2:9090
#   CoreDNS (scripts/cluster/coredns)     10.243.0.2:53, the pods' nameserver
#                                         (kubelet clusterDNS; no kube-proxy)
#   kube-state-metrics                    http://10.243.0.2:8082/metrics
# and, on the host, two relays (socat) so that pods reach the shared stack:
#   10.243.0.1:9042 -> Cassandra 127.0.0.1:9042
#   10.243.0.1:9094 -> Kafka's CLUSTER listener 127.0.0.1:9094, which
#                      advertises 10.243.0.1:9094 (scripts/stack/kafka)
# Traffic goes only over loopback, the pod network and that veth pair.
#
# Binaries are built once into .cache/cluster (scripts/cluster/build-*.sh,
# version-stamped). State lives in .cache/cluster/run and /run/orderstream-k8s;
# `down` stops exactly the processes `up` started (pids in
# .cache/cluster/run/pids, plus every process left in the namespace, which
# only this script creates), removes the namespace, the veth pair, the
# cgroups the kubelet made and the run state. Host sysctls are never written:
# the kubelet runs with protectKernelDefaults and sees fake copies of the
# three /proc/sys files it would otherwise change, bind-mounted in its
# private mount namespace.
#
# Traefik, Prometheus, CoreDNS and kube-state-metrics run as processes in
# the namespace, not as pods: in a user's cluster they are add-ons installed
# with their own charts, and here they need no image built for them. Each
# authenticates to the API server with a client certificate of its own
# (k8s/local/cluster.yaml grants each what it reads).
#
# Environment: CLUSTER_TIMEOUT (seconds to wait for each component, 120);
# CLUSTER_NO_BUILD=1 skips the build step, CLUSTER_NO_PROMETHEUS=1 starts no
# Prometheus (both for working on this script).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/cluster"
run="$cache/run"
pids="$run/pids"
state=/run/orderstream-k8s
ns=orderstream-k8s
veth_host=osk8s0
veth_ns=osk8s1
host_ip=10.243.0.1
node_ip=10.243.0.2
pod_cidr=10.244.0.0/24
service_cidr=10.96.0.0/24
node_name=orderstream-node
cgroup_root=orderstream-k8s
registry="$node_ip:5000"
timeout=${CLUSTER_TIMEOUT:-120}
k8s_bin="$cache/k8s/bin"
bin="$cache/bin"
kubeconfig="$run/admin.kubeconfig"

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }
# nsenter, not `ip netns exec`: that one remounts /sys, which hides the
# cgroup hierarchies the kubelet and runc need.
nsexec() { nsenter --net="/run/netns/$ns" "$@"; }

# wait_for DESC CMD...: poll CMD until it succeeds or the timeout passes.
wait_for() {
  local desc=$1; shift
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) > deadline )); then
      log "timed out waiting for $desc"
      return 1
    fi
    sleep 0.5
  done
}

# start NAME CMD...: start CMD in the background in the namespace, log to
# run/logs/NAME.log, record its pid. exec, so that the pid recorded is the
# program's (nsenter execs it), not that of a subshell running a function,
# which down's SIGTERM would kill instead of the program.
start() {
  local name=$1; shift
  (exec nsenter --net="/run/netns/$ns" "$@") >"$run/logs/$name.log" 2>&1 &
  echo $! >"$pids/$name.pid"
}

# host_start NAME CMD...: the same, on the host.
host_start() {
  local name=$1; shift
  "$@" >"$run/logs/$name.log" 2>&1 &
  echo $! >"$pids/$name.pid"
}

install_packages() {
  local missing=()
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  command -v socat >/dev/null || missing+=(socat)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v iptables >/dev/null || missing+=(iptables)
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]} (apt-get)"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  # Debian starts the daemons it installs where an init system runs them;
  # this cluster starts its own.
}

build() {
  "$root/scripts/cluster/build-kubernetes.sh"
  "$root/scripts/cluster/build-tools.sh"
  "$root/scripts/cluster/build-traefik.sh"
  "$root/scripts/install-k8s-tools.sh" ko helm
}

# ---------------------------------------------------------------- certificates

pki() {
  local d="$run/pki"
  mkdir -p "$d"
  cd "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=orderstream-k8s-ca" \
    -keyout ca.key -out ca.crt 2>/dev/null
  # cert NAME SUBJECT [SAN]
  cert() {
    local ext
    ext=$(mktemp)
    {
      echo "basicConstraints=CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      if [[ -n ${3:-} ]]; then
        echo "extendedKeyUsage=serverAuth,clientAuth"
        echo "subjectAltName=$3"
      else
        echo "extendedKeyUsage=clientAuth"
      fi
    } >"$ext"
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile "$ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$ext"
  }
  cert apiserver "/CN=kube-apiserver" \
    "IP:$node_ip,IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=orderstream-admin"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kubelet "/O=system:nodes/CN=system:node:$node_name" "IP:$node_ip,DNS:$node_name"
  cert traefik "/CN=orderstream:traefik"
  cert prometheus "/CN=orderstream:prometheus"
  cert coredns "/CN=orderstream:coredns"
  cert kube-state-metrics "/CN=orderstream:kube-state-metrics"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cd - >/dev/null
}

# kubeconfig FILE CERTNAME
kubeconfig() {
  local d="$run/pki"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: orderstream-local
    cluster:
      server: https://$node_ip:6443
      certificate-authority: $d/ca.crt
users:
  - name: $2
    user:
      client-certificate: $d/$2.crt
      client-key: $d/$2.key
contexts:
  - name: orderstream-local
    context: {cluster: orderstream-local, user: $2}
current-context: orderstream-local
EOF
}

# ---------------------------------------------------------------- network

network_up() {
  # `ip netns add` makes /run/netns a mount point of its own the first
  # time; down undoes that if it was not one before.
  [[ -d /run/netns ]] || touch "$run/netns-dir-ours"
  mountpoint -q /run/netns 2>/dev/null || touch "$run/netns-mount-ours"
  ip netns add "$ns"
  ip link add "$veth_host" type veth peer name "$veth_ns"
  ip link set "$veth_ns" netns "$ns"
  ip addr add "$host_ip/24" dev "$veth_host"
  ip link set "$veth_host" up
  nsexec ip addr add "$node_ip/24" dev "$veth_ns"
  nsexec ip link set "$veth_ns" up
  nsexec ip link set lo up
  # Replies from the host to pods (Cassandra and Kafka relays) go back
  # through the veth; the route disappears with the link.
  ip route add "$pod_cidr" via "$node_ip" dev "$veth_host"
}

# ---------------------------------------------------------------- node config

node_config() {
  mkdir -p "$state" "$run/cni/net.d" "$run/cni/ipam" "$run/containerd/certs.d/$registry" \
    "$run/kubelet" "$run/fake-sysctl"
  cat >"$run/cni/net.d/10-orderstream.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "orderstream",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$run/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$run/containerd/certs.d/$registry/hosts.toml" <<EOF
server = "http://$registry"

[host."http://$registry"]
  capabilities = ["pull", "resolve"]
EOF
  cat >"$run/containerd/config.toml" <<EOF
version = 2
root = "$run/containerd/root"
state = "$state/containerd"

[grpc]
  address = "$state/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$registry/orderstream-local/pause:1"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$run/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$run/containerd/certs.d"
EOF
  cat >"$run/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $run/pki/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $run/pki/kubelet.crt
tlsPrivateKeyFile: $run/pki/kubelet.key
containerRuntimeEndpoint: unix://$state/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup_root
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: true
makeIPTablesUtilChains: false
resolvConf: $run/kubelet/resolv.conf
clusterDomain: cluster.local
clusterDNS: [$node_ip]
maxPods: 60
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
localStorageCapacityIsolation: false
shutdownGracePeriod: 0s
podLogsDir: $run/kubelet/pod-logs
EOF
  : >"$run/kubelet/resolv.conf"
  # The values the kubelet wants (and with protectKernelDefaults only checks):
  # fakes of the host files whose values differ, bind-mounted for the
  # kubelet alone.
  local binds=""
  local want
  for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
    kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
    local f=${kv%%=*} want=${kv#*=}
    if [[ "$(cat "/proc/sys/$f")" != "$want" ]]; then
      local fake="$run/fake-sysctl/${f//\//.}"
      echo "$want" >"$fake"
      binds+="mount --bind $fake /proc/sys/$f; "
    fi
  done
  # Paths containerd, runc, CNI and the kubelet write to whatever their
  # configuration says: a tmpfs over each in the node's mount namespace, so
  # nothing lands on the host. A path the host lacks is created as an empty
  # mount point, and removed by down.
  local tmpfs=""
  for p in /run/containerd /run/netns /var/lib/cni /var/lib/kubelet /var/log/containers /var/log/pods; do
    if [[ ! -e $p ]]; then
      mkdir -p "$p"
      echo "$p" >>"$run/created-paths"
    fi
    tmpfs+="mount -t tmpfs -o mode=0755 orderstream-k8s $p; "
  done
  cat >"$run/node.sh" <<EOF
#!/usr/bin/env bash
# Runs in the cluster's network namespace and a private mount namespace:
# containerd and the kubelet, which must see the same mounts.
set -euo pipefail
$binds
$tmpfs
# The kubelet's cgroup root, in every v1 hierarchy (down removes it).
for h in /sys/fs/cgroup/*/; do
  [[ \$h == */unified/ ]] || mkdir -p "\${h}$cgroup_root"
done
containerd --config "$run/containerd/config.toml" >"$run/logs/containerd.log" 2>&1 &
echo \$! >"$pids/containerd.pid"
for _ in \$(seq 1 200); do [[ -S "$state/containerd.sock" ]] && break; sleep 0.1; done
"$k8s_bin/kubelet" --config "$run/kubelet/config.yaml" --kubeconfig "$run/kubelet.kubeconfig" \\
  --root-dir "$run/kubelet/root" --hostname-override "$node_name" --node-ip "$node_ip" \\
  >"$run/logs/kubelet.log" 2>&1 &
echo \$! >"$pids/kubelet.pid"
wait
EOF
  chmod +x "$run/node.sh"
}

# ---------------------------------------------------------------- images

# The pause image every pod sandbox starts with: scripts/cluster/pause, a
# static binary on an empty root, pushed with crane (nothing is pulled from
# outside).
push_pause() {
  local d
  d=$(mktemp -d)
  (cd "$root/scripts/cluster/pause" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$d/pause" .)
  tar -C "$d" --owner=65535 --group=65535 -cf "$d/layer.tar" pause
  "$bin/crane" append --new_layer "$d/layer.tar" --new_tag "$registry/orderstream-local/pause:base" --platform linux/amd64 >/dev/null
  "$bin/crane" mutate "$registry/orderstream-local/pause:base" --entrypoint /pause --user 65535:65535 --set-platform linux/amd64 \
    -t "$registry/orderstream-local/pause:1" >/dev/null
  rm -rf "$d"
}

# ---------------------------------------------------------------- up / down

up() {
  [[ $(id -u) -eq 0 ]] || die "needs root (network namespace, veth, mounts)"
  if ip netns list | grep -qw "$ns"; then
    die "the cluster is up already (or left over: scripts/cluster.sh down)"
  fi
  install_packages
  [[ -n ${CLUSTER_NO_BUILD:-} ]] || build
  local t0
  t0=$(date +%s)
  rm -rf "$run" "$state"
  mkdir -p "$run/logs" "$pids" "$run/etcd" "$cache/registry"
  echo "$(date +%s)" >"$run/started"
  trap 'log "up failed; logs in $run/logs; stopping"; down' ERR
  pki
  kubeconfig "$kubeconfig" admin
  kubeconfig "$run/controller-manager.kubeconfig" controller-manager
  kubeconfig "$run/scheduler.kubeconfig" scheduler
  kubeconfig "$run/kubelet.kubeconfig" kubelet
  kubeconfig "$run/traefik.kubeconfig" traefik
  kubeconfig "$run/prometheus.kubeconfig" prometheus
  kubeconfig "$run/coredns.kubeconfig" coredns
  kubeconfig "$run/kube-state-metrics.kubeconfig" kube-state-metrics
  network_up

  start etcd etcd --name orderstream-local --data-dir "$run/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster orderstream-local=http://127.0.0.1:2380
  local p="$run/pki"
  start kube-apiserver "$k8s_bin/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --bind-address "$node_ip" --advertise-address "$node_ip" --secure-port 6443 \
    --service-cluster-ip-range "$service_cidr" \
    --client-ca-file "$p/ca.crt" --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$p/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --endpoint-reconciler-type none --allow-privileged=false \
    --profiling=false
  wait_for "kube-apiserver" "$k8s_bin/kubectl" --kubeconfig "$kubeconfig" get --raw /readyz
  start kube-controller-manager "$k8s_bin/kube-controller-manager" \
    --kubeconfig "$run/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$run/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$run/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --use-service-account-credentials --service-cluster-ip-range "$service_cidr"
  start kube-scheduler "$k8s_bin/kube-scheduler" \
    --kubeconfig "$run/scheduler.kubeconfig" \
    --authentication-kubeconfig "$run/scheduler.kubeconfig" \
    --authorization-kubeconfig "$run/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false

  # The cluster's add-ons need their RBAC (k8s/local/cluster.yaml), which
  # names the CRDs' kinds too.
  "$k8s_bin/kubectl" --kubeconfig "$kubeconfig" apply --server-side -f "$cache/crds" >/dev/null
  "$k8s_bin/kubectl" --kubeconfig "$kubeconfig" wait --for condition=Established --timeout "${timeout}s" crd --all >/dev/null
  "$k8s_bin/kubectl" --kubeconfig "$kubeconfig" apply --server-side -f "$root/k8s/local/cluster.yaml" >/dev/null

  # CoreDNS, the pods' nameserver, ready before the first pod.
  mkdir -p "$run/coredns"
  sed -e "s#@KUBECONFIG@#$run/coredns.kubeconfig#g" -e "s#@NODE_IP@#$node_ip#g" \
    "$root/k8s/local/Corefile" >"$run/coredns/Corefile"
  start coredns "$bin/coredns" -conf "$run/coredns/Corefile"
  wait_for "CoreDNS" nsexec curl -sf http://127.0.0.1:8182/ready

  start registry "$bin/crane" registry serve --address "$registry" --disk "$cache/registry"
  wait_for "the image registry" "$bin/crane" catalog "$registry"
  push_pause

  node_config
  unshare --mount --propagation private nsenter --net="/run/netns/$ns" "$run/node.sh" >"$run/logs/node.log" 2>&1 &
  echo $! >"$pids/node.pid"
  wait_for "the node" bash -c "'$k8s_bin/kubectl' --kubeconfig '$kubeconfig' get node '$node_name' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"

  # The shared stack, for the pods.
  host_start relay-cassandra socat "TCP-LISTEN:9042,bind=$host_ip,reuseaddr,fork" TCP:127.0.0.1:9042
  host_start relay-kafka socat "TCP-LISTEN:9094,bind=$host_ip,reuseaddr,fork" TCP:127.0.0.1:9094

  # Traefik: Gateway API and Ingress, entrypoint web on the node's address.
  start traefik env KUBECONFIG="$run/traefik.kubeconfig" "$bin/traefik" \
    --global.checkNewVersion=false --global.sendAnonymousUsage=false \
    --entryPoints.web.address="$node_ip:8000" \
    --entryPoints.traefik.address="127.0.0.1:8080" \
    --ping=true --ping.entryPoint=traefik \
    --providers.kubernetesgateway=true \
    --providers.kubernetesingress=true \
    --providers.kubernetesingress.ingressClass=traefik \
    --metrics.prometheus=true --metrics.prometheus.entryPoint=traefik \
    --log.level=INFO
  wait_for "Traefik" nsexec bash -c "exec 3<>/dev/tcp/127.0.0.1/8080"

  # kube-state-metrics: the pods' and Deployments' state as metrics
  # (kube_pod_container_status_restarts_total for the dashboards).
  start kube-state-metrics "$bin/kube-state-metrics" --kubeconfig "$run/kube-state-metrics.kubeconfig" \
    --host "$node_ip" --port 8082 --telemetry-host 127.0.0.1 --telemetry-port 8083 \
    --resources pods,deployments,namespaces,nodes
  wait_for "kube-state-metrics" curl -sf "http://$node_ip:8082/healthz"

  # Prometheus: scrapes the pods the ServiceMonitors select (k8s/local).
  if [[ -z ${CLUSTER_NO_PROMETHEUS:-} ]]; then
  mkdir -p "$run/prometheus"
  sed -e "s#@KUBECONFIG@#$run/prometheus.kubeconfig#g" -e "s#@RULES@#$run/prometheus/rules/*.yaml#g" \
    -e "s#@NODE_IP@#$node_ip#g" \
    "$root/k8s/local/prometheus.yml" >"$run/prometheus/prometheus.yml"
  mkdir -p "$run/prometheus/rules"
  start prometheus "$bin/prometheus" --config.file "$run/prometheus/prometheus.yml" \
    --storage.tsdb.path "$run/prometheus/data" --web.listen-address "$node_ip:9090" \
    --web.enable-lifecycle --storage.tsdb.retention.time 6h
  wait_for "Prometheus" curl -sf "http://$node_ip:9090/-/ready"
  fi

  # Every process it started still runs.
  for f in "$pids"/*.pid; do
    kill -0 "$(cat "$f")" 2>/dev/null || { log "$(basename "$f" .pid) exited: $run/logs"; false; }
  done
  trap - ERR
  log "up in $(( $(date +%s) - t0 )) s"
  echo "$kubeconfig"
}

kill_pidfile() {
  local f=$1 pid
  pid=$(cat "$f" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
}

# stop NAME...: SIGTERM to each recorded process, then wait up to 15 s for
# them to exit (what is left is killed with the namespace's leftovers).
stop() {
  local f pid deadline
  for f in "$@"; do kill_pidfile "$pids/$f.pid"; done
  deadline=$(( $(date +%s) + 15 ))
  for f in "$@"; do
    pid=$(cat "$pids/$f.pid" 2>/dev/null) || continue
    while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
  done
}

down() {
  trap - ERR
  local deadline
  if ip netns list | grep -qw "$ns"; then
    # In stages, each waited for: the add-ons and the node's agents first,
    # then the containers and their shims, the API server while etcd still
    # answers (it drains its requests), etcd last.
    stop traefik prometheus kube-state-metrics coredns kubelet kube-scheduler kube-controller-manager
    if [[ -S "$state/containerd.sock" ]]; then
      local ctr=(ctr --address "$state/containerd.sock" -n k8s.io) t
      for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
        "${ctr[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
      done
      # A task deleted, its shim exits.
      for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
        "${ctr[@]}" tasks delete --force "$t" >/dev/null 2>&1 || true
      done
    fi
    stop containerd registry kube-apiserver
    stop etcd node
    # Whatever is left in the namespace (container shims, containers) was
    # started by this cluster.
    deadline=$(( $(date +%s) + 30 ))
    while [[ -n "$(ip netns pids "$ns" 2>/dev/null)" ]] && (( $(date +%s) < deadline )); do
      sleep 0.5
    done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      log "still running after 30 s, killed: $pid $(cat "/proc/$pid/comm" 2>/dev/null)"
      kill -9 "$pid" 2>/dev/null || true
    done
  fi
  for f in relay-cassandra relay-kafka; do kill_pidfile "$pids/$f.pid"; done
  # Wait for every recorded pid to be gone.
  deadline=$(( $(date +%s) + 30 ))
  for f in "$pids"/*.pid; do
    [[ -f $f ]] || continue
    local pid
    pid=$(cat "$f")
    while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  ip link del "$veth_host" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  if [[ -f "$run/created-paths" ]]; then
    tac "$run/created-paths" | while read -r p; do
      [[ $p == /run/netns ]] || rmdir "$p" 2>/dev/null || true
    done
  fi
  if [[ -z "$(ls -A /run/netns 2>/dev/null)" ]]; then
    [[ -f "$run/netns-mount-ours" ]] && umount /run/netns 2>/dev/null || true
    [[ -f "$run/netns-dir-ours" ]] && rmdir /run/netns 2>/dev/null || true
  fi
  # The kubelet's cgroups, deepest first, in every hierarchy.
  for h in /sys/fs/cgroup/*/; do
    [[ -d "$h$cgroup_root" ]] || continue
    find "$h$cgroup_root" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # Mounts under the run state (the node's were private and are gone with it).
  if [[ -d "$run" ]]; then
    { grep -o " $run[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  # The logs of the last run stay, in .cache/cluster/logs.last.
  if [[ -d "$run/logs" ]]; then
    rm -rf "$cache/logs.last"
    mv "$run/logs" "$cache/logs.last"
  fi
  rm -rf "$state" "$run"
  log "down"
}

status() {
  if ! ip netns list | grep -qw "$ns"; then
    echo "cluster: down"
    return 1
  fi
  for f in "$pids"/*.pid; do
    local pid
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      echo "  $(basename "$f" .pid): running (pid $pid)"
    else
      echo "  $(basename "$f" .pid): NOT running"
    fi
  done
  "$k8s_bin/kubectl" --kubeconfig "$kubeconfig" get nodes
}

# The environment a shell (or a test) needs to use the cluster.
env_() {
  cat <<EOF
export KUBECONFIG=$kubeconfig
export PATH=$k8s_bin:$bin:$root/.cache/bin:\$PATH
export ORDERSTREAM_CLUSTER_REGISTRY=$registry
export ORDERSTREAM_CLUSTER_GATEWAY=http://$node_ip:8000
export ORDERSTREAM_CLUSTER_PROMETHEUS=http://$node_ip:9090
export ORDERSTREAM_CLUSTER_DNS=$node_ip
export KO_DOCKER_REPO=$registry/orderstream
export KOCACHE=$root/.cache/ko
EOF
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_ ;;
  build) install_packages; build ;;
  *) echo "usage: $0 up|down|status|env|build" >&2; exit 2 ;;
esac
