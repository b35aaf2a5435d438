/*
 * ipc.c: UNIX-domain stream sockets (sockets.md §9): listeners,
 * connections, socket pairs, and descriptor passing. A connection is
 * fdconn.c's handle over a struct dill_fd_stream (data path, sticky
 * errors, orderly close) without read-ahead, so that the bytes
 * carrying descriptors (ipc_sendfd/ipc_recvfd) stay exactly where the
 * sender put them in the stream.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdconn.h"
#include "fdsock.h"
#include "layer.h"
#include "libdillimpl.h"
#include "utils.h"

/* Private type ids: a connection answers conn_type (and dill_bsock_type),
   a listener only listener_type. */
static const int conn_type_id;
static const void *conn_type = &conn_type_id;
static const int listener_type_id;
static const void *listener_type = &listener_type_id;

/* ---- Connections -------------------------------------------------------- */

/* Storage may start at any address. A pair's storage holds two
   connections, one per 72-byte half. */
_Static_assert(2 * sizeof(struct dill_ipc_storage) <=
    sizeof(struct dill_ipc_pair_storage), "ipc pair storage too small");

static void *conn_query(struct dill_hvfs *hvfs, const void *type);

/* No read-ahead: descriptors travel with particular bytes. */
static const struct dill_fd_conn_kind conn_kind = {
    .type = &conn_type_id,
    .read_ahead = 0,
    .offer_stream = 0,
    .family = AF_UNIX,
    .alt_family = AF_UNIX,
    .query = conn_query
};

static void *conn_query(struct dill_hvfs *hvfs, const void *type) {
    return dill_fd_conn_query(hvfs, type, &conn_kind);
}

/* ---- Listeners ---------------------------------------------------------- */

/* A listener must fit 24 bytes of storage that may start at any address.
   Rounded up to pointer alignment that leaves 17 bytes: room for the vfs
   and one byte after it, not for a descriptor too. So the object is the
   vfs plus a tag byte saying where the descriptor went: after the tag if
   the storage has room there, otherwise in the bytes before the vfs
   (which exist exactly when the room after is missing). */
#define FD_BEFORE 1
#define IN_CALLER_MEMORY 2
#define LISTENER_SIZE (sizeof(struct dill_hvfs) + 1 + sizeof(int))

_Static_assert(LISTENER_SIZE <= sizeof(struct dill_ipc_listener_storage),
    "ipc listener does not fit its storage");
/* When the descriptor does not fit after the tag, the padding skipped at
   the start is at least as large as the descriptor. */
_Static_assert(sizeof(struct dill_ipc_listener_storage) - LISTENER_SIZE + 1
    >= sizeof(int), "no room for the descriptor before the listener");

static uint8_t *listener_tag(struct dill_hvfs *hvfs) {
    return (uint8_t *)(hvfs + 1);
}

static char *listener_fd_at(struct dill_hvfs *hvfs) {
    if(*listener_tag(hvfs) & FD_BEFORE) return (char *)hvfs - sizeof(int);
    return (char *)(hvfs + 1) + 1;
}

static int listener_fd(struct dill_hvfs *hvfs) {
    int fd;
    memcpy(&fd, listener_fd_at(hvfs), sizeof(fd));
    return fd;
}

static void *listener_query(struct dill_hvfs *hvfs, const void *type) {
    if(type == listener_type) return hvfs;
    errno = ENOTSUP;
    return NULL;
}

static void listener_free(struct dill_hvfs *hvfs) {
    dill_unplace(hvfs, *listener_tag(hvfs) & IN_CALLER_MEMORY);
}

static void listener_close(struct dill_hvfs *hvfs) {
    /* Wakes a coroutine blocked in ipc_accept with EBADF. The socket
       file stays where it is. */
    dill_fd_close(listener_fd(hvfs));
    listener_free(hvfs);
}

static struct dill_hvfs *listener_alloc(struct dill_ipc_listener_storage *mem) {
    struct dill_hvfs *hvfs = dill_place(mem, LISTENER_SIZE,
        _Alignof(struct dill_hvfs));
    if(!hvfs) return NULL;
    if(!mem) {
        *listener_tag(hvfs) = 0;
        return hvfs;
    }
    size_t skipped = (size_t)((char *)hvfs - (char *)mem);
    *listener_tag(hvfs) = IN_CALLER_MEMORY;
    if(skipped + LISTENER_SIZE > sizeof(*mem))
        *listener_tag(hvfs) |= FD_BEFORE;
    return hvfs;
}

