/*
 * tests/soak_server.c: the soak test's serving coroutine, one per accepted
 * connection. It reads the hello, sends it back, attaches PREFIX if the
 * hello asks for it, then checks every message (checksum, connection, the
 * next sequence number: no gap, no duplicate) and echoes it, after the
 * delay the message asks for. After the client's bye both sides close in
 * order. The client keeps the accounting; a server only reports what is
 * wrong with what it received, and marks the client's lane when it ends
 * the connection on purpose (its first-message deadline expired).
 */
#include <string.h>

#include "soak.h"

struct server {
    struct soak_worker *w;
    struct soak_slot *slot;
    int s;
    int tcp;
    struct soak_hello hello;
    uint32_t seq;
    uint8_t *buf;      /* header and payload of the current message */
};

static const char *kind(const struct server *sv) {
    return sv->tcp ? "tcp" : "ipc";
}

/* A call failed. The client leaving (whatever the reason: its accounting
   decides) and this coroutine's cancellation are part of the soak; a
   stall past the patient deadline, or any other errno, is not. */
static void gone(const struct server *sv, const char *what) {
    int err = errno;
    if(err == ECANCELED || err == EPIPE || err == ECONNRESET) return;
    soak_fail("server of %u.%u (%s, thread %d): %s failed: %s",
        sv->hello.lane, sv->hello.serial, kind(sv), sv->w->index, what,
        strerror(err));
}

static int greet(struct server *sv) {
    int64_t patient = now() + SOAK_PATIENCE_MS;
    if(brecv(sv->s, &sv->hello, sizeof(sv->hello), patient) != 0) {
        gone(sv, "brecv of the hello");
        return -1;
    }
    struct soak_hello *h = &sv->hello;
    if(!soak_hello_intact(h) || h->lane >= SOAK_THREADS * SOAK_LANES ||
          h->hdrlen > 8) {
        soak_fail("server (%s, thread %d): corrupted hello", kind(sv),
            sv->w->index);
        return -1;
    }
    /* From now on the supervisor may cancel this coroutine, and knows
       which client to tell. */
    sv->slot->lane = h->lane;
    sv->slot->serial = h->serial;
    sv->slot->registered = 1;
    if(bsend(sv->s, h, sizeof(*h), patient) != 0) {
        gone(sv, "bsend of the hello");
        return -1;
    }
    if(h->hdrlen == 0) return 0;
    sv->s = prefix_attach(sv->s, h->hdrlen, (int)h->prefix_flags);
    if(sv->s < 0) {
        soak_fail("server of %u.%u: prefix_attach: %s", h->lane, h->serial,
            strerror(errno));
        return -1;
    }
    return 0;
}

/* One whole message into sv->buf; its payload length, or -1. */
static ssize_t receive(struct server *sv, int64_t deadline) {
    struct soak_msg *m = (struct soak_msg *)sv->buf;
    size_t hdr = sizeof(*m);
    if(sv->hello.hdrlen) {
        ssize_t n = mrecv(sv->s, sv->buf, hdr + SOAK_MAX_PAYLOAD, deadline);
        if(n < 0) return -1;
        if((size_t)n < hdr || m->len != (size_t)n - hdr) return -2;
        return m->len;
    }
    if(brecv(sv->s, m, hdr, deadline) != 0) return -1;
    if(m->magic != SOAK_MSG_MAGIC || m->len > SOAK_MAX_PAYLOAD) return -2;
    if(brecv(sv->s, sv->buf + hdr, m->len, deadline) != 0) return -1;
    return m->len;
}

static int check(const struct server *sv) {
    const struct soak_msg *m = (const struct soak_msg *)sv->buf;
    const char *wrong = NULL;
    if(!soak_msg_intact(m, sv->buf + sizeof(*m))) wrong = "corrupted";
    else if(m->lane != sv->hello.lane || m->serial != sv->hello.serial)
        wrong = "from another connection";
    else if(m->seq != sv->seq)
        wrong = m->seq < sv->seq ? "a duplicate" : "after a gap";
    if(!wrong) return 0;
    soak_fail("server of %u.%u (%s, thread %d): message %u is %s "
        "(seq %u on the wire)", sv->hello.lane, sv->hello.serial, kind(sv),
        sv->w->index, sv->seq, wrong, m->seq);
    return -1;
}

static int echo(struct server *sv) {
    const struct soak_msg *m = (const struct soak_msg *)sv->buf;
    if(m->delay_ms && msleep(now() + m->delay_ms) != 0) return -1;
    size_t len = sizeof(*m) + m->len;
    int64_t patient = now() + SOAK_PATIENCE_MS;
    int rc = sv->hello.hdrlen ? msend(sv->s, sv->buf, len, patient)
        : bsend(sv->s, sv->buf, len, patient);
    if(rc != 0) gone(sv, "the echo");
    return rc;
}

/* After the bye: the stream back from PREFIX, then FIN and wait for the
   client's. The handle is gone whatever happens. */
static void close_in_order(struct server *sv) {
    int s = sv->s;
    sv->s = -1;
    if(sv->hello.hdrlen) {
        s = prefix_detach(s);
        if(s < 0) {
            soak_fail("server of %u.%u: prefix_detach: %s", sv->hello.lane,
                sv->hello.serial, strerror(errno));
            return;
        }
    }
    int64_t patient = now() + SOAK_PATIENCE_MS;
    int rc = sv->tcp ? tcp_close(s, patient) : ipc_close(s, patient);
    if(rc != 0) gone(sv, "the orderly close");
}

static void serve(struct server *sv) {
    if(greet(sv) != 0) return;
    for(;;) {
        int first = sv->seq == 0 && sv->hello.first_ms;
        int64_t deadline = now() +
            (first ? sv->hello.first_ms : SOAK_PATIENCE_MS);
        ssize_t n = receive(sv, deadline);
        if(n == -2) {
            soak_fail("server of %u.%u (%s): message %u is malformed",
                sv->hello.lane, sv->hello.serial, kind(sv), sv->seq);
            return;
        }
        if(n < 0 && errno == ETIMEDOUT && first) {
            /* The client went quiet on purpose to make this happen. */
            soak_mark(sv->hello.lane, sv->hello.serial, SOAK_PEER_TIMEDOUT);
            sv->w->st.server_timeouts++;
            return;
        }
        if(n < 0) {
            gone(sv, "the receive");
            return;
        }
        if(check(sv) != 0) return;
        sv->w->st.server_messages++;
        if(echo(sv) != 0) return;
        sv->seq++;
        if(((struct soak_msg *)sv->buf)->flags & SOAK_BYE) {
            close_in_order(sv);
            return;
        }
    }
}

coroutine void soak_server(struct soak_worker *w, struct soak_slot *slot,
      int s, int tcp) {
    struct server sv = {.w = w, .slot = slot, .s = s, .tcp = tcp};
    sv.buf = malloc(sizeof(struct soak_msg) + SOAK_MAX_PAYLOAD);
    if(!sv.buf) soak_fail("server: out of memory");
    else serve(&sv);
    if(sv.s >= 0) hclose(sv.s);
    free(sv.buf);
    slot->state = SLOT_FINISHED;
}
