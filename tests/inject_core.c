/*
 * tests/inject_core.c: allocation failures in the core (see
 * tests/inject.h): the thread context, go and go_mem, bundles, channels
 * and choose, handles (hmake, hquery, hown, hclose, a table of 300), the
 * timer heap (far deadlines, many at once), stacks (a second mapping of
 * stacks), fdin/fdout/fdclean (the fd tables, a high fd number), yield
 * and msleep. Each call fails with ENOMEM where an allocation it needs
 * fails, leaves nothing behind, and works when tried again.
 */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"
#include "inject.h"

/* ---- Channels and choose ------------------------------------------------ */

/* Answer each int on ch with the int plus one, until cancelled or done.
   A failure ends the other end's direction too (peer is that end): the
   other side may be waiting to send, and must not wait in vain. */
coroutine static void increment(int ch, int peer) {
    for(;;) {
        int v;
        if(!OK_OR(chrecv(ch, &v, sizeof(v), inject_deadline()), ECANCELED,
              EPIPE))
            break;
        v++;
        if(!OK_OR(chsend(ch, &v, sizeof(v), inject_deadline()), ECANCELED))
            break;
    }
    if(inject_aborted()) chdone(peer);
}

static void close_all(int *hs, int n) {
    for(int i = n - 1; i >= 0; i--)
        if(hs[i] >= 0) CHECK(hclose(hs[i]) == 0);
}

static void run_chan(void) {
    int h[3] = {-1, -1, -1}; /* channel ends, coroutine */
    if(!OK(chmake(h))) goto out;
    if(!OK(h[2] = go(increment(h[1], h[0])))) goto out;
    for(int i = 0; i < 3; i++) {
        int v = i;
        if(!OK(chsend(h[0], &v, sizeof(v), inject_deadline()))) goto out;
        if(!OK(chrecv(h[0], &v, sizeof(v), inject_deadline()))) goto out;
        CHECK(v == i + 1);
    }
    if(!OK(chdone(h[0]))) goto out;
out:
    close_all(h, 3);
}

static void run_choose(void) {
    struct dill_chstorage mem[2];
    int h[5] = {-1, -1, -1, -1, -1}; /* two channels, a coroutine */
    if(!OK(chmake_mem(&mem[0], &h[0]))) goto out;
    if(!OK(chmake_mem(&mem[1], &h[2]))) goto out;
    if(!OK(h[4] = go(increment(h[3], h[2])))) goto out;
    int v = 41, w = 0;
    /* A far deadline: its timer goes into the heap. */
    struct dill_chclause cl[] = {
        {CHSEND, h[0], &v, sizeof(v)},
        {CHSEND, h[2], &v, sizeof(v)},
    };
    int rc;
    if(!OK(rc = choose(cl, 2, now() + 100000))) goto out;
    CHECK(rc == 1);
    struct dill_chclause back[] = {
        {CHRECV, h[0], &w, sizeof(w)},
        {CHRECV, h[2], &w, sizeof(w)},
    };
    /* A near one: the timer wheel. */
    if(!OK(rc = choose(back, 2, now() + 900))) goto out;
    CHECK(rc == 1 && w == 42);
out:
    close_all(h, 5);
}

/* ---- Coroutines, bundles and stacks -------------------------------------- */

/* A far deadline's timer may need the heap to grow. */
coroutine static void sleeper(int64_t deadline) {
    OK_OR(msleep(deadline), ECANCELED);
}

coroutine static void quick(int *count) {
    (*count)++;
}

/* Stacks in caller memory are static, not on the stack of the running
   thread, where valgrind would take the coroutine's frames for accesses
   below the thread's stack pointer. Runs never overlap. */
static char stacks[2][SMALL_STACK * 2];

static void run_bundle(void) {
    struct dill_bundle_storage bmem;
    char *stack = stacks[0];
    int h[3] = {-1, -1, -1};
    int count = 0;
    if(!OK(h[0] = bundle())) goto out;
    if(!OK(h[1] = bundle_mem(&bmem))) goto out;
    for(int i = 0; i < 3; i++)
        if(!OK(bundle_go(h[0], quick(&count)))) goto out;
    if(!OK(bundle_go_mem(h[1], quick(&count), stack, sizeof(stacks[0]))))
        goto out;
    if(!OK(bundle_wait(h[0], inject_deadline()))) goto out;
    if(!OK(bundle_wait(h[1], inject_deadline()))) goto out;
    CHECK(count == 4);
    if(!OK(bundle_go(h[0], sleeper(now() + 50)))) goto out;
    if(!OK(bundle_wait(h[0], inject_deadline()))) goto out;
    /* go() makes a bundle of its own. */
    if(!OK(h[2] = go(quick(&count)))) goto out;
    if(!OK(bundle_wait(h[2], inject_deadline()))) goto out;
    CHECK(count == 5);
out:
    close_all(h, 3);
}

