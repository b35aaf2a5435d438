/*
 * stack.c: coroutine stacks and the stack-overflow report.
 *
 * Every guarded stack costs two memory mappings (the guard page splits its
 * mapping) and Linux allows about 65,530 per process, so guard pages are
 * used only while mappings last; after that stacks are plain mappings, which
 * the kernel merges with their neighbours, protected by a canary word at
 * their far end that the scheduler checks at every switch.
 *
 * A fault in a guard page is reported by a SIGSEGV handler running on a
 * per-thread alternate signal stack: one line naming the go() call site,
 * then death by SIGSEGV. Other faults go to the program's own handler.
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
#if defined DILL_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

#include "ctx.h"
#include "stack.h"

#define CANARY 0x6c69626469696c6cULL
#define ALTSTACK_SIZE (64 * 1024)
/* Mappings left for the rest of the program when deciding to stop using
   guard pages: malloc arenas, libraries, thread stacks, ... */
#define MAPPINGS_RESERVE 8192

/* Kept near the far end of a cached stack, above the canary: the top may
   still hold the record of the coroutine that is just ending on it. */
struct dill_stack_cached {
    struct dill_stack_cached *next;
    struct dill_stack st;
};

static size_t page_size;
static long guarded_limit;
static long guarded_live; /* updated atomically: stacks are per thread */
static struct sigaction previous_segv;

static void on_segv(int sig, siginfo_t *info, void *uctx);

/* ---- Process-wide setup (once) --------------------------------------- */

static long read_max_map_count(void) {
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if(f) {
        if(fscanf(f, "%ld", &max) != 1) max = 65530;
        fclose(f);
    }
    return max;
}

static void setup_process(void) {
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    guarded_limit = (read_max_map_count() - MAPPINGS_RESERVE) / 2;
    if(guarded_limit < 0) guarded_limit = 0;
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

/* The overflow handler needs a stack of its own in every thread that runs
   coroutines. A program that set one up already keeps it. */
static void setup_altstack(struct dill_stacks *s) {
    stack_t current;
    if(sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE))
        return;
    void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if(mem == MAP_FAILED) return;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if(sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALTSTACK_SIZE);
        return;
    }
    s->altstack = mem;
}

/* ---- Mapping and unmapping ------------------------------------------- */

/* Guarded stacks need no canary; writing one would also cost every idle
   coroutine a second page of memory. */
static void set_canary(struct dill_stack *st) {
    if(st->kind == DILL_STACK_GUARDED) return;
    memcpy(st->lo, &(uint64_t){CANARY}, sizeof(uint64_t));
}

int dill_stack_intact(const struct dill_stack *st) {
    if(st->kind == DILL_STACK_GUARDED) return 1;
    uint64_t word;
    memcpy(&word, st->lo, sizeof(word));
    return word == CANARY;
}

static void register_range(struct dill_stack *st) {
#if defined DILL_VALGRIND
    st->vg_id = VALGRIND_STACK_REGISTER(st->lo, st->hi);
#else
    st->vg_id = 0;
#endif
}

static void deregister_range(struct dill_stack *st) {
#if defined DILL_VALGRIND
    VALGRIND_STACK_DEREGISTER(st->vg_id);
#else
    (void)st;
#endif
}

#if !defined DILL_NOGUARD
static int map_guarded(struct dill_stack *st) {
    if(__atomic_add_fetch(&guarded_live, 1, __ATOMIC_RELAXED) > guarded_limit)
        goto refuse;
    char *base = mmap(NULL, DILL_STACK_SIZE + page_size,
        PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
        MAP_STACK, -1, 0);
    if(base == MAP_FAILED) goto refuse;
    if(mprotect(base, page_size, PROT_NONE) != 0) {
        munmap(base, DILL_STACK_SIZE + page_size);
        goto refuse;
    }
    st->lo = base + page_size;
    st->kind = DILL_STACK_GUARDED;
    return 0;
refuse:
    __atomic_sub_fetch(&guarded_live, 1, __ATOMIC_RELAXED);
    return -1;
}
#endif

static int map_plain(struct dill_stack *st) {
    char *base = mmap(NULL, DILL_STACK_SIZE, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if(base == MAP_FAILED) return -1;
    st->lo = base;
    st->kind = DILL_STACK_PLAIN;
    return 0;
}

static void unmap(struct dill_stack *st) {
    deregister_range(st);
    if(st->kind == DILL_STACK_GUARDED) {
        munmap(st->lo - page_size, DILL_STACK_SIZE + page_size);
        __atomic_sub_fetch(&guarded_live, 1, __ATOMIC_RELAXED);
    } else {
        munmap(st->lo, DILL_STACK_SIZE);
    }
}

/* ---- The cache -------------------------------------------------------- */

static struct dill_stack_cached *cached_header(struct dill_stack *st) {
    return (struct dill_stack_cached *)(st->lo + 16);
}

int dill_stack_get(struct dill_stacks *s, struct dill_stack *st) {
    if(s->cache) {
        struct dill_stack_cached *c = s->cache;
        s->cache = c->next;
        s->ncached--;
        *st = c->st;
        return 0;
    }
    setup();
    if(!s->altstack) setup_altstack(s);
#if defined DILL_NOGUARD
    /* Built without guard pages: every stack relies on its canary. */
    if(map_plain(st) < 0) {
#else
    if(map_guarded(st) < 0 && map_plain(st) < 0) {
#endif
        errno = ENOMEM;
        return -1;
    }
    st->hi = st->lo + DILL_STACK_SIZE;
    set_canary(st);
    register_range(st);
    return 0;
}

int dill_stack_from_mem(struct dill_stack *st, void *mem, size_t len,
      size_t reserve) {
    uintptr_t lo = ((uintptr_t)mem + 7) & ~(uintptr_t)7;
    uintptr_t hi = ((uintptr_t)mem + len) & ~(uintptr_t)15;
    if(hi < lo || hi - lo < reserve + sizeof(uint64_t) + DILL_STACK_MIN) {
        errno = ENOMEM;
        return -1;
    }
    st->lo = (char *)lo;
    st->hi = (char *)hi;
    st->kind = DILL_STACK_CALLER;
    set_canary(st);
    register_range(st);
    return 0;
}

void dill_stack_put(struct dill_stacks *s, struct dill_stack *st) {
    if(st->kind == DILL_STACK_CALLER) {
#if defined DILL_VALGRIND
        dill_stack_settle(s);
        s->unsettled = *st;
        s->has_unsettled = 1;
#endif
        return;
    }
    /* The stack being put back may be the one we are running on, so when
       the cache is full it is another one that gets unmapped. */
    if(s->ncached >= DILL_STACK_CACHE) {
        struct dill_stack_cached *victim = s->cache;
        s->cache = victim->next;
        s->ncached--;
        struct dill_stack copy = victim->st;
        unmap(&copy);
    }
    struct dill_stack copy = *st;
    struct dill_stack_cached *c = cached_header(&copy);
    c->st = copy;
    c->next = s->cache;
    s->cache = c;
    s->ncached++;
}

void dill_stacks_term(struct dill_stacks *s) {
    dill_stack_settle(s);
    while(s->cache) {
        struct dill_stack_cached *c = s->cache;
        s->cache = c->next;
        struct dill_stack copy = c->st;
        unmap(&copy);
    }
    s->ncached = 0;
    if(s->altstack) {
        stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        munmap(s->altstack, ALTSTACK_SIZE);
        s->altstack = NULL;
    }
}

/* ---- The overflow report ---------------------------------------------- */

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
