#!/usr/bin/env bash
# Fuzzes a running Mailroom API against docs/openapi.yaml with schemathesis (from PyPI): every
# documented operation gets generated requests (valid and invalid), and none may be answered
# with a 5xx. Bounded in time. The integration test `api_fuzz` starts an API on a fresh prefix,
# seeds it and runs this; by hand:
#
#   tests/api_fuzz.sh "$(mailroom local up --json | jq -r .api_url)" "$(mailroom local token root)"
#
# Usage: tests/api_fuzz.sh API_URL TOKEN [MAX_EXAMPLES] [MAX_SECONDS]
# MAILROOM_FUZZ_SEED: a number replays that run; unset or `random`, a new one each time.
# schemathesis is installed into $MAILROOM_FUZZ_VENV (default ~/.cache/mailroom/schemathesis-venv)
# when missing, pinned, so CI and developers run the same fuzzer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SPEC="schemathesis==4.32.5"
VENV=${MAILROOM_FUZZ_VENV:-$HOME/.cache/mailroom/schemathesis-venv}

(( $# >= 2 )) || { echo "usage: $0 API_URL TOKEN [MAX_EXAMPLES] [MAX_SECONDS]" >&2; exit 2; }
url=$1 token=$2 examples=${3:-20} seconds=${4:-180}

if [[ ! -x $VENV/bin/schemathesis || $(cat "$VENV/.mailroom-spec" 2>/dev/null) != "$SPEC" ]]; then
  py=/usr/bin/python3
  [[ -x $py ]] || py=$(command -v python3)
  echo "api_fuzz: installing $SPEC into $VENV" >&2
  rm -rf "$VENV"
  "$py" -m venv "$VENV" >&2
  "$VENV/bin/pip" install --disable-pip-version-check --no-input -q "$SPEC" >&2
  printf '%s\n' "$SPEC" >"$VENV/.mailroom-spec"
fi

# not_a_server_error only: the document describes the shapes; what the fuzz asserts is that no
# input, however malformed, gets a 5xx. The stateful phase needs links the document does not
# declare. The token is fixed (no generated security parameters), so requests reach handlers.
# One worker: with two, Hypothesis parses lambda sources on two threads at once, which this
# Python (3.11) can fail with "AST constructor recursion depth mismatch", a fuzzer error.
seed=()
[[ ${MAILROOM_FUZZ_SEED:-random} == random ]] || seed=(--seed "$MAILROOM_FUZZ_SEED")
exec "$VENV/bin/schemathesis" run docs/openapi.yaml "${seed[@]}" \
  --url "$url" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" \
  --max-time "$seconds" \
  --request-timeout 30 \
  --generation-with-security-parameters false \
  --generation-database none \
  --workers 1 \
  --no-color
