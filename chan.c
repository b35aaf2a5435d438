/*
 * chan.c: channels. A channel has two ends, each a handle, and two
 * independent directions (end 0 -> end 1, end 1 -> end 0). Nothing is
 * buffered: the party that arrives second copies the message straight
 * between the two buffers and wakes the first, which waits in a FIFO
 * queue of its direction.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "timer.h"

struct chan_end {
    struct dill_hvfs vfs;
    uint8_t index; /* 0 or 1: which of the channel's ends */
};

/* Messages sent from end d to the other end. */
struct chan_dir {
    struct dill_queue senders;   /* waiting on end d */
    struct dill_queue receivers; /* waiting on the other end */
    uint8_t done;                /* chdone was called on end d */
};

struct chan {
    struct chan_end ends[2];
    struct chan_dir dirs[2];
    uint8_t closed[2];
    uint8_t in_caller_memory;
};

/* chstorage may start at any address. */
_Static_assert(sizeof(struct chan) + _Alignof(struct chan) - 1 <=
    sizeof(struct dill_chstorage), "channel does not fit its storage");

/* A waiting sender or receiver. */
struct chan_clause {
    struct dill_clause cl;
    struct dill_qitem item;
    struct dill_queue *queue;
    void *val;
    size_t len;
};

static const int chan_type_id;
static const void *chan_type = &chan_type_id;

static struct chan *chan_of(struct chan_end *end) {
    return dill_cont(end - end->index, struct chan, ends[0]);
}

static void *end_query(struct dill_hvfs *vfs, const void *type) {
    if(type == chan_type) return vfs;
    errno = ENOTSUP;
    return NULL;
}

static void wake_all(struct dill_queue *q, int err) {
    struct dill_qitem *it;
    while((it = dill_queue_pop(q)))
        dill_trigger(&dill_cont(it, struct chan_clause, item)->cl, err);
}

/* Closing one end changes nothing for waiters; closing the second wakes
   them all with EPIPE and frees the channel. */
static void end_close(struct dill_hvfs *vfs) {
    struct chan_end *end = (struct chan_end *)vfs;
    struct chan *ch = chan_of(end);
    ch->closed[end->index] = 1;
    if(!ch->closed[0] || !ch->closed[1]) return;
    for(int d = 0; d < 2; d++) {
        wake_all(&ch->dirs[d].receivers, EPIPE);
        wake_all(&ch->dirs[d].senders, EPIPE);
    }
    if(!ch->in_caller_memory) free(ch);
}

static int make(struct chan *ch, int in_caller_memory, int chv[2]) {
    memset(ch, 0, sizeof(struct chan));
    ch->in_caller_memory = (uint8_t)in_caller_memory;
    for(int i = 0; i < 2; i++) {
        ch->ends[i].vfs.query = end_query;
        ch->ends[i].vfs.close = end_close;
        ch->ends[i].index = (uint8_t)i;
    }
    int h0 = dill_hmake(&ch->ends[0].vfs);
    if(h0 < 0) return -1;
    int h1 = dill_hmake(&ch->ends[1].vfs);
    if(h1 < 0) {
        int err = errno;
        /* Mark the other end closed so that closing h0 frees nothing. */
        ch->closed[1] = 1;
        ch->in_caller_memory = 1;
        dill_hclose(h0);
        errno = err;
        return -1;
    }
    chv[0] = h0;
    chv[1] = h1;
    return 0;
}

DILL_EXPORT int dill_chmake(int chv[2]) {
    struct chan *ch = dill_malloc(sizeof(struct chan));
    if(!ch) {
        errno = ENOMEM;
        return -1;
    }
    if(make(ch, 0, chv) < 0) {
        int err = errno;
        free(ch);
        errno = err;
        return -1;
    }
    return 0;
}

DILL_EXPORT int dill_chmake_mem(struct dill_chstorage *mem, int chv[2]) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    uintptr_t at = ((uintptr_t)mem + _Alignof(struct chan) - 1) &
        ~(uintptr_t)(_Alignof(struct chan) - 1);
    return make((struct chan *)at, 1, chv);
}

/* ---- Transfers ---------------------------------------------------------- */

static struct chan_end *get_end(int h) {
    return dill_hquery_fast(h, chan_type);
}

/* The direction a send on end goes, and the one a receive on end takes. */
static struct chan_dir *send_dir(struct chan_end *end) {
    return &chan_of(end)->dirs[end->index];
}

static struct chan_dir *recv_dir(struct chan_end *end) {
    return &chan_of(end)->dirs[!end->index];
}

/* Complete with the first waiting peer in q: 0, or -1 with EMSGSIZE for
   both parties when the lengths differ. */
