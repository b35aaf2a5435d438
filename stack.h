/*
 * stack.h: coroutine stacks. Library stacks are 256 KiB slots carved from
 * per-thread mappings of DILL_STACK_CHUNK slots each, with a guard page
 * below every slot while memory mappings last, then with a canary word
 * just below their far end instead. Freed slots are reused, most recently
 * freed first; a mapping with no live slot is unmapped once a second one
 * is empty too. Caller memory (go_mem) gets a canary at its far end.
 */
#ifndef DILL_STACK_H_INCLUDED
#define DILL_STACK_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "utils.h"

#define DILL_STACK_SIZE (256 * 1024)
/* Slots per mapping: a mapping is the unit of mmap and munmap. */
#define DILL_STACK_CHUNK 64
/* The smallest usable stack accepted from caller memory. Under
   AddressSanitizer its runtime takes about 4 KiB of the coroutine's stack
   at every switch, so the minimum grows by that much. */
#if defined DILL_ASAN
#define DILL_STACK_MIN (1024 + 4096)
#else
#define DILL_STACK_MIN 1024
#endif

enum dill_stack_kind {
    DILL_STACK_GUARDED, /* library slot with a PROT_NONE page just below lo */
    DILL_STACK_PLAIN,   /* library slot, no guard page: canary below lo */
    DILL_STACK_CALLER   /* caller memory: canary at lo, never freed */
};

struct dill_stack_chunk;

/* The usable range of one stack: [lo, hi), growing down from hi. */
struct dill_stack {
    char *lo;
    char *hi;
    struct dill_stack_chunk *chunk; /* the mapping of a library slot */
    uint16_t slot;                  /* its index there */
    uint8_t kind;
    unsigned vg_id; /* valgrind's id for the registered range */
};

/* Per-thread stack state. */
struct dill_stacks {
    struct dill_stack_chunk *partial; /* mappings with a free slot, the one
                                         most recently freed into first */
    struct dill_stack_chunk *empty;   /* a mapping with no live slot, kept */
    struct dill_stack_chunk *all;     /* every mapping of the thread */
    void *altstack; /* this thread's signal stack, NULL until needed */
#if defined DILL_VALGRIND
    struct dill_stack unsettled; /* caller memory just given back */
    int has_unsettled;
#endif
};

/* A library stack: the slot freed last, or a new one. -1 and errno
   (ENOMEM) on failure. */
int dill_stack_get(struct dill_stacks *s, struct dill_stack *st);

/* Describe caller memory as a stack; -1/ENOMEM if it cannot hold
   reserve bytes at its top plus DILL_STACK_MIN of usable stack. */
int dill_stack_from_mem(struct dill_stack *st, void *mem, size_t len,
    size_t reserve);

/* Give a stack back: a library slot becomes free (its mapping may be
   unmapped later, never now), caller memory is left alone. The stack may
   still be the one running. */
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

/* Unmap the mappings with no live slot and release the signal stack
   (thread exit). Mappings of coroutines still alive are left mapped. */
void dill_stacks_term(struct dill_stacks *s);

/* overflow.c: install the overflow report (once per process) and this
   thread's signal stack; release that signal stack. */
void dill_overflow_watch(struct dill_stacks *s);
void dill_overflow_unwatch(struct dill_stacks *s);

/* Report an overflow of the coroutine launched at file:line and die. */
__attribute__((noreturn)) void dill_stack_overflowed(const char *file,
    int line);

#endif
