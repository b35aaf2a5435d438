/*
 * tests/soak_client.c: the soak test's client coroutine, one connection
 * each. It picks a listener (its own thread's or the other's, TCP or IPC),
 * a framing (raw bsend/brecv, or PREFIX with a 2, 4 or 8-byte header in
 * either byte order) and a number of messages, then sends them in
 * pipelined bursts and checks every echo byte for byte, in order. Some
 * calls get deadlines meant to expire, some messages ask the server to
 * wait before echoing, a few connections go quiet until the server's
 * first-message deadline ends them; at the end a bye and an orderly close,
 * or a plain hclose, or walking away with echoes still due.
 *
 * The accounting: every message sent is either delivered (its echo came
 * back intact and in order) or abandoned, and a message may only be
 * abandoned by something the soak did on purpose: a deadline meant to
 * expire, this coroutine's cancellation, the cancellation of its server
 * (the supervisor marks the lane before it closes the server), the
 * server's first-message deadline on a connection that went quiet for it,
 * or walking away. Anything else loses the messages in flight and fails
 * the soak.
 */
#include <string.h>

#include "soak.h"

struct client {
    struct soak_lane *lane;
    struct soak_worker *w;
    struct soak_stats *st;
    int target;            /* the thread whose listener this connects to */
    int tcp;
    int s;
    struct soak_hello hello;
    uint32_t messages;     /* how many to send before the bye */
    uint32_t seq;          /* messages sent so far */
    uint32_t expire_at;    /* the echo whose deadline is meant to expire */
    uint32_t hurry_at;     /* the echo with a deadline of 0 to 2 ms */
    int inflight;          /* sent, echo not yet checked */
    int deliberate;        /* the failed call's deadline was meant to expire */
    const char *doing;     /* the failed call, for the report */
    struct soak_msg burst[SOAK_BURST_MAX];
    uint8_t *out;
    uint8_t *in;
};

static int between(struct client *c, uint32_t lo, uint32_t hi) {
    return (int)soak_between(c->w, lo, hi);
}

static void plan(struct client *c) {
    c->target = between(c, 0, SOAK_THREADS - 1);
    c->tcp = between(c, 0, 9) < 7;
    static const uint32_t hdrlens[] = {0, 0, 0, 2, 4, 8};
    c->hello.hdrlen = hdrlens[between(c, 0, 5)];
    c->hello.prefix_flags = (uint32_t)between(c, 0, 1);
    int r = between(c, 0, 99);
    c->messages = r < 50 ? between(c, 1, 10) : r < 90 ? between(c, 10, 100)
        : between(c, 100, 1000);
    /* One connection in twelve meets a deadline meant to expire, one in
       thirty a very short one, one in thirty goes quiet until the server
       gives up. */
    c->expire_at = c->hurry_at = UINT32_MAX;
    if(between(c, 0, 11) == 0) c->expire_at = between(c, 0, c->messages - 1);
    if(between(c, 0, 29) == 0) c->hurry_at = between(c, 0, c->messages - 1);
    if(between(c, 0, 29) == 0) {
        c->hello.first_ms = between(c, 5, 30);
        c->messages = 1;
        c->expire_at = c->hurry_at = UINT32_MAX;
    }
}

static int fail_at(struct client *c, const char *doing) {
    c->doing = doing;
    return -1;
}

static int dial(struct client *c) {
    struct soak_worker *t = &soak_workers[c->target];
    int64_t patient = now() + SOAK_PATIENCE_MS;
    if(c->tcp) {
        c->s = tcp_connect(&t->tcp_addr, patient);
        return c->s < 0 ? fail_at(c, "tcp_connect") : 0;
    }
    /* A full UNIX-domain backlog is EAGAIN at once, not a wait. */
    for(int tries = 0; tries < 1000; tries++) {
        c->s = ipc_connect(t->ipc_path, patient);
        if(c->s >= 0 || errno != EAGAIN) break;
        c->st->connect_retries++;
        if(msleep(now() + 1) != 0) break;
    }
    return c->s < 0 ? fail_at(c, "ipc_connect") : 0;
}

