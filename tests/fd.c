/*
 * tests/fd.c: fdin, fdout and fdclean (spec §8, §12, §13 items 16, 17, 23)
 * with whichever poller backend the library was built with; make check on
 * Linux also runs it as tests/fd_kqueue, over poller_kqueue.c and the
 * kqueue emulation in tests/kqueue/. Covers readiness on pipes and
 * socketpairs, level triggering, deadlines 0, past, future and forever,
 * EBADF (-1, a closed number, huge numbers), ENOTSUP (regular file,
 * directory), EBUSY per direction with one fdin and one fdout coexisting,
 * ECANCELED (while waiting and at entry in a cancelled coroutine), hang-up
 * waking both directions, fdclean (unknown fds, EBUSY, right before close,
 * after close, reuse of the number by a new descriptor), signals during a
 * wait (never EINTR), 500 pipes (fewer only if the descriptor limit cannot
 * be raised) waited on by as many coroutines at once, and one poller per
 * thread.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#if defined DILL_TEST_THREADS
#include <pthread.h>
#endif

#include "libdill.h"
#include "check.h"

/* What a waiting coroutine got back. Always volatile: the compiler
   cannot see that a coroutine goes on writing through the pointer after
   go() returns, and (GCC >= 11 and clang at -O2) would otherwise keep the
   launcher's copy of the fields in registers across blocking calls. */
struct result {
    int done;
    int rc;
    int err;
    int64_t when;
};

coroutine static void wait_in(int fd, int64_t deadline, volatile struct result *r) {
    r->rc = fdin(fd, deadline);
    r->err = errno;
    r->when = now();
    r->done = 1;
}

coroutine static void wait_out(int fd, int64_t deadline, volatile struct result *r) {
    r->rc = fdout(fd, deadline);
    r->err = errno;
    r->when = now();
    r->done = 1;
}

/* Writes one byte to fd after ms milliseconds. */
coroutine static void writer(int fd, int ms, char c) {
    CHECK(msleep(now() + ms) == 0);
    CHECK(write(fd, &c, 1) == 1);
}

/* Empties fd after ms milliseconds. */
static void drain(int fd);
coroutine static void drainer(int fd, int ms) {
    CHECK(msleep(now() + ms) == 0);
    drain(fd);
}

