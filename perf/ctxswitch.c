/*
 * perf/ctxswitch.c: the cost of one context switch. Two coroutines yield to
 * each other; every yield hands the CPU to the other one. The same number of
 * switches is then done with glibc's swapcontext between two ucontexts, the
 * usual way to write coroutines without a library, and the ratio printed.
 * A libc without swapcontext (musl) gives the first figure only, and so
 * does --no-swapcontext (perf/ctxswitch-compare.sh, under qemu, where the
 * signal-mask system call of every swapcontext makes that part slow).
 *
 * The two are measured in turn, five rounds each, and the best round of
 * each is reported: on this shared VM a tight loop runs at one speed for a
 * while and then about 40% slower (the host's doing, whatever the program
 * does), and a single round of each could catch the two in different
 * phases.
 */
#include "config.h"

#if defined HAVE_SWAPCONTEXT
#include <ucontext.h>
#endif
#include <libdill.h>
#include "perf.h"

#define SWITCHES 2000000
#define ROUNDS 5

static coroutine void yielder(int count) {
    for(int i = 0; i < count; i++) PERF_CHECK(yield() == 0);
}

static int64_t libdill_ns(void) {
    int b = bundle();
    PERF_CHECK(b >= 0);
    int64_t start = perf_ns();
    /* main blocks in bundle_wait, so the two coroutines alternate alone. */
    PERF_CHECK(bundle_go(b, yielder(SWITCHES / 2)) == 0);
    PERF_CHECK(bundle_go(b, yielder(SWITCHES / 2)) == 0);
    PERF_CHECK(bundle_wait(b, -1) == 0);
    int64_t ns = perf_ns() - start;
    PERF_CHECK(hclose(b) == 0);
    return ns;
}

#if defined HAVE_SWAPCONTEXT
static ucontext_t main_uc, uc_a, uc_b;

static void swapper_a(void) {
    for(int i = 0; i < SWITCHES / 2; i++) swapcontext(&uc_a, &uc_b);
    /* Returning resumes main through uc_link; uc_b stays suspended. */
}

static void swapper_b(void) {
    for(;;) swapcontext(&uc_b, &uc_a);
}

static void make_uc(ucontext_t *uc, void (*fn)(void)) {
    static const size_t size = 64 * 1024;
    PERF_CHECK(getcontext(uc) == 0);
    uc->uc_stack.ss_sp = malloc(size);
    PERF_CHECK(uc->uc_stack.ss_sp);
    uc->uc_stack.ss_size = size;
    uc->uc_link = &main_uc;
    makecontext(uc, fn, 0);
}

static int64_t swapcontext_ns(void) {
    make_uc(&uc_a, swapper_a);
    make_uc(&uc_b, swapper_b);
    int64_t start = perf_ns();
    PERF_CHECK(swapcontext(&main_uc, &uc_a) == 0);
    int64_t ns = perf_ns() - start;
    free(uc_a.uc_stack.ss_sp);
    free(uc_b.uc_stack.ss_sp);
    return ns;
}
#endif

static int64_t least(int64_t best, int64_t ns) {
    return best < 0 || ns < best ? ns : best;
}

int main(int argc, char **argv) {
    int with_swapcontext = 0;
#if defined HAVE_SWAPCONTEXT
    with_swapcontext = !(argc > 1 && strcmp(argv[1], "--no-swapcontext") == 0);
#endif
    int64_t dill = -1, glibc = -1;
    for(int round = 0; round < ROUNDS; round++) {
        dill = least(dill, libdill_ns());
#if defined HAVE_SWAPCONTEXT
        if(with_swapcontext) glibc = least(glibc, swapcontext_ns());
#endif
    }
    perf_report("ctxswitch", dill, SWITCHES);
    if(!with_swapcontext) {
#if !defined HAVE_SWAPCONTEXT
        printf("ctxswitch_swapcontext: not measured, this libc has no "
            "swapcontext\n");
#endif
        return 0;
    }
#if defined HAVE_SWAPCONTEXT
    perf_report("ctxswitch_swapcontext", glibc, SWITCHES);
    printf("swapcontext/libdill = %.1fx (best of %d rounds each; target "
        ">= 30x)\n", (double)glibc / (double)dill, ROUNDS);
#endif
    return 0;
}