static int listener_make(struct dill_hvfs *hvfs, int fd) {
    hvfs->query = listener_query;
    hvfs->close = listener_close;
    memcpy(listener_fd_at(hvfs), &fd, sizeof(fd));
    int h = dill_hmake(hvfs);
    if(h < 0) {
        listener_free(hvfs);
        return -1;
    }
    return h;
}

/* ---- Sockets ------------------------------------------------------------ */

/* The path, verbatim, as an address: EINVAL without one, ENAMETOOLONG
   when it does not fit sun_path with its terminating zero. */
static int make_sockaddr(struct sockaddr_un *sa, const char *addr) {
    if(!addr) {
        errno = EINVAL;
        return -1;
    }
    size_t len = strlen(addr);
    if(len >= sizeof(sa->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, addr, len + 1);
    return 0;
}

/* A new, set-up UNIX stream socket, or -1. */
static int new_socket(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if(fd < 0) return -1;
    if(dill_fd_setup(fd) < 0) {
        dill_fd_close(fd);
        return -1;
    }
    return fd;
}

/* A listening socket, or -1 with nothing left open. An existing file at
   the path is not removed: bind reports EADDRINUSE. */
static int listen_socket(const struct sockaddr_un *sa, int backlog) {
    int fd = new_socket();
    if(fd < 0) return -1;
    if(bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
          listen(fd, backlog) < 0) {
        dill_fd_close(fd);
        return -1;
    }
    return fd;
}

/* One accepted, set-up socket, or -1. */
static int accept_socket(struct dill_hvfs *l, int64_t deadline) {
    return dill_fd_accept_wait(listener_fd(l), NULL, NULL, deadline);
}

/* A connected, set-up socket, or -1 with nothing left open. On Linux a
   UNIX connect completes or fails at once (a full backlog gives EAGAIN,
   returned as is); elsewhere it may be in progress and is waited for. */
static int connect_socket(const struct sockaddr_un *sa, int64_t deadline) {
    int fd = new_socket();
    if(fd < 0) return -1;
    if(connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
        return fd;
    if(errno != EINPROGRESS) goto fail;
    if(dill_fdout(fd, deadline) < 0) goto fail;
    int err;
    socklen_t len = sizeof(err);
    if(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) goto fail;
    if(err) {
        errno = err;
        goto fail;
    }
    return fd;
fail:
    dill_fd_close(fd);
    return -1;
}

/* ---- Listening and accepting -------------------------------------------- */

/* Both variants of each operation allocate the object first: when the
   socket cannot be made, only the allocation needs undoing. */
static int listen_with(const char *addr, int backlog,
      struct dill_ipc_listener_storage *mem) {
    struct sockaddr_un sa;
    if(make_sockaddr(&sa, addr) < 0) return -1;
    struct dill_hvfs *l = listener_alloc(mem);
    if(!l) return -1;
    int fd = listen_socket(&sa, backlog);
    if(fd < 0) {
        listener_free(l);
        return -1;
    }
    int h = listener_make(l, fd);
    if(h < 0) dill_fd_close(fd);
    return h;
}

DILL_EXPORT int dill_ipc_listen_mem(const char *addr, int backlog,
      struct dill_ipc_listener_storage *mem) {
    /* The address is checked first, as the original does. */
    struct sockaddr_un sa;
    if(make_sockaddr(&sa, addr) < 0) return -1;
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return listen_with(addr, backlog, mem);
}

DILL_EXPORT int dill_ipc_listen(const char *addr, int backlog) {
    return listen_with(addr, backlog, NULL);
}

static int accept_with(int s, struct dill_ipc_storage *mem,
      int64_t deadline) {
    struct dill_hvfs *l = dill_hquery(s, listener_type);
    if(!l) return -1;
    struct dill_fd_conn *c = dill_fd_conn_alloc(mem);
    if(!c) return -1;
    int fd = accept_socket(l, deadline);
    if(fd < 0) {
        dill_fd_conn_free(c);
        return -1;
    }
    return dill_fd_conn_make(c, fd, &conn_kind);
}

DILL_EXPORT int dill_ipc_accept_mem(int s, struct dill_ipc_storage *mem,
      int64_t deadline) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return accept_with(s, mem, deadline);
}

DILL_EXPORT int dill_ipc_accept(int s, int64_t deadline) {
    return accept_with(s, NULL, deadline);
}

/* ---- Connecting --------------------------------------------------------- */

static int connect_with(const char *addr, struct dill_ipc_storage *mem,
      int64_t deadline) {
    struct sockaddr_un sa;
    if(make_sockaddr(&sa, addr) < 0) return -1;
    struct dill_fd_conn *c = dill_fd_conn_alloc(mem);
    if(!c) return -1;
    int fd = connect_socket(&sa, deadline);
    if(fd < 0) {
        dill_fd_conn_free(c);
        return -1;
    }
    return dill_fd_conn_make(c, fd, &conn_kind);
}

DILL_EXPORT int dill_ipc_connect_mem(const char *addr,
      struct dill_ipc_storage *mem, int64_t deadline) {
    struct sockaddr_un sa;
    if(make_sockaddr(&sa, addr) < 0) return -1;
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return connect_with(addr, mem, deadline);
}

DILL_EXPORT int dill_ipc_connect(const char *addr, int64_t deadline) {
    return connect_with(addr, NULL, deadline);
}

/* ---- Pairs -------------------------------------------------------------- */

/* Two connected sockets in a and b (one per half of a pair's storage, or
   on the heap). On failure nothing is left open and a and b are freed. */
static int pair_make(struct dill_fd_conn *a, struct dill_fd_conn *b, int s[2]) {
    int fds[2];
    if(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) goto fail;
    if(dill_fd_setup(fds[0]) < 0 || dill_fd_setup(fds[1]) < 0) {
        dill_fd_close(fds[0]);
        dill_fd_close(fds[1]);
        goto fail;
    }
    int h0 = dill_fd_conn_make(a, fds[0], &conn_kind);
    if(h0 < 0) {
        dill_fd_close(fds[1]);
        dill_fd_conn_free(b);
        return -1;
    }
    int h1 = dill_fd_conn_make(b, fds[1], &conn_kind);
    if(h1 < 0) {
        int err = errno;
        dill_hclose(h0);
        errno = err;
        return -1;
    }
    s[0] = h0;
    s[1] = h1;
    return 0;
fail:
    dill_fd_conn_free(a);
    dill_fd_conn_free(b);
    return -1;
}

DILL_EXPORT int dill_ipc_pair_mem(struct dill_ipc_pair_storage *mem,
      int s[2]) {
    if(!mem || !s) {
        errno = EINVAL;
        return -1;
    }
    struct dill_ipc_storage *halves = (struct dill_ipc_storage *)mem;
    return pair_make(dill_fd_conn_alloc(&halves[0]), dill_fd_conn_alloc(&halves[1]), s);
}

DILL_EXPORT int dill_ipc_pair(int s[2]) {
    if(!s) {
        errno = EINVAL;
        return -1;
    }
    struct dill_fd_conn *a = dill_fd_conn_alloc(NULL);
    if(!a) return -1;
    struct dill_fd_conn *b = dill_fd_conn_alloc(NULL);
    if(!b) {
        dill_fd_conn_free(a);
        return -1;
    }
    return pair_make(a, b, s);
}

/* ---- Done and close ----------------------------------------------------- */

DILL_EXPORT int dill_ipc_done(int s, int64_t deadline) {
    /* shutdown() never blocks: the deadline has nothing to bound. */
    (void)deadline;
    struct dill_fd_conn *c = dill_hquery(s, conn_type);
    if(!c) return -1;
    return dill_fd_stream_done(&c->stream);
}

DILL_EXPORT int dill_ipc_close(int s, int64_t deadline) {
    struct dill_fd_conn *c = dill_hquery(s, conn_type);
    if(!c) {
        if(errno != ENOTSUP || !dill_hquery(s, listener_type)) return -1;
        /* A listener has nothing to finish. */
        dill_hclose(s);
        return 0;
    }
    int rc = dill_fd_stream_close(&c->stream, deadline);
    /* EBADF: the handle was closed by someone else while we drained. */
    if(rc < 0 && errno == EBADF) return -1;
    int err = errno;
    dill_hclose(s);
    errno = err;
    return rc;
}

/* ---- Descriptor passing ------------------------------------------------- */

/* One sendmsg of the data byte 0xCC carrying fd (a stream cannot send
   control data alone). */
static ssize_t send_fd_byte(int sock, int fd) {
    unsigned char byte = 0xCC;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

DILL_EXPORT int dill_ipc_sendfd(int s, int fd, int64_t deadline) {
    struct dill_fd_conn *c = dill_hquery(s, conn_type);
    if(!c) return -1;
    if(fd < 0) {
        errno = EINVAL;
        return -1;
    }
    struct dill_fd_stream *st = &c->stream;
    if(dill_dir_refused(st->out)) return -1;
    st->out |= DILL_DIR_BUSY;
    while(send_fd_byte(st->fd, fd) < 0) {
        if(errno == EINTR) continue;
        if(errno == EAGAIN || errno == EWOULDBLOCK) {
            if(dill_fdout(st->fd, deadline) == 0) continue;
            /* EBADF: the handle was closed while we waited; c may be
               gone. A timeout or cancellation sent nothing: the stream
               stays usable. */
            if(errno == EBADF) return -1;
            st->out &= (uint8_t)~DILL_DIR_BUSY;
            return -1;
        }
        st->out &= (uint8_t)~DILL_DIR_BUSY;
        /* A broken connection; anything else (a bad descriptor to pass,
           ETOOMANYREFS, ENOBUFS) sent nothing. */
        if(errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
            st->out |= DILL_DIR_FAILED;
            errno = ECONNRESET;
        }
        return -1;
    }
    st->out &= (uint8_t)~DILL_DIR_BUSY;
    return 0;
}

/* The first descriptor of the first SCM_RIGHTS message in msg, or -1.
   Any other descriptor that came along is closed, not leaked. */
static int take_fd(struct msghdr *msg) {
    int found = -1;
    for(struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg); cmsg;
          cmsg = CMSG_NXTHDR(msg, cmsg)) {
        if(cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for(size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
            if(found < 0) found = fd;
            else close(fd);
        }
    }
    return found;
}

/* One recvmsg of one byte (its value is not looked at) with room for
   whatever control data came with it; the descriptor, or -1, in *fd, and
   in *dropped whether the kernel cut the control data short (MSG_CTRUNC):
   a descriptor came but could not be put in our table. */
static ssize_t recv_fd_byte(int sock, int *fd, int *dropped) {
    unsigned char byte;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr hdr;
        char buf[1024];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    ssize_t n = recvmsg(sock, &msg, 0);
    *fd = n > 0 ? take_fd(&msg) : -1;
    *dropped = n > 0 && (msg.msg_flags & MSG_CTRUNC) != 0;
    return n;
}

DILL_EXPORT int dill_ipc_recvfd(int s, int64_t deadline) {
    struct dill_fd_conn *c = dill_hquery(s, conn_type);
    if(!c) return -1;
    struct dill_fd_stream *st = &c->stream;
    if(dill_dir_refused(st->in)) return -1;
    st->in |= DILL_DIR_BUSY;
    int fd, dropped;
    ssize_t n;
    while((n = recv_fd_byte(st->fd, &fd, &dropped)) < 0) {
        if(errno == EINTR) continue;
        if(errno == EAGAIN || errno == EWOULDBLOCK) {
            if(dill_fdin(st->fd, deadline) == 0) continue;
            /* EBADF: the handle was closed while we waited. A timeout or
               cancellation consumed nothing. */
            if(errno == EBADF) return -1;
            st->in &= (uint8_t)~DILL_DIR_BUSY;
            return -1;
        }
        st->in &= (uint8_t)~DILL_DIR_BUSY;
        st->in |= DILL_DIR_FAILED;
        if(errno == EPIPE) errno = ECONNRESET;
        return -1;
    }
    st->in &= (uint8_t)~DILL_DIR_BUSY;
    if(n == 0) {
        st->in |= DILL_DIR_ENDED;
        errno = EPIPE;
        return -1;
    }
    if(fd < 0 && dropped) {
        /* No room in our table (RLIMIT_NOFILE, most likely): the kernel
           closed the descriptor. Its byte is read, so the stream is
           still in step. */
        errno = EMFILE;
        return -1;
    }
    if(fd < 0) {
        /* A data byte was where a descriptor should have been. */
        st->in |= DILL_DIR_FAILED;
        errno = EPROTO;
        return -1;
    }
    return fd;
}

/* ---- Adopting OS sockets ------------------------------------------------ */

/* Both variants of each kind allocate before adopting, so that the
   caller still owns fd when anything fails. */
static int listener_fromfd(int fd, struct dill_ipc_listener_storage *mem) {
    if(fd < 0) {
        errno = EINVAL;
        return -1;
    }
    struct dill_hvfs *l = listener_alloc(mem);
    if(!l) return -1;
    int copy = dill_fd_adopt(fd, SOCK_STREAM, AF_UNIX, AF_UNIX, 1);
    if(copy < 0) {
        listener_free(l);
        return -1;
    }
    return dill_fd_adopted(fd, copy, listener_make(l, copy));
}

DILL_EXPORT int dill_ipc_fromfd_mem(int fd, struct dill_ipc_storage *mem) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return dill_fd_conn_fromfd(fd, mem, &conn_kind);
}

DILL_EXPORT int dill_ipc_fromfd(int fd) {
    return dill_fd_conn_fromfd(fd, NULL, &conn_kind);
}

DILL_EXPORT int dill_ipc_listener_fromfd_mem(int fd,
      struct dill_ipc_listener_storage *mem) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return listener_fromfd(fd, mem);
}

DILL_EXPORT int dill_ipc_listener_fromfd(int fd) {
    return listener_fromfd(fd, NULL);
}