static int open_connection(struct client *c) {
    if(dial(c) != 0) return -1;
    c->st->connections++;
    if(c->tcp) c->st->tcp++;
    else c->st->ipc++;
    if(c->target != c->w->index) c->st->cross++;
    if(c->hello.hdrlen) c->st->framed++;
    c->hello.lane = c->lane->id;
    c->hello.serial = c->lane->serial;
    soak_hello_seal(&c->hello);
    int64_t patient = now() + SOAK_PATIENCE_MS;
    if(bsend(c->s, &c->hello, sizeof(c->hello), patient) != 0)
        return fail_at(c, "bsend of the hello");
    struct soak_hello back;
    if(brecv(c->s, &back, sizeof(back), patient) != 0)
        return fail_at(c, "brecv of the hello");
    if(memcmp(&back, &c->hello, sizeof(back)) != 0) {
        soak_fail("client %u.%u: the hello came back changed",
            c->lane->id, c->lane->serial);
        return -2;
    }
    if(c->hello.hdrlen == 0) return 0;
    c->s = prefix_attach(c->s, c->hello.hdrlen, (int)c->hello.prefix_flags);
    if(c->s < 0) {
        soak_fail("client: prefix_attach: %s", strerror(errno));
        return -2;
    }
    return 0;
}

static uint32_t payload_size(struct client *c) {
    int r = between(c, 0, 99);
    if(r < 55) return between(c, 0, 200);
    if(r < 90) return between(c, 201, 4000);
    return between(c, 4001, SOAK_MAX_PAYLOAD);
}

/* The next message: its header in the burst array, its payload in out. */
static struct soak_msg *compose(struct client *c, int i, uint32_t len,
      uint32_t flags) {
    struct soak_msg *m = &c->burst[i];
    memset(m, 0, sizeof(*m));
    m->lane = c->lane->id;
    m->serial = c->lane->serial;
    m->seq = c->seq;
    m->len = len;
    m->flags = flags;
    if(m->seq == c->expire_at) m->delay_ms = between(c, 6, 30);
    else if(between(c, 0, 49) == 0) m->delay_ms = between(c, 1, 10);
    soak_payload_fill(c->out, m);
    soak_msg_seal(m, c->out);
    return m;
}

static int transmit(struct client *c, struct soak_msg *m) {
    struct dill_iolist payload = {c->out, m->len, NULL, 0};
    struct dill_iolist header = {m, sizeof(*m), &payload, 0};
    int64_t patient = now() + SOAK_PATIENCE_MS;
    int rc = c->hello.hdrlen ? msendl(c->s, &header, &payload, patient)
        : bsendl(c->s, &header, &payload, patient);
    if(rc != 0) return fail_at(c, "the send");
    c->seq++;
    c->inflight++;
    c->st->sent++;
    c->st->bytes += sizeof(*m) + m->len;
    return 0;
}

/* Most receives are patient; two get a deadline that is meant to, or
   may, expire: a third of the delay the server was asked for, or a
   millisecond or two. */
static int64_t echo_deadline(struct client *c, const struct soak_msg *m) {
    c->deliberate = 1;
    if(m->seq == c->expire_at) return now() + m->delay_ms / 3;
    if(m->seq == c->hurry_at) return now() + between(c, 0, 2);
    c->deliberate = 0;
    return now() + SOAK_PATIENCE_MS;
}

static int receive(struct client *c, const struct soak_msg *m) {
    int64_t deadline = echo_deadline(c, m);
    struct soak_msg *got = (struct soak_msg *)c->in;
    size_t hdr = sizeof(*got);
    if(c->hello.hdrlen) {
        ssize_t n = mrecv(c->s, c->in, hdr + SOAK_MAX_PAYLOAD, deadline);
        if(n < 0) return fail_at(c, "mrecv of an echo");
        if((size_t)n != hdr + m->len) return -3;
    } else {
        if(brecv(c->s, got, hdr, deadline) != 0)
            return fail_at(c, "brecv of an echo's header");
        if(got->len != m->len) return -3;
        if(brecv(c->s, c->in + hdr, m->len, deadline) != 0)
            return fail_at(c, "brecv of an echo's payload");
    }
    c->deliberate = 0;
    if(memcmp(got, m, hdr) != 0 || !soak_msg_intact(got, c->in + hdr) ||
          !soak_payload_expected(c->in + hdr, m))
        return -3;
    c->inflight--;
    c->st->delivered++;
    c->st->bytes += hdr + m->len;
    return 0;
}

static int receive_checked(struct client *c, const struct soak_msg *m) {
    int rc = receive(c, m);
    if(rc != -3) return rc;
    soak_fail("client %u.%u (%s, %s, to thread %d): the echo of message "
        "%u is wrong (corrupted, reordered or from elsewhere)", c->lane->id,
        c->lane->serial, c->tcp ? "tcp" : "ipc",
        c->hello.hdrlen ? "prefix" : "raw", c->target, m->seq);
    return -2;
}

