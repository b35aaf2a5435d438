/*
 * happyeyeballs.c: happyeyeballs_connect (sockets.md §17, after RFC 8305):
 * a TCP connection to a host name, IPv6 and IPv4 raced. Two resolver
 * coroutines (an AAAA and an A lookup through ipaddr_remotes) and the
 * connection attempts (one coroutine per address, each a tcp_connect) all
 * live in one bundle of the call's own. The calling coroutine runs the
 * schedule: it hears answers and winners on two channels and starts the
 * attempts. Closing the bundle cancels whatever still runs, which is how
 * every way out of the call (success, deadline, cancellation) leaves
 * nothing behind.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cr.h"
#include "libdill.h"

/* §17: addresses kept per family, the head start of IPv6 (the RFC's
   Resolution Delay) and the time between the starts of two attempts (the
   RFC's Connection Attempt Delay), in ms. */
#define MAXADDRS 10
#define RESOLUTION_DELAY 50
#define ATTEMPT_DELAY 300

/* What a resolver sends when its lookup ends. */
struct answer {
    int family;  /* V6 or V4 */
    int count;   /* 0 when the lookup failed, -1 when it had no memory */
    struct dill_ipaddr addrs[MAXADDRS];
};

enum {V6, V4};

struct race {
    struct dill_bundle_storage bundle_mem;
    struct dill_chstorage answers_mem;
    struct dill_chstorage winners_mem;
    int bundle;
    int answers[2];          /* resolvers send on [1], we receive on [0] */
    int winners[2];          /* attempts likewise, a connection handle */
    struct answer got[2];    /* per family, once answered */
    int answered[2];
    int next[2];             /* the next address to try, per family */
    int prefer;              /* the family the next attempt should use */
    struct answer incoming;  /* receive buffer */
};

dill_coroutine static void resolve(const char *name, int port, int family,
      int ch) {
    struct answer a;
    a.family = family;
    int n = dill_ipaddr_remotes(a.addrs, MAXADDRS, name, port,
        family == V6 ? DILL_IPADDR_IPV6 : DILL_IPADDR_IPV4, -1);
    if(n < 0 && errno == ECANCELED) return;
    /* §17: a lookup that fails just yields nothing (ENOENT, a resolver
       timeout, EMFILE, ...), as a name that does not exist does. Running
       out of memory is ours, not the name's: the call fails with ENOMEM
       rather than wait, maybe forever, for what cannot come. */
    a.count = n >= 0 ? n : errno == ENOMEM ? -1 : 0;
    dill_chsend(ch, &a, sizeof(a), -1);
}

/* Sends the connection, or -1 when tcp_connect had no memory. */
dill_coroutine static void attempt(const struct dill_ipaddr *addr, int ch) {
    int s = dill_tcp_connect(addr, -1);
    /* §17: failures are not aggregated, a failed attempt just ends; but
       ENOMEM ends the call, as for a failed lookup. */
    if(s < 0) {
        if(errno == ENOMEM) dill_chsend(ch, &s, sizeof(s), -1);
        return;
    }
    /* Only the first connection is taken: when another one has won, the
       call cancels us while we wait here, and ours is closed. */
    if(dill_chsend(ch, &s, sizeof(s), -1) < 0) dill_hclose(s);
}

/* The earlier of two deadlines, -1 being never. */
static int64_t earlier(int64_t a, int64_t b) {
    if(a < 0) return b;
    if(b < 0) return a;
    return a < b ? a : b;
}

static int has_more(const struct race *r, int family) {
    return r->next[family] < r->got[family].count;
}

/* The address of the next attempt, or NULL when none may start now. The
   preferred family goes first and the preference then flips; when only the
   other family has an address, that one is used and the preference stays.
   IPv4 waits for the IPv6 answer until RESOLUTION_DELAY ms after the
   start (§17): until then nothing can have been tried. */
static const struct dill_ipaddr *pick(struct race *r, int64_t elapsed) {
    int family = r->prefer, other = 1 - r->prefer;
    if(has_more(r, family)) {
        r->prefer = other;
    }
    else if(has_more(r, other)) {
        if(!r->answered[V6] && elapsed < RESOLUTION_DELAY) return NULL;
        family = other;
    }
    else {
        return NULL;
    }
    return &r->got[family].addrs[r->next[family]++];
}

