#!/usr/bin/env bash
# Mailroom local stack: moto (AWS emulator) + Dovecot (IMAP/IMAPS/LMTP) on 127.0.0.1.
#
# Usage: infra/local/stack.sh <command> [args]
#   install                 install what is missing (Dovecot from apt, moto venv from PyPI)
#   install-lint            install cfn-lint into $MAILROOM_LOCAL_DIR/lint-venv; prints the
#                           path of the cfn-lint executable on stdout
#   up                      install, start both services (idempotent, flock-guarded) and print
#                           stack.json on stdout (the only thing on stdout)
#   down [--purge]          stop both services; --purge also deletes all state except venvs
#   status                  show whether each service runs; exit 0 only if both run
#   mailbox-add USER [PW]   add/replace a mailbox user (default password: USER-pass)
#   mailboxes               print [{"user":..., "password":...}, ...] as JSON
#   doveadm ARGS...         run `doveadm -c <our config> ARGS...`, e.g. to simulate a
#                           UIDVALIDITY change:
#                             stack.sh doveadm mailbox update --uid-validity 12345 \
#                                 -u support@example.test INBOX
#                           (IMAP SELECT/EXAMINE then reports UIDVALIDITY 12345; IMAP
#                           sessions that have the mailbox selected at that moment are
#                           disconnected by Dovecot.)
#
# Environment (all optional):
#   MAILROOM_LOCAL_DIR   state dir (default /var/tmp/mailroom-local; not under /root: mail
#                        processes run as `nobody` and must reach it)
#   MAILROOM_MOTO_PORT   moto HTTP port        (default 5566)
#   MAILROOM_IMAP_PORT   IMAP, plaintext       (default 10143)
#   MAILROOM_IMAPS_PORT  IMAP, implicit TLS    (default 10993)
#   MAILROOM_LMTP_PORT   LMTP                  (default 10024)
#   MAILROOM_START_TIMEOUT  seconds to wait for the services to answer (default 60)
#
# Everything listens on 127.0.0.1 only. Progress goes to stderr. Must run as root
# (apt-get, and Dovecot's master drops privileges itself).
#
# Pitfalls handled here (see also shared/LOCAL-STACK-NOTES.md):
# - Dovecot daemonises but keeps the caller's stdout/stderr: it is started with
#   </dev/null >>LOG 2>&1, otherwise `$(stack.sh up)` would hang.
# - Daemons must not inherit the flock fd, or the lock would stay held by them forever.
# - Dovecot reloads the passwd-file only when its mtime (seconds) or size changed, and
#   stats it at most once per second: the new file's mtime is bumped past the old one,
#   and mailbox-add waits (< ~1 s) until `doveadm auth test` accepts the new password.
# - Failed logins: auth_failure_delay = 0 alone still costs ~0.5 s per failure in
#   2.3.19, and the per-IP auth penalty then delays later logins by 2-15 s. The config
#   adds `nodelay` through a field-only first passdb and disables the anvil penalty
#   socket, so a wrong password is answered at once and costs nothing later.
# - `openssl req -x509` makes a CA cert by default, which rustls rejects as a server
#   cert (CaUsedAsEndEntity): we use our own extension section with CA:FALSE and SANs.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

MOTO_SPEC='moto[dynamodb,s3,sqs,ses,kms,events]==5.2.5'   # no `sesv2` extra in 5.2.5; ses covers it
MOTO_EXTRA_PKGS=(flask flask-cors)
CFN_LINT_SPEC='cfn-lint==1.58.0'
DEFAULT_USER='support@example.test'
DEFAULT_PASSWORD='support-pass'
MAIL_OS_USER='nobody'

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# settings

