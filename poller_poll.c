/*
 * poller_poll.c: the portable backend of poller.h, over poll(2).
 *
 * Owns a per-fd table (grown on demand) and the pollfd array handed to
 * poll(), which holds exactly the armed fds: arm and disarm edit it in
 * place, so a wait neither rebuilds nor allocates anything. There is no
 * kernel registration, so an fd needs checking only on its first use.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "poller.h"

struct slot {
    int pos;             /* 1 + index in pfds, 0 when nothing is armed */
    unsigned char armed; /* DILL_POLLER_IN/OUT somebody waits in */
    unsigned char known; /* checked open and pollable */
};

struct dill_poller {
    struct slot *slots;
    int nslots;
    struct pollfd *pfds; /* the armed fds, in no particular order */
    int npfds;
    int capfds;
    int next; /* first pfds entry examined by the next wait (fairness) */
};

struct dill_poller *dill_poller_init(void) {
    return dill_calloc(1, sizeof(struct dill_poller));
}

void dill_poller_term(struct dill_poller *p) {
    if(!p) return;
    free(p->slots);
    free(p->pfds);
    free(p);
}

static int grow_slots(struct dill_poller *p, int fd) {
    size_t n = p->nslots ? (size_t)p->nslots : 64;
    while(n <= (size_t)fd) n *= 2;
    struct slot *slots = dill_realloc(p->slots, n * sizeof(struct slot));
    if(!slots) {
        errno = ENOMEM;
        return -1;
    }
    memset(slots + p->nslots, 0, (n - (size_t)p->nslots) * sizeof(struct slot));
    p->slots = slots;
    p->nslots = (int)n;
    return 0;
}

static int grow_pfds(struct dill_poller *p) {
    int cap = p->capfds ? p->capfds * 2 : 64;
    struct pollfd *pfds = dill_realloc(p->pfds, (size_t)cap * sizeof(struct pollfd));
    if(!pfds) {
        errno = ENOMEM;
        return -1;
    }
    p->pfds = pfds;
    p->capfds = cap;
    return 0;
}

/* poll() accepts any descriptor; refuse what epoll would refuse. fstat
   fails with EBADF exactly when fcntl(F_GETFD) would. */
static int check(int fd) {
    struct stat st;
    if(fstat(fd, &st) < 0) return -1;
    if(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        errno = ENOTSUP;
        return -1;
    }
    return 0;
}

static short poll_mask(int dirs) {
    return (short)((dirs & DILL_POLLER_IN ? POLLIN : 0) |
        (dirs & DILL_POLLER_OUT ? POLLOUT : 0));
}

int dill_poller_arm(struct dill_poller *p, int fd, int dir) {
    if(fd < 0) {
        errno = EBADF;
        return -1;
    }
    if(fd >= p->nslots || !p->slots[fd].known) {
        /* Check before growing: a huge closed number must not allocate. */
        if(check(fd) < 0) return -1;
        if(fd >= p->nslots && grow_slots(p, fd) < 0) return -1;
        p->slots[fd].known = 1;
    }
    struct slot *s = &p->slots[fd];
    if(!s->pos) {
        if(p->npfds == p->capfds && grow_pfds(p) < 0) return -1;
        p->pfds[p->npfds].fd = fd;
        p->pfds[p->npfds].revents = 0;
        s->pos = ++p->npfds;
    }
    s->armed |= (unsigned char)dir;
    p->pfds[s->pos - 1].events = poll_mask(s->armed);
    return 0;
}

/* Take fd out of pfds; the last entry fills the hole. */
static void unlist(struct dill_poller *p, struct slot *s) {
    int i = s->pos - 1;
    p->npfds--;
    if(i != p->npfds) {
        p->pfds[i] = p->pfds[p->npfds];
        p->slots[p->pfds[i].fd].pos = i + 1;
    }
    s->pos = 0;
}

void dill_poller_disarm(struct dill_poller *p, int fd, int dir) {
    if(fd < 0 || fd >= p->nslots) return;
    struct slot *s = &p->slots[fd];
    s->armed &= (unsigned char)~dir;
    if(!s->pos) return;
    if(s->armed) p->pfds[s->pos - 1].events = poll_mask(s->armed);
    else unlist(p, s);
}

void dill_poller_forget(struct dill_poller *p, int fd) {
    if(fd < 0 || fd >= p->nslots) return;
    struct slot *s = &p->slots[fd];
    if(s->pos) unlist(p, s);
    memset(s, 0, sizeof(struct slot));
}

/* Directions of s that a pollfd result makes ready. */
static int ready_dirs(struct dill_poller *p, struct pollfd *pfd) {
    struct slot *s = &p->slots[pfd->fd];
    if(pfd->revents & POLLNVAL) {
        /* Closed under us: check it again on the next arm, so that the
           waiter, once its I/O failed, gets EBADF from fdin too. */
        s->known = 0;
        return s->armed;
    }
    if(pfd->revents & (POLLERR | POLLHUP)) return s->armed;
    return ((pfd->revents & POLLIN) ? DILL_POLLER_IN : 0) |
        ((pfd->revents & POLLOUT) ? DILL_POLLER_OUT : 0);
}

int dill_poller_wait(struct dill_poller *p, int timeout,
      struct dill_poller_event *events, int max) {
    int n = poll(p->pfds, (nfds_t)p->npfds, timeout);
    if(n < 0) return errno == EINTR ? 0 : -1;
    int count = 0;
    if(p->next >= p->npfds) p->next = 0;
    /* Start where the previous full batch stopped, so that more than max
       busy fds cannot starve the ones at the end of the array. */
    int i = p->next;
    for(int k = 0; k < p->npfds && n > 0 && count < max; k++) {
        struct pollfd *pfd = &p->pfds[i];
        i = i + 1 == p->npfds ? 0 : i + 1;
        if(!pfd->revents) continue;
        n--;
        int ready = ready_dirs(p, pfd) & p->slots[pfd->fd].armed;
        if(!ready) continue;
        events[count].fd = pfd->fd;
        events[count].events = ready;
        count++;
    }
    p->next = count == max ? i : 0;
    return count;
}