/* Up to SOAK_BURST_MAX messages sent back to back, then their echoes. */
static int burst(struct client *c, int walk_away) {
    int n = 0;
    size_t bytes = 0;
    int count = between(c, 1, SOAK_BURST_MAX);
    while(n < count && c->seq < c->messages) {
        uint32_t len = payload_size(c);
        if(n > 0 && bytes + len > SOAK_BURST_BYTES) break;
        bytes += len;
        if(transmit(c, compose(c, n, len, 0)) != 0) return -1;
        n++;
    }
    if(walk_away) return 0;
    for(int i = 0; i < n; i++) {
        int rc = receive_checked(c, &c->burst[i]);
        if(rc != 0) return rc;
    }
    return 0;
}

static int bye(struct client *c) {
    struct soak_msg *m = compose(c, 0, between(c, 0, 64), SOAK_BYE);
    m->delay_ms = 0;
    soak_msg_seal(m, c->out);
    if(transmit(c, m) != 0) return -1;
    int rc = receive_checked(c, m);
    if(rc != 0) return rc;
    int s = c->s;
    c->s = -1;
    if(c->hello.hdrlen) {
        s = prefix_detach(s);
        if(s < 0) {
            soak_fail("client: prefix_detach: %s", strerror(errno));
            return -2;
        }
    }
    int64_t patient = now() + SOAK_PATIENCE_MS;
    if((c->tcp ? tcp_close(s, patient) : ipc_close(s, patient)) != 0)
        return fail_at(c, "the orderly close");
    c->st->clean_closes++;
    return 0;
}

/* Why the connection broke decides whether what was in flight is
   abandoned on purpose or lost. */
static int excused(struct client *c) {
    int err = errno;
    if(err == ECANCELED) return 1;
    if(err == ETIMEDOUT && c->deliberate) {
        c->st->timeouts++;
        return 1;
    }
    uint64_t v = atomic_load(&c->lane->state);
    if((err == EPIPE || err == ECONNRESET) && (v >> 2) == c->lane->serial) {
        if(v & SOAK_PEER_CANCELLED) {
            c->st->by_cancelled_server++;
            return 1;
        }
        if((v & SOAK_PEER_TIMEDOUT) && c->hello.first_ms) {
            c->st->by_server_timeout++;
            return 1;
        }
    }
    soak_fail("client %u.%u (%s, %s, to thread %d): %s failed: %s, with "
        "%d message(s) in flight: lost", c->lane->id, c->lane->serial,
        c->tcp ? "tcp" : "ipc", c->hello.hdrlen ? "prefix" : "raw",
        c->target, c->doing, strerror(err), c->inflight);
    return 0;
}

static int converse(struct client *c) {
    int rc = open_connection(c);
    if(rc != 0) return rc;
    if(c->hello.first_ms && msleep(now() + 2 * c->hello.first_ms + 10) != 0)
        return fail_at(c, "msleep");
    int ending = between(c, 0, 99);
    while(c->seq < c->messages && !c->w->stopping) {
        int walk_away = ending < 3 && c->seq + SOAK_BURST_MAX >= c->messages;
        rc = burst(c, walk_away);
        if(rc != 0) return rc;
        if(walk_away) {
            c->st->walkaways++;
            c->st->abandoned += (uint64_t)c->inflight;
            c->inflight = 0;
            return 0;
        }
        if(between(c, 0, 19) == 0 && msleep(now() + between(c, 0, 10)) != 0)
            return fail_at(c, "msleep");
    }
    if(ending < 10) {
        c->st->abrupt_closes++;
        return 0;
    }
    return bye(c);
}

coroutine void soak_client(struct soak_lane *lane) {
    struct soak_worker *w = lane->w;
    struct client c = {.lane = lane, .w = w, .st = &w->st, .s = -1};
    c.out = malloc(SOAK_MAX_PAYLOAD);
    c.in = malloc(sizeof(struct soak_msg) + SOAK_MAX_PAYLOAD);
    if(!c.out || !c.in) soak_fail("client: out of memory");
    else {
        plan(&c);
        int rc = converse(&c);
        if(rc == -1 && excused(&c)) c.st->abandoned += (uint64_t)c.inflight;
        else if(rc != 0) c.st->lost += (uint64_t)c.inflight;
    }
    if(c.s >= 0) hclose(c.s);
    free(c.out);
    free(c.in);
    lane->running = 0;
}
