/*
 * iol.c: iolist validation. A loop is found by marking visited elements
 * in iol_rsvd (which callers must pass as 0) and unmarking them before
 * returning, whatever the outcome, so the caller's list is unchanged.
 */
#include "config.h"

#include <errno.h>

#include "iol.h"

static void unmark(struct dill_iolist *first, size_t marked) {
    for(struct dill_iolist *it = first; marked; it = it->iol_next, marked--)
        it->iol_rsvd = 0;
}

int dill_iol_check_list(struct dill_iolist *first,
      struct dill_iolist *last, size_t *len) {
    if(!first || !last || last->iol_next) {
        errno = EINVAL;
        return -1;
    }
    if(first == last) {
        /* The common one-element list: nothing to walk. */
        if(first->iol_rsvd != 0) {
            errno = EINVAL;
            return -1;
        }
        *len = first->iol_len;
        return 0;
    }
    size_t marked = 0;
    size_t total = 0;
    int reached = 0;
    struct dill_iolist *it;
    for(it = first; it; it = it->iol_next) {
        /* Non-zero: a loop back to a marked element, or a bad caller. */
        if(it->iol_rsvd != 0) break;
        it->iol_rsvd = 1;
        marked++;
        total += it->iol_len;
        if(it == last) reached = 1;
    }
    unmark(first, marked);
    if(it || !reached) {
        errno = EINVAL;
        return -1;
    }
    *len = total;
    return 0;
}
