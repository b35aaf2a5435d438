/*
 * tests/kqueue/kqueue_emul.c: a test-only kqueue over epoll, so that make
 * check runs poller_kqueue.c on Linux.
 *
 * It follows FreeBSD's kevent() where poller_kqueue.c depends on it:
 * EVFILT_READ and EVFILT_WRITE are level-triggered and independent per
 * (fd, filter); changes are applied in order before any event is
 * collected; a failed change (EBADF for a descriptor that is not open,
 * ENOENT for a filter that is not registered, EINVAL for an unknown filter)
 * or one flagged EV_RECEIPT is answered by an EV_ERROR entry whose data
 * holds the errno (0 for a receipt), and then no events are collected at
 * all; with no room for that entry kevent() fails with the errno instead
 * and the remaining changes are not applied. EV_EOF marks hang-up, peer
 * shutdown and errors. Closing a descriptor drops its filters, as on BSD:
 * a filter whose descriptor was closed, or replaced by another file under
 * the same number, is found stale by fstat and discarded. Regular files
 * and directories, which epoll refuses, are accepted like on BSD (write
 * always ready, read ready before end of file).
 *
 * Not emulated: other filters, EV_CLEAR (both EINVAL), the data field of
 * events (always 0), and filters on a file that is still open through a
 * dup()ed descriptor after its number was closed.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/event.h"

#define NFILTERS 2

struct note {
    unsigned short flags; /* as registered */
    unsigned int fflags;
    void *udata;
};

/* The filters of one descriptor. */
struct kfd {
    unsigned char filters; /* bit i: filter i registered */
    unsigned char enabled;
    unsigned char in_epoll;
    unsigned char plain; /* regular file or directory: not in epoll */
    dev_t dev;           /* which file the filters belong to */
    ino_t ino;
    struct note notes[NFILTERS];
};

struct kq {
    int epfd;
    struct kfd *fds;
    int nfds;
    int nplain; /* kfds with plain set */
    struct epoll_event *evs;
    int capevs;
};

/* Emulated kqueues by descriptor number (their epoll fd). The owner
   closes it with close(), which the emulation does not see: an entry is
   replaced when epoll_create1 hands out its number again. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kq **registry;
static int nregistry;

static void free_kq(struct kq *q) {
    if(!q) return;
    free(q->fds);
    free(q->evs);
    free(q);
}

int dill_kqemu_kqueue(void) {
    struct kq *q = calloc(1, sizeof(struct kq));
    if(!q) return -1;
    q->epfd = epoll_create1(EPOLL_CLOEXEC);
    if(q->epfd < 0) {
        int err = errno;
        free(q);
        errno = err;
        return -1;
    }
    pthread_mutex_lock(&registry_lock);
    if(q->epfd >= nregistry) {
        int n = q->epfd + 16;
        struct kq **r = realloc(registry, (size_t)n * sizeof(struct kq *));
        if(!r) {
            pthread_mutex_unlock(&registry_lock);
            close(q->epfd);
            free(q);
            errno = ENOMEM;
            return -1;
        }
        memset(r + nregistry, 0, (size_t)(n - nregistry) * sizeof(struct kq *));
        registry = r;
        nregistry = n;
    }
    free_kq(registry[q->epfd]);
    registry[q->epfd] = q;
    pthread_mutex_unlock(&registry_lock);
    return q->epfd;
}

static struct kq *find_kq(int kqfd) {
    pthread_mutex_lock(&registry_lock);
    struct kq *q = kqfd >= 0 && kqfd < nregistry ? registry[kqfd] : NULL;
    pthread_mutex_unlock(&registry_lock);
    return q;
}

static int filter_index(short filter) {
    if(filter == EVFILT_READ) return 0;
    if(filter == EVFILT_WRITE) return 1;
    return -1;
}

static short filter_of(int i) {
    return i == 0 ? EVFILT_READ : EVFILT_WRITE;
}

static int grow_fds(struct kq *q, int fd) {
    int n = q->nfds ? q->nfds : 16;
    while(n <= fd) n = n > INT_MAX / 2 ? INT_MAX : n * 2;
    struct kfd *fds = realloc(q->fds, (size_t)n * sizeof(struct kfd));
    if(!fds) return ENOMEM;
    memset(fds + q->nfds, 0, (size_t)(n - q->nfds) * sizeof(struct kfd));
    q->fds = fds;
    q->nfds = n;
    return 0;
}

/* Drop every filter of fd, as the kernel does when fd is closed. */
static void drop_fd(struct kq *q, int fd) {
    if(fd >= q->nfds) return;
    struct kfd *k = &q->fds[fd];
    /* Fails harmlessly when the file is gone (epoll forgot it then). */
    if(k->in_epoll) epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, NULL);
    if(k->plain) q->nplain--;
    memset(k, 0, sizeof(struct kfd));
}

