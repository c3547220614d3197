#!/bin/sh
# deps.sh -- install the Debian packages the build, the tests and the
# benchmark need, when they are missing.  apt-get runs only as root; a
# non-root user is told what to install.
set -e
PKGS="build-essential pkg-config liblua5.4-dev lua5.4 libev-dev libxxhash-dev
      lua-busted lua-socket memcached python3 python3-memcache
      python3-pymemcache libmemcached-tools nutcracker"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run 'sudo apt-get install$missing' or run make as root" >&2
    exit 1
fi
