/*
 * iol.h: checking and walking iolists (struct dill_iolist), shared by the
 * socket layers.
 */
#ifndef DILL_IOL_H_INCLUDED
#define DILL_IOL_H_INCLUDED

#include <stddef.h>

#include "libdill.h"

/* Every rule of an iolist: first and last non-NULL, last reachable from
   first and ending the chain, no loop, iol_rsvd 0 everywhere. Stores the
   total length in *len. 0, or -1/EINVAL; the list is left unchanged. */
int dill_iol_check_list(struct dill_iolist *first, struct dill_iolist *last,
    size_t *len);

/* The one-element list (every bsend and brecv) is checked inline. */
static inline int dill_iol_check(struct dill_iolist *first,
      struct dill_iolist *last, size_t *len) {
    if(first && first == last && !first->iol_next && !first->iol_rsvd) {
        *len = first->iol_len;
        return 0;
    }
    return dill_iol_check_list(first, last, len);
}

#endif
