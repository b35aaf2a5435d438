/*
 * now.h: the millisecond clock behind now() and every deadline.
 */
#ifndef DILL_NOW_H_INCLUDED
#define DILL_NOW_H_INCLUDED

#include <stdint.h>

/* Monotonic milliseconds, possibly cached for up to about a millisecond. */
int64_t dill_now_ms(void);

#endif
