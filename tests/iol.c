/*
 * tests/iol.c: iolist validation by the real sockets (sockets.md §2, §3,
 * §10, §21): IPC pairs and TCP connections over loopback (and UDP sockets
 * through msendl/mrecvl, which keep no error state), both directions, TCP
 * receives below and above the 1984-byte read-ahead size. A list with a
 * loop (onto itself, onto a middle element, after a long run), with a
 * non-zero iol_rsvd (first, middle, last, a lone element, negative and
 * large values) or whose last element cannot be reached fails with EINVAL;
 * the list is exactly as it was afterwards (every iol_rsvd restored);
 * nothing is sent; the failed direction then fails with ECONNRESET (§3: a
 * list the layer finds malformed is a failure like any other) while the
 * other direction keeps working. Valid lists with empty elements, NULL
 * bases on receive, more elements than one sendmsg takes, one element,
 * and zero bytes in all work and come back unchanged.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "libdill.h"
#include "check.h"

/* ---- Socket pairs --------------------------------------------------------- */

static void ipc_make(int s[2]) {
    CHECK(ipc_pair(s) == 0);
}

static void tcp_make(int s[2]) {
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int l = tcp_listen(&addr, 10);
    CHECK(l >= 0);
    /* The kernel completes the handshake into the backlog: no coroutine
       needs to be accepting while we connect. */
    s[0] = tcp_connect(&addr, now() + 10000);
    CHECK(s[0] >= 0);
    s[1] = tcp_accept(l, NULL, now() + 10000);
    CHECK(s[1] >= 0);
    CHECK(hclose(l) == 0);
}

struct kind {
    const char *name;
    void (*make)(int s[2]);
};

static const struct kind kinds[] = {
    {"ipc", ipc_make},
    {"tcp", tcp_make},
};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

static void close_pair(int s[2]) {
    CHECK(hclose(s[0]) == 0);
    CHECK(hclose(s[1]) == 0);
}

/* ---- Malformed lists ------------------------------------------------------ */

#define NEL 7

struct shape {
    struct iolist e[NEL];
    struct iolist saved[NEL];
    struct iolist *first;
    struct iolist *last;
};

enum {
    SELF_LOOP,     /* e0 -> e0 */
    MIDDLE_LOOP,   /* e0 -> e1 -> e2 -> e1 */
    LONG_LOOP,     /* e0 -> e1 -> ... -> e5 -> e1 */
    UNREACHABLE,   /* e0 -> e1 -> e2, last e6 */
    BEHIND_FIRST,  /* e0 -> e1 -> e2, first e1, last e0 with no next */
    RSVD_FIRST,    /* e0 -> e1 -> e2, e0.iol_rsvd = 1 */
    RSVD_MIDDLE,   /* e0 -> e1 -> e2, e1.iol_rsvd = -1 */
    RSVD_LAST,     /* e0 -> e1 -> e2, e2.iol_rsvd = INT_MAX */
    RSVD_SINGLE,   /* e6 alone, iol_rsvd = 2 */
    NSHAPES
};

static const char *shape_names[NSHAPES] = {"self loop", "middle loop",
    "long loop", "unreachable last", "last behind first", "rsvd on first",
    "rsvd in the middle", "rsvd on last", "rsvd on a lone element"};

/* Builds a malformed list whose elements are len bytes each in buf (NEL *
   len bytes). first and last are never NULL and last->iol_next is always
   NULL: the front end lets all of these through to the socket. */
