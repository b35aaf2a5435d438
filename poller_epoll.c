/*
 * poller_epoll.c: the Linux backend of poller.h. Registrations are kept
 * across waits: an fd is added once, interest that a new waiter needs is
 * added with one epoll_ctl before the next wait, and interest nobody needs
 * any more is dropped only when epoll reports an event for it. A coroutine
 * that keeps reading one socket therefore costs no epoll_ctl at all.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "alloc.h"
#include "poller.h"
#include "utils.h"

#define MAX_EVENTS 128

struct fd_state {
    uint8_t registered; /* known to the kernel */
    uint8_t kernel;     /* directions the kernel watches */
    uint8_t wanted;     /* directions somebody waits for */
    uint8_t dirty;      /* on the list of changes for the next wait */
};

struct dill_poller {
    int epfd;
    struct fd_state *fds;
    int nfds;
    int *changes; /* fds whose kernel interest must grow */
    int nchanges;
    int capchanges;
    struct epoll_event events[MAX_EVENTS];
};

struct dill_poller *dill_poller_init(void) {
    struct dill_poller *p = dill_calloc(1, sizeof(struct dill_poller));
    if(!p) return NULL;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if(p->epfd < 0) {
        int err = errno;
        free(p);
        errno = err;
        return NULL;
    }
    return p;
}

void dill_poller_term(struct dill_poller *p) {
    if(!p) return;
    close(p->epfd);
    free(p->fds);
    free(p->changes);
    free(p);
}

static int grow(struct dill_poller *p, int fd) {
    int n = p->nfds ? p->nfds : 64;
    while(n <= fd) n *= 2;
    struct fd_state *fds = dill_realloc(p->fds, (size_t)n * sizeof(struct fd_state));
    if(!fds) return -1;
    memset(fds + p->nfds, 0, (size_t)(n - p->nfds) * sizeof(struct fd_state));
    p->fds = fds;
    p->nfds = n;
    return 0;
}

static uint32_t epoll_mask(int dirs) {
    return (dirs & DILL_POLLER_IN ? EPOLLIN : 0) |
        (dirs & DILL_POLLER_OUT ? EPOLLOUT : 0);
}

static int ctl(struct dill_poller *p, int op, int fd, int dirs) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = epoll_mask(dirs);
    ev.data.fd = fd;
    return epoll_ctl(p->epfd, op, fd, &ev);
}

static int add_change(struct dill_poller *p, int fd) {
    if(p->nchanges == p->capchanges) {
        int cap = p->capchanges ? p->capchanges * 2 : 64;
        int *changes = dill_realloc(p->changes, (size_t)cap * sizeof(int));
        if(!changes) return -1;
        p->changes = changes;
        p->capchanges = cap;
    }
    p->changes[p->nchanges++] = fd;
    p->fds[fd].dirty = 1;
    return 0;
}

