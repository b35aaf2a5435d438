/*
 * tests/soak_worker.c: one thread of the soak test and its scheduler. It
 * listens on TCP (127.0.0.1, a port of the kernel's choosing) and IPC,
 * accepts in one coroutine per listener and serves each connection in a
 * coroutine of its own (tests/soak_server.c). Its main coroutine is the
 * supervisor: every 2 ms it reaps finished coroutines, starts a client
 * connection (tests/soak_client.c) in every idle lane, and now and then
 * cancels a random server or client with hclose. Each phase ends with the
 * clients finishing with a bye, then the servers; the thread then holds
 * still (no coroutine runs) while main measures, until main lets it go on.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"

struct soak_worker soak_workers[SOAK_THREADS];
struct soak_lane soak_lanes[SOAK_THREADS * SOAK_LANES];
_Atomic int soak_ready;
_Atomic int soak_clients_done[2];
_Atomic int soak_quiet[2];
_Atomic int soak_resume;
_Atomic int soak_failures;
int64_t soak_phase_ms[2];

/* xorshift64*, one state per thread: the coroutines of a thread never
   run at the same time. */
uint64_t soak_random(struct soak_worker *w) {
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545f4914f6cdd1du;
}

uint32_t soak_between(struct soak_worker *w, uint32_t lo, uint32_t hi) {
    return lo + (uint32_t)(soak_random(w) % ((uint64_t)hi - lo + 1));
}

/* The first twenty failures are printed as they happen; all are counted. */
void soak_fail(const char *fmt, ...) {
    if(atomic_fetch_add(&soak_failures, 1) >= 20) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "soak: FAIL: %s\n", line);
}

/* Only if the lane still runs that connection: a mark meant for an
   earlier one must not excuse the next. */
