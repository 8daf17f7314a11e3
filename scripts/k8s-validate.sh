#!/usr/bin/env bash
# Offline checks of deploy/k8s (no cluster needed):
#   1. every manifest, strictly (unknown fields are errors) against the Kubernetes schemas
#      that kubernetes-validate ships (version pinned in deploy/k8s/requirements.txt), for
#      each version in K8S_VERSIONS (default: 1.30.0, the oldest whose Job API has every
#      field used here, and 1.37.0, the newest the package ships);
#   2. what the schemas cannot say (scripts/k8s-tool.py semantic checks): the load is an
#      Indexed Job with completions == parallelism, its command passes
#      $JOB_COMPLETION_INDEX to --shard and $START_AT to --start-at, the control token
#      comes from a secretKeyRef and never a literal or a flag, probes on /healthz,
#      non-root, read-only root filesystem, resources, shards spread over nodes;
#   3. the same on a rendered run (8 shards, another image and namespace), and on the
#      kustomize output when kubectl is installed;
#   4. a self-test: copies of the manifests broken in known ways must each be refused.
# Exits non-zero on any error. Installs kubernetes-validate into a virtualenv
# ($FB_K8S_VENV, default ~/.cache/feedbench/k8s-venv) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"
venv="${FB_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/feedbench/k8s-venv}"
req=deploy/k8s/requirements.txt
want="$(sed -n 's/^kubernetes-validate==//p' "$req")"

if ! "$venv/bin/python" -c "import kubernetes_validate.version as v, sys; sys.exit(v.__version__ != '$want')" 2>/dev/null; then
  echo "k8s-validate: installing kubernetes-validate $want into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
fi
py="$venv/bin/python"
shipped="$("$py" -c 'import kubernetes_validate.utils as u; print(" ".join(dict.fromkeys(u.all_versions())))')"
echo "k8s-validate: kubernetes-validate $want ships schemas for Kubernetes $shipped"

kflags=()
for v in $K8S_VERSIONS; do kflags+=(-k "$v"); done

status=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== manifests as committed"
"$py" scripts/k8s-tool.py validate "${kflags[@]}" \
  deploy/k8s/namespace.yaml deploy/k8s/server.yaml deploy/k8s/load-job.yaml || status=1
# The Secret template on its own: valid, and holding only the placeholder.
"$py" scripts/k8s-tool.py validate "${kflags[@]}" deploy/k8s/secret.example.yaml || status=1

echo "== a rendered run (what scripts/k8s-run.sh applies)"
"$py" scripts/k8s-tool.py render --image registry.invalid/feedbench:test --namespace fb-check \
  --shards 8 --max-connections 160100 --active-deadline 400 \
  --set RUN_ID=check --set CLIENTS=152000 --set TRANSPORT=sse --set START_AT=1767225600.5 \
  >"$tmp/rendered.yaml"
"$py" scripts/k8s-tool.py validate "${kflags[@]}" "$tmp/rendered.yaml" || status=1

if command -v kubectl >/dev/null 2>&1; then
  echo "== kustomize output (kubectl kustomize deploy/k8s)"
  if kubectl kustomize deploy/k8s >"$tmp/kustomized.yaml"; then
    "$py" scripts/k8s-tool.py validate "${kflags[@]}" "$tmp/kustomized.yaml" || status=1
  else
    echo "ERROR kubectl kustomize deploy/k8s failed"
    status=1
  fi
else
  echo "== kustomize output: skipped (no kubectl)"
fi

echo "== self-test: broken manifests must be refused"
"$py" scripts/k8s-tool.py selftest "${kflags[@]}" || status=1

if [ "$status" -eq 0 ]; then
  echo "k8s-validate: all checks passed"
else
  echo "k8s-validate: FAILED" >&2
fi
exit "$status"
