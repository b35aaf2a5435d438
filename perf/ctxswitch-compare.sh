#!/bin/sh
# perf/ctxswitch-compare.sh ARCH: the cost of a context switch on ARCH
# (aarch64, riscv64 or i386) under qemu-user, with the library's own switch
# against a -DDILL_ARCH_FALLBACK build (sigsetjmp/siglongjmp) of the same
# target. Builds perf/ctxswitch both ways with the cross compiler, linked
# statically, runs the two alternately, three times each, and prints the
# best ns/op of each and their ratio (the target is at most 0.70).
# Needs the source configured by ./autogen.sh, not configured in place.
# BUILD=dir keeps the two builds there (default: a temporary directory).
set -e
arch=$1
case "$arch" in
    aarch64) triplet=aarch64-linux-gnu ;;
    riscv64) triplet=riscv64-linux-gnu ;;
    i386) triplet=i686-linux-gnu ;;
    *) echo "usage: $0 aarch64|riscv64|i386" >&2; exit 2 ;;
esac
src=$(cd "$(dirname "$0")/.." && pwd)
missing=
command -v "$triplet-gcc" >/dev/null 2>&1 || missing="$missing gcc-$triplet"
command -v "qemu-$arch" >/dev/null 2>&1 || missing="$missing qemu-user"
if [ -n "$missing" ]; then
    echo "$0: needs$missing (apt-get install$missing)" >&2
    exit 1
fi
if [ ! -x "$src/configure" ]; then
    echo "$0: run ./autogen.sh in $src first" >&2
    exit 1
fi
if [ -n "$BUILD" ]; then
    work=$BUILD
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

# build NAME CPPFLAGS: perf/ctxswitch in $work/NAME, fully static.
build() {
    mkdir -p "$work/$1"
    (cd "$work/$1" &&
        "$src/configure" --host="$triplet" --disable-shared \
            CFLAGS="-O2 -g" CPPFLAGS="$2" >configure.log 2>&1 &&
        make -j2 perf/ctxswitch LDFLAGS=-all-static >make.log 2>&1) || {
        echo "$0: building $1 failed, see $work/$1" >&2
        trap - EXIT
        exit 1
    }
}
build native ""
build fallback "-DDILL_ARCH_FALLBACK"

# run NAME: the ns/op of one run of the libdill figure.
run() {
    "qemu-$arch" "$work/$1/perf/ctxswitch" --no-swapcontext |
        awk -F': ' '$1 == "ctxswitch" { sub(/ ns\/op/, "", $2); print $2 }'
}
natives= fallbacks=
for i in 1 2 3; do
    natives="$natives $(run native)"
    fallbacks="$fallbacks $(run fallback)"
done
best() { printf '%s\n' "$@" | sort -g | head -n 1; }
# shellcheck disable=SC2086 # the lists are split on purpose
best_native=$(best $natives)
# shellcheck disable=SC2086
best_fallback=$(best $fallbacks)
if [ -z "$best_native" ] || [ -z "$best_fallback" ]; then
    echo "$0: perf/ctxswitch printed no figure" >&2
    exit 1
fi
echo "ctxswitch_$arch: $best_native ns/op (native switch, qemu-$arch, best of 3)"
echo "ctxswitch_${arch}_fallback: $best_fallback ns/op (sigsetjmp/siglongjmp)"
echo "$best_native $best_fallback" | awk '{
    r = $1 / $2
    printf "native/fallback = %.2fx (target <= 0.70)%s\n", r, r <= 0.70 ? "" : " MISSED" }'