static void run_go_mem(void) {
    int h[2] = {-1, -1};
    int count = 0;
    if(!OK(h[0] = go_mem(quick(&count), stacks[0], sizeof(stacks[0]))))
        goto out;
    if(!OK(h[1] = go_mem(sleeper(-1), stacks[1], sizeof(stacks[1]))))
        goto out;
    if(!OK(yield())) goto out;
    CHECK(count == 1);
out:
    close_all(h, 2);
}

/* 70 sleepers: more stacks than one mapping holds (64) and more far
   timers than the heap first has room for (64). */
#define SLEEPERS 70

static void run_many(void) {
    int b = -1;
    if(!OK(b = bundle())) goto out;
    for(int i = 0; i < SLEEPERS; i++)
        if(!OK(bundle_go(b, sleeper(now() + 100000 + i)))) goto out;
    /* Let them all start sleeping. */
    if(!OK(msleep(now() + 10))) goto out;
out:
    if(b >= 0) CHECK(hclose(b) == 0);
}

static void run_yield_msleep(void) {
    if(!OK(yield())) return;
    if(!OK(msleep(now() + 2))) return;
    if(!OK(msleep(0))) return;
}

/* ---- Handles ------------------------------------------------------------- */

struct object {
    struct dill_hvfs vfs;
    int closed;
};

static const int object_type_id;

static void *object_query(struct dill_hvfs *vfs, const void *type) {
    if(type == &object_type_id) return vfs;
    errno = ENOTSUP;
    return NULL;
}

static void object_close(struct dill_hvfs *vfs) {
    ((struct object *)vfs)->closed++;
}

/* Enough handles for the table to grow past its first 256 slots. */
#define OBJECTS 300

static void run_handles(void) {
    static struct object objects[OBJECTS];
    static int hs[OBJECTS];
    for(int i = 0; i < OBJECTS; i++) {
        objects[i].vfs.query = object_query;
        objects[i].vfs.close = object_close;
        objects[i].closed = 0;
        hs[i] = -1;
    }
    for(int i = 0; i < OBJECTS; i++) {
        if(!OK(hs[i] = hmake(&objects[i].vfs))) goto out;
        CHECK(hquery(hs[i], &object_type_id) == &objects[i]);
    }
    /* hown moves every object to a new number; when the number cannot be
       made the object is closed. */
    for(int i = 0; i < OBJECTS; i++) {
        int old = hs[i];
        hs[i] = hown(old);
        CHECK(hquery(old, &object_type_id) == NULL && errno == EBADF);
        if(!OK(hs[i])) {
            CHECK(objects[i].closed == 1);
            goto out;
        }
        CHECK(hquery(hs[i], &object_type_id) == &objects[i]);
    }
out:
    for(int i = OBJECTS - 1; i >= 0; i--) {
        if(hs[i] < 0) continue;
        CHECK(hclose(hs[i]) == 0);
        CHECK(objects[i].closed == 1);
    }
}

/* ---- File descriptors ---------------------------------------------------- */

/* A descriptor number above the tables' first sizes (64). */
#define HIGH_FD 300

/* The byte goes out even when fdout failed (the pipe is empty, so it is
   writable): the reader must not wait in vain. */
coroutine static void writer(int fd) {
    if(OK_OR(fdout(fd, inject_deadline()), ECANCELED) || inject_aborted())
        CHECK(write(fd, "x", 1) == 1);
}

static void run_fd(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
    CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
    int high = dup2(p[0], HIGH_FD);
    CHECK(high == HIGH_FD);
    int cr = -1;
    char c;
    if(!OK(cr = go(writer(p[1])))) goto out;
    if(!OK(fdin(high, inject_deadline()))) goto out;
    CHECK(read(high, &c, 1) == 1 && c == 'x');
    if(!OK(fdout(p[1], inject_deadline()))) goto out;
out:
    if(cr >= 0) CHECK(hclose(cr) == 0);
    CHECK(fdclean(high) == 0);
    CHECK(fdclean(p[0]) == 0);
    CHECK(fdclean(p[1]) == 0);
    close(high);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    static const struct scenario scenarios[] = {
        {"chan", run_chan},
        {"choose", run_choose},
        {"bundle", run_bundle},
        {"go_mem", run_go_mem},
        {"many", run_many},
        {"yield_msleep", run_yield_msleep},
        {"handles", run_handles},
        {"fd", run_fd},
    };
    inject_run(scenarios, sizeof(scenarios) / sizeof(scenarios[0]));
    return 0;
}
