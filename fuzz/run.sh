#!/bin/sh
# fuzz/run.sh SRCDIR SECONDS [TARGET...]: build the libFuzzer targets
# (every SRCDIR/fuzz/NAME.c, or the ones named) and run each for SECONDS.
# Called by `make fuzz` from the build directory, which holds config.h;
# the environment gives FUZZ_CC (clang), FUZZ_CFLAGS (the library's own
# flags), LIB_SOURCES (the library's sources, headers included) and
# FUZZ_LIBS (what the library links with: OpenSSL with --enable-tls).
# A target that needs TLS says FUZZ_NEEDS_TLS; without --enable-tls it
# is skipped, with a line saying so.
# Everything is built under fuzz/build/; each run starts from the seed
# corpus SRCDIR/fuzz/corpus/NAME/ and keeps what it finds in
# fuzz/build/NAME.corpus/, its output in fuzz/build/NAME.log. FUZZ_JOBS
# targets run at a time. Exits non-zero if any run finds a crash, leak,
# sanitizer report or hang; libFuzzer saves that input in fuzz/build/.
set -u
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
            -c "$srcdir/$src" -o "$obj" || exit 1
    fi
    objs="$objs $obj"
done

if [ $# -eq 0 ]; then
    for f in "$srcdir"/fuzz/*.c; do set -- "$@" "$(basename "$f" .c)"; done
fi
targets=
for target in "$@"; do
    if grep -q FUZZ_NEEDS_TLS "$srcdir/fuzz/$target.c" &&
          ! grep -q '^#define HAVE_TLS 1' config.h; then
        echo "== fuzz/$target: skipped, this build has no --enable-tls"
        continue
    fi
    targets="$targets $target"
done
# shellcheck disable=SC2086 # one word per target
set -- $targets
for target in "$@"; do
    # shellcheck disable=SC2086
    $cc $flags -DHAVE_CONFIG_H -fsanitize=fuzzer "$srcdir/fuzz/$target.c" \
        $objs ${FUZZ_LIBS:-} -lpthread -o "$out/$target" || exit 1
done

# One run; its whole output goes to fuzz/build/NAME.log. -timeout: an input
# taking a second is a hang; -rss_limit_mb keeps a runaway allocation from
# taking the machine.
run_one() {
    target=$1
    mkdir -p "$out/$target.corpus"
    seeds=$srcdir/fuzz/corpus/$target
    [ -d "$seeds" ] || seeds=
    # shellcheck disable=SC2086
    "$out/$target" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=1024 \
        -artifact_prefix="$out/$target-" -print_final_stats=1 \
        "$out/$target.corpus" $seeds >"$out/$target.log" 2>&1
}

# FUZZ_JOBS targets at a time (default 1).
jobs=${FUZZ_JOBS:-1}
failed=0
set -- "$@"
while [ $# -gt 0 ]; do
    batch=
    pids=
    n=0
    while [ $# -gt 0 ] && [ "$n" -lt "$jobs" ]; do
        echo "== fuzz/$1 ($seconds s)"
        run_one "$1" &
        pids="$pids $!"
        batch="$batch $1"
        n=$((n + 1))
        shift
    done
    i=0
    for pid in $pids; do
        i=$((i + 1))
        # shellcheck disable=SC2086
        target=$(echo $batch | cut -d' ' -f$i)
        if wait "$pid"; then
            runs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' \
                "$out/$target.log")
            echo "fuzz/$target: clean, $runs runs"
        else
            echo "fuzz/$target: FAILED (the end of fuzz/build/$target.log):"
            tail -60 "$out/$target.log"
            failed=1
        fi
    done
done
exit $failed