/* dill_poller_arm when the kernel does not watch the direction yet. */
__attribute__((noinline)) static int arm_new(struct dill_poller *p, int fd,
      int dir) {
    if(fd >= p->nfds && grow(p, fd) < 0) {
        errno = ENOMEM;
        return -1;
    }
    struct fd_state *s = &p->fds[fd];
    if(!s->registered) {
        /* First sight of the fd: register now so errors reach fdin. */
        if(ctl(p, EPOLL_CTL_ADD, fd, s->wanted | dir) < 0) {
            if(errno == EPERM || errno == ELOOP) errno = ENOTSUP;
            return -1;
        }
        s->registered = 1;
        s->kernel = s->wanted | dir;
        s->wanted |= dir;
        return 0;
    }
    s->wanted |= dir;
    if((s->wanted & ~s->kernel) && !s->dirty && add_change(p, fd) < 0) {
        s->wanted &= ~dir;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

DILL_HOT int dill_poller_arm(struct dill_poller *p, int fd, int dir) {
    /* The common case: a socket waited on before, in the same direction.
       The kernel still watches it (interest is dropped lazily). */
    if(dill_likely(fd < p->nfds)) {
        struct fd_state *s = &p->fds[fd];
        if(dill_likely(s->registered && !(dir & ~s->kernel))) {
            s->wanted |= dir;
            return 0;
        }
    }
    return arm_new(p, fd, dir);
}

DILL_HOT void dill_poller_disarm(struct dill_poller *p, int fd, int dir) {
    /* Lazy: the kernel keeps watching until an unwanted event shows up. */
    p->fds[fd].wanted &= ~dir;
}

void dill_poller_forget(struct dill_poller *p, int fd) {
    if(fd < 0 || fd >= p->nfds) return;
    struct fd_state *s = &p->fds[fd];
    /* The fd may be closed already; the kernel then forgot it itself. */
    if(s->registered) epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
    /* A pending change is skipped: dirty is cleared with the rest. */
    memset(s, 0, sizeof(*s));
}

/* Bring the kernel's interest up to date with an fd's waiters. Returns
   the directions to report as ready at once when the fd turned out to
   be gone (closed without fdclean): the waiters then see the error
   when they do their I/O. */
static int update(struct dill_poller *p, int fd) {
    struct fd_state *s = &p->fds[fd];
    if(s->wanted == s->kernel) return 0;
    if(s->wanted == 0) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
        s->registered = 0;
        s->kernel = 0;
        return 0;
    }
    int rc = ctl(p, EPOLL_CTL_MOD, fd, s->wanted);
    /* Closed and maybe reopened under the same number: add it afresh. */
    if(rc < 0 && errno == ENOENT) rc = ctl(p, EPOLL_CTL_ADD, fd, s->wanted);
    if(rc < 0) {
        /* Forget it: the next arm registers afresh and reports EBADF, or
           what the kernel says then. The kernel may still hold the fd (a
           MOD that failed for want of memory): drop it there too, or that
           fresh ADD would fail with EEXIST for ever. */
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
        s->registered = 0;
        s->kernel = 0;
        return s->wanted;
    }
    s->kernel = s->wanted;
    return 0;
}

static int apply_changes(struct dill_poller *p,
      struct dill_poller_event *events, int max) {
    int n = 0;
    for(int i = 0; i < p->nchanges; i++) {
        int fd = p->changes[i];
        struct fd_state *s = &p->fds[fd];
        if(!s->dirty) continue;
        s->dirty = 0;
        int broken = s->registered ? update(p, fd) : 0;
        if(broken && n < max) {
            events[n].fd = fd;
            events[n].events = broken;
            n++;
        }
    }
    p->nchanges = 0;
    return n;
}

static int ready_dirs(uint32_t ev) {
    if(ev & (EPOLLERR | EPOLLHUP)) return DILL_POLLER_IN | DILL_POLLER_OUT;
    return (ev & EPOLLIN ? DILL_POLLER_IN : 0) |
        (ev & EPOLLOUT ? DILL_POLLER_OUT : 0);
}

DILL_HOT int dill_poller_wait(struct dill_poller *p, int timeout,
      struct dill_poller_event *events, int max) {
    int n = apply_changes(p, events, max);
    if(n >= max) return n;
    if(n > 0) timeout = 0;
    if(max - n > MAX_EVENTS) max = n + MAX_EVENTS;
    int got = epoll_wait(p->epfd, p->events, max - n, timeout);
    if(got < 0) return errno == EINTR ? n : -1;
    for(int i = 0; i < got; i++) {
        int fd = p->events[i].data.fd;
        struct fd_state *s = &p->fds[fd];
        int ready = ready_dirs(p->events[i].events);
        /* Interest nobody needs any more: drop it now. */
        if(ready & ~s->wanted) update(p, fd);
        if(ready & s->wanted) {
            events[n].fd = fd;
            events[n].events = ready & s->wanted;
            n++;
        }
    }
    return n;
}
