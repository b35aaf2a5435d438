/*
 * http.c: HTTP/1.1 request and response heads over a bytestream
 * (sockets.md §14). Lines are CR LF terminated and the empty line ends the
 * head. Outgoing lines collect in the object and leave in one write when
 * the head is complete (http_done, http_detach), before any receive, or
 * when the buffer is full, so that a head never stalls on Nagle and
 * delayed ACK the way one write per line does (§21); on TCP, http_detach
 * writes the head with MSG_MORE, so that it leaves in one segment with the
 * body that follows. Incoming lines are read in steps that never pass the
 * current line's CR LF, so after http_detach the stream continues exactly
 * after the peer's empty line.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fdsock.h"
#include "layer.h"
#include "now.h"
#include "utils.h"

/* A received line: at most 1023 bytes of content; the CR before the LF is
   stored too while the line is read. */
#define RX_SIZE 1024
/* Outgoing lines wait here: what the storage leaves after the receive
   buffer and the rest of the object. */
#define TX_SIZE 216

struct http_sock {
    struct dill_layer layer;
    struct dill_bsock_vfs *below;
    struct dill_fd_stream *stream; /* below, when it is a TCP connection */
    uint16_t txlen;            /* bytes waiting in tx */
    unsigned in_busy : 1;
    unsigned out_busy : 1;
    unsigned in_ended : 1;     /* the peer's empty line: receives EPIPE */
    unsigned in_eof : 1;       /* the stream ended first: receives EPIPE */
    unsigned in_failed : 1;    /* receives ECONNRESET */
    unsigned out_done : 1;     /* our empty line is out */
    unsigned out_failed : 1;   /* sends ECONNRESET */
    char rx[RX_SIZE];
    char tx[TX_SIZE];
};
DILL_FITS(struct http_sock, struct dill_http_storage);

/* The private type: only the http_* functions ask for it. */
static const int http_type_id;
static const void *http_type = &http_type_id;

static void *http_query(struct dill_hvfs *hvfs, const void *type) {
    if(type == http_type) return dill_cont(hvfs, struct http_sock, layer.hvfs);
    errno = ENOTSUP;
    return NULL;
}

static void http_close(struct dill_hvfs *hvfs) {
    struct http_sock *h = dill_cont(hvfs, struct http_sock, layer.hvfs);
    /* Lines still waiting in tx are dropped: hclose is abortive. */
    dill_layer_close(&h->layer);
}

static struct http_sock *get(int s) {
    return dill_hquery(s, http_type);
}

/* ---- Attach, done, detach ---------------------------------------------- */

static int attach(int s, struct dill_http_storage *mem) {
    void *below;
    int u = dill_layer_own(s, dill_bsock_type, ENOTSUP, &below);
    if(u < 0) return -1;
    struct http_sock *h = dill_layer_alloc(mem, sizeof(*h), _Alignof(*h));
    if(!h) return dill_layer_fail(u);
    h->below = below;
    h->stream = dill_hquery(u, dill_fd_stream_type);
    h->txlen = 0;
    h->in_busy = h->out_busy = 0;
    h->in_ended = h->in_eof = h->in_failed = 0;
    h->out_done = h->out_failed = 0;
    return dill_layer_make(&h->layer, u, http_query, http_close);
}

DILL_EXPORT int dill_http_attach(int s) {
    return attach(s, NULL);
}

DILL_EXPORT int dill_http_attach_mem(int s, struct dill_http_storage *mem) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, mem);
}

/* What emit does with a line: keep it in tx if it fits, or write it now;
   MORE writes it telling the TCP connection below that more follows. */
enum { HOLD, WRITE, MORE };

/* Keep a line (the elements of line, already linked, ending at last) in
   tx, or write it with whatever tx holds in front of it, in one write.
   After http_done nothing is held back. 0, or -1 with the send side
   failed. */
static int emit(struct http_sock *h, struct dill_iolist *line,
      struct dill_iolist *last, int mode, int64_t deadline) {
    if(dill_refused(h->out_busy, 0, h->out_failed)) return -1;
    size_t len = 0;
    for(struct dill_iolist *it = line; it; it = it->iol_next)
        len += it->iol_len;
    if(mode == HOLD && !h->out_done &&
          len <= (size_t)(TX_SIZE - h->txlen)) {
        for(struct dill_iolist *it = line; it; it = it->iol_next) {
            memcpy(h->tx + h->txlen, it->iol_base, it->iol_len);
            h->txlen += (uint16_t)it->iol_len;
        }
        return 0;
    }
    struct dill_iolist held = {h->tx, h->txlen, line, 0};
    struct dill_iolist *first = h->txlen ? &held : line;
    if(!line) first = last = &held;
    h->out_busy = 1;
    int rc = mode == MORE && h->stream ?
        dill_fd_stream_send_more(h->stream, first, last, deadline) :
        h->below->bsendl(h->below, first, last, deadline);
    /* EBADF: our handle was closed while the write waited; h is gone. */
    if(rc < 0 && errno == EBADF) return -1;
    h->out_busy = 0;
    h->txlen = 0;
    if(rc < 0) h->out_failed = 1;
    return rc;
}

