/*
 * overflow.c: the stack-overflow report. A fault in a guard page is
 * reported by a SIGSEGV handler running on a per-thread alternate signal
 * stack: one line naming the go() call site, then death by SIGSEGV. Other
 * faults go to the program's own handler. A clobbered canary (stacks
 * without a guard page) is reported with the same line, then abort().
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined DILL_THREADS
#include <pthread.h>
#endif

#include "alloc.h"
#include "ctx.h"
#include "stack.h"

#define ALTSTACK_SIZE (64 * 1024)

static size_t page_size;
static struct sigaction previous_segv;

static void on_segv(int sig, siginfo_t *info, void *uctx);

static void setup_process(void) {
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
}

#if defined DILL_THREADS
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static void setup(void) { pthread_once(&setup_once, setup_process); }
#else
static int setup_done;
static void setup(void) {
    if(!setup_done) { setup_done = 1; setup_process(); }
}
#endif

/* The handler needs a stack of its own in every thread that runs
   coroutines. A program that set one up already keeps it. */
static void setup_altstack(struct dill_stacks *s) {
    stack_t current;
    if(sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE))
        return;
    void *mem = dill_mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if(mem == MAP_FAILED) return;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if(sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALTSTACK_SIZE);
        return;
    }
    s->altstack = mem;
}

void dill_overflow_watch(struct dill_stacks *s) {
    setup();
    if(!s->altstack) setup_altstack(s);
}

void dill_overflow_unwatch(struct dill_stacks *s) {
    if(!s->altstack) return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(s->altstack, ALTSTACK_SIZE);
    s->altstack = NULL;
}

/* Async-signal-safe: builds the line by hand and writes it at once. */
static void report(const char *file, int line) {
    char buf[512];
    size_t n = 0;
    const char *prefix = "libdill: stack overflow in coroutine started at ";
    for(const char *p = prefix; *p && n < 400; p++) buf[n++] = *p;
    for(const char *p = file ? file : "?"; *p && n < 480; p++) buf[n++] = *p;
    buf[n++] = ':';
    char digits[16];
    int nd = 0;
    unsigned v = line > 0 ? (unsigned)line : 0;
    do { digits[nd++] = (char)('0' + v % 10); v /= 10; } while(v);
    while(nd) buf[n++] = digits[--nd];
    buf[n++] = '\n';
    ssize_t rc = write(STDERR_FILENO, buf, n);
    (void)rc;
}

void dill_stack_overflowed(const char *file, int line) {
    report(file, line);
    abort();
}

static int in_guard_page(const struct dill_cr *cr, const char *addr) {
    return cr->stack.kind == DILL_STACK_GUARDED &&
        addr >= cr->stack.lo - page_size && addr < cr->stack.lo;
}

static void on_segv(int sig, siginfo_t *info, void *uctx) {
    struct dill_ctx *ctx = dill_ctx_current;
    struct dill_cr *cr = ctx ? ctx->running : NULL;
    if(cr && cr != &ctx->main && in_guard_page(cr, info->si_addr)) {
        report(cr->file, cr->line);
        /* Return with the default action: the faulting access repeats and
           the process dies by SIGSEGV. */
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    if(previous_segv.sa_flags & SA_SIGINFO) {
        previous_segv.sa_sigaction(sig, info, uctx);
    } else if(previous_segv.sa_handler != SIG_DFL &&
          previous_segv.sa_handler != SIG_IGN) {
        previous_segv.sa_handler(sig);
    } else {
        /* Not ours and nobody else's: let the fault repeat and take the
           action the program had before us. */
        sigaction(SIGSEGV, &previous_segv, NULL);
    }
}