/* Close what race_open made: the bundle first, which cancels the
   resolvers and attempts still running (their sockets close with them, a
   connection nobody took included), then the channels they used. */
static void race_close(struct race *r) {
    int err = errno;
    if(r->bundle >= 0) dill_hclose(r->bundle);
    for(int i = 0; i < 2; i++) {
        if(r->answers[i] >= 0) dill_hclose(r->answers[i]);
        if(r->winners[i] >= 0) dill_hclose(r->winners[i]);
    }
    errno = err;
}

/* The bundle, the channels and both resolvers, started. 0, or -1 with
   errno (ECANCELED, ENOMEM) and whatever was made still to be closed. */
static int race_open(struct race *r, const char *name, int port) {
    memset(r, 0, sizeof(*r));
    r->bundle = r->answers[0] = r->answers[1] = -1;
    r->winners[0] = r->winners[1] = -1;
    r->prefer = V6;
    r->bundle = dill_bundle_mem(&r->bundle_mem);
    if(r->bundle < 0) return -1;
    if(dill_chmake_mem(&r->answers_mem, r->answers) < 0) return -1;
    if(dill_chmake_mem(&r->winners_mem, r->winners) < 0) return -1;
    if(dill_bundle_go(r->bundle, resolve(name, port, V6, r->answers[1])) < 0)
        return -1;
    return dill_bundle_go(r->bundle, resolve(name, port, V4, r->answers[1]));
}

/* Hear answers and start attempts on schedule until a connection comes,
   the deadline passes or the caller is cancelled. The connection, or -1
   with errno ETIMEDOUT, ECANCELED or ENOMEM. */
static int run(struct race *r, int64_t deadline) {
    int64_t start = dill_now();
    int64_t next_at = start; /* the earliest start of the next attempt */
    for(;;) {
        int64_t t = dill_now();
        if(t >= next_at) {
            const struct dill_ipaddr *addr = pick(r, t - start);
            if(addr) {
                if(dill_bundle_go(r->bundle, attempt(addr, r->winners[1])) < 0)
                    return -1;
                next_at = dill_now() + ATTEMPT_DELAY;
                continue;
            }
        }
        int64_t wake = deadline;
        /* An address is waiting: for the attempt delay to pass, or, when
           pick held it back, for the end of the IPv6 head start. */
        if(has_more(r, V6) || has_more(r, V4))
            wake = earlier(wake,
                t < next_at ? next_at : start + RESOLUTION_DELAY);
        int s;
        struct dill_chclause cl[] = {
            {DILL_CHRECV, r->answers[0], &r->incoming, sizeof(r->incoming)},
            {DILL_CHRECV, r->winners[0], &s, sizeof(s)},
        };
        int rc = dill_choose(cl, 2, wake);
        if((rc == 1 && s < 0) || (rc == 0 && r->incoming.count < 0)) {
            errno = ENOMEM;
            return -1;
        }
        if(rc == 1) return s;
        if(rc == 0) {
            int family = r->incoming.family;
            r->got[family] = r->incoming;
            r->answered[family] = 1;
            continue;
        }
        /* Our own timer is no reason to stop. */
        if(errno != ETIMEDOUT || wake == deadline) return -1;
    }
}

DILL_EXPORT int dill_happyeyeballs_connect(const char *name, int port,
      int64_t deadline) {
    if(!name || port <= 0 || port > 65535) {
        errno = EINVAL;
        return -1;
    }
    if(!dill_may_block_now()) return -1;
    /* No connection can be made without waiting: with deadline 0 (or one
       already past) nothing is sent at all. */
    if(deadline >= 0 && deadline <= dill_now()) {
        errno = ETIMEDOUT;
        return -1;
    }
    /* On the heap: the call may come from a coroutine with a small stack. */
    struct race *r = dill_malloc(sizeof(*r));
    if(!r) {
        errno = ENOMEM;
        return -1;
    }
    int s = race_open(r, name, port) < 0 ? -1 : run(r, deadline);
    race_close(r);
    int err = errno;
    free(r);
    errno = err;
    return s;
}