/* Write what tx holds, if anything and if no write is under way (a write
   under way carries all of tx already). */
static int flush(struct http_sock *h, int64_t deadline) {
    if(h->txlen == 0 || h->out_busy || h->out_failed) return 0;
    return emit(h, NULL, NULL, WRITE, deadline);
}

/* The empty line, with the head held in front of it. From http_detach the
   body usually follows on the stream at once: the head is then written
   as MORE, so that head and body leave in one TCP segment. Sent alone,
   a small head would make the body wait, under Nagle's algorithm, for an
   acknowledgement the client delays by up to 40 ms (sockets.md §21). */
static int send_done(struct http_sock *h, int mode, int64_t deadline) {
    struct dill_iolist crlf = {"\r\n", 2, NULL, 0};
    if(emit(h, &crlf, &crlf, mode, deadline) < 0) return -1;
    h->out_done = 1;
    return 0;
}

DILL_EXPORT int dill_http_done(int s, int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    if(dill_refused(h->out_busy, h->out_done, h->out_failed)) return -1;
    return send_done(h, WRITE, deadline);
}

static int recv_line(struct http_sock *h, int64_t deadline);

/* Read and drop lines until the peer's empty line: 0 then. The clock is
   looked at after each line, so a peer that never stops sending fields
   cannot keep us here past the deadline (as in dill_fd_drain, a deadline
   of 0 lets only the empty line come next). */
