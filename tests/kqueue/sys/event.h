/*
 * tests/kqueue/sys/event.h: the BSD <sys/event.h>, for Linux test builds
 * only. Declares the kqueue API with FreeBSD's names and values; the calls
 * go to the epoll-based emulation in tests/kqueue/kqueue_emul.c under names
 * of their own (dill_kqemu_*), so nothing clashes with libc. Only
 * poller_kqueue.c includes it, when built by tests/poller.mk.
 */
#ifndef DILL_TESTS_KQUEUE_SYS_EVENT_H
#define DILL_TESTS_KQUEUE_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

struct kevent {
    uintptr_t ident;     /* the file descriptor */
    short filter;        /* EVFILT_READ or EVFILT_WRITE */
    unsigned short flags;
    unsigned int fflags;
    int64_t data;        /* errno in an EV_ERROR entry */
    void *udata;
};

#define EV_SET(kevp, a, b, c, d, e, f) \
    do { \
        struct kevent *ev_set_kevp__ = (kevp); \
        ev_set_kevp__->ident = (a); \
        ev_set_kevp__->filter = (b); \
        ev_set_kevp__->flags = (c); \
        ev_set_kevp__->fflags = (d); \
        ev_set_kevp__->data = (e); \
        ev_set_kevp__->udata = (f); \
    } while(0)

/* Filters. The emulation implements these two. */
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)

/* Actions and flags of a change. */
#define EV_ADD 0x0001      /* add the filter, or modify it; enables it */
#define EV_DELETE 0x0002   /* remove the filter */
#define EV_ENABLE 0x0004   /* report its events again */
#define EV_DISABLE 0x0008  /* keep it, but report nothing */
#define EV_ONESHOT 0x0010  /* remove it after its first event */
#define EV_CLEAR 0x0020    /* edge-triggered: not emulated, EINVAL */
#define EV_RECEIPT 0x0040  /* answer the change with an EV_ERROR entry */
#define EV_DISPATCH 0x0080 /* disable it after each event */

/* Flags of a returned entry. */
#define EV_ERROR 0x4000    /* the answer to a change: data holds its errno */
#define EV_EOF 0x8000      /* hang-up, peer shutdown or error on the fd */

int dill_kqemu_kqueue(void);
int dill_kqemu_kevent(int kq, const struct kevent *changelist, int nchanges,
    struct kevent *eventlist, int nevents, const struct timespec *timeout);

#define kqueue() dill_kqemu_kqueue()
#define kevent(kq, changelist, nchanges, eventlist, nevents, timeout) \
    dill_kqemu_kevent(kq, changelist, nchanges, eventlist, nevents, timeout)

#endif
