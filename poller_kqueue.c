/*
 * poller_kqueue.c: the BSD and macOS backend of poller.h, over kqueue.
 *
 * Owns the thread's kqueue, a per-fd table (grown on demand) of what is
 * armed and which filters the kernel holds, and the changelist that the
 * next kevent() call applies before it collects events. Filters stay
 * registered across waits; one that nobody is armed for is deleted only
 * when its next event shows up, so a coroutine that keeps reading one
 * socket costs no system call besides the wait itself. Only the first
 * registration of an fd is a kevent() call of its own, so that arm can
 * report EBADF and the like to fdin. Linux runs this file in make check
 * over the emulation in tests/kqueue/.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "poller.h"

struct slot {
    unsigned char armed;   /* DILL_POLLER_IN/OUT somebody waits in */
    unsigned char added;   /* filters the kernel holds once the
                              changelist is applied */
    unsigned char known;   /* registered once, errors reported to arm */
    unsigned char pending; /* has entries in the changelist */
    unsigned char failed;  /* on the failed list */
    int out;               /* its entry in the output of the current wait */
};

struct dill_poller {
    int kq;
    struct slot *slots;
    int nslots;
    struct kevent *changes; /* for the next kevent() call */
    int nchanges;
    int capchanges;
    struct kevent *results; /* holds answers to changes, then events */
    int capresults;
    int *failed; /* fds whose change failed: armed directions owe a wake-up;
                    as large as slots, so appending never fails */
    int nfailed;
};

static short filter_of(int dir) {
    return dir == DILL_POLLER_IN ? EVFILT_READ : EVFILT_WRITE;
}

static int dir_of(short filter) {
    if(filter == EVFILT_READ) return DILL_POLLER_IN;
    if(filter == EVFILT_WRITE) return DILL_POLLER_OUT;
    return 0;
}

/* The results array always has room for an answer to every queued change
   plus this many events, so that a wait never has to allocate (it would
   have no way to report the failure). */
#define RESULTS_SLACK 128

static int grow_results(struct dill_poller *p, int capchanges) {
    int cap = capchanges + RESULTS_SLACK;
    struct kevent *results = realloc(p->results,
        (size_t)cap * sizeof(struct kevent));
    if(!results) {
        errno = ENOMEM;
        return -1;
    }
    p->results = results;
    p->capresults = cap;
    return 0;
}

struct dill_poller *dill_poller_init(void) {
    struct dill_poller *p = calloc(1, sizeof(struct dill_poller));
    if(!p) return NULL;
    if(grow_results(p, 0) < 0) {
        free(p);
        errno = ENOMEM;
        return NULL;
    }
    p->kq = kqueue();
    if(p->kq < 0) {
        int err = errno;
        free(p->results);
        free(p);
        errno = err;
        return NULL;
    }
    /* Not inherited by fork() anyway, but exec() would keep it open. */
    fcntl(p->kq, F_SETFD, FD_CLOEXEC);
    return p;
}

void dill_poller_term(struct dill_poller *p) {
    if(!p) return;
    close(p->kq);
    free(p->slots);
    free(p->changes);
    free(p->results);
    free(p->failed);
    free(p);
}

static int grow_slots(struct dill_poller *p, int fd) {
    size_t n = p->nslots ? (size_t)p->nslots : 64;
    while(n <= (size_t)fd) n *= 2;
    int *failed = realloc(p->failed, n * sizeof(int));
    if(!failed) goto nomem;
    p->failed = failed;
    struct slot *slots = realloc(p->slots, n * sizeof(struct slot));
    if(!slots) goto nomem;
    memset(slots + p->nslots, 0, (n - (size_t)p->nslots) * sizeof(struct slot));
    p->slots = slots;
    p->nslots = (int)n;
    return 0;
nomem:
    errno = ENOMEM;
    return -1;
}

/* Defer a change of fd's filter for dir to the next kevent() call. */
static int queue(struct dill_poller *p, int fd, int dir, unsigned short flags) {
    if(p->nchanges == p->capchanges) {
        int cap = p->capchanges ? p->capchanges * 2 : 64;
        if(grow_results(p, cap) < 0) return -1;
        struct kevent *changes = realloc(p->changes,
            (size_t)cap * sizeof(struct kevent));
        if(!changes) {
            errno = ENOMEM;
            return -1;
        }
        p->changes = changes;
        p->capchanges = cap;
    }
    EV_SET(&p->changes[p->nchanges], fd, filter_of(dir), flags, 0, 0, NULL);
    p->nchanges++;
    p->slots[fd].pending = 1;
    return 0;
}

/* Drop fd's entries from the changelist; returns the directions whose
   filters they touched, which the kernel may or may not hold now. */
static int unqueue(struct dill_poller *p, int fd) {
    struct slot *s = &p->slots[fd];
    if(!s->pending) return 0;
    int touched = 0;
    int kept = 0;
    for(int i = 0; i < p->nchanges; i++) {
        if(p->changes[i].ident == (uintptr_t)fd)
            touched |= dir_of(p->changes[i].filter);
        else
            p->changes[kept++] = p->changes[i];
    }
    p->nchanges = kept;
    s->pending = 0;
    return touched;
}