static void nonblock(int fd) {
    int flags = fcntl(fd, F_GETFL);
    CHECK(flags >= 0);
    CHECK(fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

static void make_pipe(int fds[2]) {
    CHECK(pipe(fds) == 0);
    nonblock(fds[0]);
    nonblock(fds[1]);
}

static void make_socketpair(int fds[2]) {
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    nonblock(fds[0]);
    nonblock(fds[1]);
}

/* The documented way to let go of an fd: fdclean, then close. */
static void closefd(int fd) {
    CHECK(fdclean(fd) == 0);
    CHECK(close(fd) == 0);
}

/* Writes until the kernel buffer is full. */
static void fill(int fd) {
    char buf[4096] = {0};
    for(;;) {
        ssize_t n = write(fd, buf, sizeof(buf));
        if(n < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            return;
        }
    }
}

static void drain(int fd) {
    char buf[4096];
    for(;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if(n < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            return;
        }
        CHECK(n > 0);
    }
}

static void read_byte(int fd, char expected) {
    char c = 0;
    CHECK(read(fd, &c, 1) == 1);
    CHECK(c == expected);
}

/* A positive deadline that has already passed. */
static int64_t past(void) {
    int64_t t = now() - 1000;
    return t > 0 ? t : 1;
}

/* Readiness, level triggering and deadline 0 on a connected pair: data
   written to wr can be read from rd. */
static void test_ready(int rd, int wr) {
    CHECK(fdout(wr, -1) == 0);
    CHECK(fdout(wr, 0) == 0);
    CHECK(fdout(wr, now() + 1000) == 0);
    CHECK_ERR(fdin(rd, 0), ETIMEDOUT);
    CHECK(write(wr, "a", 1) == 1);
    CHECK(fdin(rd, -1) == 0);
    /* Level-triggered: still readable, so ready again, every time. */
    CHECK(fdin(rd, 0) == 0);
    CHECK(fdin(rd, now() + 1000) == 0);
    CHECK(fdin(rd, -1) == 0);
    read_byte(rd, 'a');
    CHECK_ERR(fdin(rd, 0), ETIMEDOUT);
    CHECK(fdout(wr, 0) == 0);
}

static void test_pipe_and_socketpair(void) {
    int p[2];
    make_pipe(p);
    test_ready(p[0], p[1]);
    closefd(p[0]);
    closefd(p[1]);

    int s[2];
    make_socketpair(s);
    test_ready(s[0], s[1]);
    test_ready(s[1], s[0]);
    closefd(s[0]);
    closefd(s[1]);

    /* Deadline 0 on fds never seen before: registered and polled in the
       same scheduler pass. */
    make_pipe(p);
    CHECK(write(p[1], "b", 1) == 1);
    CHECK(fdin(p[0], 0) == 0);
    read_byte(p[0], 'b');
    closefd(p[0]);
    closefd(p[1]);
    make_pipe(p);
    CHECK_ERR(fdin(p[0], 0), ETIMEDOUT);
    closefd(p[0]);
    closefd(p[1]);
    make_pipe(p);
    CHECK(fdout(p[1], 0) == 0);
    closefd(p[0]);
    closefd(p[1]);
}

static void test_deadlines(void) {
    int p[2];
    make_pipe(p);

    /* A deadline that has passed still goes through the poll: not ready
       gives ETIMEDOUT, ready wins over the deadline. */
    CHECK_ERR(fdin(p[0], past()), ETIMEDOUT);
    CHECK(fdout(p[1], past()) == 0);
    CHECK(write(p[1], "c", 1) == 1);
    CHECK(fdin(p[0], past()) == 0);
    read_byte(p[0], 'c');

    /* A future deadline expires at about that time, never earlier. */
    int64_t deadline = now() + 60;
    CHECK_ERR(fdin(p[0], deadline), ETIMEDOUT);
    int64_t end = now();
    CHECK(end >= deadline);
    CHECK(end < deadline + 500);

    /* The same for fdout on a full pipe. */
    fill(p[1]);
    CHECK_ERR(fdout(p[1], 0), ETIMEDOUT);
    CHECK_ERR(fdout(p[1], past()), ETIMEDOUT);
    deadline = now() + 40;
    CHECK_ERR(fdout(p[1], deadline), ETIMEDOUT);
    end = now();
    CHECK(end >= deadline);
    CHECK(end < deadline + 500);

    /* Forever: another coroutine makes the fd ready. */
    int64_t start = now();
    int h = go(drainer(p[0], 30));
    CHECK(h >= 0);
    CHECK(fdout(p[1], -1) == 0);
    CHECK(now() >= start + 30);
    CHECK(hclose(h) == 0);

    start = now();
    h = go(writer(p[1], 30, 'd'));
    CHECK(h >= 0);
    CHECK(fdin(p[0], -1) == 0);
    CHECK(now() >= start + 30);
    read_byte(p[0], 'd');
    CHECK(hclose(h) == 0);

    /* A future deadline that is not reached. */
    h = go(writer(p[1], 10, 'e'));
    CHECK(h >= 0);
    CHECK(fdin(p[0], now() + 5000) == 0);
    read_byte(p[0], 'e');
    CHECK(hclose(h) == 0);

    closefd(p[0]);
    closefd(p[1]);
}

/* A descriptor number that is not open in this process. */
static int closed_number(int from) {
    int fd = from;
    while(fcntl(fd, F_GETFD) != -1) fd++;
    return fd;
}

/* Gives the file open as *fd the number n (closing whatever n was), as
   when a new descriptor gets the number of a closed one. *other, the
   other end of a new pair, is moved aside first if it got n itself. */
static void renumber(int *fd, int n, int *other) {
    if(*other == n) {
        int moved = fcntl(*other, F_DUPFD, n + 1);
        CHECK(moved > n);
        CHECK(close(*other) == 0);
        *other = moved;
    }
    if(*fd != n) {
        CHECK(dup2(*fd, n) == n);
        CHECK(close(*fd) == 0);
        *fd = n;
    }
}

static void test_ebadf(void) {
    CHECK_ERR(fdin(-1, -1), EBADF);
    CHECK_ERR(fdout(-1, -1), EBADF);
    CHECK_ERR(fdin(-1, 0), EBADF);
    CHECK_ERR(fdin(INT_MIN, -1), EBADF);
    CHECK_ERR(fdin(1000000, -1), EBADF);
    CHECK_ERR(fdout(1000000, -1), EBADF);
    CHECK_ERR(fdin(1000000, 0), EBADF);
    CHECK_ERR(fdin(INT_MAX, -1), EBADF);
    CHECK_ERR(fdout(INT_MAX, -1), EBADF);
    int fd = closed_number(33);
    CHECK_ERR(fdin(fd, -1), EBADF);
    CHECK_ERR(fdout(fd, -1), EBADF);

    /* Numbers of descriptors that were open and closed, never waited on. */
    int p[2];
    make_pipe(p);
    CHECK(close(p[0]) == 0);
    CHECK(close(p[1]) == 0);
    CHECK_ERR(fdin(p[0], -1), EBADF);
    CHECK_ERR(fdout(p[1], -1), EBADF);
    CHECK_ERR(fdin(p[1], now() + 1000), EBADF);
    CHECK(fdclean(p[0]) == 0);

    /* A failure leaves nothing behind: the number works once open. */
    int q[2];
    make_pipe(q);
    renumber(&q[0], p[0], &q[1]);
    renumber(&q[1], p[1], &q[0]);
    CHECK_ERR(fdin(p[0], 0), ETIMEDOUT);
    CHECK(fdout(p[1], -1) == 0);
    CHECK(write(p[1], "f", 1) == 1);
    CHECK(fdin(p[0], -1) == 0);
    read_byte(p[0], 'f');
    closefd(p[0]);
    closefd(p[1]);
}

static void test_enotsup(void) {
    char path[] = "/tmp/dill-test-fd-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(unlink(path) == 0);
    CHECK(write(fd, "data", 4) == 4);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK_ERR(fdin(fd, -1), ENOTSUP);
    CHECK_ERR(fdout(fd, -1), ENOTSUP);
    CHECK_ERR(fdin(fd, 0), ENOTSUP);
    CHECK_ERR(fdin(fd, -1), ENOTSUP);
    CHECK(fdclean(fd) == 0);

    int dir = open("/", O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    CHECK_ERR(fdin(dir, -1), ENOTSUP);
    CHECK_ERR(fdout(dir, -1), ENOTSUP);
    CHECK(fdclean(dir) == 0);
    CHECK(close(dir) == 0);

    /* The number, taken over by a pipe, works normally. */
    int p[2];
    make_pipe(p);
    renumber(&p[0], fd, &p[1]);
    CHECK_ERR(fdin(fd, 0), ETIMEDOUT);
    CHECK(write(p[1], "g", 1) == 1);
    CHECK(fdin(fd, -1) == 0);
    read_byte(fd, 'g');
    closefd(fd);
    closefd(p[1]);
}

static void test_ebusy(void) {
    int s[2];
    make_socketpair(s);

    volatile struct result in1 = {0};
    int h1 = go(wait_in(s[0], -1, &in1));
    CHECK(h1 >= 0);
    CHECK(!in1.done);
    CHECK_ERR(fdin(s[0], -1), EBUSY);
    CHECK_ERR(fdin(s[0], 0), EBUSY);
    volatile struct result in2 = {0};
    int h2 = go(wait_in(s[0], -1, &in2));
    CHECK(h2 >= 0);
    CHECK(in2.done && in2.rc == -1 && in2.err == EBUSY);
    CHECK(hclose(h2) == 0);
    /* One fdin and one fdout may wait on the same fd. */
    CHECK(fdout(s[0], -1) == 0);
    CHECK(fdout(s[0], 0) == 0);
    CHECK_ERR(fdclean(s[0]), EBUSY);

    fill(s[0]);
    volatile struct result out1 = {0};
    int h3 = go(wait_out(s[0], -1, &out1));
    CHECK(h3 >= 0);
    CHECK(!out1.done);
    CHECK_ERR(fdout(s[0], -1), EBUSY);
    CHECK_ERR(fdout(s[0], 0), EBUSY);
    CHECK_ERR(fdin(s[0], 0), EBUSY);
    /* The other end is a different fd. */
    CHECK(fdin(s[1], 0) == 0);

    /* Input wakes the reader only. */
    CHECK(write(s[1], "h", 1) == 1);
    CHECK(bundle_wait(h1, -1) == 0);
    CHECK(in1.done && in1.rc == 0);
    read_byte(s[0], 'h');
    /* A scheduler pass: a spuriously woken writer would run before us. */
    CHECK(msleep(0) == 0);
    CHECK(!out1.done);
    CHECK_ERR(fdout(s[0], 0), EBUSY);

    /* Room wakes the writer. */
    drain(s[1]);
    CHECK(bundle_wait(h3, -1) == 0);
    CHECK(out1.done && out1.rc == 0);
    CHECK(hclose(h1) == 0);
    CHECK(hclose(h3) == 0);
    CHECK(fdclean(s[0]) == 0);
    CHECK(fdout(s[0], 0) == 0);
    closefd(s[0]);
    closefd(s[1]);
}

/* Cancelled while it waits in msleep, then tries fd calls. */
struct late {
    int done;
    int rc[6];
    int err[6];
};

coroutine static void cancelled_calls(int rd, int wr, volatile struct late *l) {
    CHECK_ERR(msleep(-1), ECANCELED);
    /* Cancellation comes first, even for a ready fd or a bad argument. */
    l->rc[0] = fdout(wr, -1);
    l->err[0] = errno;
    l->rc[1] = fdout(wr, 0);
    l->err[1] = errno;
    l->rc[2] = fdin(-1, -1);
    l->err[2] = errno;
    l->rc[3] = fdin(rd, -1);
    l->err[3] = errno;
    l->rc[4] = fdout(1000000, 0);
    l->err[4] = errno;
    /* fdclean keeps working. */
    l->rc[5] = fdclean(wr);
    l->err[5] = 0;
    l->done = 1;
}

static void test_ecanceled(void) {
    int p[2];
    make_pipe(p);

    /* Closing the bundle of a waiting coroutine. */
    volatile struct result r = {0};
    int h = go(wait_in(p[0], -1, &r));
    CHECK(h >= 0);
    CHECK(!r.done);
    CHECK(hclose(h) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    /* Nobody waits any more. */
    CHECK_ERR(fdin(p[0], 0), ETIMEDOUT);

    /* With a future deadline, and in a bundle of several. */
    int b = bundle();
    CHECK(b >= 0);
    volatile struct result r1 = {0};
    volatile struct result r2 = {0};
    CHECK(bundle_go(b, wait_in(p[0], now() + 60000, &r1)) == 0);
    fill(p[1]);
    CHECK(bundle_go(b, wait_out(p[1], -1, &r2)) == 0);
    CHECK(!r1.done && !r2.done);
    CHECK(hclose(b) == 0);
    CHECK(r1.done && r1.rc == -1 && r1.err == ECANCELED);
    CHECK(r2.done && r2.rc == -1 && r2.err == ECANCELED);
    CHECK(fdin(p[0], 0) == 0);
    drain(p[0]);
    CHECK(fdclean(p[1]) == 0);

    /* Data arrives, but the waiter is cancelled before any poll sees it;
       the event then finds nobody armed. */
    r = (struct result){0};
    h = go(wait_in(p[0], -1, &r));
    CHECK(h >= 0);
    CHECK(write(p[1], "i", 1) == 1);
    CHECK(hclose(h) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK(msleep(0) == 0);
    CHECK(fdin(p[0], 0) == 0);
    read_byte(p[0], 'i');
    CHECK_ERR(fdin(p[0], 0), ETIMEDOUT);

    /* At entry in a coroutine that is already cancelled. */
    volatile struct late l = {0};
    h = go(cancelled_calls(p[0], p[1], &l));
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(l.done);
    for(int i = 0; i < 5; i++) CHECK(l.rc[i] == -1 && l.err[i] == ECANCELED);
    CHECK(l.rc[5] == 0);

    closefd(p[0]);
    closefd(p[1]);
}

static void test_hangup(void) {
    /* Pipe: closing the write end wakes a reader with 0. */
    int p[2];
    make_pipe(p);
    volatile struct result r = {0};
    int h = go(wait_in(p[0], -1, &r));
    CHECK(h >= 0);
    closefd(p[1]);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(r.done && r.rc == 0);
    CHECK(hclose(h) == 0);
    char c;
    CHECK(read(p[0], &c, 1) == 0);
    /* End of file stays: ready again and again. */
    CHECK(fdin(p[0], 0) == 0);
    CHECK(fdin(p[0], -1) == 0);
    closefd(p[0]);

    /* Pipe: closing the read end wakes a writer waiting on a full pipe. */
    make_pipe(p);
    fill(p[1]);
    r = (struct result){0};
    h = go(wait_out(p[1], -1, &r));
    CHECK(h >= 0);
    CHECK(!r.done);
    closefd(p[0]);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(r.done && r.rc == 0);
    CHECK(hclose(h) == 0);
    CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE);
    CHECK(fdout(p[1], 0) == 0);
    closefd(p[1]);

    /* Socketpair: the peer's close wakes the reader and the writer. */
    int s[2];
    make_socketpair(s);
    fill(s[0]);
    volatile struct result rin = {0};
    volatile struct result rout = {0};
    int hin = go(wait_in(s[0], -1, &rin));
    int hout = go(wait_out(s[0], -1, &rout));
    CHECK(hin >= 0 && hout >= 0);
    CHECK(!rin.done && !rout.done);
    closefd(s[1]);
    CHECK(bundle_wait(hin, -1) == 0);
    CHECK(bundle_wait(hout, -1) == 0);
    CHECK(rin.done && rin.rc == 0);
    CHECK(rout.done && rout.rc == 0);
    CHECK(hclose(hin) == 0);
    CHECK(hclose(hout) == 0);
    CHECK(fdin(s[0], 0) == 0);
    CHECK(fdout(s[0], 0) == 0);
    closefd(s[0]);
}

/* Makes fd number n refer to a new pipe's read end; *wr gets its write end. */
static void reopen_as_pipe(int n, int *wr) {
    int q[2];
    make_pipe(q);
    renumber(&q[0], n, &q[1]);
    *wr = q[1];
}

static void test_fdclean(void) {
    CHECK(fdclean(-1) == 0);
    CHECK(fdclean(INT_MIN) == 0);
    CHECK(fdclean(1000000) == 0);
    CHECK(fdclean(INT_MAX) == 0);
    CHECK(fdclean(closed_number(40)) == 0);

    int p[2];
    make_pipe(p);
    /* Open but never waited on. */
    CHECK(fdclean(p[0]) == 0);
    CHECK(fdclean(p[1]) == 0);

    /* Cleaning keeps nothing: the fd can be waited on afresh. */
    CHECK(write(p[1], "j", 1) == 1);
    CHECK(fdin(p[0], 0) == 0);
    CHECK(fdclean(p[0]) == 0);
    CHECK(fdclean(p[0]) == 0);
    CHECK(fdin(p[0], 0) == 0);
    CHECK(fdin(p[0], -1) == 0);
    read_byte(p[0], 'j');
    CHECK(fdclean(p[0]) == 0);
    CHECK_ERR(fdin(p[0], 0), ETIMEDOUT);

    /* EBUSY while a coroutine waits, in either direction. */
    volatile struct result r = {0};
    int h = go(wait_in(p[0], -1, &r));
    CHECK(h >= 0);
    CHECK_ERR(fdclean(p[0]), EBUSY);
    CHECK(fdclean(p[1]) == 0);
    CHECK(hclose(h) == 0);
    CHECK(fdclean(p[0]) == 0);
    fill(p[1]);
    r = (struct result){0};
    h = go(wait_out(p[1], -1, &r));
    CHECK(h >= 0);
    CHECK_ERR(fdclean(p[1]), EBUSY);
    CHECK(hclose(h) == 0);
    CHECK(fdclean(p[1]) == 0);
    drain(p[0]);

    /* Right before close, with data pending and both directions used;
       the number then goes to new descriptors, which must not inherit
       anything: not the old readiness, not the old registration. */
    CHECK(write(p[1], "k", 1) == 1);
    CHECK(fdin(p[0], 0) == 0);
    CHECK(fdout(p[1], 0) == 0);
    int n = p[0];
    int m = p[1];
    closefd(n);
    closefd(m);
    int wr;
    reopen_as_pipe(n, &wr);
    CHECK_ERR(fdin(n, 0), ETIMEDOUT);
    h = go(writer(wr, 10, 'l'));
    CHECK(h >= 0);
    CHECK(fdin(n, -1) == 0);
    read_byte(n, 'l');
    CHECK(hclose(h) == 0);
    closefd(n);
    closefd(wr);

    /* The same number as a socket, then as a regular file. */
    int s[2];
    make_socketpair(s);
    renumber(&s[0], n, &s[1]);
    CHECK(fdout(n, 0) == 0);
    CHECK_ERR(fdin(n, 0), ETIMEDOUT);
    CHECK(write(s[1], "m", 1) == 1);
    CHECK(fdin(n, -1) == 0);
    read_byte(n, 'm');
    closefd(n);
    closefd(s[1]);
    char path[] = "/tmp/dill-test-fd-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    CHECK(unlink(path) == 0);
    int none = -1;
    renumber(&f, n, &none);
    CHECK_ERR(fdin(n, 0), ENOTSUP);
    CHECK_ERR(fdout(n, -1), ENOTSUP);
    CHECK(fdclean(n) == 0);
    CHECK(close(n) == 0);

    /* fdclean after the fd was closed already (too late, but tolerated),
       before and after its number is reused. */
    make_pipe(p);
    CHECK(fdout(p[1], 0) == 0);
    CHECK(fdin(p[0], past()) == -1 && errno == ETIMEDOUT);
    CHECK(close(p[0]) == 0);
    CHECK(fdclean(p[0]) == 0);
    reopen_as_pipe(p[0], &wr);
    CHECK_ERR(fdin(p[0], 0), ETIMEDOUT);
    CHECK(write(wr, "n", 1) == 1);
    CHECK(fdin(p[0], -1) == 0);
    read_byte(p[0], 'n');
    closefd(p[0]);
    closefd(wr);
    CHECK(close(p[1]) == 0);
    reopen_as_pipe(p[1], &wr);
    CHECK(fdclean(p[1]) == 0);
    CHECK_ERR(fdin(p[1], 0), ETIMEDOUT);
    CHECK(write(wr, "o", 1) == 1);
    CHECK(fdin(p[1], -1) == 0);
    read_byte(p[1], 'o');
    closefd(p[1]);
    closefd(wr);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static void set_timer(int usec) {
    struct itimerval it;
    it.it_interval.tv_sec = 0;
    it.it_interval.tv_usec = usec;
    it.it_value = it.it_interval;
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
}

static void test_signal(void) {
    struct sigaction sa;
    struct sigaction old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the kernel wait fails with EINTR */
    CHECK(sigaction(SIGALRM, &sa, &old) == 0);
    int p[2];
    make_pipe(p);

    /* Signals every 5 ms during a wait that times out. */
    alarms = 0;
    set_timer(5000);
    int64_t deadline = now() + 100;
    CHECK_ERR(fdin(p[0], deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    CHECK(alarms > 0);

    /* ... and during a wait that succeeds. */
    alarms = 0;
    int h = go(writer(p[1], 60, 'p'));
    CHECK(h >= 0);
    CHECK(fdin(p[0], -1) == 0);
    CHECK(alarms > 0);
    read_byte(p[0], 'p');
    CHECK(hclose(h) == 0);

    /* One signal, with nothing else to wake the thread before it. */
    set_timer(0);
    alarms = 0;
    struct itimerval once = {{0, 0}, {0, 20000}};
    CHECK(setitimer(ITIMER_REAL, &once, NULL) == 0);
    h = go(writer(p[1], 80, 'q'));
    CHECK(h >= 0);
    CHECK(fdin(p[0], -1) == 0);
    CHECK(alarms == 1);
    read_byte(p[0], 'q');
    CHECK(hclose(h) == 0);

    CHECK(sigaction(SIGALRM, &old, NULL) == 0);
    closefd(p[0]);
    closefd(p[1]);
}

#define MANY 500

coroutine static void many_waiter(int rd, char *got) {
    CHECK(fdin(rd, -1) == 0);
    CHECK(read(rd, got, 1) == 1);
    CHECK(fdclean(rd) == 0);
}

/* How many pipes the descriptor limit allows, up to MANY: two fds each,
   plus room for the ones open already. Raises the soft limit if it can
   (valgrind, for one, pins it to about 1000). */
static int pipes_allowed(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rlim_t want = 2 * MANY + 64;
    if(rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    }
    if(rl.rlim_cur >= want) return MANY;
    int n = ((int)rl.rlim_cur - 64) / 2;
    CHECK(n >= 200);
    return n;
}

static void test_many(void) {
    int many = pipes_allowed();
    static int rd[MANY];
    static int wr[MANY];
    static char got[MANY];
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i < many; i++) {
        int p[2];
        make_pipe(p);
        rd[i] = p[0];
        wr[i] = p[1];
        got[i] = 0;
        CHECK(bundle_go(b, many_waiter(rd[i], &got[i])) == 0);
    }
    for(int i = 0; i < many; i++) CHECK(got[i] == 0);
    /* Nothing ready yet: everybody stays put through a poll. */
    CHECK(msleep(0) == 0);
    for(int i = 0; i < many; i++) CHECK(got[i] == 0);
    /* Wake them in an order unlike their registration, half at a time. */
    for(int i = many - 1; i >= 0; i -= 2)
        CHECK(write(wr[i], &(char){(char)('A' + i % 26)}, 1) == 1);
    /* A poll wakes a bounded number of waiters: give it a few passes. */
    int half = (many + 1) / 2;
    int woken = 0;
    for(int pass = 0; pass < 100 && woken < half; pass++) {
        CHECK(msleep(0) == 0);
        woken = 0;
        for(int i = many - 1; i >= 0; i -= 2) woken += got[i] != 0;
    }
    CHECK(woken == half);
    for(int i = 0; i < many; i++)
        CHECK(got[i] == (i % 2 == (many - 1) % 2 ? 'A' + i % 26 : 0));
    for(int i = many - 2; i >= 0; i -= 2)
        CHECK(write(wr[i], &(char){(char)('A' + i % 26)}, 1) == 1);
    CHECK(bundle_wait(b, -1) == 0);
    for(int i = 0; i < many; i++) CHECK(got[i] == 'A' + i % 26);
    CHECK(hclose(b) == 0);
    for(int i = 0; i < many; i++) {
        CHECK(close(rd[i]) == 0);
        closefd(wr[i]);
    }
}

#if defined DILL_TEST_THREADS
static void *thread_main(void *arg) {
    int rd = *(int *)arg;
    /* Its own poller: the main thread's waiter on rd does not matter. */
    CHECK_ERR(fdin(rd, 0), ETIMEDOUT);
    int p[2];
    make_pipe(p);
    int h = go(writer(p[1], 10, 'r'));
    CHECK(h >= 0);
    CHECK(fdin(p[0], -1) == 0);
    read_byte(p[0], 'r');
    CHECK(hclose(h) == 0);
    closefd(p[0]);
    closefd(p[1]);
    CHECK(fdclean(rd) == 0);
    return NULL;
}

static void test_threads(void) {
    int p[2];
    make_pipe(p);
    volatile struct result r = {0};
    int h = go(wait_in(p[0], -1, &r));
    CHECK(h >= 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, &p[0]) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(!r.done);
    CHECK(write(p[1], "s", 1) == 1);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(r.done && r.rc == 0);
    read_byte(p[0], 's');
    CHECK(hclose(h) == 0);
    closefd(p[0]);
    closefd(p[1]);
}
#endif

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    /* The descriptors open before the tests (inherited ones included). */
    static char open_before[2 * MANY + 256];
    for(int fd = 0; fd < (int)sizeof(open_before); fd++)
        open_before[fd] = fcntl(fd, F_GETFD) != -1;
    test_pipe_and_socketpair();
    test_deadlines();
    test_ebadf();
    test_enotsup();
    test_ebusy();
    test_ecanceled();
    test_hangup();
    test_fdclean();
    test_signal();
    test_many();
#if defined DILL_TEST_THREADS
    test_threads();
#endif
    /* Every descriptor the tests opened was closed; the only new one is
       this thread's poller, if the backend has a kernel object. */
    int opened = 0;
    for(int fd = 0; fd < (int)sizeof(open_before); fd++)
        opened += !open_before[fd] && fcntl(fd, F_GETFD) != -1;
    CHECK(opened <= 1);
    return 0;
}
