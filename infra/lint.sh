#!/usr/bin/env bash
# Lints template.yaml with cfn-lint (R-Q2). Any finding (error, warning or informational rule that
# cfn-lint reports by default) makes this script exit non-zero.
#
# cfn-lint is taken from, in order:
#   1. $MAILROOM_LOCAL_DIR/lint-venv/bin/cfn-lint (MAILROOM_LOCAL_DIR defaults to /var/tmp/mailroom-local)
#   2. cfn-lint on PATH
#   3. a fresh install of the pinned version below into $MAILROOM_LOCAL_DIR/lint-venv
set -euo pipefail

# Pinned to the version the template was checked with; bump deliberately (new releases add rules).
CFN_LINT_VERSION="1.51.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
local_dir="${MAILROOM_LOCAL_DIR:-/var/tmp/mailroom-local}"
venv="$local_dir/lint-venv"

if [[ -x "$venv/bin/cfn-lint" ]]; then
  cfn_lint="$venv/bin/cfn-lint"
elif command -v cfn-lint >/dev/null 2>&1; then
  cfn_lint="$(command -v cfn-lint)"
else
  echo "lint: cfn-lint not found; installing cfn-lint==$CFN_LINT_VERSION into $venv" >&2
  mkdir -p "$local_dir"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
  cfn_lint="$venv/bin/cfn-lint"
fi

cd "$repo_root"
echo "lint: $("$cfn_lint" --version) ($cfn_lint) on $repo_root/template.yaml"
# cfn-lint exits non-zero on any finding (bit flags: 2 error, 4 warning, 8 informational).
if "$cfn_lint" template.yaml; then
  echo "lint: template.yaml clean"
else
  status=$?
  echo "lint: template.yaml has findings (cfn-lint exit $status)" >&2
  exit "$status"
fi