static void shape_build(struct shape *sh, int which, char *buf, size_t len) {
    for(int i = 0; i != NEL; i++)
        sh->e[i] = (struct iolist){buf + (size_t)i * len, len, NULL, 0};
    for(int i = 0; i != 5; i++) sh->e[i].iol_next = &sh->e[i + 1];
    sh->e[5].iol_next = NULL;
    sh->first = &sh->e[0];
    sh->last = &sh->e[2];
    switch(which) {
    case SELF_LOOP:
        sh->e[0].iol_next = &sh->e[0];
        sh->last = &sh->e[6];
        break;
    case MIDDLE_LOOP:
        sh->e[2].iol_next = &sh->e[1];
        sh->last = &sh->e[6];
        break;
    case LONG_LOOP:
        sh->e[5].iol_next = &sh->e[1];
        sh->last = &sh->e[6];
        break;
    case UNREACHABLE:
        sh->e[2].iol_next = NULL;
        sh->last = &sh->e[6];
        break;
    case BEHIND_FIRST:
        sh->e[0].iol_next = NULL;
        sh->e[2].iol_next = NULL;
        sh->first = &sh->e[1];
        sh->last = &sh->e[0];
        break;
    case RSVD_FIRST:
        sh->e[2].iol_next = NULL;
        sh->e[0].iol_rsvd = 1;
        break;
    case RSVD_MIDDLE:
        sh->e[2].iol_next = NULL;
        sh->e[1].iol_rsvd = -1;
        break;
    case RSVD_LAST:
        sh->e[2].iol_next = NULL;
        sh->e[2].iol_rsvd = INT_MAX;
        break;
    case RSVD_SINGLE:
        sh->e[6].iol_rsvd = 2;
        sh->first = sh->last = &sh->e[6];
        break;
    }
    CHECK(sh->first && sh->last && sh->last->iol_next == NULL);
    memcpy(sh->saved, sh->e, sizeof(sh->e));
}

static void shape_unchanged(struct shape *sh) {
    for(int i = 0; i != NEL; i++) {
        CHECK(sh->e[i].iol_base == sh->saved[i].iol_base);
        CHECK(sh->e[i].iol_len == sh->saved[i].iol_len);
        CHECK(sh->e[i].iol_next == sh->saved[i].iol_next);
        CHECK(sh->e[i].iol_rsvd == sh->saved[i].iol_rsvd);
    }
}

static char big_a[NEL * 4000];
static char big_b[8192];

/* One malformed list given to bsendl on s[0]. */
static void bad_send(const struct kind *k, int which, size_t len) {
    int s[2];
    k->make(s);
    memset(big_a, 'x', sizeof(big_a));
    struct shape sh;
    shape_build(&sh, which, big_a, len);
    /* A finite deadline: a socket that follows the loop instead of
       rejecting it fails with ETIMEDOUT rather than hanging the test. */
    errno = 0;
    int rc = bsendl(s[0], sh.first, sh.last, now() + 2000);
    if(rc != -1 || errno != EINVAL)
        fprintf(stderr, "%s, bsendl, %s, %zu-byte elements:\n", k->name,
            shape_names[which], len);
    CHECK(rc == -1 && errno == EINVAL);
    shape_unchanged(&sh);
    /* Nothing went out. */
    char c;
    CHECK_ERR(brecv(s[1], &c, 1, 0), ETIMEDOUT);
    /* The send side has failed; the receive side works. */
    struct iolist ok = {"y", 1, NULL, 0};
    CHECK_ERR(bsendl(s[0], &ok, &ok, -1), ECONNRESET);
    CHECK_ERR(bsend(s[0], "y", 1, -1), ECONNRESET);
    CHECK(bsend(s[1], "z", 1, -1) == 0);
    CHECK(brecv(s[0], &c, 1, now() + 10000) == 0);
    CHECK(c == 'z');
    close_pair(s);
}

/* One malformed list given to brecvl on s[1], with data waiting. */
static void bad_recv(const struct kind *k, int which, size_t len) {
    int s[2];
    k->make(s);
    memset(big_b, 'w', sizeof(big_b));
    CHECK(bsend(s[0], big_b, sizeof(big_b), now() + 10000) == 0);
    struct shape sh;
    shape_build(&sh, which, big_a, len);
    errno = 0;
    int rc = brecvl(s[1], sh.first, sh.last, now() + 2000);
    if(rc != -1 || errno != EINVAL)
        fprintf(stderr, "%s, brecvl, %s, %zu-byte elements:\n", k->name,
            shape_names[which], len);
    CHECK(rc == -1 && errno == EINVAL);
    shape_unchanged(&sh);
    /* The receive side has failed; the send side works. */
    char c;
    struct iolist in = {&c, 1, NULL, 0};
    CHECK_ERR(brecvl(s[1], &in, &in, 0), ECONNRESET);
    CHECK_ERR(brecv(s[1], &c, 1, 0), ECONNRESET);
    CHECK(bsend(s[1], "z", 1, -1) == 0);
    CHECK(brecv(s[0], &c, 1, now() + 10000) == 0);
    CHECK(c == 'z');
    close_pair(s);
}

