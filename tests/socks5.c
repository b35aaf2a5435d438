/*
 * tests/socks5.c: SOCKS5 (sockets.md §16, §20 item 18, §21, §23). Covers
 * every function and its errno, against peers written here (scripted over
 * ipc_pair and TCP: every byte each side sends is checked exactly) and
 * against real ones. Client: the exact greeting bytes (05 01 00, and
 * 05 02 00 02 only with both username and password), the RFC 1929 login
 * message, CONNECT requests for IPv4, IPv6, names and literals given as
 * names, every bound-address type in the reply, the REP -> errno table for
 * every code and the codes past it, bad versions, unknown methods, refusals
 * (EACCES), garbage, truncation at every byte (EPIPE), argument checks made
 * before anything is sent (EINVAL, then EBADF, ENOTSUP), one deadline for
 * the whole exchange (ETIMEDOUT, deadline 0), cancellation (ECANCELED), the
 * socket closed under the call (EBADF), and the tunnelled bytes behind the
 * SOCKS messages never consumed. Proxy: the method policy of §16.2 with and
 * without auth_fn, the credentials auth_fn sees (empty, 255 bytes, a NUL
 * inside refused unseen), requests of the three commands and three address
 * types, names resolved (literals without the resolver, localhost from the
 * hosts file, an impossible name giving EADDRNOTAVAIL), the 256-byte host
 * buffer filled to its end and not past it, bad requests (EPROTO, with the
 * output left alone), sendreply's exact bytes and EINVAL. Both sides of
 * ours against each other for every REP code. Real peers: our client
 * through microsocks (with and without -u/-P) to an echo server run here,
 * by IPv4, IPv6 and name, ECONNREFUSED as microsocks reports it; curl
 * --socks5 and --socks5-hostname through examples/socks5_proxy to an HTTP
 * server run here (GET and POST, IPv4 and IPv6, with and without
 * --proxy-user, a wrong password refused); our client through the example
 * proxy too. No fd leaks.
 *
 * Needs the microsocks and curl commands (apt-get install microsocks curl);
 * fails saying so when they are missing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"
#include "peer.h"

/* A byte string literal and its length (it may hold NULs). */
#define B(lit) lit, sizeof(lit) - 1
#define NOTHING NULL, 0

