#!/usr/bin/env bash
# Prints what of the host the local cluster could change: links, routes,
# network namespaces, mounts, the sysctls the kubelet cares about, cgroups
# under orderstream-k8s, and the paths Kubernetes, containerd and CNI use
# by default. scripts/cluster/test.sh compares it before cluster-up and
# after cluster-down.
set -euo pipefail
echo "# links"; ip -o link | awk '{print $2}' | sed 's/@.*//' | sort
echo "# routes"; ip route | sort
echo "# netns"; ip netns list | sort
echo "# mounts"; awk '{print $2, $3}' /proc/self/mounts | sort
echo "# sysctls"
for f in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/ip_forward; do
  echo "$f=$(cat "/proc/sys/$f")"
done
echo "# cgroups"; ls -d /sys/fs/cgroup/*/orderstream-k8s /sys/fs/cgroup/*/kubepods* 2>/dev/null || true
echo "# paths"
for p in /var/lib/kubelet /var/lib/cni /var/log/pods /var/log/containers /etc/cni /etc/kubernetes \
  /run/orderstream-k8s /run/containerd /var/lib/containerd /opt/cni; do
  [[ -e $p ]] && echo "$p"
done
true
