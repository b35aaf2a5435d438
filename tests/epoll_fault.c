/*
 * tests/epoll_fault.c: the epoll backend when the kernel refuses a change
 * of interest. This program defines epoll_ctl itself (the library's calls
 * land here, before libc's) and makes the first EPOLL_CTL_MOD fail with
 * ENOMEM, as the kernel may. The waiters on that fd must be woken, and the
 * fd must stay usable: the next fdin registers it afresh instead of
 * failing with EEXIST for ever because the kernel still held it.
 */
#include <errno.h>
#include <libdill.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static int fail_next_mod;
static int mods_failed;

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
    if(op == EPOLL_CTL_MOD && fail_next_mod) {
        fail_next_mod = 0;
        mods_failed++;
        errno = ENOMEM;
        return -1;
    }
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

static coroutine void wait_in(int fd, int *rc) {
    *rc = fdin(fd, -1);
}

int main(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    /* A coroutine waits to read: the fd is registered for input. */
    int in_rc = 99;
    int cr = go(wait_in(sv[0], &in_rc));
    CHECK(cr >= 0);
    /* Waiting for output as well needs a MOD, which the kernel refuses.
       Both waiters are woken; the I/O they do next tells them the truth. */
    fail_next_mod = 1;
    CHECK(fdout(sv[0], -1) == 0);
    CHECK(mods_failed == 1);
    CHECK(bundle_wait(cr, now() + 1000) == 0);
    CHECK(in_rc == 0);
    CHECK(hclose(cr) == 0);
    /* The fd works again: nothing to read yet, then data. */
    CHECK_ERR(fdin(sv[0], now() + 50), ETIMEDOUT);
    CHECK(write(sv[1], "x", 1) == 1);
    CHECK(fdin(sv[0], now() + 1000) == 0);
    char c;
    CHECK(read(sv[0], &c, 1) == 1 && c == 'x');
    CHECK(fdout(sv[0], now() + 1000) == 0);
    CHECK(fdclean(sv[0]) == 0);
    CHECK(close(sv[0]) == 0);
    CHECK(close(sv[1]) == 0);
    return 0;
}
