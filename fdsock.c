/*
 * fdsock.c: what every OS-socket handle (TCP, IPC, UDP) does the same way.
 * Sends try the system call first and wait for writability only on EAGAIN;
 * receives do the same for readability. A TCP connection reads ahead up to
 * DILL_FD_RXBUF_SIZE bytes when asked for less, so a protocol that reads a
 * byte at a time costs one recv per buffer, not per byte.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "alloc.h"
#include "fd.h"
#include "fdsock.h"
#include "iol.h"
#include "layer.h"
#include "now.h"
#include "utils.h"

/* MSG_MORE and TCP_CORK are Linux's. Elsewhere a send that says more
   follows is a plain send, and nothing is ever left to push. */
#if defined MSG_MORE && defined TCP_CORK
#define HAVE_MORE 1
#define MORE_FLAG MSG_MORE
#else
#define HAVE_MORE 0
#define MORE_FLAG 0
#endif

/* iovecs handed to one sendmsg; longer lists go out in several calls. */
#define IOV_BATCH 64

int dill_fd_setup(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    if(flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
    int one = 1;
    if(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return -1;
#if defined SO_NOSIGPIPE
    if(setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one)) < 0 &&
          errno != EINVAL)
        return -1;
#endif
    return 0;
}

/* Accepted sockets need no SO_REUSEADDR (it only matters to bind), and
   where accept4 exists they come out non-blocking: one system call in all
   on Linux. */
int dill_fd_accept(int listener, struct sockaddr *addr, socklen_t *len) {
#if defined SOCK_NONBLOCK && !defined SO_NOSIGPIPE
    return accept4(listener, addr, len, SOCK_NONBLOCK);
#else
    int fd = accept(listener, addr, len);
    if(fd < 0) return -1;
    int flags = fcntl(fd, F_GETFL, 0);
    int one = 1;
    if(flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) goto fail;
#if defined SO_NOSIGPIPE
    if(setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one)) < 0 &&
          errno != EINVAL)
        goto fail;
#endif
    (void)one;
    return fd;
fail:
    dill_fd_close(fd);
    return -1;
#endif
}

/* Whether a connection may be queued on the listener. On Linux, accept on
   an empty queue costs about 4 us (the kernel makes the new socket's file
   before it looks at the queue, then frees it); a poll costs 0.3 us. So
   poll first, and accept only what is there. Elsewhere accept says. */
static int may_have_connection(int listener) {
#if defined __linux__
    struct pollfd p = {.fd = listener, .events = POLLIN};
    /* Ready, an error, a closed fd or a failed poll: accept will tell. */
    return poll(&p, 1, 0) != 0;
#else
    (void)listener;
    return 1;
#endif
}

int dill_fd_accept_wait(int listener, struct sockaddr *addr, socklen_t *len,
      int64_t deadline) {
    socklen_t room = len ? *len : 0;
    for(;;) {
        /* EBADF: the listener was closed under us (its handle may be
           gone): the caller must not touch it. */
        if(!may_have_connection(listener) && dill_fdin(listener, deadline) < 0)
            return -1;
        if(len) *len = room;
        int fd = dill_fd_accept(listener, addr, len);
        if(fd >= 0) return fd;
        /* Taken by another process, or aborted by the peer: wait again. */
        if(errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED &&
              errno != EINTR)
            return -1;
    }
}

void dill_fd_close(int fd) {
    int err = errno;
    dill_fd_forget(fd);
    /* Linger 0: the peer gets a reset, nothing lingers in the kernel. */
    struct linger lng = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lng, sizeof(lng));
    close(fd);
    errno = err;
}

static int check_kind(int fd, int type, int family, int alt_family,
      int listening) {
    int value;
    socklen_t len = sizeof(value);
    if(getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) < 0) return -1;
    if(value != type) goto invalid;
    if(listening >= 0) {
        len = sizeof(value);
        if(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) < 0) {
            if(errno != ENOPROTOOPT) return -1;
        } else if(!!value != listening) {
            goto invalid;
        }
    }
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if(getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if(ss.ss_family != family && ss.ss_family != alt_family) goto invalid;
    return 0;
invalid:
    errno = EINVAL;
    return -1;
}

int dill_fd_adopt(int fd, int type, int family, int alt_family,
      int listening) {
    if(fd < 0) {
        errno = EINVAL;
        return -1;
    }
    if(check_kind(fd, type, family, alt_family, listening) < 0) return -1;
    int copy = dup(fd);
    if(copy < 0) return -1;
    if(dill_fd_setup(copy) < 0) {
        int err = errno;
        close(copy);
        errno = err;
        return -1;
    }
    return copy;
}