static int drain(struct http_sock *h, int64_t deadline) {
    for(;;) {
        if(recv_line(h, deadline) < 0) {
            /* EBADF: our handle was closed while we waited; h is gone. */
            if(errno == EBADF) return -1;
            return h->in_ended ? 0 : -1;
        }
        if(deadline == 0 || (deadline > 0 && dill_now_ms() >= deadline)) {
            h->in_failed = 1;
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

DILL_EXPORT int dill_http_detach(int s, int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    if(h->in_busy || h->out_busy) {
        errno = EBUSY;
        return -1;
    }
    if(h->in_failed || h->in_eof || h->out_failed) {
        errno = ECONNRESET;
        return dill_layer_abort(s);
    }
    if(!h->out_done && send_done(h, MORE, deadline) < 0) {
        if(errno == EBADF) return -1;
        return dill_layer_abort(s);
    }
    if(!h->in_ended && drain(h, deadline) < 0) {
        if(errno == EBADF) return -1;
        /* The stream ended before the empty line. */
        if(h->in_eof) errno = ECONNRESET;
        return dill_layer_abort(s);
    }
    return dill_layer_release(s, &h->layer);
}

/* ---- Sending ------------------------------------------------------------ */

/* Link n elements into a list. */
static struct dill_iolist *chain(struct dill_iolist *iol, int n) {
    for(int i = 0; i < n - 1; i++) iol[i].iol_next = &iol[i + 1];
    iol[n - 1].iol_next = NULL;
    return &iol[n - 1];
}

static struct dill_iolist piece(const char *base, size_t len) {
    struct dill_iolist iol = {(void *)base, len, NULL, 0};
    return iol;
}

/* Bytes a request's command or resource may not contain, and those a
   field name may not contain: the separators of RFC 7230 §3.2.6, space,
   tab and LF. One table, one bit per kind, so that a string is checked
   and measured in one pass. */
#define NOT_IN_WORD 1
#define NOT_IN_NAME 2
#define ANY (NOT_IN_WORD | NOT_IN_NAME)
static const uint8_t refused[256] = {
    ['\t'] = ANY, ['\n'] = ANY, [' '] = ANY,
    ['('] = NOT_IN_NAME, [')'] = NOT_IN_NAME, [','] = NOT_IN_NAME,
    ['/'] = NOT_IN_NAME, [':'] = NOT_IN_NAME, [';'] = NOT_IN_NAME,
    ['<'] = NOT_IN_NAME, ['='] = NOT_IN_NAME, ['>'] = NOT_IN_NAME,
    ['?'] = NOT_IN_NAME, ['@'] = NOT_IN_NAME, ['['] = NOT_IN_NAME,
    ['\\'] = NOT_IN_NAME, [']'] = NOT_IN_NAME, ['{'] = NOT_IN_NAME,
    ['}'] = NOT_IN_NAME, ['"'] = NOT_IN_NAME};
#undef ANY

/* The length of str, or -1 if it holds a byte refused for kind. */
static ptrdiff_t checked_len(const char *str, uint8_t kind) {
    const uint8_t *p = (const uint8_t *)str;
    for(; *p; p++)
        if(refused[*p] & kind) return -1;
    return (const char *)p - str;
}

DILL_EXPORT int dill_http_sendrequest(int s, const char *command,
      const char *resource, int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    ptrdiff_t cmdlen = command ? checked_len(command, NOT_IN_WORD) : -1;
    ptrdiff_t reslen = resource ? checked_len(resource, NOT_IN_WORD) : -1;
    if(cmdlen < 0 || reslen < 0) {
        errno = EINVAL;
        return -1;
    }
    struct dill_iolist iol[4] = {
        piece(command, (size_t)cmdlen), piece(" ", 1),
        piece(resource, (size_t)reslen), piece(" HTTP/1.1\r\n", 11)};
    return emit(h, iol, chain(iol, 4), HOLD, deadline);
}

DILL_EXPORT int dill_http_sendstatus(int s, int status, const char *reason,
      int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    if(status < 100 || status > 599 || !reason) {
        errno = EINVAL;
        return -1;
    }
    char start[] = "HTTP/1.1 000 ";
    start[9] = (char)('0' + status / 100);
    start[10] = (char)('0' + status / 10 % 10);
    start[11] = (char)('0' + status % 10);
    struct dill_iolist iol[3] = {piece(start, 13),
        piece(reason, strlen(reason)), piece("\r\n", 2)};
    return emit(h, iol, chain(iol, 3), HOLD, deadline);
}

DILL_EXPORT int dill_http_sendfield(int s, const char *name,
      const char *value, int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    ptrdiff_t namelen = name ? checked_len(name, NOT_IN_NAME) : -1;
    if(namelen < 0 || !value) {
        errno = EINVAL;
        return -1;
    }
    /* Only spaces are trimmed, on both sides; nothing left is EPROTO. */
    size_t start = 0, end = strlen(value);
    while(start < end && value[start] == ' ') start++;
    while(end > start && value[end - 1] == ' ') end--;
    if(start == end) {
        errno = EPROTO;
        return -1;
    }
    struct dill_iolist iol[4] = {piece(name, (size_t)namelen), piece(": ", 2),
        piece(value + start, end - start), piece("\r\n", 2)};
    return emit(h, iol, chain(iol, 4), HOLD, deadline);
}

/* ---- Receiving ---------------------------------------------------------- */

/* Receive one line into rx and return the length of its content (CR LF
   excluded). The stream is read two bytes at a time, or one after a CR, so
   no read can reach past the line's LF. EPIPE for the empty line and at
   the end of the stream, from then on; EMSGSIZE for a line over 1023
   bytes, and any failure, leave the receive side broken (ECONNRESET). */
static int recv_line(struct http_sock *h, int64_t deadline) {
    if(dill_refused(h->in_busy, h->in_ended || h->in_eof, h->in_failed))
        return -1;
    h->in_busy = 1;
    /* The peer must see our lines before we wait for its answer. */
    if(flush(h, deadline) < 0) {
        if(errno == EBADF) return -1;
        h->in_busy = 0;
        return -1;
    }
    size_t pos = 0;
    char prev = 0;
    for(;;) {
        char in[2];
        struct dill_iolist iol = {in, prev == '\r' ? 1 : 2, NULL, 0};
        if(h->below->brecvl(h->below, &iol, &iol, deadline) < 0) {
            if(errno == EBADF) return -1;
            h->in_busy = 0;
            if(errno == EPIPE) h->in_eof = 1;
            else h->in_failed = 1;
            return -1;
        }
        for(size_t i = 0; i < iol.iol_len; i++) {
            if(prev == '\r' && in[i] == '\n') {
                h->in_busy = 0;
                if(pos == 1) {
                    h->in_ended = 1;
                    errno = EPIPE;
                    return -1;
                }
                return (int)(pos - 1);
            }
            if(pos == RX_SIZE) {
                h->in_busy = 0;
                h->in_failed = 1;
                errno = EMSGSIZE;
                return -1;
            }
            h->rx[pos++] = in[i];
            prev = in[i];
        }
    }
}

/* The parsers walk a line with a cursor. Only the space (0x20) counts as
   white space; tabs are ordinary characters. */
struct cursor {
    const char *at;
    const char *end;
};

static void skip_spaces(struct cursor *c) {
    while(c->at < c->end && *c->at == ' ') c->at++;
}

/* The run of bytes up to the next space (or stop, when not 0) or the end
   of the line. */
static size_t token(struct cursor *c, char stop, const char **start) {
    *start = c->at;
    while(c->at < c->end && *c->at != ' ' && (!stop || *c->at != stop))
        c->at++;
    return (size_t)(c->at - *start);
}

/* Copy len bytes and a NUL into out of size outlen. */
static int copy_out(char *out, size_t outlen, const char *from, size_t len) {
    if(len >= outlen) {
        errno = EMSGSIZE;
        return -1;
    }
    memcpy(out, from, len);
    out[len] = 0;
    return 0;
}

static int proto_error(void) {
    errno = EPROTO;
    return -1;
}

/* A token that must be followed by a space (EPROTO at the end of the
   line), copied out. */
static int word(struct cursor *c, char *out, size_t outlen) {
    const char *start;
    size_t len = token(c, 0, &start);
    if(c->at == c->end) return proto_error();
    if(copy_out(out, outlen, start, len) < 0) return -1;
    skip_spaces(c);
    return 0;
}

/* The original's check of the version: 8 bytes of anything, or something
   longer that starts with HTTP/1.1. */
static int version_ok(const char *token, size_t len) {
    return len == 8 || (len > 8 && memcmp(token, "HTTP/1.1", 8) == 0);
}

/* A received line, ready for parsing, or -1. */
static int line_cursor(struct http_sock *h, struct cursor *c,
      int64_t deadline) {
    int len = recv_line(h, deadline);
    if(len < 0) return -1;
    c->at = h->rx;
    c->end = h->rx + len;
    skip_spaces(c);
    return 0;
}

DILL_EXPORT int dill_http_recvrequest(int s, char *command, size_t commandlen,
      char *resource, size_t resourcelen, int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    if(!command || !resource) {
        errno = EINVAL;
        return -1;
    }
    struct cursor c;
    if(line_cursor(h, &c, deadline) < 0) return -1;
    if(word(&c, command, commandlen) < 0) return -1;
    if(word(&c, resource, resourcelen) < 0) return -1;
    const char *version;
    size_t len = token(&c, 0, &version);
    if(!version_ok(version, len)) return proto_error();
    skip_spaces(&c);
    if(c.at != c.end) return proto_error();
    return 0;
}

DILL_EXPORT int dill_http_recvstatus(int s, char *reason, size_t reasonlen,
      int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    if(!reason) {
        errno = EINVAL;
        return -1;
    }
    struct cursor c;
    if(line_cursor(h, &c, deadline) < 0) return -1;
    const char *version;
    size_t len = token(&c, 0, &version);
    if(c.at == c.end || !version_ok(version, len)) return proto_error();
    skip_spaces(&c);
    const char *d = c.at;
    if(c.end - d < 4 || d[3] != ' ') return proto_error();
    int status = 0;
    for(int i = 0; i < 3; i++) {
        if(d[i] < '0' || d[i] > '9') return proto_error();
        status = status * 10 + (d[i] - '0');
    }
    c.at = d + 3;
    skip_spaces(&c);
    if(copy_out(reason, reasonlen, c.at, (size_t)(c.end - c.at)) < 0)
        return -1;
    return status;
}

DILL_EXPORT int dill_http_recvfield(int s, char *name, size_t namelen,
      char *value, size_t valuelen, int64_t deadline) {
    struct http_sock *h = get(s);
    if(!h) return -1;
    if(!name || !value) {
        errno = EINVAL;
        return -1;
    }
    struct cursor c;
    if(line_cursor(h, &c, deadline) < 0) return -1;
    const char *start;
    size_t len = token(&c, ':', &start);
    if(c.at == c.end) return proto_error();
    if(copy_out(name, namelen, start, len) < 0) return -1;
    skip_spaces(&c);
    if(c.at == c.end || *c.at != ':') return proto_error();
    c.at++;
    skip_spaces(&c);
    /* Trailing spaces stay, as in the original. */
    return copy_out(value, valuelen, c.at, (size_t)(c.end - c.at));
}
