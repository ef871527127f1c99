#!/bin/sh
# Make sure a program the tests need is installed: Debian's package when it is missing and we
# are root with apt-get, else say how to install it (the tests that need it are then skipped,
# and the run says so). `make test` calls this for Chromium, redis-server, pgbouncer and wrk.
#
#   tools/debian-package.sh PACKAGE "WHAT NEEDS IT" COMMAND [COMMAND...]
#
# Any COMMAND found on PATH (or in /usr/sbin, where Debian puts some daemons) is enough.
set -eu
package=$1
needed_by=$2
shift 2
for command in "$@"; do
  if command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ]; then
    exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian $package for $needed_by"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
else
  echo "$needed_by need $package: run 'sudo apt-get install $package' (skipped until then)"
fi
