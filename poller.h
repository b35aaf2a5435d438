/*
 * poller.h: the interface between fd.c and one kernel polling backend.
 *
 * Exactly one backend is compiled in (poller_epoll.c, poller_kqueue.c or
 * poller_poll.c, picked by configure). fd.c keeps track of which coroutine
 * waits on which fd; the backend only keeps the kernel informed and reports
 * readiness. Each thread has its own poller.
 */
#ifndef DILL_POLLER_H_INCLUDED
#define DILL_POLLER_H_INCLUDED

/* Directions a coroutine can wait in. */
#define DILL_POLLER_IN 1
#define DILL_POLLER_OUT 2

struct dill_poller;

struct dill_poller_event {
    int fd;
    int events; /* DILL_POLLER_IN and/or DILL_POLLER_OUT */
};

/* Create a poller for the calling thread. NULL and errno on failure. */
struct dill_poller *dill_poller_init(void);

/* Release the poller and its kernel object. */
void dill_poller_term(struct dill_poller *p);

/* A coroutine starts waiting on fd in direction dir (IN or OUT); at most
   one per direction at a time. The first time an fd is seen, the backend
   registers it with the kernel and reports failures: EBADF for a closed
   descriptor, ENOTSUP for a regular file or directory, else the kernel's
   errno. Later calls may defer their system call to the next wait. */
int dill_poller_arm(struct dill_poller *p, int fd, int dir);

/* Nobody waits on fd in direction dir any more. The backend may keep the
   kernel registration until an unwanted event shows up. */
void dill_poller_disarm(struct dill_poller *p, int fd, int dir);

/* Forget fd completely and remove it from the kernel set (fdclean).
   Never fails for an fd the backend does not know, nor for one already
   closed. Nobody may be armed on fd. */
void dill_poller_forget(struct dill_poller *p, int fd);

/* Wait up to timeout ms (-1: forever, 0: do not block) and store up to max
   ready fds in events. Only armed directions are reported; an error or
   hang-up on the fd makes every armed direction ready. Returns the count, 0 on timeout or
   when a signal interrupted the wait, -1 with errno on failure. */
int dill_poller_wait(struct dill_poller *p, int timeout,
    struct dill_poller_event *events, int max);

#endif
