/*
 * fd.h: waiting for file descriptors (fdin, fdout, fdclean) over the
 * poller backend. Keeps, per fd, the clause of the coroutine waiting in
 * each direction.
 */
#ifndef DILL_FD_H_INCLUDED
#define DILL_FD_H_INCLUDED

#include "poller.h"

#define DILL_FD_EVENTS 128

struct dill_fd_waiters;

struct dill_fds {
    struct dill_poller *poller;
    struct dill_fd_waiters *table; /* indexed by fd, grown on demand */
    int size;
    struct dill_poller_event events[DILL_FD_EVENTS];
};

int dill_fds_init(struct dill_fds *fds);
void dill_fds_term(struct dill_fds *fds);

/* The library is about to close fd (a socket handle is being closed):
   wake whoever waits on it with EBADF and forget it in the poller, so a
   new descriptor with the same number starts afresh. A woken operation
   must not touch its socket object again: it may be gone. */
void dill_fd_forget(int fd);

/* Wait up to timeout ms for fds and wake their waiters; returns how many
   coroutines were woken. */
int dill_fds_poll(struct dill_fds *fds, int timeout);

#endif
