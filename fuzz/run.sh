#!/bin/sh
# fuzz/run.sh SRCDIR SECONDS [TARGET...]: build the libFuzzer targets
# (every SRCDIR/fuzz/NAME.c, or the ones named) and run each for SECONDS.
# Called by `make fuzz` from the build directory, which holds config.h;
# the environment gives FUZZ_CC (clang), FUZZ_CFLAGS (the library's own
# flags), FUZZ_LIBS (the libraries it links with: OpenSSL with
# --enable-tls) and LIB_SOURCES (the library's sources, headers included).
# Everything is built under fuzz/build/; each run starts from the seed
# corpus SRCDIR/fuzz/corpus/NAME/ and keeps what it finds in
# fuzz/build/NAME.corpus/. Exits non-zero at the first crash, leak,
# sanitizer report or timeout, whose input libFuzzer saves in fuzz/build/.
set -eu
srcdir=$1
seconds=$2
shift 2
cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz: $cc is missing; install it: apt-get install clang" >&2
    exit 1
fi
out=fuzz/build
mkdir -p "$out/obj"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all"
flags="-g -O1 -fno-omit-frame-pointer $sanitize -I. -I$srcdir"

# The library, instrumented for coverage but without libFuzzer's main.
objs=
for src in $LIB_SOURCES; do
    case $src in *.c) ;; *) continue ;; esac
    obj=$out/obj/$(basename "$src" .c).o
    if [ ! -f "$obj" ] || [ "$srcdir/$src" -nt "$obj" ]; then
        # shellcheck disable=SC2086 # flags are words
        $cc $flags $FUZZ_CFLAGS -DHAVE_CONFIG_H -fsanitize=fuzzer-no-link \
            -c "$srcdir/$src" -o "$obj"
    fi
    objs="$objs $obj"
done

if [ $# -eq 0 ]; then
    for f in "$srcdir"/fuzz/*.c; do set -- "$@" "$(basename "$f" .c)"; done
fi
for target in "$@"; do
    # A target that needs TLS says FUZZ_NEEDS_TLS; without --enable-tls
    # there is nothing of it to build.
    if grep -q FUZZ_NEEDS_TLS "$srcdir/fuzz/$target.c" &&
       ! grep -q '^#define HAVE_TLS 1' config.h; then
        echo "== fuzz/$target: skipped, this build has no --enable-tls"
        continue
    fi
    echo "== fuzz/$target ($seconds s)"
    # shellcheck disable=SC2086
    $cc $flags -DHAVE_CONFIG_H -fsanitize=fuzzer "$srcdir/fuzz/$target.c" \
        $objs $FUZZ_LIBS -lpthread -o "$out/$target"
    mkdir -p "$out/$target.corpus"
    seeds=$srcdir/fuzz/corpus/$target
    [ -d "$seeds" ] || seeds=
    # -timeout: an input taking a second is a hang; -rss_limit_mb keeps a
    # runaway allocation from taking the machine.
    "$out/$target" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=1024 \
        -artifact_prefix="$out/$target-" -print_final_stats=1 \
        "$out/$target.corpus" $seeds
done