static void unfail(struct dill_poller *p, int fd) {
    if(!p->slots[fd].failed) return;
    p->slots[fd].failed = 0;
    for(int i = 0; i < p->nfailed; i++) {
        if(p->failed[i] != fd) continue;
        p->failed[i] = p->failed[--p->nfailed];
        return;
    }
}

/* Apply changes to fd at once, ignoring their results but for the one
   for want (if any), whose errno is returned (0 when it succeeded). */
static int apply_now(struct dill_poller *p, int fd, struct kevent *changes,
      int n, int want) {
    struct kevent answers[2];
    struct timespec zero = {0, 0};
    int rc;
    /* With EV_RECEIPT every change gets an answer and no event is taken
       off the queue; a zero timeout keeps it from blocking regardless. */
    do rc = kevent(p->kq, changes, n, answers, n, &zero);
    while(rc < 0 && errno == EINTR);
    if(rc < 0) return errno;
    for(int i = 0; i < rc; i++) {
        if(answers[i].ident != (uintptr_t)fd) continue;
        if(dir_of(answers[i].filter) != want) continue;
        if((answers[i].flags & EV_ERROR) && answers[i].data != 0)
            return (int)answers[i].data;
    }
    return 0;
}

/* The first registration of fd, synchronous so that arm reports errors.
   Leaves the kernel holding exactly the filter for dir. */
static int first_use(struct dill_poller *p, int fd, int dir) {
    /* kqueue takes regular files and directories; refuse them like epoll.
       Done before growing the table, so a huge closed number fails with
       EBADF instead of allocating. */
    struct stat st;
    if(fstat(fd, &st) < 0) return -1;
    if(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        errno = ENOTSUP;
        return -1;
    }
    if(fd >= p->nslots && grow_slots(p, fd) < 0) return -1;
    struct slot *s = &p->slots[fd];
    int other = dir == DILL_POLLER_IN ? DILL_POLLER_OUT : DILL_POLLER_IN;
    /* An unknown fd has no deferred EV_ADD (a failure that made it unknown
       came with the kevent() call that emptied the changelist), so what
       unqueue drops are deletions: those filters are still there. */
    int held = (s->added | unqueue(p, fd)) & other;
    /* Still wanted by a waiter that the failed list is about to wake. */
    int keep = held & s->armed;
    struct kevent changes[2];
    int n = 0;
    EV_SET(&changes[n++], fd, filter_of(dir), EV_ADD | EV_RECEIPT, 0, 0, NULL);
    /* Left behind by a failed registration: get rid of it while here. */
    if(held & ~keep)
        EV_SET(&changes[n++], fd, filter_of(other), EV_DELETE | EV_RECEIPT,
            0, 0, NULL);
    int err = apply_now(p, fd, changes, n, dir);
    if(err) {
        s->added = err == EBADF ? 0 : (unsigned char)keep;
        errno = err;
        return -1;
    }
    s->added = (unsigned char)(dir | keep);
    s->known = 1;
    return 0;
}

int dill_poller_arm(struct dill_poller *p, int fd, int dir) {
    if(fd < 0) {
        errno = EBADF;
        return -1;
    }
    if(fd >= p->nslots || !p->slots[fd].known) {
        if(first_use(p, fd, dir) < 0) return -1;
    }
    else if(!(p->slots[fd].added & dir)) {
        if(queue(p, fd, dir, EV_ADD) < 0) return -1;
        p->slots[fd].added |= (unsigned char)dir;
    }
    p->slots[fd].armed |= (unsigned char)dir;
    return 0;
}

void dill_poller_disarm(struct dill_poller *p, int fd, int dir) {
    /* The filter stays: deleted when an event shows up for nobody. */
    if(fd < 0 || fd >= p->nslots) return;
    p->slots[fd].armed &= (unsigned char)~dir;
}

void dill_poller_forget(struct dill_poller *p, int fd) {
    if(fd < 0 || fd >= p->nslots) return;
    struct slot *s = &p->slots[fd];
    /* A deferred change must not reach a later fd with the same number. */
    int filters = s->added | unqueue(p, fd);
    unfail(p, fd);
    if(filters) {
        struct kevent changes[2];
        int n = 0;
        if(filters & DILL_POLLER_IN)
            EV_SET(&changes[n++], fd, EVFILT_READ, EV_DELETE | EV_RECEIPT,
                0, 0, NULL);
        if(filters & DILL_POLLER_OUT)
            EV_SET(&changes[n++], fd, EVFILT_WRITE, EV_DELETE | EV_RECEIPT,
                0, 0, NULL);
        /* EBADF (already closed) and ENOENT (never added) mean the kernel
           holds nothing for fd: exactly what was wanted. */
        apply_now(p, fd, changes, n, 0);
    }
    memset(s, 0, sizeof(struct slot));
}

