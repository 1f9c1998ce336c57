#!/usr/bin/env bash
# Vendors the charts' dependencies, all local (file://): the library chart
# into every service chart, then every service chart into the umbrella
# chart. The packaged copies (charts/*/charts/, Chart.lock) are not committed;
# run this before `helm lint`, `helm template` or `helm install` of a chart
# in charts/. Offline: no chart repository is read.
#
#   scripts/helm-deps.sh [CHARTS_DIR]   (default: charts/ of this repository)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
charts=${1:-$root/charts}
helm=${HELM:-$root/.cache/bin/helm}
[[ -x "$helm" ]] || helm=$(command -v helm) || { echo "helm-deps.sh: no helm; run scripts/install-helm.sh" >&2; exit 1; }

lib=orderstream-lib
umbrella=orderstream
for chart in "$charts"/*/; do
  name=$(basename "$chart")
  [[ -f "$chart/Chart.yaml" && $name != "$lib" && $name != "$umbrella" ]] || continue
  "$helm" dependency update --skip-refresh "$chart" >/dev/null
done
"$helm" dependency update --skip-refresh "$charts/$umbrella" >/dev/null