static int rendezvous(struct dill_queue *q, void *val, size_t len, int send) {
    struct chan_clause *peer =
        dill_cont(dill_queue_pop(q), struct chan_clause, item);
    if(peer->len != len) {
        dill_trigger(&peer->cl, EMSGSIZE);
        errno = EMSGSIZE;
        return -1;
    }
    if(len) {
        if(send) memcpy(peer->val, val, len);
        else memcpy(val, peer->val, len);
    }
    dill_trigger(&peer->cl, 0);
    errno = 0;
    return 0;
}

static void withdraw_chan(struct dill_clause *cl) {
    struct chan_clause *cc = dill_cont(cl, struct chan_clause, cl);
    dill_queue_remove(cc->queue, &cc->item);
}

static void enqueue(struct chan_clause *cc, struct dill_queue *q, int id,
      void *val, size_t len) {
    cc->queue = q;
    cc->val = val;
    cc->len = len;
    dill_queue_push(q, &cc->item);
    dill_waitfor(&cc->cl, id, withdraw_chan);
}

static int transfer(int h, void *val, size_t len, int64_t deadline,
      int send) {
    if(!dill_may_block_now()) return -1;
    struct chan_end *end = get_end(h);
    if(!end) return -1;
    struct chan_dir *dir = send ? send_dir(end) : recv_dir(end);
    if(dir->done) {
        errno = EPIPE;
        return -1;
    }
    if(len && !val) {
        errno = EINVAL;
        return -1;
    }
    struct dill_queue *peers = send ? &dir->receivers : &dir->senders;
    if(!dill_queue_empty(peers)) return rendezvous(peers, val, len, send);
    if(deadline == 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    struct dill_tmclause tc;
    if(dill_timer_waitfor(&tc, deadline) < 0) return -1;
    struct chan_clause cc;
    enqueue(&cc, send ? &dir->senders : &dir->receivers, 0, val, len);
    return dill_wait_err() ? -1 : 0;
}

DILL_EXPORT int dill_chsend(int ch, const void *val, size_t len,
      int64_t deadline) {
    return transfer(ch, (void *)val, len, deadline, 1);
}

DILL_EXPORT int dill_chrecv(int ch, void *val, size_t len, int64_t deadline) {
    return transfer(ch, val, len, deadline, 0);
}

DILL_EXPORT int dill_chdone(int ch) {
    struct chan_end *end = get_end(ch);
    if(!end) return -1;
    struct chan_dir *dir = send_dir(end);
    if(dir->done) {
        errno = EPIPE;
        return -1;
    }
    dir->done = 1;
    wake_all(&dir->receivers, EPIPE);
    wake_all(&dir->senders, EPIPE);
    return 0;
}

/* ---- choose ------------------------------------------------------------- */

/* Try clause i at once. Returns 1 when it cannot complete now (and is
   valid), else 0 with errno holding the clause's result. */
static int try_clause(struct dill_chclause *cl, struct chan_dir **dirp) {
    struct chan_end *end = get_end(cl->ch);
    if(!end) return 0;
    if(cl->len && !cl->val) {
        errno = EINVAL;
        return 0;
    }
    int send = cl->op == DILL_CHSEND;
    if(!send && cl->op != DILL_CHRECV) {
        errno = EINVAL;
        return 0;
    }
    struct chan_dir *dir = send ? send_dir(end) : recv_dir(end);
    if(dir->done) {
        errno = EPIPE;
        return 0;
    }
    struct dill_queue *peers = send ? &dir->receivers : &dir->senders;
    if(!dill_queue_empty(peers)) {
        rendezvous(peers, cl->val, cl->len, send);
        return 0;
    }
    *dirp = dir;
    return 1;
}

DILL_EXPORT int dill_choose(struct dill_chclause *clauses, int nclauses,
      int64_t deadline) {
    if(!dill_may_block_now()) return -1;
    if(nclauses < 0 || (nclauses > 0 && !clauses)) {
        errno = EINVAL;
        return -1;
    }
    struct chan_dir *dirs[nclauses > 0 ? nclauses : 1];
    for(int i = 0; i < nclauses; i++)
        if(!try_clause(&clauses[i], &dirs[i])) return i;
    if(deadline == 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    struct dill_tmclause tc;
    if(dill_timer_waitfor(&tc, deadline) < 0) return -1;
    struct chan_clause ccs[nclauses > 0 ? nclauses : 1];
    for(int i = 0; i < nclauses; i++) {
        int send = clauses[i].op == DILL_CHSEND;
        enqueue(&ccs[i], send ? &dirs[i]->senders : &dirs[i]->receivers, i,
            clauses[i].val, clauses[i].len);
    }
    return dill_wait();
}
