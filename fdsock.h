/*
 * fdsock.h: the OS-socket plumbing shared by tcp.c, ipc.c and udp.c:
 * socket set-up, adopting an fd, the abortive close, and the all-or-nothing
 * send and receive loops that wait with fdout/fdin.
 */
#ifndef DILL_FDSOCK_H_INCLUDED
#define DILL_FDSOCK_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* socklen_t, struct sockaddr */

#include "layer.h"
#include "libdill.h"

/* Bytes a TCP connection reads ahead when asked for little. */
#define DILL_FD_RXBUF_SIZE 1984

/* A connection's read-ahead buffer. data is allocated at the first small
   read (never on the hot path after that) and freed by dill_fd_rxbuf_free;
   without memory the connection simply reads without read-ahead. */
struct dill_fd_rxbuf {
    uint8_t *data;
    uint16_t len; /* bytes held */
    uint16_t pos; /* bytes already handed out */
    uint8_t drained; /* the last recv was short: the kernel queue is empty */
};

/* O_NONBLOCK, SO_REUSEADDR, and SO_NOSIGPIPE where it exists. 0 or -1. */
int dill_fd_setup(int fd);

/* accept() of a connection, set up as dill_fd_setup would (-1 and errno
   from accept, or from the setup with nothing left open). */
int dill_fd_accept(int listener, struct sockaddr *addr, socklen_t *len);

/* The next connection on a non-blocking listener, set up as
   dill_fd_accept does, waiting with fdin until the deadline; connections
   the kernel reports as aborted are skipped. *len (when len is not NULL)
   is the room at addr, and the peer's address length on return. -1 with
   errno from fdin (ETIMEDOUT, ECANCELED, EBADF: the listener was closed
   meanwhile) or from accept. */
int dill_fd_accept_wait(int listener, struct sockaddr *addr, socklen_t *len,
    int64_t deadline);

/* Abortive close: forget fd in the poller, SO_LINGER {1, 0}, close.
   errno is preserved. */
void dill_fd_close(int fd);

/* For *_fromfd: fd must be a socket of this type (SOCK_STREAM, ...), of
   family family or alt_family, listening or not as asked (-1: either).
   Returns a set-up duplicate, or -1 with EINVAL (wrong kind of socket) or
   the system's errno (ENOTSOCK, EBADF, EMFILE, ...). The caller's fd is
   left alone until dill_fd_adopted. */
int dill_fd_adopt(int fd, int type, int family, int alt_family, int listening);

/* The last step of *_fromfd, once the handle h over copy was made (or not:
   h is -1): on success close the caller's fd, whose number the library
   now owns; on failure close the copy instead, so that the caller still
   has its socket, unchanged. Returns h; errno is kept. */
int dill_fd_adopted(int fd, int copy, int h);

/* Send the whole list (already validated) with sendmsg(MSG_NOSIGNAL),
   waiting for writability until the deadline. The kernel's EPIPE is
   reported as ECONNRESET. 0 or -1. */
int dill_fd_send(int fd, struct dill_iolist *first, struct dill_iolist *last,
    int64_t deadline);

/* Receive exactly the bytes the list asks for (NULL bases: read and drop),
   through the read-ahead buffer when rx is not NULL. End of stream gives
   EPIPE. 0 or -1. */
int dill_fd_recv(int fd, struct dill_fd_rxbuf *rx, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);

/* Read and drop everything until the end of the stream: 0 then, else -1
   (ETIMEDOUT at the deadline, which is checked on every pass, so a peer
   that never stops sending cannot keep us here). */
int dill_fd_drain(int fd, struct dill_fd_rxbuf *rx, int64_t deadline);

void dill_fd_rxbuf_free(struct dill_fd_rxbuf *rx);

/* ---- Bytestream connections (TCP, IPC) ------------------------------- */

/* The bits of a direction's state: one byte each, so that the common
   "nothing wrong" test is a single instruction. ENDED is EPIPE (the
   peer's end for receives, our own done for sends), FAILED ECONNRESET;
   MORE (sends only): the last send said more follows. */
#define DILL_DIR_BUSY 1u
#define DILL_DIR_ENDED 2u
#define DILL_DIR_FAILED 4u
#define DILL_DIR_MORE 8u
#define DILL_DIR_REFUSING (DILL_DIR_BUSY | DILL_DIR_ENDED | DILL_DIR_FAILED)

/* Whether a direction in this state refuses a new operation (errno set). */
static inline int dill_dir_refused(uint8_t dir) {
    return dill_refused(dir & DILL_DIR_BUSY, dir & DILL_DIR_ENDED,
        dir & DILL_DIR_FAILED);
}

/* One connected stream socket and the state of its two directions
   (sockets.md §3): a direction that failed keeps failing, with EPIPE after
   a clean end (or our own done) and ECONNRESET after anything else; a
   second operation in a direction already in use gets EBUSY. */
struct dill_fd_stream {
    struct dill_fd_rxbuf rx;
    int fd;
    uint8_t read_ahead; /* TCP reads ahead; IPC never does */
    uint8_t in;         /* DILL_DIR_* bits of receives */
    uint8_t out;        /* DILL_DIR_* bits of sends */
};

/* The private type a TCP connection answers (hquery) with its struct
   dill_fd_stream, for protocols that write through it themselves. */
extern const void *dill_fd_stream_type;

void dill_fd_stream_init(struct dill_fd_stream *s, int fd, int read_ahead);

/* bsendl/brecvl of a stream: validate the list (EINVAL), honour the
   direction's state, transfer, record the outcome. A brecvl with both
   ends NULL reads and drops everything until the end of the stream. */
int dill_fd_stream_send(struct dill_fd_stream *s, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);
int dill_fd_stream_recv(struct dill_fd_stream *s, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);

/* dill_fd_stream_send for bytes that more bytes follow at once, as a
   response's body follows the head http_detach writes: sent with MSG_MORE
   (Linux; a plain send elsewhere), so the kernel puts them in one segment
   with the next send. A small segment sent alone would make the next
   one wait, under Nagle's algorithm, for an acknowledgement the peer
   delays by up to 40 ms. What the kernel holds leaves with the next send,
   at done, or before the next receive (pushed then, since the peer may be
   waiting for it); in any case within about 200 ms. */
int dill_fd_stream_send_more(struct dill_fd_stream *s,
    struct dill_iolist *first, struct dill_iolist *last, int64_t deadline);

/* *_done: shutdown(SHUT_WR); never blocks. EPIPE if already done,
   ECONNRESET if sending had failed (or the socket is not connected),
   ENOMEM for the kernel's ENOBUFS. */
int dill_fd_stream_done(struct dill_fd_stream *s);

/* *_close: done if not yet, read and drop until the peer's end, then
   close. The socket is closed whatever happens; -1 with ECONNRESET if a
   direction had failed before, or the error of the drain (ETIMEDOUT,
   ECANCELED, ECONNRESET). */
int dill_fd_stream_close(struct dill_fd_stream *s, int64_t deadline);

/* hclose: drop buffered data and close abortively (the peer sees RST). */
void dill_fd_stream_abort(struct dill_fd_stream *s);

#endif
