#!/bin/sh
# autogen.sh: generate ./configure from configure.ac and Makefile.am.
#
# Needs autoconf, automake, libtool and pkg-config's pkg.m4 (and, for the
# ./configure && make that follow, make and a C compiler). When some are
# missing on a Debian-like system, root gets them installed with apt-get;
# anyone else is told the command to run. The same goes for the programs
# make check runs as test peers (curl, wrk, openssl, python3-websockets,
# microsocks, dnsmasq, iptables, iproute2), which are not needed to build.
set -e
cd "$(dirname "$0")"

# libc6-dev: gcc only recommends it, and cannot build anything without it.
packages="autoconf automake libtool pkg-config make gcc libc6-dev"

# What `make check` runs besides our own programs: the peers of the
# protocol tests and the tools of the network tests. Each such test fails
# with the install command when its tool is missing; here root gets them
# all at once. Checked as "command package" pairs (python3 modules as
# "python3:module package").
test_tools="ip:iproute2 iptables:iptables dnsmasq:dnsmasq-base curl:curl
wrk:wrk python3:python3 python3-module:websockets:python3-websockets
microsocks:microsocks openssl:openssl"

have() {
    command -v "$1" >/dev/null 2>&1
}

# pkg.m4 defines PKG_CHECK_MODULES; without it configure.ac still turns into
# a configure script, one that fails with a baffling syntax error.
have_pkg_m4() {
    for dir in "$(aclocal --print-ac-dir 2>/dev/null)" /usr/share/aclocal \
        /usr/local/share/aclocal; do
        if [ -n "$dir" ] && [ -f "$dir/pkg.m4" ]; then return 0; fi
    done
    return 1
}

missing=
for tool in autoconf autoreconf automake aclocal libtoolize pkg-config make; do
    have "$tool" || missing="$missing $tool"
done
have cc || have gcc || missing="$missing cc"
have_pkg_m4 || missing="$missing pkg.m4"

if [ -n "$missing" ]; then
    echo "autogen.sh: missing:$missing"
    if [ "$(id -u)" = 0 ] && have apt-get; then
        echo "autogen.sh: installing $packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        # shellcheck disable=SC2086 # one word per package
        apt-get install -y $packages
    elif have apt-get; then
        echo "autogen.sh: install them with:"
        echo "    sudo apt-get update && sudo apt-get install -y $packages"
        exit 1
    else
        echo "autogen.sh: install these with your package manager:" \
            "autoconf automake libtool pkg-config (pkgconf) make and a C compiler"
        exit 1
    fi
fi

# The test peers: installed for root, listed for anyone else (the library
# builds without them; only the tests that use them would fail).
missing_tests=
for pair in $test_tools; do
    case $pair in
    python3-module:*)
        module=${pair#python3-module:}
        package=${module#*:}
        module=${module%%:*}
        /usr/bin/python3 -c "import $module" >/dev/null 2>&1 ||
            missing_tests="$missing_tests $package"
        ;;
    *)
        tool=${pair%%:*}
        # dnsmasq, ip and iptables live in sbin, outside a user's PATH.
        have "$tool" || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] ||
            missing_tests="$missing_tests ${pair#*:}"
        ;;
    esac
done
if [ -n "$missing_tests" ]; then
    if [ "$(id -u)" = 0 ] && have apt-get; then
        echo "autogen.sh: installing what make check needs:$missing_tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        # shellcheck disable=SC2086 # one word per package
        apt-get install -y --no-install-recommends $missing_tests
    else
        echo "autogen.sh: make check also needs:$missing_tests"
        echo "    sudo apt-get install -y$missing_tests"
    fi
fi

mkdir -p m4
autoreconf -fi
