#!/usr/bin/env bash
# Lints template.yaml with cfn-lint (R-Q2). Any finding (error, warning or informational rule
# that cfn-lint reports by default) makes this script exit non-zero.
#
# cfn-lint comes from one pinned install, made by `infra/local/stack.sh install-lint` into the
# local stack's lint venv, so CI and developers lint with the same rules whatever is on PATH.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cfn_lint="$(bash "$repo_root/infra/local/stack.sh" install-lint)"

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
