/*
 * stack.c: coroutine stacks, carved as slots from per-thread mappings of
 * DILL_STACK_CHUNK slots (a chunk), so that starting a coroutine costs no
 * system call and finishing one none either: one mmap and one munmap serve
 * 64 stacks, and a new coroutine touches a single page of memory, the top
 * one, which holds its record and its first frames.
 *
 * Guard pages: an mprotect'ed guard page costs two memory mappings (it
 * splits its mapping) and Linux allows about 65,530 per process, so chunks
 * get guard pages only while that many mappings would last, about 28,000
 * stacks. Linux 6.13 and later make them page-table markers instead
 * (MADV_GUARD_INSTALL), all 64 of a chunk in one process_madvise call,
 * which leaves the mappings to the program and costs a third of mprotect;
 * they are used once a probe has seen one fault (an emulator may accept
 * them and enforce nothing).
 * The limit stays: a guard still costs about a quarter of starting a
 * coroutine, and a million coroutines should start as fast as goroutines.
 * Beyond it a chunk is one plain mapping laid out as
 *
 *     [pad page][slot 0][slot 1] ... [slot 63]
 *
 * and the canary of slot k is the last word of the slot below it, in the
 * 16 bytes every slot keeps free above its usable range (the pad page for
 * slot 0). Slots are carved from the bottom up, so that word sits in a page
 * the slot below has already touched: the canary costs no memory. The
 * scheduler checks it whenever the coroutine switches away.
 *
 * Free slots are reused most recently freed first; the partial list keeps
 * the chunk last freed into at its head. A chunk whose last slot is freed
 * is kept as the spare; when a second one empties, the older spare is
 * released (never the new one: its slot may be the stack running now):
 * with MADV_FREE if every slot has a guard page, so that reusing it costs
 * no page fault while the kernel has not taken the pages back, else by
 * unmapping it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined DILL_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

#include "alloc.h"
#include "stack.h"

#define CANARY 0x6c69626469696c6cULL
/* Kept free above every slot's usable range: the next slot's canary. */
#define SLOT_TOP 16
#define NO_SLOT 0xffff
/* Mappings left for the rest of the program when deciding to stop using
   guard pages: malloc arenas, libraries, thread stacks, ... */
#define MAPPINGS_RESERVE 8192
#if !defined MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* Guarded chunks are counted in guarded_live, whatever their kind. */
enum guard_kind {
    GUARD_NONE,     /* plain layout, canaries */
    GUARD_MPROTECT, /* guard pages mprotect'ed as slots are carved */
    GUARD_MARKER    /* guard markers, all made with the chunk */
};

struct dill_stack_chunk {
    struct dill_stack_chunk *prev; /* in the partial list */
    struct dill_stack_chunk *next;
    struct dill_stack_chunk *all_prev; /* in the list of all the chunks */
    struct dill_stack_chunk *all_next;
    char *base;
    size_t len;
    char *first;       /* lo of slot 0 */
    size_t stride;     /* from one slot's lo to the next */
    uint8_t guard;     /* enum guard_kind; laid out with a guard page below
                          each slot unless GUARD_NONE */
    uint16_t carved;   /* slots handed out at least once, from the bottom */
    uint16_t live;     /* slots in use */
    uint16_t free_head; /* LIFO of free carved slots, through next_free */
    uint16_t next_free[DILL_STACK_CHUNK];
    uint8_t kind[DILL_STACK_CHUNK];
#if defined DILL_VALGRIND
    unsigned vg_id[DILL_STACK_CHUNK];
#endif
};

static size_t page_size;
static long guarded_limit;  /* guard pages the process may have */
static long guarded_live;   /* updated atomically: chunks are per thread */
static int markers_state;   /* enum markers_state, updated atomically */

/* Whether guard markers fault, found out once per process. */
enum markers_state {
    MARKERS_UNKNOWN, /* not probed yet, or the probe could not tell */
    MARKERS_WORK,
    MARKERS_FAIL     /* refused, or accepted and not enforced */
};

/* ---- Process-wide figures ---------------------------------------------- */

static long read_max_map_count(void) {
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if(f) {
        if(fscanf(f, "%ld", &max) != 1) max = 65530;
        fclose(f);
    }
    return max;
}

