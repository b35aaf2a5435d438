/*
 * tlsbio.h: the OpenSSL engine that tls.c (over a bytestream) and dtls.c
 * (over a message socket) share: the SSL object, the BIO that connects it
 * to the socket below, and the loop that runs one OpenSSL call to its end
 * with the waiting done by us, under our deadlines.
 *
 * OpenSSL never blocks here. Its BIO only copies: a read takes bytes we
 * already received or says "retry", remembering how many bytes OpenSSL
 * asked for; a write appends to an output queue. Between OpenSSL calls the
 * loop sends the queue to the socket below and receives exactly what the
 * BIO was asked for, waiting as long as the deadline allows. So an OpenSSL
 * call is never suspended half way (a coroutine may send while another
 * receives on the same SSL object, as sockets.md §3 promises), and no byte
 * past the last record OpenSSL processed is ever read from below (what
 * makes tls_detach leave the stream usable, sockets.md §18).
 */
#ifndef DILL_TLSBIO_H_INCLUDED
#define DILL_TLSBIO_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "layer.h"
#include "libdillimpl.h"

/* The largest DTLS message (the plaintext of one record). */
#define DILL_DTLS_MAX_MESSAGE 16384

struct dill_tlsbio;

/* A client or server engine over the socket below: a bytestream
   (struct dill_bsock_vfs) when dgram is 0, a message socket (struct
   dill_msock_vfs) when dgram is 1. The server loads its certificate and
   key from PEM files. NULL with errno EFAULT (OpenSSL refused: a missing,
   unreadable or invalid file, a key that does not match the certificate,
   a NULL file name) or ENOMEM. */
struct dill_tlsbio *dill_tlsbio_client(void *below, int dgram);
struct dill_tlsbio *dill_tlsbio_server(void *below, int dgram,
    const char *cert, const char *pkey);

/* The steps tls and dtls attach share (sockets.md §1.1): own the socket s
   (a bytestream, or a message socket when dgram), place an object of size
   bytes starting with struct dill_layer in mem or on the heap, make the
   engine (a server when server) and run the handshake until deadline.
   Returns the object, with the socket below in *u and the engine in *t,
   for dill_tlsbio_make; or NULL with s closed, nothing left allocated and
   errno EBADF, EPROTO, EINVAL, ENOMEM, or an error of the handshake. */
void *dill_tlsbio_attach(int s, int dgram, int server, const char *cert,
    const char *pkey, void *mem, size_t size, size_t align, int *u,
    struct dill_tlsbio **t, int64_t deadline);

/* dill_layer_make for the object of dill_tlsbio_attach: on failure the
   engine is freed too. */
int dill_tlsbio_make(struct dill_layer *l, int u, struct dill_tlsbio *t,
    void *(*query)(struct dill_hvfs *vfs, const void *type),
    void (*close)(struct dill_hvfs *vfs));

/* Free everything; never blocks, sends nothing. */
void dill_tlsbio_free(struct dill_tlsbio *t);

/* The handshake, whole. 0, or -1 with EFAULT (a TLS error: a peer that
   does not speak TLS, an alert), ETIMEDOUT, ECANCELED, ENOMEM or an error
   of the socket below (EPIPE: it ended, ECONNRESET, ...). */
int dill_tlsbio_handshake(struct dill_tlsbio *t, int64_t deadline);

/* Send len bytes (bytestream: as records of up to 16 KiB, each handed to
   the socket below before the next; datagram: exactly one record, at most
   DILL_DTLS_MAX_MESSAGE bytes). 0 or -1. */
int dill_tlsbio_send(struct dill_tlsbio *t, const void *buf, size_t len,
    int64_t deadline);

/* Receive: one SSL_read, at most len bytes (datagram: one whole record,
   len must hold DILL_DTLS_MAX_MESSAGE). Returns the count (> 0), or -1
   with EPIPE when the peer's close_notify arrived (dill_tlsbio_closed is
   then 1) or the stream below ended, or another error. */
ssize_t dill_tlsbio_recv(struct dill_tlsbio *t, void *buf, size_t len,
    int64_t deadline);

/* Send our close_notify. 0 or -1. */
int dill_tlsbio_close_notify(struct dill_tlsbio *t, int64_t deadline);

/* Receive and drop everything up to the peer's close_notify. 0 or -1
   (EPIPE: the stream below ended first). */
int dill_tlsbio_drain(struct dill_tlsbio *t, int64_t deadline);

/* Whether the peer's close_notify has arrived. */
int dill_tlsbio_closed(const struct dill_tlsbio *t);

/* Whether the TLS session is broken (an OpenSSL error, an alert from the
   peer): nothing more can be sent or received. */
int dill_tlsbio_broken(const struct dill_tlsbio *t);

/* A scratch buffer of DILL_DTLS_MAX_MESSAGE bytes owned by the engine, for
   gathering (out = 1) or scattering and dropping (out = 0) data: one per
   direction, since a send and a receive may run at once. NULL/ENOMEM. */
void *dill_tlsbio_scratch(struct dill_tlsbio *t, int out);

#endif