/* The filters of a descriptor that was closed belong to nobody now. */
static void drop_if_stale(struct kq *q, int fd, const struct stat *st) {
    if(fd >= q->nfds || !q->fds[fd].filters) return;
    struct kfd *k = &q->fds[fd];
    if(!st || k->dev != st->st_dev || k->ino != st->st_ino) drop_fd(q, fd);
}

/* Make epoll watch what the enabled filters of fd need. Returns an errno. */
static int sync_epoll(struct kq *q, int fd) {
    struct kfd *k = &q->fds[fd];
    if(k->plain) return 0;
    uint32_t mask = (k->enabled & 1 ? EPOLLIN | EPOLLRDHUP : 0) |
        (k->enabled & 2 ? EPOLLOUT : 0);
    if(!mask) {
        /* epoll reports hang-ups even with an empty mask: leave it. */
        if(k->in_epoll) epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, NULL);
        k->in_epoll = 0;
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = mask;
    ev.data.fd = fd;
    if(k->in_epoll) {
        if(epoll_ctl(q->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
        if(errno != ENOENT) return errno;
        k->in_epoll = 0;
    }
    if(epoll_ctl(q->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
        k->in_epoll = 1;
        return 0;
    }
    if(errno != EPERM) return errno;
    /* A regular file or directory: kqueue takes it, epoll does not. */
    k->plain = 1;
    q->nplain++;
    return 0;
}

/* Apply one change. Returns 0 or an errno, with nothing changed then. */
static int apply(struct kq *q, const struct kevent *kev) {
    int i = filter_index(kev->filter);
    if(i < 0 || (kev->flags & EV_CLEAR)) return EINVAL;
    if(kev->ident > (uintptr_t)INT_MAX) return EBADF;
    int fd = (int)kev->ident;
    struct stat st;
    if(fstat(fd, &st) < 0) {
        drop_if_stale(q, fd, NULL);
        return EBADF;
    }
    drop_if_stale(q, fd, &st);
    unsigned char bit = (unsigned char)(1 << i);
    if(fd >= q->nfds || !(q->fds[fd].filters & bit)) {
        if(!(kev->flags & EV_ADD)) return ENOENT;
        if(fd >= q->nfds) {
            int err = grow_fds(q, fd);
            if(err) return err;
        }
    }
    struct kfd *k = &q->fds[fd];
    struct kfd saved = *k;
    if(kev->flags & EV_DELETE) {
        k->filters &= (unsigned char)~bit;
        k->enabled &= (unsigned char)~bit;
    }
    else {
        if(kev->flags & EV_ADD) {
            k->filters |= bit;
            k->dev = st.st_dev;
            k->ino = st.st_ino;
            k->notes[i].flags = kev->flags &
                (unsigned short)~(EV_RECEIPT | EV_ENABLE | EV_DISABLE);
            k->notes[i].fflags = kev->fflags;
            k->notes[i].udata = kev->udata;
            k->enabled |= bit;
        }
        if(kev->flags & EV_ENABLE) k->enabled |= bit;
        if(kev->flags & EV_DISABLE) k->enabled &= (unsigned char)~bit;
    }
    int err = sync_epoll(q, fd);
    if(err) {
        *k = saved;
        return err;
    }
    if(!k->filters) drop_fd(q, fd);
    return 0;
}

static int to_ms(const struct timespec *ts) {
    if(ts->tv_sec >= INT_MAX / 1000) return INT_MAX;
    /* Round up: BSD never returns before the timeout. */
    return (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
}

/* Store one event of filter i on fd; apply EV_ONESHOT and EV_DISPATCH. */
static void deliver(struct kq *q, int fd, int i, int eof, struct kevent *ev) {
    struct kfd *k = &q->fds[fd];
    ev->ident = (uintptr_t)fd;
    ev->filter = filter_of(i);
    ev->flags = (unsigned short)(k->notes[i].flags | (eof ? EV_EOF : 0));
    ev->fflags = 0;
    ev->data = 0;
    ev->udata = k->notes[i].udata;
    unsigned char bit = (unsigned char)(1 << i);
    if(k->notes[i].flags & EV_ONESHOT) k->filters &= (unsigned char)~bit;
    if(k->notes[i].flags & (EV_ONESHOT | EV_DISPATCH))
        k->enabled &= (unsigned char)~bit;
}

/* Events of regular files and directories, which epoll cannot watch. */
static int collect_plain(struct kq *q, struct kevent *evl, int nevents) {
    int out = 0;
    for(int fd = 0; fd < q->nfds && q->nplain > 0 && out < nevents; fd++) {
        struct kfd *k = &q->fds[fd];
        if(!k->plain || !k->enabled) continue;
        struct stat st;
        if(fstat(fd, &st) < 0) {
            drop_if_stale(q, fd, NULL);
            continue;
        }
        drop_if_stale(q, fd, &st);
        if(!k->filters) continue;
        int readable = 1;
        if(S_ISREG(st.st_mode)) {
            off_t pos = lseek(fd, 0, SEEK_CUR);
            readable = pos >= 0 && pos < st.st_size;
        }
        if((k->enabled & 1) && readable && out < nevents)
            deliver(q, fd, 0, 0, &evl[out++]);
        if((k->enabled & 2) && out < nevents)
            deliver(q, fd, 1, 0, &evl[out++]);
        if(!k->filters) drop_fd(q, fd);
    }
    return out;
}

/* Turn one epoll event into kevents; returns the new count in evl. */
static int collect_epoll(struct kq *q, const struct epoll_event *e,
      struct kevent *evl, int out, int nevents) {
    int fd = e->data.fd;
    if(fd < 0 || fd >= q->nfds || !q->fds[fd].in_epoll) return out;
    struct kfd *k = &q->fds[fd];
    uint32_t ev = e->events;
    unsigned char before = k->enabled;
    if((k->enabled & 1) && out < nevents &&
          (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        deliver(q, fd, 0, ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR), &evl[out++]);
    if((k->enabled & 2) && out < nevents &&
          (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
        deliver(q, fd, 1, ev & (EPOLLHUP | EPOLLERR), &evl[out++]);
    if(k->enabled != before) sync_epoll(q, fd);
    if(!k->filters) drop_fd(q, fd);
    return out;
}

static int scan(struct kq *q, struct kevent *evl, int nevents,
      const struct timespec *timeout) {
    int ms = -1;
    if(timeout) {
        if(timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
              timeout->tv_nsec >= 1000000000L) {
            errno = EINVAL;
            return -1;
        }
        ms = to_ms(timeout);
    }
    if(nevents == 0) return 0;
    int out = collect_plain(q, evl, nevents);
    if(out == nevents) return out;
    if(out > 0) ms = 0;
    if(nevents - out > q->capevs) {
        struct epoll_event *evs = realloc(q->evs,
            (size_t)(nevents - out) * sizeof(struct epoll_event));
        if(!evs) {
            errno = ENOMEM;
            return -1;
        }
        q->evs = evs;
        q->capevs = nevents - out;
    }
    int n = epoll_wait(q->epfd, q->evs, nevents - out, ms);
    if(n < 0) return out > 0 ? out : -1;
    for(int j = 0; j < n; j++) out = collect_epoll(q, &q->evs[j], evl, out, nevents);
    return out;
}

int dill_kqemu_kevent(int kqfd, const struct kevent *changelist, int nchanges,
      struct kevent *eventlist, int nevents, const struct timespec *timeout) {
    struct kq *q = find_kq(kqfd);
    if(!q) {
        errno = EBADF;
        return -1;
    }
    if(nchanges < 0 || nevents < 0) {
        errno = EINVAL;
        return -1;
    }
    if((nchanges > 0 && !changelist) || (nevents > 0 && !eventlist)) {
        errno = EFAULT;
        return -1;
    }
    int answers = 0;
    for(int i = 0; i < nchanges; i++) {
        /* A copy: eventlist may be the changelist itself. */
        struct kevent kev = changelist[i];
        int err = apply(q, &kev);
        if(!err && !(kev.flags & EV_RECEIPT)) continue;
        if(nevents == 0) {
            /* No room for the answer: FreeBSD stops here. */
            if(!err) return 0;
            errno = err;
            return -1;
        }
        kev.flags = EV_ERROR;
        kev.data = err;
        eventlist[answers++] = kev;
        nevents--;
    }
    if(answers > 0) return answers;
    return scan(q, eventlist, nevents, timeout);
}