/* Racing threads compute the same values, so no lock is needed. */
static void read_limits(void) {
    if(page_size) return;
    long limit = (read_max_map_count() - MAPPINGS_RESERVE) / 2;
    guarded_limit = limit < 0 ? 0 : limit;
    __atomic_store_n(&page_size, (size_t)sysconf(_SC_PAGESIZE),
        __ATOMIC_RELEASE);
}

/* Reserve the guard pages of a whole chunk; 0 when mappings run short. */
static int reserve_guards(void) {
#if defined DILL_NOGUARD
    return 0;
#else
    long n = __atomic_add_fetch(&guarded_live, DILL_STACK_CHUNK,
        __ATOMIC_RELAXED);
    if(n <= guarded_limit) return 1;
    __atomic_sub_fetch(&guarded_live, DILL_STACK_CHUNK, __ATOMIC_RELAXED);
    return 0;
#endif
}

/* ---- Canaries ---------------------------------------------------------- */

static uint64_t *canary_of(const struct dill_stack *st) {
    /* Library slots keep theirs in the word just below lo. */
    if(st->kind == DILL_STACK_CALLER) return (uint64_t *)st->lo;
    return (uint64_t *)st->lo - 1;
}

int dill_stack_intact(const struct dill_stack *st) {
    if(st->kind == DILL_STACK_GUARDED) return 1;
    uint64_t word;
    memcpy(&word, canary_of(st), sizeof(word));
    return word == CANARY;
}

static void set_canary(const struct dill_stack *st) {
    memcpy(canary_of(st), &(uint64_t){CANARY}, sizeof(uint64_t));
}

/* ---- Valgrind ------------------------------------------------------------ */

static unsigned register_range(char *lo, char *hi) {
#if defined DILL_VALGRIND
    return VALGRIND_STACK_REGISTER(lo, hi);
#else
    (void)lo; (void)hi;
    return 0;
#endif
}

static void deregister_chunk(struct dill_stack_chunk *c) {
#if defined DILL_VALGRIND
    for(int k = 0; k < c->carved; k++) VALGRIND_STACK_DEREGISTER(c->vg_id[k]);
#else
    (void)c;
#endif
}

/* ---- Chunk layout ---------------------------------------------------------- */

static char *slot_lo(const struct dill_stack_chunk *c, int k) {
    return c->first + (size_t)k * c->stride;
}

static size_t chunk_len(int guard) {
    if(guard != GUARD_NONE) return DILL_STACK_CHUNK * (DILL_STACK_SIZE + page_size);
    return page_size + DILL_STACK_CHUNK * (size_t)DILL_STACK_SIZE;
}

/* ---- The partial list ------------------------------------------------------- */