/* Store ready directions of fd in the output, merged with an earlier
   entry of the same wait. Dropped when the output is full: a level-
   triggered filter reports it again at the next wait. */
static int report(struct dill_poller *p, int fd, int ready,
      struct dill_poller_event *events, int max, int *count) {
    struct slot *s = &p->slots[fd];
    if(s->out < *count && events[s->out].fd == fd) {
        events[s->out].events |= ready;
        return 0;
    }
    if(*count == max) return -1;
    s->out = *count;
    events[*count].fd = fd;
    events[*count].events = ready;
    (*count)++;
    return 0;
}

/* A deferred change of fd failed with err. */
static void change_failed(struct dill_poller *p, int fd, int dir, int err) {
    struct slot *s = &p->slots[fd];
    /* EBADF: closed. ENOENT: a filter we added is gone, so it was closed
       (and maybe reopened). Closing drops every filter of the fd. */
    if(err == EBADF || err == ENOENT) s->added = 0;
    else s->added &= (unsigned char)~dir;
    /* The next arm registers afresh and reports the error to fdin. */
    s->known = 0;
    if(s->armed && !s->failed) {
        s->failed = 1;
        p->failed[p->nfailed++] = fd;
    }
}

/* An event for fd's filter of dir. */
static void event(struct dill_poller *p, const struct kevent *ev,
      struct dill_poller_event *events, int max, int *count) {
    int fd = (int)ev->ident;
    int dir = dir_of(ev->filter);
    struct slot *s = &p->slots[fd];
    if(!(s->armed & dir) && queue(p, fd, dir, EV_DELETE) == 0)
        s->added &= (unsigned char)~dir;
    /* Hang-up and errors concern both directions. */
    int ready = s->armed & (ev->flags & EV_EOF ? s->armed : dir);
    if(ready) report(p, fd, ready, events, max, count);
}

/* Process n entries of p->results. Returns whether any was an event
   rather than the answer to a change. */
static int collect(struct dill_poller *p, int n,
      struct dill_poller_event *events, int max, int *count) {
    int any = 0;
    for(int i = 0; i < n; i++) {
        /* A copy: event() may queue a change, and growing the changelist
           moves p->results (realloc keeps the entries, not the address). */
        struct kevent ev = p->results[i];
        if(ev.ident >= (uintptr_t)p->nslots || !dir_of(ev.filter)) continue;
        if(ev.flags & EV_ERROR) {
            if(ev.data != 0)
                change_failed(p, (int)ev.ident, dir_of(ev.filter),
                    (int)ev.data);
            continue;
        }
        any = 1;
        event(p, &ev, events, max, count);
    }
    return any;
}

/* Report the armed directions of fds whose changes failed. */
static void report_failed(struct dill_poller *p,
      struct dill_poller_event *events, int max, int *count) {
    int kept = 0;
    for(int i = 0; i < p->nfailed; i++) {
        int fd = p->failed[i];
        struct slot *s = &p->slots[fd];
        if(s->armed && report(p, fd, s->armed, events, max, count) < 0) {
            p->failed[kept++] = fd;
            continue;
        }
        s->failed = 0;
    }
    p->nfailed = kept;
}

/* The changelist was applied: forget it. */
static void applied(struct dill_poller *p) {
    for(int i = 0; i < p->nchanges; i++)
        p->slots[p->changes[i].ident].pending = 0;
    p->nchanges = 0;
}

static int call(struct dill_poller *p, int nchanges, int nevents,
      int timeout) {
    struct timespec ts;
    struct timespec *tsp = NULL;
    if(timeout >= 0) {
        ts.tv_sec = timeout / 1000;
        ts.tv_nsec = (long)(timeout % 1000) * 1000000;
        tsp = &ts;
    }
    return kevent(p->kq, p->changes, nchanges, p->results, nevents, tsp);
}

int dill_poller_wait(struct dill_poller *p, int timeout,
      struct dill_poller_event *events, int max) {
    if(max <= 0) {
        errno = EINVAL;
        return -1;
    }
    /* Room for an answer to every change besides max events, so that no
       failed change can make kevent() give up halfway; queue() keeps at
       least RESULTS_SLACK events' room beyond the changes. */
    if(max > p->capresults - p->nchanges) max = p->capresults - p->nchanges;
    int room = p->nchanges + max;
    if(p->nfailed) timeout = 0;
    int count = 0;
    int n = call(p, p->nchanges, room, timeout);
    /* Interrupted waits have applied their changes before sleeping. */
    if(n < 0 && errno != EINTR) return -1;
    applied(p);
    if(n > 0 && !collect(p, n, events, max, &count)) {
        /* Only answers to failed changes: FreeBSD returns those without
           looking for events, so look now. */
        n = call(p, 0, max, count || p->nfailed ? 0 : timeout);
        if(n < 0 && errno != EINTR && count == 0 && p->nfailed == 0)
            return -1;
        if(n > 0) collect(p, n, events, max, &count);
    }
    report_failed(p, events, max, &count);
    return count;
}
