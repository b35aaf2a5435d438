/*
 * handle.h: the per-thread handle table behind hmake, hquery, hclose and
 * hown. Free numbers form a FIFO, so a released number comes back late.
 */
#ifndef DILL_HANDLE_H_INCLUDED
#define DILL_HANDLE_H_INCLUDED

#include "libdillimpl.h"
#include "utils.h"

struct dill_handle {
    struct dill_hvfs *vfs; /* NULL while the slot is free */
    const void *type;      /* the cached query; NULL while free */
    void *ptr;
    int next;              /* next free slot */
};

struct dill_handles {
    struct dill_handle *slots;
    int count;      /* slots allocated */
    int nfree;      /* slots on the free list */
    int first_free; /* head of the free list, -1 when empty */
    int last_free;
};

void dill_handles_term(struct dill_handles *hs);

/* hquery's cached answer for (h, type), or NULL when there is none (a bad
   number included: hquery itself then says why). type is never NULL, and a
   free slot's is: one compare tells both that h is live and asked. */
static inline void *dill_handle_cached(const struct dill_handles *hs, int h,
      const void *type) {
    if(dill_likely((unsigned)h < (unsigned)hs->count)) {
        const struct dill_handle *s = &hs->slots[h];
        if(dill_likely(s->type == type)) return s->ptr;
    }
    return NULL;
}

#endif