int dill_fd_adopted(int fd, int copy, int h) {
    if(h < 0) {
        /* A plain close: the socket the caller keeps is as it was. */
        int err = errno;
        close(copy);
        errno = err;
        return -1;
    }
    /* The caller's number is ours now: the library works on the copy. */
    dill_fd_close(fd);
    return h;
}

/* ---- Sending ------------------------------------------------------------ */

/* Where a transfer stands in a list: an element and an offset in it. */
struct cursor {
    struct dill_iolist *it;
    size_t off;
};

static int fill_iov(struct cursor *c, struct iovec *iov) {
    int n = 0;
    size_t off = c->off;
    for(struct dill_iolist *it = c->it; it && n < IOV_BATCH;
          it = it->iol_next, off = 0) {
        if(it->iol_len == off) continue;
        iov[n].iov_base = (char *)it->iol_base + off;
        iov[n].iov_len = it->iol_len - off;
        n++;
    }
    return n;
}

static void advance(struct cursor *c, size_t n) {
    while(c->it) {
        size_t left = c->it->iol_len - c->off;
        if(n < left) {
            c->off += n;
            return;
        }
        n -= left;
        c->it = c->it->iol_next;
        c->off = 0;
    }
}

/* After a send call failed: 0 to try again (interrupted, or the socket
   became writable), -1 to give up, with the kernel's EPIPE reported as
   ECONNRESET. */
static int send_failed(int fd, int64_t deadline) {
    if(errno == EINTR) return 0;
    if(errno == EAGAIN || errno == EWOULDBLOCK) return dill_fdout(fd, deadline);
    if(errno == EPIPE) errno = ECONNRESET;
    return -1;
}

/* One buffer: send(), no msghdr to build. Inlined into the callers, the
   common bsend costs no call between the handle and the kernel. */
