#!/usr/bin/env bash
# The Docker engine the docker executor's tests need, for CI (no systemd here).
#   .ci/docker.sh up     install Debian's docker.io, debootstrap and docker-registry
#                        (stage 8's registry tests push to it) when missing,
#                        start dockerd in the background unless an engine already
#                        answers, wait for `docker info`, then make or reuse the
#                        offline base image (perfmine images base)
#   .ci/docker.sh down   stop the dockerd that `up` started (never one it found running)
# Images live in /var/lib/docker and persist between runs on this machine, so
# the base image (about a minute to make) is made once and then reused.
# PERFMINE_CI_DOCKERD_ARGS adds dockerd options, e.g. a second engine beside a
# running one: "-H unix:///tmp/d2.sock --data-root /tmp/d2 --exec-root /tmp/d2x
# --pidfile /tmp/d2.pid --bridge none" with DOCKER_HOST=unix:///tmp/d2.sock.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE_DIR="${PERFMINE_CI_STATE_DIR:-/tmp/perfmine-ci-docker}"
PIDFILE="$STATE_DIR/dockerd.pid"
LOG="$STATE_DIR/dockerd.log"

engine_answers() { docker info >/dev/null 2>&1; }

# The pid in the pidfile, if it is still a dockerd (a pid left by a run whose
# machine was torn down may belong to another process by now).
our_dockerd() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

up() {
  mkdir -p "$STATE_DIR"
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || ! command -v docker >/dev/null \
      || ! command -v docker-registry >/dev/null; then
    echo "docker: installing Debian's docker.io, debootstrap and docker-registry"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io debootstrap docker-registry >/dev/null
  fi
  our_dockerd >/dev/null || rm -f "$PIDFILE"
  if engine_answers; then
    if our_dockerd >/dev/null; then echo "docker: the dockerd an earlier 'up' started answers; using it"
    else echo "docker: an engine already answers; using it (it is not stopped at the end)"; fi
  else
    echo "docker: starting dockerd (log: $LOG)"
    # shellcheck disable=SC2086 # the extra options are words
    nohup dockerd ${PERFMINE_CI_DOCKERD_ARGS:-} >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 90); do
      engine_answers && break
      if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "docker: dockerd exited; the end of its log:" >&2
        tail -n 30 "$LOG" >&2
        rm -f "$PIDFILE"
        exit 1
      fi
      sleep 1
    done
    engine_answers || { echo "docker: dockerd did not answer within 90 s" >&2; tail -n 30 "$LOG" >&2; exit 1; }
  fi
  docker info --format 'docker: engine {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupVersion}}'
  # The offline base image: made from Debian's packages the first time, reused afterwards.
  PERFMINE_LOG_LEVEL=warn npx tsx src/cli.ts images base --python 3.11
}

down() {
  local pid
  pid="$(our_dockerd)" || { rm -f "$PIDFILE"; return 0; }
  rm -f "$PIDFILE"
  echo "docker: stopping dockerd ($pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 1
  done
  echo "docker: dockerd did not stop within 30 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