LOCAL_DIR=${MAILROOM_LOCAL_DIR:-/var/tmp/mailroom-local}
LOCAL_DIR=$(realpath -m -- "$LOCAL_DIR")
case "$LOCAL_DIR" in
  /root|/root/*) die "MAILROOM_LOCAL_DIR=$LOCAL_DIR is under /root; Dovecot's unprivileged mail processes cannot reach it. Use e.g. /var/tmp/mailroom-local" ;;
  /) die "MAILROOM_LOCAL_DIR must not be /" ;;
esac

port_var() {  # name default
  local v=${!1:-$2}
  [[ "$v" =~ ^[0-9]+$ ]] && (( v >= 1 && v <= 65535 )) || die "$1=$v is not a valid port"
  printf '%s' "$v"
}
MOTO_PORT=$(port_var MAILROOM_MOTO_PORT 5566)
IMAP_PORT=$(port_var MAILROOM_IMAP_PORT 10143)
IMAPS_PORT=$(port_var MAILROOM_IMAPS_PORT 10993)
LMTP_PORT=$(port_var MAILROOM_LMTP_PORT 10024)
START_TIMEOUT=${MAILROOM_START_TIMEOUT:-60}

VENV=$LOCAL_DIR/venv
LINT_VENV=$LOCAL_DIR/lint-venv
LOG_DIR=$LOCAL_DIR/log
DOVECOT_LOG=$LOG_DIR/dovecot.log
MOTO_LOG=$LOG_DIR/moto.log
MOTO_PIDFILE=$LOCAL_DIR/moto.pid
MOTO_PORTFILE=$LOCAL_DIR/moto.port
TLS_DIR=$LOCAL_DIR/tls
TLS_CERT=$TLS_DIR/cert.pem
TLS_KEY=$TLS_DIR/key.pem
PASSWD_FILE=$LOCAL_DIR/passwd
MAIL_DIR=$LOCAL_DIR/mail
STATE_DIR=$LOCAL_DIR/state
DOVECOT_CONF=$LOCAL_DIR/dovecot.conf
TEMPLATE=$SCRIPT_DIR/dovecot.conf.in
STACK_JSON=$LOCAL_DIR/stack.json
LOCK_FILE=$LOCAL_DIR/.lock
# Dovecot's sockets live in base_dir; a unix socket path is limited to 108 bytes, so a
# very long local dir gets a short base_dir elsewhere (keyed by the local dir's hash).
BASE_DIR=$LOCAL_DIR/run
if (( ${#BASE_DIR} > 64 )); then
  BASE_DIR=/tmp/mailroom-dovecot-$(printf '%s' "$LOCAL_DIR" | md5sum | cut -c1-10)
fi
DOVECOT_PIDFILE=$BASE_DIR/master.pid

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (apt-get; Dovecot master)"; }

# Prefer the system python for venvs (stable path); fall back to whatever python3 is on PATH.
pick_python() {
  if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3 || true; fi
}

# ---------------------------------------------------------------------------------------
# locking: one caller at a time mutates the stack. fd 9 is never passed to daemons.

take_lock() {
  mkdir -p "$LOCAL_DIR"
  exec 9>>"$LOCK_FILE"
  if ! flock -w 900 9; then die "timed out waiting for $LOCK_FILE"; fi
}

# ---------------------------------------------------------------------------------------
# install

APT_UPDATED=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local apt_opts=(-o DPkg::Lock::Timeout=600 -q)
  if (( APT_UPDATED == 0 )); then
    log "apt-get update"
    apt-get "${apt_opts[@]}" update >&2
    APT_UPDATED=1
  fi
  # Keep packages from starting their system services (as in Docker images): only
  # when no policy-rc.d exists, and remove ours afterwards.
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  log "apt-get install $*"
  local rc=0
  apt-get "${apt_opts[@]}" install -y --no-install-recommends "$@" >&2 || rc=$?
  if (( made_policy )); then rm -f /usr/sbin/policy-rc.d; fi
  (( rc == 0 )) || die "apt-get install $* failed (exit $rc)"
}

# If the Debian package started the system Dovecot (e.g. no policy-rc.d and a real init),
# stop it: ours runs with its own config and must be the only one on our ports.
stop_system_dovecot() {
  local pidf=/run/dovecot/master.pid pid
  if [[ -s $pidf ]]; then
    pid=$(cat "$pidf" 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]]; then
      log "stopping the system Dovecot started by the package (pid $pid)"
      if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl stop dovecot.service dovecot.socket >&2 2>&1 || true
        systemctl disable dovecot.service dovecot.socket >&2 2>&1 || true
      fi
      kill "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
    fi
  fi
}

install_system_packages() {
  local pkgs=()
  command -v dovecot >/dev/null || pkgs+=(dovecot-imapd dovecot-lmtpd)
  command -v openssl >/dev/null || pkgs+=(openssl)
  command -v curl >/dev/null || pkgs+=(curl)
  [[ -n $(pick_python) ]] || pkgs+=(python3 python3-venv)
  if (( ${#pkgs[@]} )); then
    apt_install "${pkgs[@]}"
    stop_system_dovecot
  fi
  command -v dovecot >/dev/null || die "dovecot is still missing after apt-get install"
  command -v doveadm >/dev/null || die "doveadm is missing (package dovecot-core)"
}

make_venv() {  # dir
  local dir=$1 py
  py=$(pick_python)
  [[ -n $py ]] || die "python3 not found"
  if [[ -x $dir/bin/python ]] && "$dir/bin/python" -c 'import sys' 2>/dev/null; then return 0; fi
  log "creating venv $dir ($py)"
  rm -rf "$dir"
  if ! "$py" -m venv "$dir" >&2 2>&1; then
    # Debian's python3 lacks ensurepip until python3-venv is installed.
    rm -rf "$dir"
    apt_install python3-venv
    "$py" -m venv "$dir" >&2 || die "cannot create venv $dir with $py"
  fi
}

install_moto() {
  local marker=$VENV/.mailroom-moto-spec want
  want="$MOTO_SPEC ${MOTO_EXTRA_PKGS[*]}"
  if [[ -x $VENV/bin/moto_server && -f $marker && $(cat "$marker") == "$want" ]]; then
    return 0
  fi
  if [[ -x $VENV/bin/moto_server && ! -f $marker ]]; then
    # Installed by hand / older script: accept it if it is the pinned version.
    if [[ $("$VENV/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null) == "${MOTO_SPEC##*==}" ]]; then
      printf '%s\n' "$want" >"$marker"
      return 0
    fi
  fi
  make_venv "$VENV"
  log "pip install $want (into $VENV)"
  "$VENV/bin/pip" install --disable-pip-version-check --no-input -q "$MOTO_SPEC" "${MOTO_EXTRA_PKGS[@]}" >&2 \
    || die "pip install of moto failed"
  [[ -x $VENV/bin/moto_server ]] || die "moto_server missing after pip install"
  printf '%s\n' "$want" >"$marker"
}

cmd_install() {
  need_root
  take_lock
  do_install
}

do_install() {
  install_system_packages
  install_moto
}

cmd_install_lint() {
  need_root
  take_lock
  local marker=$LINT_VENV/.mailroom-cfn-lint-spec
  if ! [[ -x $LINT_VENV/bin/cfn-lint && -f $marker && $(cat "$marker") == "$CFN_LINT_SPEC" ]]; then
    command -v python3 >/dev/null || [[ -x /usr/bin/python3 ]] || apt_install python3 python3-venv
    make_venv "$LINT_VENV"
    log "pip install $CFN_LINT_SPEC (into $LINT_VENV)"
    "$LINT_VENV/bin/pip" install --disable-pip-version-check --no-input -q "$CFN_LINT_SPEC" >&2 \
      || die "pip install of cfn-lint failed"
    printf '%s\n' "$CFN_LINT_SPEC" >"$marker"
  fi
  "$LINT_VENV/bin/cfn-lint" --version >&2
  printf '%s\n' "$LINT_VENV/bin/cfn-lint"
}

# ---------------------------------------------------------------------------------------
# helpers

wait_pid_gone() {  # pid timeout_s ; 0 if gone
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    (( SECONDS < deadline )) || return 1
    sleep 0.1
  done
  return 0
}

# Read the first line of a TCP service; succeed if it starts with $3.
tcp_banner_is() {  # port timeout_s prefix
  local line=''
  line=$(timeout "$2" bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1"' && IFS= read -r line <&3 && printf "%s" "$line"' 2>/dev/null) || return 1
  [[ $line == "$3"* ]]
}

tcp_open() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1" 2>/dev/null; }

moto_answers() {
  local code
  code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$MOTO_PORT/moto-api/" 2>/dev/null) || return 1
  [[ $code == 200 ]]
}

moto_pid() {  # prints our moto pid if alive
  local pid
  [[ -s $MOTO_PIDFILE ]] || return 1
  pid=$(cat "$MOTO_PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server || return 1
  printf '%s' "$pid"
}

dovecot_pid() {  # prints our Dovecot master pid if alive
  local pid
  [[ -s $DOVECOT_PIDFILE ]] || return 1
  pid=$(cat "$DOVECOT_PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]] || return 1
  printf '%s' "$pid"
}

mail_ids() {
  id -u "$MAIL_OS_USER" >/dev/null 2>&1 || die "system user $MAIL_OS_USER is missing"
  MAIL_UID=$(id -u "$MAIL_OS_USER")
  MAIL_GID=$(id -g "$MAIL_OS_USER")
}

sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

render_config() {  # -> stdout
  [[ -f $TEMPLATE ]] || die "template $TEMPLATE missing"
  local instance
  instance=mailroom-$(printf '%s' "$LOCAL_DIR" | md5sum | cut -c1-8)
  sed \
    -e "s|@INSTANCE_NAME@|$(sed_escape "$instance")|g" \
    -e "s|@BASE_DIR@|$(sed_escape "$BASE_DIR")|g" \
    -e "s|@STATE_DIR@|$(sed_escape "$STATE_DIR")|g" \
    -e "s|@LOG_FILE@|$(sed_escape "$DOVECOT_LOG")|g" \
    -e "s|@TLS_CERT@|$(sed_escape "$TLS_CERT")|g" \
    -e "s|@TLS_KEY@|$(sed_escape "$TLS_KEY")|g" \
    -e "s|@PASSWD_FILE@|$(sed_escape "$PASSWD_FILE")|g" \
    -e "s|@MAIL_DIR@|$(sed_escape "$MAIL_DIR")|g" \
    -e "s|@MAIL_UID@|$MAIL_UID|g" \
    -e "s|@MAIL_GID@|$MAIL_GID|g" \
    -e "s|@IMAP_PORT@|$IMAP_PORT|g" \
    -e "s|@IMAPS_PORT@|$IMAPS_PORT|g" \
    -e "s|@LMTP_PORT@|$LMTP_PORT|g" \
    "$TEMPLATE"
}

# ---------------------------------------------------------------------------------------
# TLS certificate

cert_ok() {
  [[ -s $TLS_CERT && -s $TLS_KEY ]] || return 1
  local text
  text=$(openssl x509 -in "$TLS_CERT" -noout -text 2>/dev/null) || return 1
  grep -q 'CA:FALSE' <<<"$text" || return 1
  grep -q 'DNS:localhost' <<<"$text" || return 1
  grep -q 'IP Address:127.0.0.1' <<<"$text" || return 1
  openssl x509 -in "$TLS_CERT" -noout -checkend 86400 >/dev/null 2>&1 || return 1
}

ensure_cert() {  # returns 0 if a new cert was made
  if cert_ok; then return 1; fi
  log "generating self-signed TLS certificate in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 755 "$TLS_DIR"
  local cnf=$TLS_DIR/openssl.cnf
  cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = leaf
[dn]
CN = localhost
O = Mailroom local stack
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
EOF
  (umask 077; openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -config "$cnf" -extensions leaf \
      -keyout "$TLS_KEY.tmp" -out "$TLS_CERT.tmp" >/dev/null 2>&1) \
    || die "openssl req failed"
  chmod 600 "$TLS_KEY.tmp"
  chmod 644 "$TLS_CERT.tmp"
  mv -f "$TLS_KEY.tmp" "$TLS_KEY"
  mv -f "$TLS_CERT.tmp" "$TLS_CERT"
  cert_ok || die "generated certificate failed its own checks ($TLS_CERT)"
  return 0
}

# ---------------------------------------------------------------------------------------
# passwd-file

validate_user() {
  local u=$1
  [[ -n $u ]] || die "user name is empty"
  [[ $u != *[:[:space:]/]* ]] || die "invalid user name '$u': no ':', '/', whitespace or newline allowed"
  [[ $u != [#.]* ]] || die "invalid user name '$u': must not start with '#' or '.'"
  (( ${#u} <= 255 )) || die "user name too long"
}

validate_password() {
  local p=$1
  [[ -n $p ]] || die "password is empty"
  [[ $p != *[:$'\n\r']* ]] || die "invalid password: no ':' or newline allowed"
}

# Rewrite the passwd-file with USER set to PASSWORD (add or replace). Caller holds the lock.
passwd_set() {  # user password
  local user=$1 pass=$2 tmp old_mtime new_mtime
  mkdir -p "$LOCAL_DIR"
  tmp=$(mktemp "$PASSWD_FILE.XXXXXX")
  if [[ -f $PASSWD_FILE ]]; then
    awk -F: -v u="$user" '$1 != u' "$PASSWD_FILE" >"$tmp"
    old_mtime=$(stat -c %Y "$PASSWD_FILE")
  else
    old_mtime=0
  fi
  printf '%s:{PLAIN}%s\n' "$user" "$pass" >>"$tmp"
  # Readable by the auth process (runs as the `dovecot` user), not by everyone.
  if getent group dovecot >/dev/null; then
    chown root:dovecot "$tmp"; chmod 640 "$tmp"
  else
    chmod 644 "$tmp"
  fi
  # Dovecot re-reads the file only if mtime (seconds) or size changed: make sure mtime does.
  new_mtime=$(stat -c %Y "$tmp")
  if (( new_mtime <= old_mtime )); then touch -d "@$((old_mtime + 1))" "$tmp"; fi
  mv -f "$tmp" "$PASSWD_FILE"
}

# Wait until the running Dovecot accepts USER/PASSWORD (at most 5 s).
verify_login() {  # user password
  local deadline=$((SECONDS + 5))
  until doveadm -c "$DOVECOT_CONF" auth test -x service=imap "$1" "$2" >/dev/null 2>"$LOG_DIR/auth-test.err"; do
    if (( SECONDS >= deadline )); then
      cat "$LOG_DIR/auth-test.err" >&2
      die "Dovecot still rejects the credentials of $1 after 5 s (see $DOVECOT_LOG)"
    fi
    sleep 0.2
  done
  log "verified: Dovecot accepts $1"
}

passwd_has_user() {  # user
  [[ -f $PASSWD_FILE ]] && awk -F: -v u="$1" '$1 == u {found=1} END {exit !found}' "$PASSWD_FILE"
}

# ---------------------------------------------------------------------------------------
# services

prepare_dirs() {
  mkdir -p "$LOCAL_DIR" "$LOG_DIR" "$STATE_DIR" "$MAIL_DIR"
  chmod 755 "$LOCAL_DIR" "$LOG_DIR"
  chmod 750 "$STATE_DIR"
  chown "$MAIL_UID:$MAIL_GID" "$MAIL_DIR"
  chmod 750 "$MAIL_DIR"
  # Every ancestor must be traversable by the unprivileged mail user.
  if command -v runuser >/dev/null; then
    runuser -u "$MAIL_OS_USER" -- test -w "$MAIL_DIR" \
      || die "$MAIL_DIR is not writable by $MAIL_OS_USER (is an ancestor of $LOCAL_DIR not world-executable?)"
  fi
}

start_dovecot() {
  local pid changed=$1
  if pid=$(dovecot_pid); then
    if (( changed )); then
      log "Dovecot running (pid $pid): configuration/certificate changed, reloading"
      kill -HUP "$pid"
      sleep 0.5
    else
      log "Dovecot already running (pid $pid)"
    fi
    return 0
  fi
  rm -f "$DOVECOT_PIDFILE"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  log "starting Dovecot (config $DOVECOT_CONF, log $DOVECOT_LOG)"
  # Dovecot keeps the caller's stdout/stderr open after daemonising: never let it have ours.
  dovecot -c "$DOVECOT_CONF" </dev/null >>"$DOVECOT_LOG" 2>&1 9>&- \
    || die "dovecot failed to start; see $DOVECOT_LOG: $(tail -n 5 "$DOVECOT_LOG" 2>/dev/null | tr '\n' ' ')"
}

start_moto() {
  local pid
  # An earlier stack may run moto's stock (thread-unsafe) server from our venv: replace it.
  if pid=$(moto_pid) && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server_serial; then
    log "moto (pid $pid) is the stock threaded server; restarting it serialised"
    stop_moto
  fi
  if pid=$(moto_pid); then
    if [[ $(cat "$MOTO_PORTFILE" 2>/dev/null) == "$MOTO_PORT" ]]; then
      log "moto already running (pid $pid, port $MOTO_PORT)"
      return 0
    fi
    log "moto (pid $pid) runs on another port; restarting on $MOTO_PORT"
    stop_moto
  fi
  if moto_answers; then
    log "WARNING: something already answers as moto on port $MOTO_PORT but it is not ours (no live pid in $MOTO_PIDFILE); using it"
    return 0
  fi
  log "starting moto on 127.0.0.1:$MOTO_PORT (log $MOTO_LOG)"
  # setsid: own session, so a Ctrl-C in the caller's terminal does not kill it.
  # Our launcher serialises request handling: moto's transactions are not thread-safe (see
  # moto_server_serial.py); the exactly-once tests depend on atomic conditional writes.
  nohup setsid "$VENV/bin/python" "$SCRIPT_DIR/moto_server_serial.py" 127.0.0.1 "$MOTO_PORT" </dev/null >>"$MOTO_LOG" 2>&1 9>&- &
  echo $! >"$MOTO_PIDFILE"
  echo "$MOTO_PORT" >"$MOTO_PORTFILE"
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT)) moto_ok=0 imap_ok=0 imaps_ok=0 lmtp_ok=0
  while :; do
    (( moto_ok )) || { moto_answers && moto_ok=1; } || true
    (( imap_ok )) || { tcp_banner_is "$IMAP_PORT" 2 '* OK' && imap_ok=1; } || true
    (( imaps_ok )) || { tcp_open "$IMAPS_PORT" && imaps_ok=1; } || true
    (( lmtp_ok )) || { tcp_banner_is "$LMTP_PORT" 2 '220' && lmtp_ok=1; } || true
    if (( moto_ok && imap_ok && imaps_ok && lmtp_ok )); then return 0; fi
    if (( SECONDS >= deadline )); then
      (( moto_ok )) || log "moto did not answer on http://127.0.0.1:$MOTO_PORT/moto-api/ within ${START_TIMEOUT}s; log: $MOTO_LOG"
      (( imap_ok && imaps_ok && lmtp_ok )) || {
        log "Dovecot did not answer within ${START_TIMEOUT}s (imap:$imap_ok imaps:$imaps_ok lmtp:$lmtp_ok); log: $DOVECOT_LOG"
        tail -n 15 "$DOVECOT_LOG" >&2 2>/dev/null || true
      }
      (( moto_ok )) || tail -n 15 "$MOTO_LOG" >&2 2>/dev/null || true
      die "local stack failed to start"
    fi
    # A dead moto will never answer: fail fast.
    if (( !moto_ok )) && [[ -s $MOTO_PIDFILE ]] && ! moto_pid >/dev/null; then
      tail -n 15 "$MOTO_LOG" >&2 2>/dev/null || true
      die "moto exited during start-up; log: $MOTO_LOG"
    fi
    if (( !(imap_ok && imaps_ok && lmtp_ok) )) && ! dovecot_pid >/dev/null && (( SECONDS > deadline - START_TIMEOUT + 5 )); then
      tail -n 15 "$DOVECOT_LOG" >&2 2>/dev/null || true
      die "Dovecot is not running; log: $DOVECOT_LOG"
    fi
    sleep 0.2
  done
}

write_stack_json() {
  python3 - "$STACK_JSON" "$MOTO_PORT" "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT" "$TLS_CERT" "$DOVECOT_CONF" "$LOCAL_DIR" <<'EOF'
import json, os, sys
path, moto, imap, imaps, lmtp, cert, conf, local = sys.argv[1:]
doc = {
    "aws_endpoint": f"http://127.0.0.1:{moto}",
    "imap_host": "127.0.0.1",
    "imap_port": int(imap),
    "imaps_port": int(imaps),
    "lmtp_port": int(lmtp),
    "ca_file": cert,
    "dovecot_config": conf,
    "local_dir": local,
}
tmp = path + ".tmp"
with open(tmp, "w") as f:
    f.write(json.dumps(doc) + "\n")
os.chmod(tmp, 0o644)
os.replace(tmp, path)
EOF
}

cmd_up() {
  need_root
  take_lock
  do_install
  mail_ids
  prepare_dirs

  local changed=0 newconf added_default=0
  if ensure_cert; then changed=1; fi
  if ! passwd_has_user "$DEFAULT_USER"; then
    log "adding default mailbox user $DEFAULT_USER"
    passwd_set "$DEFAULT_USER" "$DEFAULT_PASSWORD"
    added_default=1
  fi
  newconf=$(render_config)
  if [[ ! -f $DOVECOT_CONF ]] || [[ $newconf != "$(cat "$DOVECOT_CONF")" ]]; then
    printf '%s\n' "$newconf" >"$DOVECOT_CONF.tmp"
    chmod 644 "$DOVECOT_CONF.tmp"
    if ! doveconf -c "$DOVECOT_CONF.tmp" -n >/dev/null 2>"$LOG_DIR/doveconf.err"; then
      cat "$LOG_DIR/doveconf.err" >&2
      die "generated Dovecot config is invalid ($DOVECOT_CONF.tmp)"
    fi
    mv -f "$DOVECOT_CONF.tmp" "$DOVECOT_CONF"
    changed=1
    log "wrote $DOVECOT_CONF"
  fi

  start_dovecot "$changed"
  start_moto
  wait_ready
  if (( added_default )); then verify_login "$DEFAULT_USER" "$DEFAULT_PASSWORD"; fi
  log "ready: moto http://127.0.0.1:$MOTO_PORT, IMAP 127.0.0.1:$IMAP_PORT, IMAPS 127.0.0.1:$IMAPS_PORT, LMTP 127.0.0.1:$LMTP_PORT"
  write_stack_json
  cat "$STACK_JSON"
}

# ---------------------------------------------------------------------------------------
# down / status

stop_dovecot() {
  local pid
  if pid=$(dovecot_pid); then
    log "stopping Dovecot (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" 15; then
      log "Dovecot did not stop in 15s; killing"
      kill -KILL "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 5 || true
    fi
  else
    log "Dovecot not running"
  fi
  rm -f "$DOVECOT_PIDFILE"
}

stop_moto() {
  local pid
  if pid=$(moto_pid); then
    log "stopping moto (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" 10; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 5 || true
    fi
  else
    log "moto not running"
  fi
  rm -f "$MOTO_PIDFILE" "$MOTO_PORTFILE"
}

cmd_down() {
  local purge=0
  case "${1:-}" in
    '') ;;
    --purge) purge=1 ;;
    *) die "usage: stack.sh down [--purge]" ;;
  esac
  [[ -d $LOCAL_DIR ]] || { log "nothing to stop ($LOCAL_DIR does not exist)"; return 0; }
  take_lock
  stop_dovecot
  stop_moto
  if (( purge )); then
    log "purging $LOCAL_DIR (keeping venv, lint-venv)"
    find "$LOCAL_DIR" -mindepth 1 -maxdepth 1 ! -name venv ! -name lint-venv ! -name .lock -exec rm -rf {} +
    [[ $BASE_DIR == "$LOCAL_DIR"/* ]] || rm -rf "$BASE_DIR"
  fi
}

cmd_status() {
  local rc=0 pid
  if pid=$(dovecot_pid); then
    echo "dovecot: running (pid $pid; imap 127.0.0.1:$IMAP_PORT, imaps 127.0.0.1:$IMAPS_PORT, lmtp 127.0.0.1:$LMTP_PORT; config $DOVECOT_CONF)"
  else
    echo "dovecot: not running"; rc=1
  fi
  if pid=$(moto_pid); then
    echo "moto: running (pid $pid; http://127.0.0.1:$(cat "$MOTO_PORTFILE" 2>/dev/null || echo "$MOTO_PORT"))"
  elif moto_answers; then
    echo "moto: answering on http://127.0.0.1:$MOTO_PORT but not started by this stack (no live pid in $MOTO_PIDFILE)"
  else
    echo "moto: not running"; rc=1
  fi
  return "$rc"
}

# ---------------------------------------------------------------------------------------
# mailboxes

cmd_mailbox_add() {
  (( $# >= 1 && $# <= 2 )) || die "usage: stack.sh mailbox-add <user> [<password>]"
  local user=$1 pass=${2:-$1-pass}
  validate_user "$user"
  validate_password "$pass"
  need_root
  take_lock
  passwd_set "$user" "$pass"
  log "mailbox user $user set in $PASSWD_FILE"
  # If Dovecot runs, do not return before it accepts the new credentials: the auth
  # process stats the passwd-file at most once per second, so a change made in the
  # same second as its last lookup shows up only in the next second. Failed checks
  # cost nothing (nodelay, no auth penalty).
  if dovecot_pid >/dev/null; then verify_login "$user" "$pass"; fi
}

cmd_mailboxes() {
  python3 - "$PASSWD_FILE" <<'EOF'
import json, os, sys
path = sys.argv[1]
out = []
if os.path.exists(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split(":")
            user, pw = fields[0], fields[1] if len(fields) > 1 else ""
            if pw.startswith("{PLAIN}"):
                pw = pw[len("{PLAIN}"):]
            out.append({"user": user, "password": pw})
print(json.dumps(out))
EOF
}

cmd_doveadm() {
  [[ -f $DOVECOT_CONF ]] || die "$DOVECOT_CONF does not exist: run 'stack.sh up' first"
  exec doveadm -c "$DOVECOT_CONF" "$@"
}

# ---------------------------------------------------------------------------------------

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2; }

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    install) (( $# == 0 )) || die "install takes no arguments"; cmd_install ;;
    install-lint) (( $# == 0 )) || die "install-lint takes no arguments"; cmd_install_lint ;;
    up) (( $# == 0 )) || die "up takes no arguments"; cmd_up ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    mailbox-add) cmd_mailbox_add "$@" ;;
    mailboxes) (( $# == 0 )) || die "mailboxes takes no arguments"; cmd_mailboxes ;;
    doveadm) cmd_doveadm "$@" ;;
    -h|--help|help) usage ;;
    *) usage; die "unknown command '${cmd}'" ;;
  esac
}

main "$@"
