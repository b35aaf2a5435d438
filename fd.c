/*
 * fd.c: fdin, fdout and fdclean. Remembers, per fd, the coroutine waiting
 * in each direction (one at most: a second gets EBUSY) and tells the poller
 * backend when a direction gains or loses its waiter. The table grows on
 * demand instead of being sized by RLIMIT_NOFILE up front.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "fd.h"
#include "timer.h"

struct fd_clause {
    struct dill_clause cl;
    int fd;
    int dir;
};

struct dill_fd_waiters {
    struct fd_clause *in;
    struct fd_clause *out;
};

int dill_fds_init(struct dill_fds *fds) {
    fds->poller = dill_poller_init();
    return fds->poller ? 0 : -1;
}

void dill_fds_term(struct dill_fds *fds) {
    dill_poller_term(fds->poller);
    free(fds->table);
    fds->table = NULL;
    fds->size = 0;
}

static int grow(struct dill_fds *fds, int fd) {
    int size = fds->size ? fds->size : 64;
    while(size <= fd) size *= 2;
    struct dill_fd_waiters *table = dill_realloc(fds->table,
        (size_t)size * sizeof(struct dill_fd_waiters));
    if(!table) {
        errno = ENOMEM;
        return -1;
    }
    memset(table + fds->size, 0,
        (size_t)(size - fds->size) * sizeof(struct dill_fd_waiters));
    fds->table = table;
    fds->size = size;
    return 0;
}

static struct fd_clause **waiter(struct dill_fds *fds, int fd, int dir) {
    struct dill_fd_waiters *w = &fds->table[fd];
    return dir == DILL_POLLER_IN ? &w->in : &w->out;
}

DILL_HOT static void withdraw_fd(struct dill_clause *cl) {
    struct fd_clause *fc = dill_cont(cl, struct fd_clause, cl);
    struct dill_fds *fds = &dill_ctx_made()->fds;
    *waiter(fds, fc->fd, fc->dir) = NULL;
    dill_poller_disarm(fds->poller, fc->fd, fc->dir);
}

static inline __attribute__((always_inline)) int fd_wait(int fd, int dir,
      int64_t deadline) {
    struct dill_ctx *ctx = dill_ctx();
    if(!ctx || !dill_may_block(ctx->running)) return -1;
    struct dill_fds *fds = &ctx->fds;
    if(fd < 0) {
        errno = EBADF;
        return -1;
    }
    /* Check the fd is open before growing the table for a huge number. */
    if(fd >= fds->size && (fcntl(fd, F_GETFD) < 0 || grow(fds, fd) < 0))
        return -1;
    if(*waiter(fds, fd, dir)) {
        errno = EBUSY;
        return -1;
    }
    if(dill_poller_arm(fds->poller, fd, dir) < 0) return -1;
    struct dill_tmclause tc;
    if(dill_timer_waitfor(&tc, deadline) < 0) {
        dill_poller_disarm(fds->poller, fd, dir);
        return -1;
    }
    struct fd_clause fc = {.fd = fd, .dir = dir};
    *waiter(fds, fd, dir) = &fc;
    dill_waitfor_cr(ctx->running, &fc.cl, 0, withdraw_fd);
    return dill_wait_err() ? -1 : 0;
}

DILL_HOT DILL_EXPORT int dill_fdin(int fd, int64_t deadline) {
    return fd_wait(fd, DILL_POLLER_IN, deadline);
}

DILL_HOT DILL_EXPORT int dill_fdout(int fd, int64_t deadline) {
    return fd_wait(fd, DILL_POLLER_OUT, deadline);
}

DILL_EXPORT int dill_fdclean(int fd) {
    /* The backend only knows fds that were waited on, all below size; a
       thread without a context has waited on none. */
    struct dill_ctx *ctx = dill_ctx_made();
    if(!ctx) return 0;
    struct dill_fds *fds = &ctx->fds;
    if(fd < 0 || fd >= fds->size) return 0;
    struct dill_fd_waiters *w = &fds->table[fd];
    if(w->in || w->out) {
        errno = EBUSY;
        return -1;
    }
    dill_poller_forget(fds->poller, fd);
    return 0;
}

static int wake(struct dill_fds *fds, int fd, int dir, int err) {
    struct fd_clause **slot = waiter(fds, fd, dir);
    struct fd_clause *fc = *slot;
    if(!fc) return 0;
    *slot = NULL;
    dill_poller_disarm(fds->poller, fd, dir);
    dill_trigger(&fc->cl, err);
    return 1;
}

void dill_fd_forget(int fd) {
    /* Sockets are closed on failure paths before any handle exists, even
       in a thread that has no context yet (and so waits on nothing). */
    struct dill_ctx *ctx = dill_ctx_made();
    if(!ctx) return;
    struct dill_fds *fds = &ctx->fds;
    if(fd < 0 || fd >= fds->size) return;
    wake(fds, fd, DILL_POLLER_IN, EBADF);
    wake(fds, fd, DILL_POLLER_OUT, EBADF);
    dill_poller_forget(fds->poller, fd);
}

DILL_HOT int dill_fds_poll(struct dill_fds *fds, int timeout) {
    int n = dill_poller_wait(fds->poller, timeout, fds->events,
        DILL_FD_EVENTS);
    if(n < 0) {
        /* Only a broken poller gets here (its own fd closed by the program,
           say); waiting on would spin or hang without a word. */
        fprintf(stderr, "libdill: polling failed: %s\n", strerror(errno));
        abort();
    }
    int woken = 0;
    for(int i = 0; i < n; i++) {
        int fd = fds->events[i].fd;
        if(fd >= fds->size) continue;
        if(fds->events[i].events & DILL_POLLER_IN)
            woken += wake(fds, fd, DILL_POLLER_IN, 0);
        if(fds->events[i].events & DILL_POLLER_OUT)
            woken += wake(fds, fd, DILL_POLLER_OUT, 0);
    }
    return woken;
}