static void unlink_chunk(struct dill_stacks *s, struct dill_stack_chunk *c) {
    if(c->prev) c->prev->next = c->next;
    else s->partial = c->next;
    if(c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void push_chunk(struct dill_stacks *s, struct dill_stack_chunk *c) {
    c->prev = NULL;
    c->next = s->partial;
    if(s->partial) s->partial->prev = c;
    s->partial = c;
}

/* ---- Mapping and unmapping chunks ---------------------------------------- */

/* All the guard markers of a chunk in one call, through a pidfd of our
   own process; 0 if that is not available. */
static int install_markers_at_once(struct dill_stack_chunk *c) {
#if defined SYS_process_madvise && defined SYS_pidfd_open
    struct iovec iov[DILL_STACK_CHUNK];
    for(int k = 0; k < DILL_STACK_CHUNK; k++) {
        iov[k].iov_base = slot_lo(c, k) - page_size;
        iov[k].iov_len = page_size;
    }
    int err = errno;
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if(pidfd < 0) { errno = err; return 0; }
    long done = syscall(SYS_process_madvise, pidfd, iov, DILL_STACK_CHUNK,
        MADV_GUARD_INSTALL, 0);
    close(pidfd);
    errno = err;
    return done == (long)(DILL_STACK_CHUNK * page_size);
#else
    (void)c;
    return 0;
#endif
}

/* A marker on a page of its own, then a write(2) from that page to a
   pipe: a marker that works makes the kernel's copy fail with EFAULT, with
   no signal. qemu-user accepts MADV_GUARD_INSTALL and ignores it, so there
   the write succeeds and markers are not used (mprotect still works under
   qemu). Seven system calls, once per process. MARKERS_UNKNOWN when memory
   or a descriptor is lacking: the probe is tried again for the next chunk. */
static int probe_markers(void) {
#if !defined __linux__
    return MARKERS_FAIL;
#else
    int err = errno;
    int state = MARKERS_UNKNOWN;
    char *page = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if(page == MAP_FAILED) return state;
    int p[2];
    if(madvise(page, page_size, MADV_GUARD_INSTALL) != 0) {
        if(errno == EINVAL) state = MARKERS_FAIL;
    } else if(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
        ssize_t n = write(p[1], page, 1);
        state = n < 0 && errno == EFAULT ? MARKERS_WORK : MARKERS_FAIL;
        close(p[0]);
        close(p[1]);
    }
    munmap(page, page_size);
    errno = err;
    return state;
#endif
}

/* Whether this chunk may use markers; racing threads probe alike. */
static int markers_usable(void) {
    int state = __atomic_load_n(&markers_state, __ATOMIC_RELAXED);
    if(state == MARKERS_UNKNOWN) {
        state = probe_markers();
        if(state != MARKERS_UNKNOWN)
            __atomic_store_n(&markers_state, state, __ATOMIC_RELAXED);
    }
    return state == MARKERS_WORK;
}

/* Guard markers for every slot; 0 when the kernel has none. */
static int install_markers(struct dill_stack_chunk *c) {
    if(!markers_usable()) return 0;
    if(install_markers_at_once(c)) {
        memset(c->kind, DILL_STACK_GUARDED, sizeof(c->kind));
        return 1;
    }
    int err = errno;
    for(int k = 0; k < DILL_STACK_CHUNK; k++) {
        char *guard = slot_lo(c, k) - page_size;
        c->kind[k] = DILL_STACK_GUARDED;
        if(madvise(guard, page_size, MADV_GUARD_INSTALL) == 0) continue;
        if(errno == EINVAL && k == 0) {
            __atomic_store_n(&markers_state, MARKERS_FAIL, __ATOMIC_RELAXED);
            errno = err;
            return 0;
        }
        /* Out of memory for page tables: that slot gets a canary. */
        c->kind[k] = DILL_STACK_PLAIN;
    }
    errno = err;
    return 1;
}

static int map_chunk(struct dill_stack_chunk *c) {
    c->len = chunk_len(c->guard);
    c->base = dill_mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
        MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if(c->base == MAP_FAILED) return -1;
    /* Guarded: a guard page below each slot; plain: one pad page below. */
    c->first = c->base + page_size;
    c->stride = DILL_STACK_SIZE;
    if(c->guard != GUARD_NONE) c->stride += page_size;
    /* A huge page would make every stack it covers resident at once. */
    madvise(c->base, c->len, MADV_NOHUGEPAGE);
    return 0;
}

/* Guard pages while mappings last (markers if the kernel has them, else
   mprotect), canaries after that. */
static int map_guarded_chunk(struct dill_stack_chunk *c) {
    if(reserve_guards()) {
        c->guard = GUARD_MARKER;
        if(map_chunk(c) == 0) {
            if(install_markers(c)) return 0;
            c->guard = GUARD_MPROTECT;
            return 0;
        }
        __atomic_sub_fetch(&guarded_live, DILL_STACK_CHUNK, __ATOMIC_RELAXED);
        return -1;
    }
    c->guard = GUARD_NONE;
    return map_chunk(c);
}

__attribute__((noinline, cold))
static struct dill_stack_chunk *chunk_new(struct dill_stacks *s) {
    read_limits();
    dill_overflow_watch(s);
    struct dill_stack_chunk *c = dill_calloc(1, sizeof(*c));
    if(!c) return NULL;
    if(map_guarded_chunk(c) < 0) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->free_head = NO_SLOT;
    push_chunk(s, c);
    c->all_next = s->all;
    if(s->all) s->all->all_prev = c;
    s->all = c;
    return c;
}

/* Forget a chunk; unmap it unless coroutines still live on it (a thread
   that ends with coroutines alive leaves their stacks behind). */
static void chunk_free(struct dill_stacks *s, struct dill_stack_chunk *c) {
    if(c->live != DILL_STACK_CHUNK) unlink_chunk(s, c);
    if(c->all_prev) c->all_prev->all_next = c->all_next;
    else s->all = c->all_next;
    if(c->all_next) c->all_next->all_prev = c->all_prev;
    if(c->live == 0) {
        deregister_chunk(c);
        munmap(c->base, c->len);
        if(c->guard != GUARD_NONE)
            __atomic_sub_fetch(&guarded_live, DILL_STACK_CHUNK,
                __ATOMIC_RELAXED);
    }
    free(c);
}

/* A slot used for the first time: its guard page or its canary. */
__attribute__((noinline))
static void carve(struct dill_stack_chunk *c, int k) {
    char *lo = slot_lo(c, k);
    if(c->guard == GUARD_MPROTECT)
        c->kind[k] = mprotect(lo - page_size, page_size, PROT_NONE) == 0 ?
            DILL_STACK_GUARDED : DILL_STACK_PLAIN;
    else if(c->guard == GUARD_NONE)
        c->kind[k] = DILL_STACK_PLAIN;
    /* A slot of a guarded chunk that did not get its guard page keeps its
       canary there, at the cost of that page. */
    struct dill_stack st = {.lo = lo, .kind = c->kind[k]};
    if(st.kind == DILL_STACK_PLAIN) set_canary(&st);
#if defined DILL_VALGRIND
    c->vg_id[k] = register_range(lo, lo + DILL_STACK_SIZE - SLOT_TOP);
#endif
}

/* ---- Getting and putting stacks ---------------------------------------- */

int dill_stack_get(struct dill_stacks *s, struct dill_stack *st) {
    struct dill_stack_chunk *c = s->partial;
    if(dill_unlikely(!c)) {
        c = chunk_new(s);
        if(!c) return -1;
    }
    int k = c->free_head;
    if(dill_likely(k != NO_SLOT)) {
        c->free_head = c->next_free[k];
    } else {
        k = c->carved++;
        carve(c, k);
    }
    /* Only a chunk with no live slot can be the spare. */
    if(dill_unlikely(c->live++ == 0) && s->empty == c) s->empty = NULL;
    if(dill_unlikely(c->live == DILL_STACK_CHUNK)) unlink_chunk(s, c);
    st->lo = slot_lo(c, k);
    st->hi = st->lo + DILL_STACK_SIZE - SLOT_TOP;
    st->chunk = c;
    st->slot = (uint16_t)k;
    st->kind = c->kind[k];
#if defined DILL_VALGRIND
    st->vg_id = c->vg_id[k];
#endif
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
    st->chunk = NULL;
    st->slot = 0;
    st->kind = DILL_STACK_CALLER;
    set_canary(st);
    st->vg_id = register_range(st->lo, st->hi);
    return 0;
}

/* Give an empty chunk's memory back but keep the chunk, when every slot
   carved so far has a guard page: MADV_FREE leaves the pages mapped, for
   the kernel to take only when it runs short, and a slot used again before
   then starts with no page fault (about 2 us each on this project's VMs).
   Guard pages and markers survive it; canaries would not (a page taken
   reads back as zeros), so chunks with a canary are unmapped instead. 0
   when kept. Guarded chunks are few (reserve_guards), so keeping them all
   costs address space that is bounded. */
static int release_lazily(struct dill_stack_chunk *c) {
#if defined MADV_FREE
    if(c->guard == GUARD_NONE || memchr(c->kind, DILL_STACK_PLAIN, c->carved))
        return -1;
    int err = errno;
    int rc = madvise(c->base, c->len, MADV_FREE);
    errno = err;
    return rc;
#else
    (void)c;
    return -1;
#endif
}

/* A chunk with no live slot: keep it as the spare. The spare it replaces
   is released, lazily or by unmapping it (never the new one: its slot may
   be the stack running now). */
__attribute__((noinline))
static void keep_spare(struct dill_stacks *s, struct dill_stack_chunk *c) {
    struct dill_stack_chunk *old = s->empty;
    s->empty = c;
    if(!old || old == c || release_lazily(old) == 0) return;
    chunk_free(s, old);
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
    struct dill_stack_chunk *c = st->chunk;
    c->next_free[st->slot] = c->free_head;
    c->free_head = st->slot;
    /* The chunk freed into goes to the head: its slot is the warmest. A
       full chunk is on no list. */
    if(dill_unlikely(c->live-- == DILL_STACK_CHUNK)) {
        push_chunk(s, c);
    } else if(dill_unlikely(c != s->partial)) {
        unlink_chunk(s, c);
        push_chunk(s, c);
    }
    if(dill_unlikely(c->live == 0)) keep_spare(s, c);
}

void dill_stacks_term(struct dill_stacks *s) {
    dill_stack_settle(s);
    while(s->all) chunk_free(s, s->all);
    s->empty = NULL;
    dill_overflow_unwatch(s);
}