void soak_mark(uint32_t lane, uint32_t serial, uint64_t flag) {
    struct soak_lane *l = &soak_lanes[lane];
    uint64_t v = atomic_load(&l->state);
    while((v >> 2) == serial &&
          !atomic_compare_exchange_weak(&l->state, &v, v | flag))
        ;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void reap_slot(struct soak_slot *slot) {
    if(slot->state != SLOT_FINISHED || slot->handle < 0) return;
    hclose(slot->handle);
    slot->handle = -1;
    slot->state = SLOT_FREE;
}

static struct soak_slot *free_slot(struct soak_worker *w) {
    for(int i = 0; i < SOAK_SLOTS; i++) {
        reap_slot(&w->slots[i]);
        if(w->slots[i].state == SLOT_FREE) return &w->slots[i];
    }
    return NULL;
}

coroutine static void acceptor(struct soak_worker *w, int listener,
      int tcp) {
    for(;;) {
        int s = tcp ? tcp_accept(listener, NULL, -1) : ipc_accept(listener, -1);
        if(s < 0) {
            if(errno != ECANCELED)
                soak_fail("thread %d: accept: %s", w->index, strerror(errno));
            return;
        }
        struct soak_slot *slot = free_slot(w);
        if(!slot) {
            soak_fail("thread %d: all %d server slots taken", w->index,
                SOAK_SLOTS);
            hclose(s);
            continue;
        }
        /* The server runs at once and may even finish inside go(). */
        *slot = (struct soak_slot){.state = SLOT_RUNNING, .handle = -1};
        int h = go(soak_server(w, slot, s, tcp));
        if(h < 0) {
            soak_fail("thread %d: go: %s", w->index, strerror(errno));
            hclose(s);
            slot->state = SLOT_FREE;
            continue;
        }
        slot->handle = h;
    }
}

static void reap(struct soak_worker *w) {
    for(int i = 0; i < SOAK_LANES; i++) {
        struct soak_lane *l = &w->lanes[i];
        if(l->handle >= 0 && !l->running) {
            hclose(l->handle);
            l->handle = -1;
        }
    }
    for(int i = 0; i < SOAK_SLOTS; i++) reap_slot(&w->slots[i]);
}

static void launch(struct soak_worker *w) {
    for(int i = 0; i < SOAK_LANES; i++) {
        struct soak_lane *l = &w->lanes[i];
        if(l->handle >= 0 || l->running) continue;
        l->serial++;
        atomic_store(&l->state, (uint64_t)l->serial << 2);
        l->running = 1;
        int h = go(soak_client(l));
        if(h < 0) {
            soak_fail("thread %d: go: %s", w->index, strerror(errno));
            l->running = 0;
            continue;
        }
        l->handle = h;
    }
}

/* The handle is taken out of the slot before hclose, which waits for the
   server to return: meanwhile the acceptor must not reap it too. */
static void cancel_server(struct soak_worker *w) {
    uint32_t start = soak_between(w, 0, SOAK_SLOTS - 1);
    for(uint32_t k = 0; k < SOAK_SLOTS; k++) {
        struct soak_slot *slot = &w->slots[(start + k) % SOAK_SLOTS];
        if(slot->state != SLOT_RUNNING || !slot->registered ||
              slot->handle < 0)
            continue;
        soak_mark(slot->lane, slot->serial, SOAK_PEER_CANCELLED);
        int h = slot->handle;
        slot->handle = -1;
        hclose(h);
        slot->state = SLOT_FREE;
        w->st.cancelled_servers++;
        return;
    }
}

static void cancel_client(struct soak_worker *w) {
    struct soak_lane *l = &w->lanes[soak_between(w, 0, SOAK_LANES - 1)];
    if(l->handle < 0 || !l->running) return;
    int h = l->handle;
    l->handle = -1;
    hclose(h);
    w->st.cancelled_clients++;
}

static void tick(struct soak_worker *w, int active) {
    if(msleep(now() + 2) != 0)
        soak_fail("thread %d: msleep: %s", w->index, strerror(errno));
    reap(w);
    if(!active) return;
    launch(w);
    uint32_t r = soak_between(w, 0, 999);
    if(r < 40) cancel_server(w);
    else if(r < 60) cancel_client(w);
}

static int lanes_busy(const struct soak_worker *w) {
    for(int i = 0; i < SOAK_LANES; i++)
        if(w->lanes[i].handle >= 0 || w->lanes[i].running) return 1;
    return 0;
}

static int servers_busy(const struct soak_worker *w) {
    for(int i = 0; i < SOAK_SLOTS; i++)
        if(w->slots[i].state != SLOT_FREE) return 1;
    return 0;
}

static void cancel_all_servers(struct soak_worker *w) {
    for(int i = 0; i < SOAK_SLOTS; i++) {
        struct soak_slot *slot = &w->slots[i];
        if(slot->state == SLOT_RUNNING && slot->handle >= 0) {
            int h = slot->handle;
            slot->handle = -1;
            hclose(h);
            slot->state = SLOT_FREE;
        }
    }
}

/* The clients of both threads must be done before a thread's servers can
   be: each thread serves the other's clients too. */
static void wind_down(struct soak_worker *w, int phase) {
    w->stopping = 1;
    while(lanes_busy(w)) tick(w, 0);
    atomic_fetch_add(&soak_clients_done[phase], 1);
    while(atomic_load(&soak_clients_done[phase]) < SOAK_THREADS) tick(w, 0);
    int64_t limit = now() + 2 * SOAK_PATIENCE_MS;
    while(servers_busy(w)) {
        if(now() > limit) {
            soak_fail("thread %d: servers still running %d s after the last "
                "client finished", w->index, 2 * SOAK_PATIENCE_MS / 1000);
            cancel_all_servers(w);
            break;
        }
        tick(w, 0);
    }
    reap(w);
}

static void run_phase(struct soak_worker *w, int phase) {
    int64_t end = now() + soak_phase_ms[phase];
    w->stopping = 0;
    while(now() < end) tick(w, 1);
    wind_down(w, phase);
    /* Nothing runs in this thread until main has measured. */
    atomic_fetch_add(&soak_quiet[phase], 1);
    while(atomic_load(&soak_resume) <= phase) pause_ms(1);
}

static void listen_both(struct soak_worker *w, int *tl, int *il) {
    struct dill_ipaddr addr;
    if(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) != 0 ||
          (*tl = tcp_listen(&addr, 256)) < 0) {
        fprintf(stderr, "soak: thread %d: tcp_listen: %s\n", w->index,
            strerror(errno));
        exit(1);
    }
    w->tcp_addr = addr;
    if((*il = ipc_listen(w->ipc_path, 256)) < 0) {
        fprintf(stderr, "soak: thread %d: ipc_listen(%s): %s\n", w->index,
            w->ipc_path, strerror(errno));
        exit(1);
    }
}

void *soak_worker_main(void *arg) {
    struct soak_worker *w = arg;
    for(int i = 0; i < SOAK_SLOTS; i++) w->slots[i].handle = -1;
    int tl, il;
    listen_both(w, &tl, &il);
    int a1 = go(acceptor(w, tl, 1));
    int a2 = go(acceptor(w, il, 0));
    if(a1 < 0 || a2 < 0) {
        fprintf(stderr, "soak: thread %d: go: %s\n", w->index,
            strerror(errno));
        exit(1);
    }
    /* The other thread's addresses are known past this line. */
    atomic_fetch_add(&soak_ready, 1);
    while(atomic_load(&soak_ready) < SOAK_THREADS) pause_ms(1);
    run_phase(w, 0);
    run_phase(w, 1);
    hclose(a1);
    hclose(a2);
    hclose(tl);
    hclose(il);
    unlink(w->ipc_path);
    return NULL;
}
