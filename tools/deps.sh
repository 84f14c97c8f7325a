#!/bin/sh
# deps.sh: install the Debian packages chalk needs, only those that are missing.
# Called by `make deps` (and so by `make test` and `make demo`). Needs root for apt-get.
# libmicrohttpd-dev serves the live page (chalk --serve); chromium runs its tests (tests/web/).
set -e
PKGS="build-essential pkg-config liblua5.4-dev lua5.4 libreadline-dev libgraphviz-dev
libopenblas-dev libcriterion-dev lua-busted zlib1g-dev tmux dataset-fashion-mnist
wamerican python3-torch python3-numpy openmpi-bin libopenmpi-dev libmicrohttpd-dev chromium"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
echo "chalk: installing missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "chalk: need root to apt-get install:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
