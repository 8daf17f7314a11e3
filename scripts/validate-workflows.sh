#!/usr/bin/env bash
# Validates .github/workflows/*.yml against GitHub's workflow schema, offline: the schema
# ships inside check-jsonschema (`--builtin-schema vendor.github-workflows`), so only its
# installation needs the network (PyPI), once; it goes to a venv under the target dir.
# Measured here: install 18 s, validation 1.2 s (also with the network cut: `unshare -n`).
# Exit codes: 0 valid; 1 a workflow is invalid; 2 setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-$PWD/target}/ci-venv"
tool="$venv/bin/check-jsonschema"
if ! [ -x "$tool" ]; then
  python3 -m venv "$venv" || { echo "validate-workflows: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 2; }
  "$venv/bin/pip" install --quiet "check-jsonschema==0.39.0" || exit 2
fi
"$tool" --builtin-schema vendor.github-workflows .github/workflows/*.yml
