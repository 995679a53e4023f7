#!/usr/bin/env bash
# Installs what the packaging tests need to validate docker-compose.yml and the
# systemd units offline: a compose implementation (Debian's docker-compose,
# used only for `docker-compose config`; no Docker engine is needed or started)
# and systemd-analyze. Idempotent and quiet when everything is present.
set -euo pipefail

need=()
# `docker compose` (the v2 plugin) is not packaged by Debian 12; the Debian
# package docker-compose (v1.29) validates the same file with `config`.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  need+=(docker-compose)
fi
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if ((${#need[@]})); then
  echo "deps-docker: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
