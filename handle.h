/*
 * handle.h: the per-thread handle table behind hmake, hquery, hclose and
 * hown. Free numbers form a FIFO, so a released number comes back late.
 */
#ifndef DILL_HANDLE_H_INCLUDED
#define DILL_HANDLE_H_INCLUDED

#include "libdillimpl.h"

struct dill_handle;

struct dill_handles {
    struct dill_handle *slots;
    int count;      /* slots allocated */
    int nfree;      /* slots on the free list */
    int first_free; /* head of the free list, -1 when empty */
    int last_free;
};

void dill_handles_term(struct dill_handles *hs);

#endif