/* ---- Helpers ------------------------------------------------------------- */

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while((e = readdir(d)))
        if(e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void make_addr(struct ipaddr *a, const char *ip, int port) {
    CHECK(ipaddr_local(a, ip, port, 0) == 0);
}

/* What a coroutine's call returned. */
struct op {
    int done;
    int rc;
    int err;
};

static void op_finish(volatile struct op *op, int rc) {
    op->err = errno;
    op->rc = rc;
    op->done = 1;
}

/* A peer that follows a script: at each step it receives exactly the
   bytes it expects (checked), then sends its own. Afterwards it can end
   its side (ipc_done/tcp_done: the other side sees the end of the stream),
   and it counts whatever else arrives until the other side goes away. */
struct step {
    const char *expect;
    size_t elen;
    const char *send;
    size_t slen;
};

struct script {
    struct step steps[8];
    int nsteps;
    int done_after;  /* end our sending side after the last step */
    int delay_ms;    /* wait this long before each send */
    int tcp;         /* the pair is TCP, not IPC */
    int late_ok;     /* the other side may be gone when we send */
    int notify;      /* a channel told when the steps are over, or -1 */
    /* results */
    int failed;      /* 1 + the step that went wrong, or 0 */
    size_t extra;    /* bytes received after the last step */
};

static void script_init(struct script *sc) {
    memset(sc, 0, sizeof(*sc));
    sc->notify = -1;
}

static void step(struct script *sc, const char *expect, size_t elen,
      const char *send, size_t slen) {
    CHECK(sc->nsteps < 8);
    struct step *st = &sc->steps[sc->nsteps++];
    st->expect = expect;
    st->elen = elen;
    st->send = send;
    st->slen = slen;
}

static void hexdump(const char *what, const void *buf, size_t len) {
    fprintf(stderr, "%s:", what);
    for(size_t i = 0; i < len; i++)
        fprintf(stderr, " %02x", ((const uint8_t *)buf)[i]);
    fprintf(stderr, "\n");
}

coroutine static void scripted(int s, struct script *sc) {
    char buf[1024];
    for(int i = 0; i < sc->nsteps; i++) {
        struct step *st = &sc->steps[i];
        if(st->elen) {
            CHECK(st->elen <= sizeof(buf));
            int rc = brecv(s, buf, st->elen, -1);
            if(rc < 0 || memcmp(buf, st->expect, st->elen) != 0) {
                fprintf(stderr, "script step %d: ", i);
                if(rc < 0) perror("brecv");
                else {
                    hexdump("expected", st->expect, st->elen);
                    hexdump("received", buf, st->elen);
                }
                sc->failed = i + 1;
                hclose(s);
                return;
            }
        }
        if(st->slen) {
            if(sc->delay_ms) CHECK(msleep(now() + sc->delay_ms) == 0);
            if(bsend(s, st->send, st->slen, -1) < 0) {
                if(sc->late_ok) break;
                fprintf(stderr, "script step %d: ", i);
                perror("bsend");
                sc->failed = i + 1;
                hclose(s);
                return;
            }
        }
    }
    if(sc->notify >= 0) CHECK(chsend(sc->notify, NULL, 0, -1) == 0);
    if(sc->done_after) CHECK((sc->tcp ? tcp_done(s, -1) : ipc_done(s, -1))
        == 0);
    while(brecv(s, buf, 1, -1) == 0) sc->extra++;
    hclose(s);
}

/* A connected TCP pair through a listener on 127.0.0.1. */
static void tcp_pair(int h[2]) {
    struct ipaddr a;
    make_addr(&a, "127.0.0.1", 0);
    int ls = tcp_listen(&a, 10);
    CHECK(ls >= 0);
    h[0] = tcp_connect(&a, now() + 5000);
    CHECK(h[0] >= 0);
    h[1] = tcp_accept(ls, NULL, now() + 5000);
    CHECK(h[1] >= 0);
    CHECK(hclose(ls) == 0);
}

/* Start the script's peer; returns our end of the pair, the bundle the
   peer runs in goes to *b. */
static int peer_go(struct script *sc, int *b) {
    int h[2];
    if(sc->tcp) tcp_pair(h);
    else CHECK(ipc_pair(h) == 0);
    *b = bundle();
    CHECK(*b >= 0);
    CHECK(bundle_go(*b, scripted(h[1], sc)) == 0);
    return h[0];
}

/* Close our end, wait for the peer to finish and check it saw exactly
   what it expected. */
static void peer_end(int s, int b, struct script *sc) {
    CHECK(hclose(s) == 0);
    CHECK(bundle_wait(b, now() + 5000) == 0);
    CHECK(hclose(b) == 0);
    CHECK(sc->failed == 0);
}

/* The tunnel works both ways right after the SOCKS exchange: the peer's
   last step sent "TUNNEL" behind its SOCKS message and now expects
   "BACK". */
static void check_tunnel(int s) {
    char buf[6];
    CHECK(brecv(s, buf, 6, now() + 5000) == 0);
    CHECK(memcmp(buf, "TUNNEL", 6) == 0);
    CHECK(bsend(s, "BACK", 4, now() + 5000) == 0);
}

static char *repeat(char c, size_t n) {
    char *s = malloc(n + 1);
    CHECK(s != NULL);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* ---- Client: the bytes on the wire --------------------------------------- */

/* A script for the proxy's side of a CONNECT without authentication: the
   greeting, method 00, the request req, and a reply with TUNNEL behind. */
static void no_auth_script(struct script *sc, const char *req, size_t rlen) {
    script_init(sc);
    step(sc, B("\5\1\0"), B("\5\0"));
    step(sc, req, rlen, B("\5\0\0\1\0\0\0\0\0\0TUNNEL"));
    step(sc, B("BACK"), NOTHING);
}

static void test_client_wire(void) {
    struct script sc;
    struct ipaddr a;
    int b, s;

    /* No credentials, IPv4, over IPC and over TCP. */
    for(int tcp = 0; tcp < 2; tcp++) {
        no_auth_script(&sc, B("\5\1\0\1\1\2\3\4\0\120"));
        sc.tcp = tcp;
        s = peer_go(&sc, &b);
        make_addr(&a, "1.2.3.4", 80);
        CHECK(socks5_client_connect(s, NULL, NULL, &a, now() + 5000) == 0);
        check_tunnel(s);
        peer_end(s, b, &sc);
        CHECK(sc.extra == 0);
    }

    /* Only one of username and password: no authentication offered. */
    no_auth_script(&sc, B("\5\1\0\1\1\2\3\4\0\120"));
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connect(s, "user", NULL, &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);
    no_auth_script(&sc, B("\5\1\0\1\1\2\3\4\0\120"));
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connect(s, NULL, "pass", &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* Both: 05 02 00 02, then the RFC 1929 message. */
    script_init(&sc);
    step(&sc, B("\5\2\0\2"), B("\5\2"));
    step(&sc, B("\1\4user\4pass"), B("\1\0"));
    step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), B("\5\0\0\1\0\0\0\0\0\0TUNNEL"));
    step(&sc, B("BACK"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connect(s, "user", "pass", &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* Credentials offered, the proxy picks "none": no login is sent. */
    script_init(&sc);
    step(&sc, B("\5\2\0\2"), B("\5\0"));
    step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), B("\5\0\0\1\0\0\0\0\0\0TUNNEL"));
    step(&sc, B("BACK"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connect(s, "user", "pass", &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* Empty username and password are sent as they are (lengths 0). */
    script_init(&sc);
    step(&sc, B("\5\2\0\2"), B("\5\2"));
    step(&sc, B("\1\0\0"), B("\1\0"));
    step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), B("\5\0\0\1\0\0\0\0\0\0TUNNEL"));
    step(&sc, B("BACK"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connect(s, "", "", &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* 255 bytes each, the most there is room for. */
    char *u255 = repeat('u', 255), *p255 = repeat('p', 255);
    char login[3 + 255 + 255];
    login[0] = 1;
    login[1] = (char)255;
    memcpy(login + 2, u255, 255);
    login[257] = (char)255;
    memcpy(login + 258, p255, 255);
    script_init(&sc);
    step(&sc, B("\5\2\0\2"), B("\5\2"));
    step(&sc, login, sizeof(login), B("\1\0"));
    step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), B("\5\0\0\1\0\0\0\0\0\0TUNNEL"));
    step(&sc, B("BACK"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connect(s, u255, p255, &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* IPv6, and a port of 0 in an ipaddr goes out as it is. */
    no_auth_script(&sc, B("\5\1\0\4\40\1\15\270\0\0\0\0\0\0\0\0\0\0\0\1"
        "\1\273"));
    s = peer_go(&sc, &b);
    make_addr(&a, "2001:db8::1", 443);
    CHECK(socks5_client_connect(s, NULL, NULL, &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);
    no_auth_script(&sc, B("\5\1\0\1\177\0\0\1\0\0"));
    s = peer_go(&sc, &b);
    make_addr(&a, "127.0.0.1", 0);
    CHECK(socks5_client_connect(s, NULL, NULL, &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* By name: ATYP 03; literals go as addresses. */
    no_auth_script(&sc, B("\5\1\0\3\13example.com\37\220"));
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connectbyname(s, NULL, NULL, "example.com", 8080,
        now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);
    no_auth_script(&sc, B("\5\1\0\1\12\0\0\1\0\1"));
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connectbyname(s, NULL, NULL, "10.0.0.1", 1,
        now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);
    no_auth_script(&sc, B("\5\1\0\4\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1"
        "\377\377"));
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connectbyname(s, NULL, NULL, "::1", 65535,
        now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* A 255-byte name, with credentials. */
    char *n255 = repeat('n', 255);
    char req[5 + 255 + 2] = "\5\1\0\3\377";
    memcpy(req + 5, n255, 255);
    req[260] = 0;
    req[261] = 80;
    script_init(&sc);
    step(&sc, B("\5\2\0\2"), B("\5\2"));
    step(&sc, B("\1\1u\1p"), B("\1\0"));
    step(&sc, req, sizeof(req), B("\5\0\0\1\0\0\0\0\0\0TUNNEL"));
    step(&sc, B("BACK"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connectbyname(s, "u", "p", n255, 80,
        now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* Every kind of bound address in the reply is read whole, and nothing
       past it. */
    const struct { const char *reply; size_t len; } replies[] = {
        {B("\5\0\0\4\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1\4\70TUNNEL")},
        {B("\5\0\0\3\5proxy\4\70TUNNEL")},
        {B("\5\0\0\3\0\4\70TUNNEL")},
    };
    for(size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        script_init(&sc);
        step(&sc, B("\5\1\0"), B("\5\0"));
        step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), replies[i].reply,
            replies[i].len);
        step(&sc, B("BACK"), NOTHING);
        s = peer_go(&sc, &b);
        make_addr(&a, "1.2.3.4", 80);
        CHECK(socks5_client_connect(s, NULL, NULL, &a, now() + 5000) == 0);
        check_tunnel(s);
        peer_end(s, b, &sc);
    }
    char bound[4 + 1 + 255 + 2 + 6] = "\5\0\0\3\377";
    memcpy(bound + 5, n255, 255);
    memcpy(bound + 260, "\0\0TUNNEL", 8);
    script_init(&sc);
    step(&sc, B("\5\1\0"), B("\5\0"));
    step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), bound, sizeof(bound));
    step(&sc, B("BACK"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connect(s, NULL, NULL, &a, now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* A proxy that sends all its answers at once, before reading anything:
       each is taken in turn and the tunnel data stays. */
    script_init(&sc);
    step(&sc, NOTHING, B("\5\2\1\0\5\0\0\3\5proxy\0\120TUNNEL"));
    step(&sc, B("\5\2\0\2\1\4user\4pass\5\1\0\3\13example.com\0\120BACK"),
        NOTHING);
    s = peer_go(&sc, &b);
    CHECK(socks5_client_connectbyname(s, "user", "pass", "example.com", 80,
        now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);

    free(u255);
    free(p255);
    free(n255);
}

/* ---- Client: REP codes, protocol errors, truncation ---------------------- */

static void test_client_rep(void) {
    const int expected[] = {0, EIO, EACCES, ENETUNREACH, EHOSTUNREACH,
        ECONNREFUSED, ETIMEDOUT, EOPNOTSUPP, EAFNOSUPPORT};
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    for(int rep = 0; rep < 256; rep++) {
        if(rep > 12 && rep != 0x7F && rep != 0x80 && rep != 0xFF) continue;
        char reply[10] = {5, (char)rep, 0, 1, 0, 0, 0, 0, 0, 0};
        for(int byname = 0; byname < 2; byname++) {
            struct script sc;
            int b;
            script_init(&sc);
            step(&sc, B("\5\1\0"), B("\5\0"));
            if(byname) step(&sc, B("\5\1\0\3\1h\0\120"), reply, 10);
            else step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), reply, 10);
            int s = peer_go(&sc, &b);
            errno = 0;
            int rc = byname ?
                socks5_client_connectbyname(s, NULL, NULL, "h", 80, -1) :
                socks5_client_connect(s, NULL, NULL, &a, -1);
            if(rep == 0) CHECK(rc == 0);
            else if(rep <= 8) CHECK(rc == -1 && errno == expected[rep]);
            else CHECK(rc == -1 && errno == EPROTO);
            peer_end(s, b, &sc);
            CHECK(sc.extra == 0);
        }
    }
}

/* The proxy's answers, as a script after the greeting "05 01 00" or
   "05 02 00 02", and the errno the client must give. */
static void client_fails(int creds, const char *m, size_t mlen,
      const char *login_reply, size_t llen, const char *reply, size_t rlen,
      int err) {
    struct script sc;
    int b;
    script_init(&sc);
    if(creds) step(&sc, B("\5\2\0\2"), m, mlen);
    else step(&sc, B("\5\1\0"), m, mlen);
    if(login_reply) step(&sc, B("\1\1u\1p"), login_reply, llen);
    if(reply) step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), reply, rlen);
    int s = peer_go(&sc, &b);
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    CHECK_ERR(socks5_client_connect(s, creds ? "u" : NULL, creds ? "p" : NULL,
        &a, now() + 5000), err);
    peer_end(s, b, &sc);
    /* Nothing was sent after the failure. */
    CHECK(sc.extra == 0);
}

static void test_client_errors(void) {
    /* The method choice. */
    client_fails(0, B("\4\0"), NULL, 0, NULL, 0, EPROTO);
    client_fails(1, B("\0\2"), NULL, 0, NULL, 0, EPROTO);
    client_fails(0, B("\5\377"), NULL, 0, NULL, 0, EACCES);
    client_fails(1, B("\5\377"), NULL, 0, NULL, 0, EACCES);
    client_fails(0, B("\5\1"), NULL, 0, NULL, 0, EPROTO); /* GSSAPI */
    client_fails(1, B("\5\1"), NULL, 0, NULL, 0, EPROTO);
    client_fails(0, B("\5\2"), NULL, 0, NULL, 0, EPROTO); /* not offered */
    client_fails(1, B("\5\3"), NULL, 0, NULL, 0, EPROTO);
    client_fails(1, B("\5\200"), NULL, 0, NULL, 0, EPROTO);
    client_fails(1, B("\5\376"), NULL, 0, NULL, 0, EPROTO);
    /* The login verdict. */
    client_fails(1, B("\5\2"), B("\5\0"), NULL, 0, EPROTO);
    client_fails(1, B("\5\2"), B("\0\0"), NULL, 0, EPROTO);
    client_fails(1, B("\5\2"), B("\1\1"), NULL, 0, EACCES);
    client_fails(1, B("\5\2"), B("\1\377"), NULL, 0, EACCES);
    /* The reply. */
    client_fails(0, B("\5\0"), NULL, 0, B("\4\0\0\1\0\0\0\0\0\0"), EPROTO);
    client_fails(0, B("\5\0"), NULL, 0, B("\5\0\1\1\0\0\0\0\0\0"), EPROTO);
    client_fails(0, B("\5\0"), NULL, 0, B("\5\0\0\0\0\0\0\0\0\0"), EPROTO);
    client_fails(0, B("\5\0"), NULL, 0, B("\5\0\0\2\0\0\0\0\0\0"), EPROTO);
    client_fails(0, B("\5\0"), NULL, 0, B("\5\0\0\5\0\0\0\0\0\0"), EPROTO);
    client_fails(1, B("\5\2"), B("\1\0"), B("\5\0\0\377\0\0\0\0\0\0"),
        EPROTO);
    /* Not a SOCKS5 proxy at all. */
    client_fails(0, B("HTTP/1.1 400 Bad Request\r\n\r\n"), NULL, 0, NULL, 0,
        EPROTO);
    client_fails(0, B("\4\132"), NULL, 0, NULL, 0, EPROTO); /* SOCKS4 */
}

/* The whole answer of a proxy, sent at once, cut short at every byte;
   whole, it gives err (0: success). */
static void truncated(int creds, const char *all, size_t len, int err) {
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    for(size_t n = 0; n <= len; n++) {
        struct script sc;
        int b;
        script_init(&sc);
        step(&sc, NOTHING, all, n);
        sc.done_after = 1;
        int s = peer_go(&sc, &b);
        int rc = socks5_client_connect(s, creds ? "u" : NULL,
            creds ? "p" : NULL, &a, now() + 5000);
        if(n < len) CHECK(rc == -1 && errno == EPIPE);
        else if(err) CHECK(rc == -1 && errno == err);
        else CHECK(rc == 0);
        peer_end(s, b, &sc);
    }
}

static void test_client_truncation(void) {
    truncated(0, B("\5\0\5\0\0\1\1\2\3\4\0\120"), 0);
    truncated(1, B("\5\2\1\0\5\0\0\4\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1\0\120"),
        0);
    truncated(1, B("\5\2\1\0\5\0\0\3\5proxy\0\120"), 0);
    /* A failure is known only once the whole reply is in. */
    truncated(0, B("\5\0\5\1\0\3\5proxy\0\120"), EIO);
}

/* ---- Client: arguments --------------------------------------------------- */

/* A call that fails with err before sending anything: the peer's first
   bytes are the marker we send afterwards. */
static void client_refuses(int (*call)(int s), int err) {
    struct script sc;
    int b;
    script_init(&sc);
    step(&sc, B("MARK"), NOTHING);
    int s = peer_go(&sc, &b);
    CHECK_ERR(call(s), err);
    CHECK(bsend(s, "MARK", 4, now() + 5000) == 0);
    peer_end(s, b, &sc);
    CHECK(sc.extra == 0);
}

static char *long_name; /* 256 bytes */

static int c_long_user(int s) {
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    return socks5_client_connect(s, long_name, "p", &a, -1);
}
static int c_long_user_alone(int s) {
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    return socks5_client_connect(s, long_name, NULL, &a, -1);
}
static int c_long_pass(int s) {
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    return socks5_client_connect(s, "u", long_name, &a, -1);
}
static int c_null_addr(int s) {
    return socks5_client_connect(s, NULL, NULL, NULL, -1);
}
static int c_zero_addr(int s) {
    struct ipaddr a;
    memset(&a, 0, sizeof(a));
    return socks5_client_connect(s, NULL, NULL, &a, -1);
}
static int c_unix_addr(int s) {
    struct ipaddr a;
    memset(&a, 0, sizeof(a));
    sa_family_t family = AF_UNIX;
    memcpy((char *)&a + offsetof(struct sockaddr, sa_family), &family,
        sizeof(family));
    return socks5_client_connect(s, NULL, NULL, &a, -1);
}
static int n_long_user(int s) {
    return socks5_client_connectbyname(s, long_name, "p", "h", 80, -1);
}
static int n_long_pass(int s) {
    return socks5_client_connectbyname(s, "u", long_name, "h", 80, -1);
}
static int n_null_name(int s) {
    return socks5_client_connectbyname(s, NULL, NULL, NULL, 80, -1);
}
static int n_empty_name(int s) {
    return socks5_client_connectbyname(s, NULL, NULL, "", 80, -1);
}
static int n_long_name(int s) {
    return socks5_client_connectbyname(s, NULL, NULL, long_name, 80, -1);
}
static int n_port_0(int s) {
    return socks5_client_connectbyname(s, NULL, NULL, "h", 0, -1);
}
static int n_port_neg(int s) {
    return socks5_client_connectbyname(s, NULL, NULL, "h", -1, -1);
}
static int n_port_big(int s) {
    return socks5_client_connectbyname(s, NULL, NULL, "h", 65536, -1);
}

static void test_client_args(void) {
    long_name = repeat('x', 256);
    client_refuses(c_long_user, EINVAL);
    client_refuses(c_long_user_alone, EINVAL);
    client_refuses(c_long_pass, EINVAL);
    client_refuses(c_null_addr, EINVAL);
    client_refuses(c_zero_addr, EINVAL);
    client_refuses(c_unix_addr, EINVAL);
    client_refuses(n_long_user, EINVAL);
    client_refuses(n_long_pass, EINVAL);
    client_refuses(n_null_name, EINVAL);
    client_refuses(n_empty_name, EINVAL);
    client_refuses(n_long_name, EINVAL);
    client_refuses(n_port_0, EINVAL);
    client_refuses(n_port_neg, EINVAL);
    client_refuses(n_port_big, EINVAL);

    /* Arguments are checked before the handle. */
    CHECK_ERR(socks5_client_connect(-1, NULL, NULL, NULL, -1), EINVAL);
    CHECK_ERR(socks5_client_connectbyname(-1, NULL, NULL, "h", 0, -1),
        EINVAL);
    /* Handles: not one, not a bytestream. */
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    CHECK_ERR(socks5_client_connect(-1, NULL, NULL, &a, -1), EBADF);
    CHECK_ERR(socks5_client_connect(12345, "u", "p", &a, -1), EBADF);
    CHECK_ERR(socks5_client_connectbyname(-1, NULL, NULL, "h", 1, -1), EBADF);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(socks5_client_connect(ch[0], NULL, NULL, &a, -1), ENOTSUP);
    CHECK_ERR(socks5_client_connectbyname(ch[0], "u", "p", "h", 1, -1),
        ENOTSUP);
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);
    make_addr(&a, "127.0.0.1", 0);
    int ls = tcp_listen(&a, 1);
    CHECK(ls >= 0);
    CHECK_ERR(socks5_client_connect(ls, NULL, NULL, &a, -1), ENOTSUP);
    CHECK(hclose(ls) == 0);
    free(long_name);
}

/* ---- Client: deadlines, cancellation, closed under ----------------------- */

coroutine static void do_connect(int s, const char *user, const char *pass,
      int64_t deadline, volatile struct op *op) {
    struct ipaddr a;
    make_addr(&a, "1.2.3.4", 80);
    op_finish(op, socks5_client_connect(s, user, pass, &a, deadline));
}

coroutine static void do_connectbyname(int s, int64_t deadline,
      volatile struct op *op) {
    op_finish(op, socks5_client_connectbyname(s, NULL, NULL, "example.com",
        80, deadline));
}

static void test_client_deadline(void) {
    struct script sc;
    struct ipaddr a;
    int b, s;
    char c;
    make_addr(&a, "1.2.3.4", 80);

    /* A proxy that never answers. */
    script_init(&sc);
    step(&sc, B("\5\1\0"), NOTHING);
    s = peer_go(&sc, &b);
    int64_t start = now();
    CHECK_ERR(socks5_client_connect(s, NULL, NULL, &a, start + 200),
        ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 199 && took < 2000);
    /* The receiving side of the stream below is spoiled (sockets.md §3). */
    CHECK_ERR(brecv(s, &c, 1, now() + 100), ECONNRESET);
    peer_end(s, b, &sc);

    /* One that stops after the method, and one that stops after the login:
       the deadline covers the whole exchange. */
    script_init(&sc);
    step(&sc, B("\5\1\0"), B("\5\0"));
    step(&sc, B("\5\1\0\3\13example.com\0\120"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK_ERR(socks5_client_connectbyname(s, NULL, NULL, "example.com", 80,
        now() + 200), ETIMEDOUT);
    peer_end(s, b, &sc);
    script_init(&sc);
    step(&sc, B("\5\2\0\2"), B("\5\2"));
    step(&sc, B("\1\1u\1p"), NOTHING);
    s = peer_go(&sc, &b);
    CHECK_ERR(socks5_client_connect(s, "u", "p", &a, now() + 200), ETIMEDOUT);
    peer_end(s, b, &sc);

    /* A slow proxy: each answer 150 ms late, 400 ms for everything. */
    script_init(&sc);
    step(&sc, B("\5\2\0\2"), B("\5\2"));
    step(&sc, B("\1\1u\1p"), B("\1\0"));
    step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), B("\5\0\0\1\0\0\0\0\0\0"));
    sc.delay_ms = 150;
    sc.late_ok = 1;
    s = peer_go(&sc, &b);
    start = now();
    CHECK_ERR(socks5_client_connect(s, "u", "p", &a, start + 400), ETIMEDOUT);
    took = now() - start;
    CHECK(took >= 399 && took < 2000);
    peer_end(s, b, &sc);

    /* Deadline 0, and one already past: nothing has come yet. */
    for(int past = 0; past < 2; past++) {
        script_init(&sc);
        step(&sc, B("\5\1\0"), NOTHING);
        s = peer_go(&sc, &b);
        CHECK_ERR(socks5_client_connect(s, NULL, NULL, &a,
            past ? now() - 1000 : 0), ETIMEDOUT);
        peer_end(s, b, &sc);
    }

    /* Cancellation, while waiting for each answer: the proxy has had the
       message the client waits to have answered. */
    int notify[2];
    CHECK(chmake(notify) == 0);
    for(int stage = 0; stage < 3; stage++) {
        volatile struct op op = {0, 99, 0};
        script_init(&sc);
        sc.notify = notify[0];
        if(stage == 0) step(&sc, B("\5\2\0\2"), NOTHING);
        else step(&sc, B("\5\2\0\2"), B("\5\2"));
        if(stage == 1) step(&sc, B("\1\1u\1p"), NOTHING);
        if(stage == 2) step(&sc, B("\1\1u\1p"), B("\1\0"));
        if(stage == 2) step(&sc, B("\5\1\0\1\1\2\3\4\0\120"), NOTHING);
        s = peer_go(&sc, &b);
        int cr = go(do_connect(s, "u", "p", -1, &op));
        CHECK(cr >= 0);
        CHECK(chrecv(notify[1], NULL, 0, now() + 5000) == 0);
        CHECK(!op.done);
        CHECK(hclose(cr) == 0);
        CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
        peer_end(s, b, &sc);
    }
    CHECK(hclose(notify[0]) == 0);
    CHECK(hclose(notify[1]) == 0);
    {
        volatile struct op op = {0, 99, 0};
        script_init(&sc);
        s = peer_go(&sc, &b);
        int cr = go(do_connectbyname(s, -1, &op));
        CHECK(cr >= 0);
        CHECK(yield() == 0);
        CHECK(!op.done);
        CHECK(hclose(cr) == 0);
        CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
        peer_end(s, b, &sc);
    }

    /* The socket closed under a waiting call: EBADF, nothing touched. */
    {
        volatile struct op op = {0, 99, 0};
        script_init(&sc);
        step(&sc, B("\5\1\0"), NOTHING);
        int h[2];
        CHECK(ipc_pair(h) == 0);
        b = bundle();
        CHECK(b >= 0);
        CHECK(bundle_go(b, scripted(h[1], &sc)) == 0);
        int cr = go(do_connect(h[0], NULL, NULL, -1, &op));
        CHECK(cr >= 0);
        CHECK(yield() == 0);
        CHECK(!op.done);
        CHECK(hclose(h[0]) == 0);
        CHECK(bundle_wait(cr, now() + 5000) == 0);
        CHECK(op.done && op.rc == -1 && op.err == EBADF);
        CHECK(hclose(cr) == 0);
        CHECK(bundle_wait(b, now() + 5000) == 0);
        CHECK(hclose(b) == 0);
        CHECK(sc.failed == 0);
    }
}

/* ---- Proxy: authentication ----------------------------------------------- */

static int auth_calls;
static int auth_answer;
static char auth_user[300];
static char auth_pass[300];

static int record_auth(const char *username, const char *password) {
    auth_calls++;
    CHECK(strlen(username) < sizeof(auth_user));
    CHECK(strlen(password) < sizeof(auth_pass));
    strcpy(auth_user, username);
    strcpy(auth_pass, password);
    return auth_answer;
}

/* The client sends hello (all at once, login included if any); the proxy
   must answer exactly answer and proxy_auth return rc/err. */
static void auth_case(dill_socks5_auth_function *fn, int answer,
      const char *hello, size_t hlen, const char *expect, size_t elen,
      int rc, int err) {
    struct script sc;
    int b;
    script_init(&sc);
    step(&sc, NOTHING, hello, hlen);
    if(elen) step(&sc, expect, elen, NOTHING);
    auth_calls = 0;
    auth_answer = answer;
    auth_user[0] = auth_pass[0] = 0;
    int s = peer_go(&sc, &b);
    errno = 0;
    int r = socks5_proxy_auth(s, fn, now() + 5000);
    CHECK(r == rc);
    if(rc < 0) CHECK(errno == err);
    peer_end(s, b, &sc);
    /* Nothing beyond the expected answer. */
    CHECK(sc.extra == 0);
}

static void test_proxy_auth(void) {
    /* Without auth_fn: only "no authentication". */
    auth_case(NULL, 0, B("\5\1\0"), B("\5\0"), 0, 0);
    auth_case(NULL, 0, B("\5\2\2\0"), B("\5\0"), 0, 0);
    auth_case(NULL, 0, B("\5\1\2"), B("\5\377"), -1, EACCES);
    auth_case(NULL, 0, B("\5\0"), B("\5\377"), -1, EACCES);
    auth_case(NULL, 0, B("\5\2\1\3"), B("\5\377"), -1, EACCES);
    CHECK(auth_calls == 0);
    /* With auth_fn: a login is required. */
    auth_case(record_auth, 1, B("\5\2\0\2\1\4user\4pass"), B("\5\2\1\0"),
        0, 0);
    CHECK(auth_calls == 1);
    CHECK(strcmp(auth_user, "user") == 0 && strcmp(auth_pass, "pass") == 0);
    auth_case(record_auth, 0, B("\5\2\0\2\1\4user\5wrong"), B("\5\2\1\377"),
        -1, EACCES);
    CHECK(auth_calls == 1);
    CHECK(strcmp(auth_user, "user") == 0 && strcmp(auth_pass, "wrong") == 0);
    auth_case(record_auth, 1, B("\5\1\0"), B("\5\377"), -1, EACCES);
    CHECK(auth_calls == 0);
    auth_case(record_auth, 1, B("\5\3\1\3\2\1\1a\1b"), B("\5\2\1\0"), 0, 0);
    CHECK(strcmp(auth_user, "a") == 0 && strcmp(auth_pass, "b") == 0);
    /* Empty fields reach auth_fn as empty strings. */
    auth_case(record_auth, 1, B("\5\1\2\1\0\0"), B("\5\2\1\0"), 0, 0);
    CHECK(auth_calls == 1 && auth_user[0] == 0 && auth_pass[0] == 0);
    /* A NUL inside a field: refused without asking auth_fn. */
    auth_case(record_auth, 1, B("\5\1\2\1\3a\0b\1p"), B("\5\2\1\377"),
        -1, EACCES);
    CHECK(auth_calls == 0);
    auth_case(record_auth, 1, B("\5\1\2\1\1u\3p\0q"), B("\5\2\1\377"),
        -1, EACCES);
    CHECK(auth_calls == 0);
    /* 255 bytes each, and 255 methods. */
    char hello[2 + 255 + 3 + 255 + 255];
    hello[0] = 5;
    hello[1] = (char)255;
    memset(hello + 2, 0x80, 255);
    hello[2 + 254] = 2;
    char *login = hello + 2 + 255;
    login[0] = 1;
    login[1] = (char)255;
    memset(login + 2, 'u', 255);
    login[257] = (char)255;
    memset(login + 258, 'p', 255);
    auth_case(record_auth, 1, hello, sizeof(hello), B("\5\2\1\0"), 0, 0);
    CHECK(strlen(auth_user) == 255 && strlen(auth_pass) == 255);
    CHECK(auth_user[254] == 'u' && auth_pass[254] == 'p');

    /* Bad versions: nothing is answered. */
    auth_case(NULL, 0, B("\4\1\0"), NOTHING, -1, EPROTO);
    auth_case(record_auth, 1, B("\0\1\2"), NOTHING, -1, EPROTO);
    auth_case(record_auth, 1, B("\5\1\2\5\1u\1p"), B("\5\2"), -1, EPROTO);
    CHECK(auth_calls == 0);
    /* Garbage: an HTTP request, a SOCKS4 one. */
    auth_case(NULL, 0, B("GET / HTTP/1.1\r\n\r\n"), NOTHING, -1, EPROTO);
    auth_case(NULL, 0, B("\4\1\0\120\1\2\3\4\0"), NOTHING, -1, EPROTO);
}

/* ---- Proxy: requests ----------------------------------------------------- */

/* The client sends req with "TUNNEL" behind it, then expects reply (if
   any) and "BACK". */
static int request_go(struct script *sc, const char *req, size_t len,
      const char *reply, size_t rlen, int *b) {
    static char buf[600];
    CHECK(len + 6 <= sizeof(buf));
    memcpy(buf, req, len);
    memcpy(buf + len, "TUNNEL", 6);
    script_init(sc);
    step(sc, NOTHING, buf, len + 6);
    if(rlen) step(sc, reply, rlen, NOTHING);
    step(sc, B("BACK"), NOTHING);
    return peer_go(sc, b);
}

struct cmd_case {
    const char *req;
    size_t len;
    int cmd;
    const char *host; /* as recvcommandbyname gives it */
    int port;
    const char *ip;   /* as recvcommand resolves it */
};

static void test_proxy_request(void) {
    const struct cmd_case cases[] = {
        {B("\5\1\0\1\177\0\0\1\0\120"), 1, "127.0.0.1", 80, "127.0.0.1"},
        {B("\5\2\0\4\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1\1\273"), 2, "::1", 443,
            "::1"},
        {B("\5\3\0\1\0\0\0\0\0\0"), 3, "0.0.0.0", 0, "0.0.0.0"},
        {B("\5\1\0\4\40\1\15\270\0\0\0\0\0\0\0\0\0\0\0\7\377\377"), 1,
            "2001:db8::7", 65535, "2001:db8::7"},
        {B("\5\1\0\3\11localhost\37\220"), 1, "localhost", 8080, "127.0.0.1"},
        {B("\5\2\0\3\11" "127.0.0.1\0\1"), 2, "127.0.0.1", 1, "127.0.0.1"},
        {B("\5\3\0\3\3::1\0\2"), 3, "::1", 2, "::1"},
    };
    for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct cmd_case *c = &cases[i];
        struct script sc;
        int b;
        char host[256];
        int port = -5;
        int s = request_go(&sc, c->req, c->len, NOTHING, &b);
        CHECK(socks5_proxy_recvcommandbyname(s, host, &port, now() + 5000) ==
            c->cmd);
        CHECK(strcmp(host, c->host) == 0 && port == c->port);
        check_tunnel(s);
        peer_end(s, b, &sc);
        struct ipaddr a;
        s = request_go(&sc, c->req, c->len, NOTHING, &b);
        CHECK(socks5_proxy_recvcommand(s, &a, now() + 5000) == c->cmd);
        char ip[IPADDR_MAXSTRLEN];
        CHECK(ipaddr_str(&a, ip) == ip);
        CHECK(strcmp(ip, c->ip) == 0 && ipaddr_port(&a) == c->port);
        CHECK(ipaddr_family(&a) == (strchr(c->ip, ':') ? AF_INET6 : AF_INET));
        check_tunnel(s);
        peer_end(s, b, &sc);
    }

    /* A 255-byte name fills the 256-byte host buffer, and nothing past. */
    char req[4 + 1 + 255 + 2] = "\5\1\0\3\377";
    memset(req + 5, 'n', 255);
    req[260] = 1;
    req[261] = 0;
    struct {
        char host[256];
        char guard[16];
    } out;
    memset(&out, 0x5A, sizeof(out));
    struct script sc;
    int b, port;
    int s = request_go(&sc, req, sizeof(req), NOTHING, &b);
    CHECK(socks5_proxy_recvcommandbyname(s, out.host, &port, now() + 5000) ==
        1);
    CHECK(strlen(out.host) == 255 && out.host[0] == 'n' && port == 256);
    for(int i = 0; i < 16; i++) CHECK(out.guard[i] == 0x5A);
    check_tunnel(s);
    peer_end(s, b, &sc);

    /* A name that cannot exist (a 64-byte label): no address, and the
       request has been read whole, so the proxy can still reply. */
    char bad[4 + 1 + 69 + 2] = "\5\1\0\3\105";
    memset(bad + 5, 'a', 64);
    memcpy(bad + 69, ".test\0\120", 7);
    struct ipaddr a, untouched;
    memset(&a, 0xAA, sizeof(a));
    memset(&untouched, 0xAA, sizeof(untouched));
    s = request_go(&sc, bad, sizeof(bad), B("\5\4\0\1\0\0\0\0\0\0"), &b);
    CHECK_ERR(socks5_proxy_recvcommand(s, &a, now() + 5000), EADDRNOTAVAIL);
    CHECK(memcmp(&a, &untouched, sizeof(a)) == 0);
    struct ipaddr none;
    make_addr(&none, "0.0.0.0", 0);
    CHECK(socks5_proxy_sendreply(s, SOCKS5_HOST_UNREACHABLE, &none,
        now() + 5000) == 0);
    check_tunnel(s);
    peer_end(s, b, &sc);
    /* By name it is just text. */
    char host[256];
    s = request_go(&sc, bad, sizeof(bad), NOTHING, &b);
    CHECK(socks5_proxy_recvcommandbyname(s, host, &port, now() + 5000) == 1);
    CHECK(strlen(host) == 69 && strcmp(host + 64, ".test") == 0 &&
        port == 80);
    check_tunnel(s);
    peer_end(s, b, &sc);
}

/* A bad request: EPROTO from both functions, their outputs untouched.
   whole: the request is read to its end (the caller can still reply). */
static void bad_request(const char *req, size_t len, int whole) {
    for(int byname = 0; byname < 2; byname++) {
        struct script sc;
        int b;
        script_init(&sc);
        step(&sc, NOTHING, req, len);
        if(whole) step(&sc, B("\5\1\0\1\0\0\0\0\0\0"), NOTHING);
        int s = peer_go(&sc, &b);
        struct ipaddr a, untouched;
        memset(&a, 0xAA, sizeof(a));
        memset(&untouched, 0xAA, sizeof(untouched));
        char host[256] = "untouched";
        int port = -5;
        if(byname) {
            CHECK_ERR(socks5_proxy_recvcommandbyname(s, host, &port,
                now() + 5000), EPROTO);
            CHECK(strcmp(host, "untouched") == 0 && port == -5);
        }
        else {
            CHECK_ERR(socks5_proxy_recvcommand(s, &a, now() + 5000), EPROTO);
            CHECK(memcmp(&a, &untouched, sizeof(a)) == 0);
        }
        if(whole) {
            struct ipaddr none;
            make_addr(&none, "0.0.0.0", 0);
            CHECK(socks5_proxy_sendreply(s, SOCKS5_GENERAL_FAILURE, &none,
                now() + 5000) == 0);
        }
        peer_end(s, b, &sc);
        CHECK(sc.extra == 0);
    }
}

static void test_proxy_bad_requests(void) {
    bad_request(B("\4\1\0\1\1\2\3\4\0\120"), 0);
    bad_request(B("\5\1\1\1\1\2\3\4\0\120"), 0);
    bad_request(B("\5\0\0\1\1\2\3\4\0\120"), 0);
    bad_request(B("\5\4\0\1\1\2\3\4\0\120"), 0);
    bad_request(B("\5\377\0\1\1\2\3\4\0\120"), 0);
    bad_request(B("\5\1\0\0\1\2\3\4\0\120"), 0);
    bad_request(B("\5\1\0\2\1\2\3\4\0\120"), 0);
    bad_request(B("\5\1\0\5\1\2\3\4\0\120"), 0);
    bad_request(B("GET / HTTP/1.1\r\n\r\n"), 0);
    /* Names that name nothing: empty, or with a NUL inside. */
    bad_request(B("\5\1\0\3\0\0\120"), 1);
    bad_request(B("\5\1\0\3\3a\0b\0\120"), 1);
    bad_request(B("\5\1\0\3\1\0\0\120"), 1);
}

/* ---- Proxy: sendreply, arguments ----------------------------------------- */

static void reply_case(int rep, const char *ip, int port, const char *bytes,
      size_t len) {
    struct script sc;
    int b;
    script_init(&sc);
    step(&sc, bytes, len, NOTHING);
    int s = peer_go(&sc, &b);
    struct ipaddr a;
    make_addr(&a, ip, port);
    CHECK(socks5_proxy_sendreply(s, rep, &a, now() + 5000) == 0);
    peer_end(s, b, &sc);
    CHECK(sc.extra == 0);
}

static int r_rep(int s, int rep) {
    struct ipaddr a;
    make_addr(&a, "0.0.0.0", 0);
    return socks5_proxy_sendreply(s, rep, &a, -1);
}
static int r_neg(int s) { return r_rep(s, -1); }
static int r_nine(int s) { return r_rep(s, 9); }
static int r_big(int s) { return r_rep(s, 255); }
static int r_null(int s) {
    return socks5_proxy_sendreply(s, 0, NULL, -1);
}
static int r_zero(int s) {
    struct ipaddr a;
    memset(&a, 0, sizeof(a));
    return socks5_proxy_sendreply(s, 0, &a, -1);
}
static int r_unix(int s) {
    struct ipaddr a;
    memset(&a, 0, sizeof(a));
    sa_family_t family = AF_UNIX;
    memcpy((char *)&a + offsetof(struct sockaddr, sa_family), &family,
        sizeof(family));
    return socks5_proxy_sendreply(s, 0, &a, -1);
}
static int q_null_addr(int s) {
    return socks5_proxy_recvcommand(s, NULL, -1);
}
static int q_null_host(int s) {
    int port;
    return socks5_proxy_recvcommandbyname(s, NULL, &port, -1);
}
static int q_null_port(int s) {
    char host[256];
    return socks5_proxy_recvcommandbyname(s, host, NULL, -1);
}

static void test_proxy_reply_args(void) {
    reply_case(0, "0.0.0.0", 0, B("\5\0\0\1\0\0\0\0\0\0"));
    reply_case(5, "10.1.2.3", 1080, B("\5\5\0\1\12\1\2\3\4\70"));
    reply_case(8, "2001:db8::7", 65535,
        B("\5\10\0\4\40\1\15\270\0\0\0\0\0\0\0\0\0\0\0\7\377\377"));
    client_refuses(r_neg, EINVAL);
    client_refuses(r_nine, EINVAL);
    client_refuses(r_big, EINVAL);
    client_refuses(r_null, EINVAL);
    client_refuses(r_zero, EINVAL);
    client_refuses(r_unix, EINVAL);
    client_refuses(q_null_addr, EINVAL);
    client_refuses(q_null_host, EINVAL);
    client_refuses(q_null_port, EINVAL);

    /* Handles: arguments first, then EBADF and ENOTSUP. */
    struct ipaddr a;
    char host[256];
    int port;
    make_addr(&a, "0.0.0.0", 0);
    CHECK_ERR(socks5_proxy_sendreply(-1, 9, &a, -1), EINVAL);
    CHECK_ERR(socks5_proxy_recvcommand(-1, NULL, -1), EINVAL);
    CHECK_ERR(socks5_proxy_auth(-1, NULL, -1), EBADF);
    CHECK_ERR(socks5_proxy_auth(12345, record_auth, -1), EBADF);
    CHECK_ERR(socks5_proxy_recvcommand(-1, &a, -1), EBADF);
    CHECK_ERR(socks5_proxy_recvcommandbyname(-1, host, &port, -1), EBADF);
    CHECK_ERR(socks5_proxy_sendreply(-1, 0, &a, -1), EBADF);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(socks5_proxy_auth(ch[0], NULL, -1), ENOTSUP);
    CHECK_ERR(socks5_proxy_recvcommand(ch[0], &a, -1), ENOTSUP);
    CHECK_ERR(socks5_proxy_recvcommandbyname(ch[0], host, &port, -1),
        ENOTSUP);
    CHECK_ERR(socks5_proxy_sendreply(ch[0], 0, &a, -1), ENOTSUP);
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);
}

/* ---- Proxy: truncation, deadlines, cancellation -------------------------- */

static void test_proxy_truncation(void) {
    const char all[] = "\5\2\0\2\1\4user\4pass\5\1\0\3\11localhost\0\120";
    size_t len = sizeof(all) - 1;
    for(size_t n = 0; n <= len; n++) {
        struct script sc;
        int b;
        script_init(&sc);
        step(&sc, NOTHING, all, n);
        sc.done_after = 1;
        int s = peer_go(&sc, &b);
        auth_answer = 1;
        char host[256];
        int port;
        int rc = socks5_proxy_auth(s, record_auth, now() + 5000);
        if(rc == 0)
            rc = socks5_proxy_recvcommandbyname(s, host, &port, now() + 5000);
        if(n == len) CHECK(rc == 1 && strcmp(host, "localhost") == 0);
        else CHECK(rc == -1 && errno == EPIPE);
        peer_end(s, b, &sc);
    }
}

coroutine static void do_auth(int s, volatile struct op *op) {
    op_finish(op, socks5_proxy_auth(s, record_auth, -1));
}

coroutine static void do_recvcommand(int s, volatile struct op *op) {
    struct ipaddr a;
    op_finish(op, socks5_proxy_recvcommand(s, &a, -1));
}

static void test_proxy_deadline(void) {
    struct script sc;
    int b, s;
    char c, host[256];
    int port;

    /* A client that says nothing. */
    script_init(&sc);
    s = peer_go(&sc, &b);
    int64_t start = now();
    CHECK_ERR(socks5_proxy_auth(s, NULL, start + 200), ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 199 && took < 2000);
    CHECK_ERR(brecv(s, &c, 1, now() + 100), ECONNRESET);
    peer_end(s, b, &sc);
    /* One that stops halfway through its login, or its request. */
    script_init(&sc);
    step(&sc, NOTHING, B("\5\1\2\1\4us"));
    s = peer_go(&sc, &b);
    CHECK_ERR(socks5_proxy_auth(s, record_auth, now() + 200), ETIMEDOUT);
    peer_end(s, b, &sc);
    script_init(&sc);
    step(&sc, NOTHING, B("\5\1\0\3\11local"));
    s = peer_go(&sc, &b);
    CHECK_ERR(socks5_proxy_recvcommandbyname(s, host, &port, now() + 200),
        ETIMEDOUT);
    peer_end(s, b, &sc);
    script_init(&sc);
    step(&sc, NOTHING, B("\5\1\0\1\1\2"));
    s = peer_go(&sc, &b);
    struct ipaddr a;
    CHECK_ERR(socks5_proxy_recvcommand(s, &a, 0), ETIMEDOUT);
    peer_end(s, b, &sc);

    /* Cancellation. */
    volatile struct op op = {0, 99, 0};
    script_init(&sc);
    step(&sc, NOTHING, B("\5\1\2"));
    s = peer_go(&sc, &b);
    int cr = go(do_auth(s, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    peer_end(s, b, &sc);
    op.done = 0;
    script_init(&sc);
    step(&sc, NOTHING, B("\5\1\0\4\0\0"));
    s = peer_go(&sc, &b);
    cr = go(do_recvcommand(s, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    peer_end(s, b, &sc);
}

/* ---- Both sides ours ----------------------------------------------------- */

struct proxy_run {
    int s;
    int reply;
    int cmd;
    char host[256];
    int port;
    int rc;
};

static int accept_alice(const char *username, const char *password) {
    return strcmp(username, "alice") == 0 && strcmp(password, "secret") == 0;
}

coroutine static void our_proxy(struct proxy_run *p) {
    p->rc = -1;
    if(socks5_proxy_auth(p->s, accept_alice, -1) < 0) return;
    p->cmd = socks5_proxy_recvcommandbyname(p->s, p->host, &p->port, -1);
    if(p->cmd < 0) return;
    struct ipaddr a;
    make_addr(&a, "192.0.2.1", 1080);
    if(socks5_proxy_sendreply(p->s, p->reply, &a, -1) < 0) return;
    if(bsend(p->s, "TUNNEL", 6, -1) < 0) return;
    char buf[4];
    if(brecv(p->s, buf, 4, -1) < 0 || memcmp(buf, "BACK", 4) != 0) return;
    p->rc = 0;
}

static void test_ours(void) {
    const int expected[] = {0, EIO, EACCES, ENETUNREACH, EHOSTUNREACH,
        ECONNREFUSED, ETIMEDOUT, EOPNOTSUPP, EAFNOSUPPORT};
    for(int rep = 0; rep <= 8; rep++) {
        for(int kind = 0; kind < 3; kind++) {
            int h[2];
            CHECK(ipc_pair(h) == 0);
            struct proxy_run p = {.s = h[1], .reply = rep};
            int cr = go(our_proxy(&p));
            CHECK(cr >= 0);
            struct ipaddr a;
            int rc;
            const char *want;
            if(kind == 0) {
                make_addr(&a, "::ffff:10.0.0.1", 22);
                rc = socks5_client_connect(h[0], "alice", "secret", &a,
                    now() + 5000);
                want = "::ffff:10.0.0.1";
            }
            else if(kind == 1) {
                make_addr(&a, "10.0.0.1", 22);
                rc = socks5_client_connect(h[0], "alice", "secret", &a,
                    now() + 5000);
                want = "10.0.0.1";
            }
            else {
                rc = socks5_client_connectbyname(h[0], "alice", "secret",
                    "www.example.org", 22, now() + 5000);
                want = "www.example.org";
            }
            if(rep == 0) {
                CHECK(rc == 0);
                check_tunnel(h[0]);
            }
            else CHECK(rc == -1 && errno == expected[rep]);
            CHECK(hclose(h[0]) == 0);
            CHECK(bundle_wait(cr, now() + 5000) == 0);
            CHECK(hclose(cr) == 0);
            CHECK(hclose(h[1]) == 0);
            CHECK(p.cmd == SOCKS5_CONNECT);
            CHECK(strcmp(p.host, want) == 0 && p.port == 22);
            if(rep == 0) CHECK(p.rc == 0);
        }
    }
    /* A wrong password, and none. */
    for(int none = 0; none < 2; none++) {
        int h[2];
        CHECK(ipc_pair(h) == 0);
        struct proxy_run p = {.s = h[1]};
        int cr = go(our_proxy(&p));
        CHECK(cr >= 0);
        CHECK_ERR(socks5_client_connectbyname(h[0], none ? NULL : "alice",
            none ? NULL : "guess", "h", 1, now() + 5000), EACCES);
        CHECK(hclose(h[0]) == 0);
        CHECK(hclose(cr) == 0);
        CHECK(hclose(h[1]) == 0);
        CHECK(p.rc == -1);
    }
}

/* ---- Real peers: servers run here ---------------------------------------- */

/* Logs of the peers, and curl's upload (tests/socks5.tmp). */
static const char *test_dir;

/* A TCP server on 127.0.0.1 and ::1, the same port on both (a name may
   resolve to either), serving each connection with echo or HTTP. */
struct server {
    int l4, l6;
    int port;
    int workers;
};

coroutine static void echo_conn(int s) {
    char buf[512];
    while(brecv(s, buf, sizeof(buf), -1) == 0)
        if(bsend(s, buf, sizeof(buf), -1) < 0) break;
    hclose(s);
}

/* The body of GET: printable, so that curl's output is a C string. */
#define BODY_SIZE 300000
static char pattern[BODY_SIZE + 1];

/* HTTP/1.1 enough for curl: GET answers the pattern, POST echoes the
   body; then the connection is closed in order. */
coroutine static void http_conn(int s) {
    char head[4096];
    size_t n = 0;
    while(n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        if(n == sizeof(head) - 1 || brecv(s, head + n, 1, -1) < 0) {
            hclose(s);
            return;
        }
        n++;
    }
    head[n] = 0;
    char *body = pattern;
    size_t len = BODY_SIZE;
    if(strncmp(head, "POST ", 5) == 0) {
        const char *cl = strcasestr(head, "\r\nContent-Length:");
        len = cl ? strtoul(cl + 17, NULL, 10) : 0;
        body = malloc(len + 1);
        CHECK(body != NULL);
        if(brecv(s, body, len, -1) < 0) {
            free(body);
            hclose(s);
            return;
        }
    }
    char status[128];
    snprintf(status, sizeof(status), "HTTP/1.1 200 OK\r\nContent-Length: "
        "%zu\r\nConnection: close\r\n\r\n", len);
    int rc = bsend(s, status, strlen(status), -1);
    if(rc == 0) rc = bsend(s, body, len, -1);
    if(body != pattern) free(body);
    if(rc == 0) tcp_close(s, now() + 5000);
    else hclose(s);
}

coroutine static void acceptor(int ls, int workers, int http) {
    for(;;) {
        int s = tcp_accept(ls, NULL, -1);
        if(s < 0) return;
        int rc = http ? bundle_go(workers, http_conn(s)) :
            bundle_go(workers, echo_conn(s));
        if(rc < 0) hclose(s);
    }
}

static void server_start(struct server *sv, int http) {
    for(int tries = 0;; tries++) {
        struct ipaddr a6, a4;
        make_addr(&a6, "::1", 0);
        sv->l6 = tcp_listen(&a6, 64);
        CHECK(sv->l6 >= 0);
        sv->port = ipaddr_port(&a6);
        make_addr(&a4, "127.0.0.1", sv->port);
        sv->l4 = tcp_listen(&a4, 64);
        if(sv->l4 >= 0) break;
        /* That port is taken on 127.0.0.1: another one. */
        CHECK(errno == EADDRINUSE && tries < 50);
        CHECK(hclose(sv->l6) == 0);
    }
    sv->workers = bundle();
    CHECK(sv->workers >= 0);
    CHECK(bundle_go(sv->workers, acceptor(sv->l4, sv->workers, http)) == 0);
    CHECK(bundle_go(sv->workers, acceptor(sv->l6, sv->workers, http)) == 0);
}

static void server_stop(struct server *sv) {
    CHECK(hclose(sv->workers) == 0);
    CHECK(hclose(sv->l4) == 0);
    CHECK(hclose(sv->l6) == 0);
}

/* A TCP connection to the proxy on 127.0.0.1:port. */
static int to_proxy(int port) {
    struct ipaddr a;
    make_addr(&a, "127.0.0.1", port);
    int s = tcp_connect(&a, now() + 5000);
    CHECK(s >= 0);
    return s;
}

static void echo_check(int s) {
    char out[512], in[512];
    for(int i = 0; i < 64; i++) {
        for(int j = 0; j < 512; j++) out[j] = (char)(i * 7 + j);
        CHECK(bsend(s, out, sizeof(out), now() + 5000) == 0);
        CHECK(brecv(s, in, sizeof(in), now() + 5000) == 0);
        CHECK(memcmp(in, out, sizeof(in)) == 0);
    }
}

/* ---- Real peers: microsocks ---------------------------------------------- */

static void test_microsocks(void) {
    peer_require("microsocks", "microsocks");
    struct server sv;
    server_start(&sv, 0);
    char log[300];
    snprintf(log, sizeof(log), "%s/microsocks.log", test_dir);
    int open_port = peer_free_port();
    int auth_port;
    do auth_port = peer_free_port(); while(auth_port == open_port);
    char p1[16], p2[16];
    snprintf(p1, sizeof(p1), "%d", open_port);
    snprintf(p2, sizeof(p2), "%d", auth_port);
    char *open_argv[] = {"microsocks", "-i", "127.0.0.1", "-p", p1, NULL};
    char *auth_argv[] = {"microsocks", "-i", "127.0.0.1", "-p", p2, "-u",
        "alice", "-P", "secret", NULL};
    pid_t open_pid = peer_start(open_argv, log);
    pid_t auth_pid = peer_start(auth_argv, log);
    peer_wait_tcp(open_port, 5000);
    peer_wait_tcp(auth_port, 5000);

    /* Without authentication (offering it or not), and with. */
    const struct { int port; const char *user, *pass; } proxies[] = {
        {open_port, NULL, NULL},
        {open_port, "alice", "secret"},
        {auth_port, "alice", "secret"},
    };
    for(int i = 0; i < 3; i++) {
        const char *user = proxies[i].user, *pass = proxies[i].pass;
        struct ipaddr a;
        int s;
        make_addr(&a, "127.0.0.1", sv.port);
        s = to_proxy(proxies[i].port);
        CHECK(socks5_client_connect(s, user, pass, &a, now() + 5000) == 0);
        echo_check(s);
        CHECK(hclose(s) == 0);
        make_addr(&a, "::1", sv.port);
        s = to_proxy(proxies[i].port);
        CHECK(socks5_client_connect(s, user, pass, &a, now() + 5000) == 0);
        echo_check(s);
        CHECK(hclose(s) == 0);
        const char *names[] = {"localhost", "127.0.0.1", "::1"};
        for(int j = 0; j < 3; j++) {
            s = to_proxy(proxies[i].port);
            CHECK(socks5_client_connectbyname(s, user, pass, names[j],
                sv.port, now() + 5000) == 0);
            echo_check(s);
            CHECK(hclose(s) == 0);
        }
    }

    /* Refusals: no credentials, a wrong password. */
    int s = to_proxy(auth_port);
    CHECK_ERR(socks5_client_connectbyname(s, NULL, NULL, "localhost",
        sv.port, now() + 5000), EACCES);
    CHECK(hclose(s) == 0);
    s = to_proxy(auth_port);
    CHECK_ERR(socks5_client_connectbyname(s, "alice", "guess", "localhost",
        sv.port, now() + 5000), EACCES);
    CHECK(hclose(s) == 0);
    /* A port nobody listens on: microsocks answers REP 05. */
    struct ipaddr closed;
    make_addr(&closed, "127.0.0.1", peer_free_port());
    s = to_proxy(open_port);
    CHECK_ERR(socks5_client_connect(s, NULL, NULL, &closed, now() + 5000),
        ECONNREFUSED);
    CHECK(hclose(s) == 0);

    peer_stop(open_pid);
    peer_stop(auth_pid);
    server_stop(&sv);
}

/* ---- Real peers: curl through examples/socks5_proxy ---------------------- */

static pid_t start_example(int port, int auth, const char *log) {
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *plain[] = {"examples/socks5_proxy", "-p", p, NULL};
    char *login[] = {"examples/socks5_proxy", "-p", p, "-u", "alice", "-P",
        "secret", NULL};
    pid_t pid = peer_start(auth ? login : plain, log);
    peer_wait_tcp(port, 5000);
    return pid;
}

/* Run curl for url through the proxy on port (mode --socks5 or
   --socks5-hostname, user "name:password" or NULL, upload a file to POST
   or NULL). Returns its exit status; its output is in curl_out. */
static char curl_out[2 * BODY_SIZE];

static int curl(const char *mode, int port, const char *user,
      const char *url, const char *upload, const char *log) {
    char proxy[64];
    snprintf(proxy, sizeof(proxy), "127.0.0.1:%d", port);
    char *argv[16];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-s";
    argv[n++] = "-S";
    argv[n++] = "--max-time";
    argv[n++] = "30";
    argv[n++] = (char *)mode;
    argv[n++] = proxy;
    if(user) {
        argv[n++] = "--proxy-user";
        argv[n++] = (char *)user;
    }
    char data[300];
    if(upload) {
        /* No "Expect: 100-continue" wait before the body. */
        argv[n++] = "-H";
        argv[n++] = "Expect:";
        argv[n++] = "--data-binary";
        snprintf(data, sizeof(data), "@%s", upload);
        argv[n++] = data;
    }
    argv[n++] = (char *)url;
    argv[n] = NULL;
    return peer_run(argv, curl_out, sizeof(curl_out), 60000, log);
}

static void test_curl(void) {
    peer_require("curl", "curl");
    char log[300], upload[300];
    snprintf(log, sizeof(log), "%s/curl.log", test_dir);
    snprintf(upload, sizeof(upload), "%s/upload.txt", test_dir);
    /* The upload: the pattern backwards. */
    FILE *f = fopen(upload, "w");
    CHECK(f != NULL);
    for(size_t i = BODY_SIZE; i > 0; i--) CHECK(fputc(pattern[i - 1], f) !=
        EOF);
    CHECK(fclose(f) == 0);

    struct server sv;
    server_start(&sv, 1);
    int open_port = peer_free_port();
    int auth_port;
    do auth_port = peer_free_port(); while(auth_port == open_port);
    pid_t open_pid = start_example(open_port, 0, log);
    pid_t auth_pid = start_example(auth_port, 1, log);

    char v4[100], v6[100], name[100];
    snprintf(v4, sizeof(v4), "http://127.0.0.1:%d/", sv.port);
    snprintf(v6, sizeof(v6), "http://[::1]:%d/", sv.port);
    snprintf(name, sizeof(name), "http://localhost:%d/", sv.port);
    const struct {
        const char *mode;
        const char *url;
    } ways[] = {
        {"--socks5", v4},
        {"--socks5", v6},
        {"--socks5-hostname", name},
        {"--socks5-hostname", v4},
    };
    for(int auth = 0; auth < 2; auth++) {
        int port = auth ? auth_port : open_port;
        const char *user = auth ? "alice:secret" : NULL;
        for(size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
            CHECK(curl(ways[i].mode, port, user, ways[i].url, NULL, log) == 0);
            CHECK(strcmp(curl_out, pattern) == 0);
            CHECK(curl(ways[i].mode, port, user, ways[i].url, upload, log) ==
                0);
            CHECK(strlen(curl_out) == BODY_SIZE);
            for(size_t j = 0; j < BODY_SIZE; j++)
                CHECK(curl_out[j] == pattern[BODY_SIZE - 1 - j]);
        }
    }
    /* A wrong password, none, and a port nobody listens on: curl reports
       a proxy handshake failure (CURLE_PROXY, 97). */
    CHECK(curl("--socks5", auth_port, "alice:guess", v4, NULL, log) == 97);
    CHECK(curl("--socks5-hostname", auth_port, NULL, name, NULL, log) == 97);
    char closed[100];
    snprintf(closed, sizeof(closed), "http://127.0.0.1:%d/",
        peer_free_port());
    CHECK(curl("--socks5", open_port, NULL, closed, NULL, log) == 97);

    /* Our own client through the example proxy, by name, with a login:
       the whole response, then the end of the stream passed on. */
    int s = to_proxy(auth_port);
    CHECK(socks5_client_connectbyname(s, "alice", "secret", "localhost",
        sv.port, now() + 5000) == 0);
    const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    CHECK(bsend(s, get, sizeof(get) - 1, now() + 5000) == 0);
    char head[512];
    size_t n = 0;
    while(n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        CHECK(n < sizeof(head) - 1);
        CHECK(brecv(s, head + n, 1, now() + 5000) == 0);
        n++;
    }
    head[n] = 0;
    CHECK(strncmp(head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    char *body = malloc(BODY_SIZE);
    CHECK(body != NULL);
    CHECK(brecv(s, body, BODY_SIZE, now() + 5000) == 0);
    CHECK(memcmp(body, pattern, BODY_SIZE) == 0);
    free(body);
    char c;
    CHECK_ERR(brecv(s, &c, 1, now() + 5000), EPIPE);
    CHECK(tcp_close(s, now() + 5000) == 0);
    /* By IPv6 address, without a login; refusals and REP 05. */
    struct ipaddr a;
    make_addr(&a, "::1", sv.port);
    s = to_proxy(open_port);
    CHECK(socks5_client_connect(s, NULL, NULL, &a, now() + 5000) == 0);
    CHECK(bsend(s, get, sizeof(get) - 1, now() + 5000) == 0);
    CHECK(brecv(s, head, 17, now() + 5000) == 0);
    CHECK(memcmp(head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(hclose(s) == 0);
    s = to_proxy(auth_port);
    CHECK_ERR(socks5_client_connect(s, "alice", "guess", &a, now() + 5000),
        EACCES);
    CHECK(hclose(s) == 0);
    s = to_proxy(auth_port);
    CHECK_ERR(socks5_client_connect(s, NULL, NULL, &a, now() + 5000), EACCES);
    CHECK(hclose(s) == 0);
    make_addr(&a, "127.0.0.1", peer_free_port());
    s = to_proxy(open_port);
    CHECK_ERR(socks5_client_connect(s, NULL, NULL, &a, now() + 5000),
        ECONNREFUSED);
    CHECK(hclose(s) == 0);

    peer_stop(open_pid);
    peer_stop(auth_pid);
    server_stop(&sv);
}

/* ---- Main ---------------------------------------------------------------- */

static void run(const char *name, void (*fn)(void)) {
    int before = count_fds();
    fprintf(stderr, "%s\n", name);
    fn();
    int after = count_fds();
    if(after != before) {
        fprintf(stderr, "FAIL: %s leaked %d fds\n", name, after - before);
        exit(1);
    }
}

int main(void) {
    for(size_t i = 0; i < BODY_SIZE; i++)
        pattern[i] = (char)('a' + (i * 31 + i / 97) % 26);
    test_dir = peer_dir("socks5");
    CHECK(yield() == 0); /* the scheduler's own fds exist from here */
    run("client wire", test_client_wire);
    run("client rep", test_client_rep);
    run("client errors", test_client_errors);
    run("client truncation", test_client_truncation);
    run("client args", test_client_args);
    run("client deadline", test_client_deadline);
    run("proxy auth", test_proxy_auth);
    run("proxy request", test_proxy_request);
    run("proxy bad requests", test_proxy_bad_requests);
    run("proxy reply and args", test_proxy_reply_args);
    run("proxy truncation", test_proxy_truncation);
    run("proxy deadline", test_proxy_deadline);
    run("ours", test_ours);
    run("microsocks", test_microsocks);
    run("curl", test_curl);
    return 0;
}
