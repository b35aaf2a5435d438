/*
 * tests/soak.h: what the parts of the soak test (make soak) share: the
 * wire format of its messages, the client lanes and server slots, the
 * per-thread worker and its counters. tests/soak.c explains the whole.
 */
#ifndef DILL_TESTS_SOAK_H
#define DILL_TESTS_SOAK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "libdill.h"

#define SOAK_THREADS 2
/* Client connections open at once in each thread. */
#define SOAK_LANES 32
/* Server coroutines each thread can hold, running or awaiting reaping:
   far more than the clients of both threads can keep busy. */
#define SOAK_SLOTS 512
/* Largest payload: with the header it still fits PREFIX's 2-byte length. */
#define SOAK_MAX_PAYLOAD 60000
/* A pipelined burst stays this small, so that neither side can block in a
   send while the other blocks in its own: far below any socket buffer. */
#define SOAK_BURST_BYTES 49152
#define SOAK_BURST_MAX 8
/* The deadline of every call that is not meant to time out. Nothing in
   the soak waits this long: expiring means a message was lost. */
#define SOAK_PATIENCE_MS 20000

/* Every message: this header, then len bytes of payload. Both ends are
   this process, so native byte order. crc is the CRC-32 of the header
   (with crc 0) followed by the payload. */
struct soak_msg {
    uint32_t magic;
    uint32_t lane;      /* the client's lane, 0 .. SOAK_THREADS*SOAK_LANES-1 */
    uint32_t serial;    /* the lane's connection number */
    uint32_t seq;       /* messages before this one in the connection */
    uint32_t len;
    uint32_t flags;
    uint32_t delay_ms;  /* the server waits this long before echoing */
    uint32_t crc;
};
#define SOAK_MSG_MAGIC 0x6d4b4153u
#define SOAK_BYE 1u     /* the client's last message; orderly close follows */

/* The first bytes of a connection, raw, whatever the framing after it;
   the server sends them back as they came. */
struct soak_hello {
    uint32_t magic;
    uint32_t lane;
    uint32_t serial;
    uint32_t hdrlen;    /* 0: raw bsend/brecv; else PREFIX's header length */
    uint32_t prefix_flags;
    uint32_t first_ms;  /* the server's deadline for the first message */
    uint32_t crc;
};
#define SOAK_HELLO_MAGIC 0x6f6c4548u

void soak_wire_init(void);
uint32_t soak_crc32(uint32_t crc, const void *buf, size_t len);
void soak_msg_seal(struct soak_msg *m, const uint8_t *payload);
int soak_msg_intact(const struct soak_msg *m, const uint8_t *payload);
void soak_hello_seal(struct soak_hello *h);
int soak_hello_intact(const struct soak_hello *h);
void soak_payload_fill(uint8_t *buf, const struct soak_msg *m);
int soak_payload_expected(const uint8_t *buf, const struct soak_msg *m);

/* The supervisor's marks on a lane's connection, set by the thread of the
   server side, read by the client side: the state word holds the serial
   of the lane's current connection shifted left by 2, and these bits. */
#define SOAK_PEER_CANCELLED 1u
#define SOAK_PEER_TIMEDOUT 2u

struct soak_lane {
    _Atomic uint64_t state;
    uint32_t id;
    uint32_t serial;
    int handle;         /* the client coroutine, -1 when none */
    int running;        /* cleared by the coroutine as it returns */
    struct soak_worker *w;
};

enum soak_slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_FINISHED };
struct soak_slot {
    enum soak_slot_state state;
    int handle;         /* the server coroutine, -1 until go() returned */
    int registered;     /* the hello was read: lane and serial are known */
    uint32_t lane;
    uint32_t serial;
};

/* Only the worker's own thread writes these; main adds them up after the
   threads are joined, as an array: every field is a uint64_t. */
struct soak_stats {
    uint64_t connections, tcp, ipc, framed, cross;
    uint64_t connect_retries;
    uint64_t sent, delivered, bytes, server_messages;
    uint64_t abandoned, lost;
    uint64_t clean_closes, abrupt_closes, walkaways;
    uint64_t timeouts, server_timeouts;
    uint64_t cancelled_servers, cancelled_clients;
    uint64_t by_cancelled_server, by_server_timeout;
};

struct soak_worker {
    int index;
    struct dill_ipaddr tcp_addr;  /* written before the start line */
    char ipc_path[96];
    uint64_t rng;
    int stopping;                 /* clients finish with a bye */
    struct soak_stats st;
    struct soak_lane *lanes;      /* SOAK_LANES of the global table */
    struct soak_slot slots[SOAK_SLOTS];
};

extern struct soak_worker soak_workers[SOAK_THREADS];
extern struct soak_lane soak_lanes[SOAK_THREADS * SOAK_LANES];

uint64_t soak_random(struct soak_worker *w);
/* A uniform number in [lo, hi]. */
uint32_t soak_between(struct soak_worker *w, uint32_t lo, uint32_t hi);
void soak_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
void soak_mark(uint32_t lane, uint32_t serial, uint64_t flag);

coroutine void soak_client(struct soak_lane *lane);
coroutine void soak_server(struct soak_worker *w, struct soak_slot *slot,
    int s, int tcp);

void *soak_worker_main(void *arg);

/* Between the phases the workers stop on these and main measures. */
extern _Atomic int soak_ready;
extern _Atomic int soak_clients_done[2];
extern _Atomic int soak_quiet[2];
extern _Atomic int soak_resume;
extern _Atomic int soak_failures;
extern int64_t soak_phase_ms[2];

#endif
