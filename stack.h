/*
 * stack.h: coroutine stacks. Library stacks are mmap'd, 256 KiB, with a
 * guard page below while memory mappings last, then with a canary word at
 * their far end instead; freed stacks go to a per-thread cache. Caller
 * memory (go_mem) gets the canary too.
 */
#ifndef DILL_STACK_H_INCLUDED
#define DILL_STACK_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "utils.h"

#define DILL_STACK_SIZE (256 * 1024)
#define DILL_STACK_CACHE 64
/* The smallest usable stack accepted from caller memory. Under
   AddressSanitizer its runtime takes about 4 KiB of the coroutine's stack
   at every switch, so the minimum grows by that much. */
#if defined DILL_ASAN
#define DILL_STACK_MIN (1024 + 4096)
#else
#define DILL_STACK_MIN 1024
#endif

enum dill_stack_kind {
    DILL_STACK_GUARDED, /* mmap'd with a PROT_NONE page just below lo */
    DILL_STACK_PLAIN,   /* mmap'd, no guard page: canary at lo */
    DILL_STACK_CALLER   /* caller memory: canary at lo, never freed */
};

/* The usable range of one stack: [lo, hi), growing down from hi. */
struct dill_stack {
    char *lo;
    char *hi;
    uint8_t kind;
    unsigned vg_id; /* valgrind's id for the registered range */
};

struct dill_stack_cached;

/* Per-thread stack state. */
struct dill_stacks {
    struct dill_stack_cached *cache; /* LIFO of free library stacks */
    int ncached;
    void *altstack; /* this thread's signal stack, NULL until needed */
#if defined DILL_VALGRIND
    struct dill_stack unsettled; /* caller memory just given back */
    int has_unsettled;
#endif
};

/* A library stack, from the cache or freshly mapped. -1 and errno
   (ENOMEM) on failure. */
int dill_stack_get(struct dill_stacks *s, struct dill_stack *st);

/* Describe caller memory as a stack; -1/ENOMEM if it cannot hold
   reserve bytes at its top plus DILL_STACK_MIN of usable stack. */
int dill_stack_from_mem(struct dill_stack *st, void *mem, size_t len,
    size_t reserve);

/* Give a stack back: library stacks go to the cache (or are unmapped when
   the cache is full, never this one), caller memory is left alone. The
   stack may still be the one running: it is not unmapped. */
void dill_stack_put(struct dill_stacks *s, struct dill_stack *st);

/* Valgrind only: hand caller memory given back by a finished coroutine
   back to the program. Valgrind marks stack memory inaccessible as frames
   return, so this is inline: the epilogue calls it as its last step, with
   no frame left to return from on that stack. */
#if defined DILL_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
static inline void dill_stack_settle(struct dill_stacks *s) {
    if(!s->has_unsettled) return;
    s->has_unsettled = 0;
    VALGRIND_STACK_DEREGISTER(s->unsettled.vg_id);
    VALGRIND_MAKE_MEM_UNDEFINED(s->unsettled.lo,
        s->unsettled.hi - s->unsettled.lo);
}
#else
static inline void dill_stack_settle(struct dill_stacks *s) { (void)s; }
#endif

/* Whether the canary at the far end of the stack is intact. */
int dill_stack_intact(const struct dill_stack *st);

/* Release the cache and the signal stack (thread exit). */
void dill_stacks_term(struct dill_stacks *s);

/* Report an overflow of the coroutine launched at file:line and die. */
__attribute__((noreturn)) void dill_stack_overflowed(const char *file,
    int line);

#endif