static inline int send_buffer(int fd, const char *p, size_t left, int flags,
      int64_t deadline) {
    while(left) {
        ssize_t n = send(fd, p, left, flags);
        if(dill_likely(n >= 0)) {
            p += n;
            left -= (size_t)n;
        } else if(send_failed(fd, deadline) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Several buffers: sendmsg, IOV_BATCH of them at a time. Out of line: its
   iovec array is a kilobyte of stack the one-buffer send does not need. */
__attribute__((noinline)) static int send_list(int fd,
      struct dill_iolist *first, int flags, int64_t deadline) {
    struct cursor c = {first, 0};
    struct iovec iov[IOV_BATCH];
    for(;;) {
        struct msghdr msg = {0};
        msg.msg_iov = iov;
        msg.msg_iovlen = fill_iov(&c, iov);
        if(msg.msg_iovlen == 0) return 0;
        ssize_t n = sendmsg(fd, &msg, flags);
        if(n >= 0) advance(&c, (size_t)n);
        else if(send_failed(fd, deadline) < 0) return -1;
    }
}

static inline int send_flags(int fd, struct dill_iolist *first,
      struct dill_iolist *last, int flags, int64_t deadline) {
    if(first == last)
        return send_buffer(fd, first->iol_base, first->iol_len, flags,
            deadline);
    return send_list(fd, first, flags, deadline);
}

/* ---- Receiving ----------------------------------------------------------- */

/* One recv into buf, waiting for readability. >0 bytes, or -1 with errno
   (EPIPE at the end of the stream). */

int dill_fd_send(int fd, struct dill_iolist *first, struct dill_iolist *last,
      int64_t deadline) {
    return send_flags(fd, first, last, MSG_NOSIGNAL, deadline);
}

static inline ssize_t recv_some(int fd, void *buf, size_t len,
      int64_t deadline) {
    for(;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if(n > 0) return n;
        if(n == 0) {
            errno = EPIPE;
            return -1;
        }
        if(errno == EINTR) continue;
        if(errno == EAGAIN || errno == EWOULDBLOCK) {
            if(dill_fdin(fd, deadline) < 0) return -1;
            continue;
        }
        if(errno == EPIPE) errno = ECONNRESET;
        return -1;
    }
}

/* Refill the read-ahead buffer with whatever one recv brings. */
static int refill(int fd, struct dill_fd_rxbuf *rx, int64_t deadline) {
    if(rx->drained) {
        /* The last recv was short, so the kernel's queue was empty: a recv
           now would almost surely say EAGAIN. Wait first. */
        rx->drained = 0;
        if(dill_fdin(fd, deadline) < 0) return -1;
    }
    ssize_t n = recv_some(fd, rx->data, DILL_FD_RXBUF_SIZE, deadline);
    if(n < 0) return -1;
    rx->drained = n < DILL_FD_RXBUF_SIZE;
    rx->len = (uint16_t)n;
    rx->pos = 0;
    return 0;
}

/* A connection gets its read-ahead buffer only once data has arrived, so
   one that waits for its first request costs no buffer: what is already
   there goes straight to dst; else wait until readable. Returns the bytes
   read, 0 when the buffer should now be allocated, -1 and errno. */
static ssize_t recv_before_buffer(int fd, char *dst, size_t len,
      int64_t deadline) {
    if(!dst) return 0;
    for(;;) {
        ssize_t n = recv(fd, dst, len, 0);
        if(n > 0) return n;
        if(n == 0) {
            errno = EPIPE;
            return -1;
        }
        if(errno == EINTR) continue;
        if(errno != EAGAIN && errno != EWOULDBLOCK) {
            if(errno == EPIPE) errno = ECONNRESET;
            return -1;
        }
        return dill_fdin(fd, deadline) < 0 ? -1 : 0;
    }
}

static size_t take_buffered(struct dill_fd_rxbuf *rx, char *dst, size_t len) {
    size_t held = (size_t)(rx->len - rx->pos);
    size_t n = len < held ? len : held;
    if(dst) memcpy(dst, rx->data + rx->pos, n);
    rx->pos = (uint16_t)(rx->pos + n);
    return n;
}

/* What recv_element does when the read-ahead buffer cannot serve: the
   first data of a connection without a buffer yet, a large request, or
   bytes to drop without a buffer. Moves [*dst, *dst + *len) on by what
   arrived; -1 and errno. Out of line: the common path needs none of it. */
__attribute__((noinline)) static int recv_direct(int fd,
      struct dill_fd_rxbuf *rx, char **dst, size_t *len, size_t rest,
      int64_t deadline) {
    if(rx && !rx->data && *len + rest <= DILL_FD_RXBUF_SIZE) {
        if(rx->drained) {
            /* A new connection: see dill_fd_stream_init. */
            rx->drained = 0;
            if(dill_fdin(fd, deadline) < 0) return -1;
        }
        ssize_t n = recv_before_buffer(fd, *dst, *len, deadline);
        if(n < 0) return -1;
        if(n > 0) {
            *len -= (size_t)n;
            *dst += n;
            return 0;
        }
        /* Data has arrived: the next round reads it ahead. */
        rx->data = dill_malloc(DILL_FD_RXBUF_SIZE);
        if(rx->data) return 0;
    }
    /* A large request goes straight into the caller's buffer; bytes to
       drop go through the (empty) read-ahead buffer if there is one, else
       a small scratch area that fits any coroutine stack. */
    char scratch[256];
    char *to = *dst;
    size_t room = *len;
    if(!*dst && rx && rx->data) {
        to = (char *)rx->data;
        room = DILL_FD_RXBUF_SIZE;
    } else if(!*dst) {
        to = scratch;
        room = sizeof(scratch);
    }
    size_t want = *len < room ? *len : room;
    ssize_t n = recv_some(fd, to, want, deadline);
    if(n < 0) return -1;
    *len -= (size_t)n;
    if(*dst) *dst += n;
    return 0;
}

/* Fill [dst, dst + len) (dst NULL: drop len bytes); rest is what the whole
   request still needs after this element, to decide on read-ahead. */
static inline int recv_element(int fd, struct dill_fd_rxbuf *rx, char *dst,
      size_t len, size_t rest, int64_t deadline) {
    while(len) {
        if(rx && rx->pos < rx->len) {
            size_t n = take_buffered(rx, dst, len);
            len -= n;
            if(dst) dst += n;
            continue;
        }
        int rc = rx && rx->data && len + rest <= DILL_FD_RXBUF_SIZE ?
            refill(fd, rx, deadline) :
            recv_direct(fd, rx, &dst, &len, rest, deadline);
        if(rc < 0) return -1;
    }
    return 0;
}

static size_t list_len(struct dill_iolist *it) {
    size_t total = 0;
    for(; it; it = it->iol_next) total += it->iol_len;
    return total;
}

DILL_HOT int dill_fd_recv(int fd, struct dill_fd_rxbuf *rx, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    /* One buffer, as brecv passes: no list to walk. */
    if(first == last)
        return recv_element(fd, rx, first->iol_base, first->iol_len, 0,
            deadline);
    size_t rest = list_len(first);
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        rest -= it->iol_len;
        if(recv_element(fd, rx, it->iol_base, it->iol_len, rest, deadline) < 0)
            return -1;
    }
    return 0;
}

int dill_fd_drain(int fd, struct dill_fd_rxbuf *rx, int64_t deadline) {
    char scratch[512];
    char *to = scratch;
    size_t room = sizeof(scratch);
    if(rx && rx->data) {
        to = (char *)rx->data;
        room = DILL_FD_RXBUF_SIZE;
    }
    if(rx) rx->pos = rx->len = 0;
    for(;;) {
        ssize_t n = recv(fd, to, room, 0);
        if(n == 0) return 0;
        if(n < 0) {
            if(errno == EINTR) continue;
            if(errno != EAGAIN && errno != EWOULDBLOCK) {
                if(errno == EPIPE) errno = ECONNRESET;
                return -1;
            }
            if(dill_fdin(fd, deadline) < 0) return -1;
            continue;
        }
        /* Data keeps coming: the deadline still has the last word. */
        if(deadline == 0 || (deadline > 0 && dill_now_ms() >= deadline)) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

void dill_fd_rxbuf_free(struct dill_fd_rxbuf *rx) {
    free(rx->data);
    rx->data = NULL;
    rx->len = 0;
    rx->pos = 0;
}

/* ---- Bytestream connections ---------------------------------------------- */

static const int stream_type_id;
const void *dill_fd_stream_type = &stream_type_id;

void dill_fd_stream_init(struct dill_fd_stream *s, int fd, int read_ahead) {
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->read_ahead = read_ahead ? 1 : 0;
    /* Nothing has arrived on a new connection yet, as far as anyone
       knows: its first receive waits before it asks the kernel. */
    s->rx.drained = s->read_ahead;
}

DILL_HOT static int stream_send(struct dill_fd_stream *s, struct dill_iolist *first,
      struct dill_iolist *last, int flags, int64_t deadline) {
    /* One test of the three bits in the common case. */
    if(dill_unlikely(s->out & DILL_DIR_REFUSING) && dill_dir_refused(s->out))
        return -1;
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) {
        /* A malformed list fails the direction like any other error. */
        s->out |= DILL_DIR_FAILED;
        return -1;
    }
    if(len == 0) return 0;
    s->out |= DILL_DIR_BUSY;
    int rc = send_flags(s->fd, first, last, flags, deadline);
    /* EBADF: the handle was closed while we waited; s may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    s->out &= (uint8_t)~DILL_DIR_BUSY;
    if(rc < 0) {
        s->out |= DILL_DIR_FAILED;
    } else {
        /* A send without MSG_MORE takes what the kernel held along. */
        s->out &= (uint8_t)~DILL_DIR_MORE;
        if(flags & MORE_FLAG) s->out |= DILL_DIR_MORE;
    }
    return rc;
}

DILL_HOT int dill_fd_stream_send(struct dill_fd_stream *s, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    return stream_send(s, first, last, MSG_NOSIGNAL, deadline);
}

int dill_fd_stream_send_more(struct dill_fd_stream *s,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    return stream_send(s, first, last, MSG_NOSIGNAL | MORE_FLAG, deadline);
}

/* What an earlier MSG_MORE left in the kernel goes out now: taking the
   cork off pushes pending data (tcp(7)). Errors are the next send's. */
static void stream_push(struct dill_fd_stream *s) {
#if HAVE_MORE
    int on = 1, off = 0;
    setsockopt(s->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    setsockopt(s->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
#endif
    s->out &= (uint8_t)~DILL_DIR_MORE;
}

static int stream_drain(struct dill_fd_stream *s, int64_t deadline) {
    struct dill_fd_rxbuf *rx = s->read_ahead ? &s->rx : NULL;
    int rc = dill_fd_drain(s->fd, rx, deadline);
    if(rc < 0 && errno == EBADF) return -1;
    s->in |= rc == 0 ? DILL_DIR_ENDED : DILL_DIR_FAILED;
    return rc;
}

/* Fill [dst, dst + len), 0 < len <= DILL_FD_RXBUF_SIZE, through the
   allocated read-ahead buffer: recv_element's loop where the buffer is
   known to exist and nothing follows. recv_element here, even inlined,
   costs 36 more instructions per ping-pong round trip (callgrind). */
static inline int recv_ahead(int fd, struct dill_fd_rxbuf *rx, uint8_t *dst,
      size_t len, int64_t deadline) {
    for(;;) {
        if(rx->pos == rx->len && refill(fd, rx, deadline) < 0) return -1;
        size_t n = take_buffered(rx, (char *)dst, len);
        if(n == len) return 0;
        dst += n;
        len -= n;
    }
}

/* The end of a receive: the direction is free again, or failed. */
static inline int recv_done(struct dill_fd_stream *s, int rc, int drain) {
    /* EBADF: the handle was closed while we waited; s may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    s->in &= (uint8_t)~DILL_DIR_BUSY;
    if(rc < 0 && !drain)
        s->in |= errno == EPIPE ? DILL_DIR_ENDED : DILL_DIR_FAILED;
    return rc;
}

/* Everything but the fast path of dill_fd_stream_recv. Kept out of line,
   so that the fast path needs no registers saved. */
DILL_HOT __attribute__((noinline)) static int stream_recv(struct dill_fd_stream *s, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    if(dill_unlikely(s->in & DILL_DIR_REFUSING) && dill_dir_refused(s->in))
        return -1;
    /* The peer may be waiting for what the kernel holds before it says
       anything. */
    if(s->out & DILL_DIR_MORE) stream_push(s);
    /* One buffer the read-ahead buffer can hold, as a request/response
       exchange asks for: refill and hand out, no list to walk. */
    if(first && first == last && !first->iol_next && !first->iol_rsvd &&
          first->iol_base && first->iol_len - 1 < DILL_FD_RXBUF_SIZE &&
          s->rx.data) {
        s->in |= DILL_DIR_BUSY;
        int rc = recv_ahead(s->fd, &s->rx, first->iol_base, first->iol_len,
            deadline);
        return recv_done(s, rc, 0);
    }
    size_t len = 0;
    int drain = !first && !last;
    if(!drain && dill_iol_check(first, last, &len) < 0) {
        s->in |= DILL_DIR_FAILED;
        return -1;
    }
    if(!drain && len == 0) return 0;
    s->in |= DILL_DIR_BUSY;
    int rc = drain ? stream_drain(s, deadline) :
        dill_fd_recv(s->fd, s->read_ahead ? &s->rx : NULL, first, last,
            deadline);
    return recv_done(s, rc, drain);
}

DILL_HOT int dill_fd_stream_recv(struct dill_fd_stream *s, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    /* The common small read the read-ahead buffer holds whole, by
       protocols that read a line or a header a few bytes at a time: served
       here, with no list walk and no call. */
    if(first && first == last && first->iol_rsvd == 0 && first->iol_len &&
          first->iol_len <= (size_t)(s->rx.len - s->rx.pos) &&
          !s->in && !(s->out & DILL_DIR_MORE)) {
        const uint8_t *from = s->rx.data + s->rx.pos;
        uint8_t *to = first->iol_base;
        size_t len = first->iol_len;
        if(to && len <= 8) {
            for(size_t i = 0; i < len; i++) to[i] = from[i];
        } else if(to) {
            memcpy(to, from, len);
        }
        s->rx.pos = (uint16_t)(s->rx.pos + len);
        return 0;
    }
    return stream_recv(s, first, last, deadline);
}

int dill_fd_stream_done(struct dill_fd_stream *s) {
    if(s->out & DILL_DIR_ENDED) {
        errno = EPIPE;
        return -1;
    }
    if(s->out & DILL_DIR_FAILED) {
        errno = ECONNRESET;
        return -1;
    }
    if(shutdown(s->fd, SHUT_WR) < 0) {
        if(errno == ENOTCONN) errno = ECONNRESET;
        else if(errno == ENOBUFS) errno = ENOMEM;
        s->out |= DILL_DIR_FAILED;
        return -1;
    }
    s->out |= DILL_DIR_ENDED;
    return 0;
}

void dill_fd_stream_abort(struct dill_fd_stream *s) {
    dill_fd_rxbuf_free(&s->rx);
    dill_fd_close(s->fd);
    s->fd = -1;
}

int dill_fd_stream_close(struct dill_fd_stream *s, int64_t deadline) {
    int rc = 0;
    if((s->in | s->out) & DILL_DIR_FAILED) {
        errno = ECONNRESET;
        rc = -1;
    } else if(!(s->out & DILL_DIR_ENDED) && dill_fd_stream_done(s) < 0) {
        rc = -1;
    } else if(!(s->in & DILL_DIR_ENDED) && stream_drain(s, deadline) < 0) {
        /* EBADF: the handle was closed while we drained; s is gone. */
        if(errno == EBADF) return -1;
        rc = -1;
    }
    dill_fd_stream_abort(s);
    return rc;
}
