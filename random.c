/*
 * random.c: the kernel's random bytes (see random.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if defined __has_include
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define DILL_HAVE_GETRANDOM 1
#endif
#endif

#include "random.h"

static int urandom_fill(uint8_t *buf, size_t len) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if(fd < 0) return -1;
    size_t got = 0;
    while(got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if(n < 0 && errno == EINTR) continue;
        if(n <= 0) {
            if(n == 0) errno = EIO;
            int err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    return 0;
}

int dill_random_fill(uint8_t *buf, size_t len) {
#if defined DILL_HAVE_GETRANDOM
    size_t got = 0;
    while(got < len) {
        /* GRND_NONBLOCK: before the pool is seeded, /dev/urandom answers
           at once where getrandom would wait. */
        ssize_t n = getrandom(buf + got, len - got, GRND_NONBLOCK);
        if(n < 0 && errno == EINTR) continue;
        if(n <= 0) break;
        got += (size_t)n;
    }
    if(got == len) return 0;
    return urandom_fill(buf + got, len - got);
#else
    return urandom_fill(buf, len);
#endif
}
