#!/bin/sh
# A stand-in for `docker` that lets `kind create cluster` read and validate
# its config, and stops it at the first step that would change anything.
#
# It answers only the read-only questions kind asks up to that step: `info`
# (a rootful engine on cgroup v2), `ps` (no node of that cluster yet) and
# `inspect --type=image` (the node image is here). Everything else fails,
# first of all the `network ls` with which kind starts to set up its
# network. Each call is appended, one line each, to $STAND_IN_ENGINE_LOG.
set -eu

printf '%s\n' "$*" >>"$STAND_IN_ENGINE_LOG"

refuse() {
    echo "stand-in engine: refusing docker $*" >&2
    exit 1
}

case "${1:-}" in
info)
    echo '{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,"PidsLimit":true,"CPUShares":true,"SecurityOptions":["name=seccomp,profile=builtin","name=cgroupns"]}'
    ;;
ps) ;;
inspect)
    [ "${2:-}" = --type=image ] || refuse "$@"
    ;;
*)
    refuse "$@"
    ;;
esac