/* UDP through the message front end: the same lists fail with EINVAL and
   come back unchanged, nothing is sent or consumed, and since UDP keeps no
   error state (§10) the socket works normally afterwards. */
static void udp_make(int *a, int *b) {
    struct ipaddr aaddr, baddr;
    CHECK(ipaddr_local(&aaddr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    CHECK(ipaddr_local(&baddr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    *a = udp_open(&aaddr, NULL);
    CHECK(*a >= 0);
    *b = udp_open(&baddr, &aaddr);
    CHECK(*b >= 0);
}

static void bad_udp(int which) {
    int a, b;
    udp_make(&a, &b);
    memset(big_a, 'x', sizeof(big_a));
    struct shape sh;
    shape_build(&sh, which, big_a, 10);
    errno = 0;
    int rc = msendl(b, sh.first, sh.last, -1);
    if(rc != -1 || errno != EINVAL)
        fprintf(stderr, "udp, msendl, %s:\n", shape_names[which]);
    CHECK(rc == -1 && errno == EINVAL);
    shape_unchanged(&sh);
    char buf[16];
    CHECK_ERR(mrecv(a, buf, sizeof(buf), 0), ETIMEDOUT);
    /* A datagram waits; the malformed receive leaves it there. */
    CHECK(msend(b, "dgram", 5, -1) == 0);
    errno = 0;
    ssize_t n = mrecvl(a, sh.first, sh.last, now() + 2000);
    if(n != -1 || errno != EINVAL)
        fprintf(stderr, "udp, mrecvl, %s:\n", shape_names[which]);
    CHECK(n == -1 && errno == EINVAL);
    shape_unchanged(&sh);
    CHECK(mrecv(a, buf, sizeof(buf), now() + 10000) == 5);
    CHECK(memcmp(buf, "dgram", 5) == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(a) == 0);
}

static void test_malformed(void) {
    /* 10-byte elements: small requests (TCP serves them through its
       read-ahead buffer); 4000-byte ones: straight into the caller's. */
    static const size_t lens[] = {10, 4000};
    for(int k = 0; k != NKINDS; k++)
        for(int which = 0; which != NSHAPES; which++)
            for(int l = 0; l != 2; l++) {
                bad_send(&kinds[k], which, lens[l]);
                bad_recv(&kinds[k], which, lens[l]);
            }
    for(int which = 0; which != NSHAPES; which++) bad_udp(which);
}

/* ---- Valid lists ---------------------------------------------------------- */

static unsigned char pattern(size_t i) {
    return (unsigned char)(i * 13 + i / 199);
}

/* n elements over data, element i holding (i * 7) % (maxlen + 1) bytes,
   so some are empty. Returns the total. */
static size_t list_build(struct iolist *e, int n, unsigned char *data,
      size_t maxlen) {
    size_t pos = 0;
    for(int i = 0; i != n; i++) {
        size_t len = ((size_t)i * 7) % (maxlen + 1);
        e[i] = (struct iolist){data + pos, len, i + 1 < n ? &e[i + 1] : NULL,
            0};
        pos += len;
    }
    return pos;
}

static void list_unchanged(struct iolist *e, struct iolist *saved, int n) {
    for(int i = 0; i != n; i++) {
        CHECK(e[i].iol_base == saved[i].iol_base);
        CHECK(e[i].iol_len == saved[i].iol_len);
        CHECK(e[i].iol_next == saved[i].iol_next);
        CHECK(e[i].iol_rsvd == 0);
    }
}

#define MAXN 3000

struct transfer {
    int s;
    struct iolist *e;
    int n;
};

static coroutine void send_list(struct transfer *t) {
    CHECK(bsendl(t->s, &t->e[0], &t->e[t->n - 1], now() + 30000) == 0);
}

/* Sends n elements of up to maxlen bytes in one bsendl (from a coroutine,
   since it may not fit in the socket buffers) and receives them in one
   brecvl whose elements have other sizes, every third element a NULL base
   (dropped bytes). */
static void valid_transfer(const struct kind *k, int n, size_t maxlen) {
    static struct iolist se[MAXN], ssaved[MAXN], re[MAXN], rsaved[MAXN];
    static unsigned char sdata[MAXN * 64], rdata[MAXN * 64];
    CHECK(n <= MAXN && maxlen < 64);
    int s[2];
    k->make(s);
    size_t total = list_build(se, n, sdata, maxlen);
    for(size_t i = 0; i != total; i++) sdata[i] = pattern(i);
    memcpy(ssaved, se, sizeof(struct iolist) * (size_t)n);
    /* The receive list: elements of 0..maxlen + 5 bytes up to the total,
       the last one taking what is left. */
    int rn = 0;
    size_t pos = 0;
    while(pos < total) {
        CHECK(rn < MAXN);
        size_t len = ((size_t)rn * 5) % (maxlen + 6);
        if(len > total - pos || rn == MAXN - 1) len = total - pos;
        re[rn] = (struct iolist){rn % 3 == 1 ? NULL : rdata + pos, len, NULL,
            0};
        if(rn > 0) re[rn - 1].iol_next = &re[rn];
        pos += len;
        rn++;
    }
    CHECK(rn > 0);
    memcpy(rsaved, re, sizeof(struct iolist) * (size_t)rn);
    memset(rdata, 0, sizeof(rdata));
    struct transfer t = {s[0], se, n};
    int cr = go(send_list(&t));
    CHECK(cr >= 0);
    CHECK(brecvl(s[1], &re[0], &re[rn - 1], now() + 30000) == 0);
    CHECK(bundle_wait(cr, now() + 30000) == 0);
    CHECK(hclose(cr) == 0);
    list_unchanged(se, ssaved, n);
    list_unchanged(re, rsaved, rn);
    for(int i = 0; i != rn; i++) {
        if(!re[i].iol_base) continue;
        size_t off = (size_t)((unsigned char *)re[i].iol_base - rdata);
        for(size_t j = 0; j != re[i].iol_len; j++)
            CHECK(rdata[off + j] == pattern(off + j));
    }
    /* The stream is in step: the next byte is the next one sent. */
    unsigned char c = 0x5A, d = 0;
    CHECK(bsend(s[0], &c, 1, -1) == 0);
    CHECK(brecv(s[1], &d, 1, now() + 10000) == 0);
    CHECK(d == 0x5A);
    close_pair(s);
}

/* Lists whose bytes add up to 0: nothing moves and nothing fails, on
   either side; a single element; first == last. */
static void valid_edges(const struct kind *k) {
    int s[2];
    k->make(s);
    char a[4] = "abcd", b[4] = {0};
    struct iolist z3 = {NULL, 0, NULL, 0};
    struct iolist z2 = {a, 0, &z3, 0};
    struct iolist z1 = {NULL, 0, &z2, 0};
    CHECK(bsendl(s[0], &z1, &z3, 0) == 0);
    CHECK(brecvl(s[1], &z1, &z3, 0) == 0);
    CHECK(z1.iol_next == &z2 && z2.iol_next == &z3 && z3.iol_next == NULL);
    CHECK(z1.iol_rsvd == 0 && z2.iol_rsvd == 0 && z3.iol_rsvd == 0);
    struct iolist one = {a, sizeof(a), NULL, 0};
    CHECK(bsendl(s[0], &one, &one, -1) == 0);
    struct iolist in = {b, sizeof(b), NULL, 0};
    CHECK(brecvl(s[1], &in, &in, now() + 10000) == 0);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    CHECK(one.iol_rsvd == 0 && in.iol_rsvd == 0);
    /* Nothing extra arrived. */
    CHECK_ERR(brecv(s[1], b, 1, 0), ETIMEDOUT);
    close_pair(s);
}

static void test_valid(void) {
    for(int k = 0; k != NKINDS; k++) {
        valid_edges(&kinds[k]);
        /* Below the read-ahead size, around one sendmsg's batch, and
           far beyond both (several sendmsg calls and waits). */
        valid_transfer(&kinds[k], 20, 15);
        valid_transfer(&kinds[k], 70, 40);
        valid_transfer(&kinds[k], 1100, 63);
        valid_transfer(&kinds[k], MAXN, 63);
    }
}

/* ---- Main ----------------------------------------------------------------- */

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    while(readdir(d)) n++;
    closedir(d);
    return n;
}

int main(void) {
    /* The scheduler's own descriptors exist before the first count. */
    CHECK(yield() == 0);
    int fds = count_fds();
    test_valid();
    CHECK(count_fds() == fds);
    test_malformed();
    CHECK(count_fds() == fds);
    return 0;
}
