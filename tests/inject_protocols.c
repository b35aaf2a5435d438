/*
 * tests/inject_protocols.c: allocation failures in the protocols (see
 * tests/inject.h), each over an IPC pair: PREFIX, SUFFIX, TERM over
 * PREFIX, HTTP, WebSocket with and without its HTTP handshake (masking
 * scratch buffers, long I/O lists), SOCKS5 (client and proxy, by address
 * and by name) and, with --enable-tls, TLS over the pair and DTLS over
 * two UDP sockets. A failed attach closes the
 * socket it was given (sockets.md §1.1): the scenario then starts again
 * from a new pair. What needs both ends at once (a handshake) has its
 * second end in a coroutine, which closes its socket when it fails so
 * that the first end is not left waiting. TLS and DTLS then go through
 * OpenSSL's own allocations too (tests/inject_driver.c says which).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"
#include "inject.h"

/* The handle in *h, dead from now on whatever the call taking it does. */
static int take(int *h) {
    int v = *h;
    *h = -1;
    return v;
}

static void close_all(int *hs, int n) {
    for(int i = n - 1; i >= 0; i--)
        if(hs[i] >= 0) CHECK(hclose(hs[i]) == 0);
}

/* A message each way between two message sockets. */
static int messages(int a, int b) {
    char buf[16] = {0};
    ssize_t n;
    if(!OK(msend(a, "hello", 5, inject_deadline()))) return -1;
    if(!OK(n = mrecv(b, buf, sizeof(buf), inject_deadline()))) return -1;
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
    if(!OK(msend(b, "world!", 6, inject_deadline()))) return -1;
    if(!OK(n = mrecv(a, buf, sizeof(buf), inject_deadline()))) return -1;
    CHECK(n == 6 && memcmp(buf, "world!", 6) == 0);
    return 0;
}

/* ---- PREFIX, SUFFIX, TERM ------------------------------------------------ */

static void run_prefix(void) {
    struct dill_prefix_storage mem;
    int s[2] = {-1, -1};
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[0] = prefix_attach(take(&s[0]), 4, 0))) goto out;
    if(!OK(s[1] = prefix_attach_mem(take(&s[1]), 4, PREFIX_BIG_ENDIAN,
          &mem)))
        goto out;
    if(messages(s[0], s[1]) < 0) goto out;
    if(!OK(s[0] = prefix_detach(take(&s[0])))) goto out;
    if(!OK(s[1] = prefix_detach(take(&s[1])))) goto out;
out:
    close_all(s, 2);
}

static void run_suffix(void) {
    struct dill_suffix_storage mem;
    int s[2] = {-1, -1};
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[0] = suffix_attach(take(&s[0]), "\r\n", 2))) goto out;
    if(!OK(s[1] = suffix_attach_mem(take(&s[1]), "\r\n", 2, &mem)))
        goto out;
    if(messages(s[0], s[1]) < 0) goto out;
    if(!OK(s[0] = suffix_detach(take(&s[0]), inject_deadline()))) goto out;
    if(!OK(s[1] = suffix_detach(take(&s[1]), inject_deadline()))) goto out;
out:
    close_all(s, 2);
}

static void run_term(void) {
    struct dill_term_storage mem;
    int s[2] = {-1, -1};
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[0] = prefix_attach(take(&s[0]), 4, 0))) goto out;
    if(!OK(s[1] = prefix_attach(take(&s[1]), 4, 0))) goto out;
    if(!OK(s[0] = term_attach(take(&s[0]), "bye", 3))) goto out;
    if(!OK(s[1] = term_attach_mem(take(&s[1]), "bye", 3, &mem))) goto out;
    if(messages(s[0], s[1]) < 0) goto out;
    if(!OK(term_done(s[0], inject_deadline()))) goto out;
    if(!OK(term_done(s[1], inject_deadline()))) goto out;
    if(!OK(s[0] = term_detach(take(&s[0]), inject_deadline()))) goto out;
    if(!OK(s[1] = term_detach(take(&s[1]), inject_deadline()))) goto out;
out:
    close_all(s, 2);
}

/* ---- HTTP ----------------------------------------------------------------- */

/* Fields until the empty line (EPIPE): the one expected, then nothing. */
static int fields(int s, const char *name, const char *value) {
    char n[32], v[32];
    if(!OK(http_recvfield(s, n, sizeof(n), v, sizeof(v), inject_deadline())))
        return -1;
    CHECK(strcmp(n, name) == 0 && strcmp(v, value) == 0);
    if(OK_OR(http_recvfield(s, n, sizeof(n), v, sizeof(v),
          inject_deadline()), EPIPE))
        CHECK(0);
    return errno == EPIPE ? 0 : -1;
}

static void run_http(void) {
    struct dill_http_storage mem;
    int s[2] = {-1, -1};
    char cmd[16], res[16];
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[0] = http_attach(take(&s[0])))) goto out;
    if(!OK(s[1] = http_attach_mem(take(&s[1]), &mem))) goto out;
    if(!OK(http_sendrequest(s[0], "GET", "/a", inject_deadline()))) goto out;
    if(!OK(http_sendfield(s[0], "Host", "x", inject_deadline()))) goto out;
    if(!OK(http_done(s[0], inject_deadline()))) goto out;
    if(!OK(http_recvrequest(s[1], cmd, sizeof(cmd), res, sizeof(res),
          inject_deadline())))
        goto out;
    CHECK(strcmp(cmd, "GET") == 0 && strcmp(res, "/a") == 0);
    if(fields(s[1], "Host", "x") < 0) goto out;
    if(!OK(http_sendstatus(s[1], 200, "OK", inject_deadline()))) goto out;
    if(!OK(http_sendfield(s[1], "Server", "y", inject_deadline()))) goto out;
    if(!OK(s[1] = http_detach(take(&s[1]), inject_deadline()))) goto out;
    int status;
    if(!OK(status = http_recvstatus(s[0], cmd, sizeof(cmd),
          inject_deadline())))
        goto out;
    CHECK(status == 200 && strcmp(cmd, "OK") == 0);
    if(fields(s[0], "Server", "y") < 0) goto out;
    if(!OK(s[0] = http_detach(take(&s[0]), inject_deadline()))) goto out;
out:
    close_all(s, 2);
}

/* ---- WebSocket -------------------------------------------------------------- */

/* Messages of three sizes: the two scratch sizes for masking (4096 and
   larger) and one sent as a list. */
static int ws_messages(int client, int server) {
    static char big[10000], got[10000];
    memset(big, 'b', sizeof(big));
    size_t sizes[] = {5, 3000, sizeof(big)};
    for(int i = 0; i < 3; i++) {
        int flags;
        ssize_t n;
        if(!OK(ws_send(client, WS_BINARY, big, sizes[i], inject_deadline())))
            return -1;
        if(!OK(n = ws_recv(server, &flags, got, sizeof(got),
              inject_deadline())))
            return -1;
        CHECK(n == (ssize_t)sizes[i] && memcmp(got, big, sizes[i]) == 0);
    }
    struct dill_iolist b = {"def", 3, NULL, 0}, a = {"abc", 3, &b, 0};
    if(!OK(ws_sendl(client, WS_TEXT, &a, &b, inject_deadline()))) return -1;
    int flags;
    ssize_t n;
    if(!OK(n = ws_recv(server, &flags, got, sizeof(got), inject_deadline())))
        return -1;
    CHECK(n == 6 && flags == WS_TEXT && memcmp(got, "abcdef", 6) == 0);
    return messages(server, client);
}

/* The end of a conversation: the client says done, the server detaches
   (answering the close), the client detaches. */
static int ws_finish(int *client, int *server) {
    if(!OK(ws_done(*client, 1000, "bye", 3, inject_deadline()))) return -1;
    if(!OK(*server = ws_detach(take(server), 1000, "ok", 2,
          inject_deadline())))
        return -1;
    if(!OK(*client = ws_detach(take(client), 1000, NULL, 0,
          inject_deadline())))
        return -1;
    return 0;
}

static void run_ws_nohttp(void) {
    struct dill_ws_storage mem;
    int s[2] = {-1, -1};
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[0] = ws_attach_client(take(&s[0]), WS_NOHTTP, NULL, NULL,
          inject_deadline())))
        goto out;
    if(!OK(s[1] = ws_attach_server_mem(take(&s[1]), WS_NOHTTP, NULL, 0,
          NULL, 0, &mem, inject_deadline())))
        goto out;
    if(ws_messages(s[0], s[1]) < 0) goto out;
    if(ws_finish(&s[0], &s[1]) < 0) goto out;
out:
    close_all(s, 2);
}

/* A message larger than a socket's buffers: its send blocks, holding the
   thread's masking buffer. The socket is closed after it, which also ends
   the receiver's wait when the send failed. */
#define HUGE (1024 * 1024)

coroutine static void send_huge(int s) {
    static char huge[HUGE];
    OK_OR(ws_send(s, WS_BINARY, huge, sizeof(huge), inject_deadline()),
        ECANCELED);
    CHECK(hclose(s) == 0);
}

/* A send while another one of the thread holds the masking buffer masks
   into a buffer of its own. */
static void run_ws_lent(void) {
    static char got[HUGE];
    int s[5] = {-1, -1, -1, -1, -1}; /* two pairs, the blocked sender */
    int flags;
    ssize_t n;
    if(!OK(ipc_pair(&s[0]))) goto out;
    if(!OK(ipc_pair(&s[2]))) goto out;
    for(int i = 0; i < 4; i++) {
        if(!OK(s[i] = i % 2 ?
              ws_attach_server(take(&s[i]), WS_NOHTTP, NULL, 0, NULL, 0,
                  inject_deadline()) :
              ws_attach_client(take(&s[i]), WS_NOHTTP, NULL, NULL,
                  inject_deadline())))
            goto out;
    }
    if(!OK(s[4] = go(send_huge(s[0])))) goto out;
    s[0] = -1; /* the sender's now */
    /* Too large for the stack buffer small messages are masked in. */
    static char medium[3000];
    if(!OK(ws_send(s[2], WS_BINARY, medium, sizeof(medium),
          inject_deadline())))
        goto out;
    if(!OK(n = ws_recv(s[3], &flags, got, sizeof(got), inject_deadline())))
        goto out;
    CHECK(n == sizeof(medium));
    if(!OK(n = ws_recv(s[1], &flags, got, sizeof(got), inject_deadline())))
        goto out;
    CHECK(n == HUGE);
    if(!OK(bundle_wait(s[4], inject_deadline()))) goto out;
out:
    /* The sender first: it may still own its socket. */
    if(s[4] >= 0) CHECK(hclose(take(&s[4])) == 0);
    close_all(s, 4);
}

/* The server's handshake, run while the client makes its own; the server
   handle goes to *out, or the socket is closed (by the failed attach). */
coroutine static void ws_server(int s, int *out) {
    char resource[32], host[32];
    if(!OK_OR(s = ws_attach_server(s, 0, resource, sizeof(resource), host,
          sizeof(host), inject_deadline()), ECANCELED))
        return;
    CHECK(strcmp(resource, "/chat") == 0 && strcmp(host, "example") == 0);
    *out = s;
}

static void run_ws(void) {
    struct dill_ws_storage mem;
    int s[3] = {-1, -1, -1}; /* client, server, the server's coroutine */
    int server = -1;
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[2] = go(ws_server(s[1], &server)))) goto out;
    s[1] = -1; /* the server's now */
    if(!OK(s[0] = ws_attach_client_mem(take(&s[0]), 0, "/chat", "example",
          &mem, inject_deadline())))
        goto out;
    if(!OK(bundle_wait(s[2], inject_deadline()))) goto out;
    s[1] = take(&server);
    if(s[1] < 0) goto out; /* the server's attach failed */
    if(ws_messages(s[0], s[1]) < 0) goto out;
    if(ws_finish(&s[0], &s[1]) < 0) goto out;
out:
    /* The coroutine first: a server handle it made is then ours. */
    if(s[2] >= 0) CHECK(hclose(take(&s[2])) == 0);
    if(server >= 0) s[1] = server;
    close_all(s, 3);
}

/* ---- SOCKS5 ------------------------------------------------------------------ */

static int accept_all(const char *user, const char *pass) {
    return user && pass && strcmp(user, "u") == 0 && strcmp(pass, "p") == 0;
}

/* The proxy's side of two requests, by address and by name; closes its
   socket when it stops early. */
coroutine static void proxy(int s) {
    struct dill_ipaddr addr;
    char host[256];
    int port;
    if(!OK_OR(socks5_proxy_auth(s, accept_all, inject_deadline()),
          ECANCELED))
        goto out;
    if(!OK_OR(socks5_proxy_recvcommand(s, &addr, inject_deadline()),
          ECANCELED))
        goto out;
    CHECK(ipaddr_port(&addr) == 80);
    if(!OK_OR(socks5_proxy_sendreply(s, SOCKS5_SUCCESS, &addr,
          inject_deadline()), ECANCELED))
        goto out;
    if(!OK_OR(socks5_proxy_auth(s, accept_all, inject_deadline()),
          ECANCELED))
        goto out;
    if(!OK_OR(socks5_proxy_recvcommandbyname(s, host, &port,
          inject_deadline()), ECANCELED))
        goto out;
    CHECK(strcmp(host, "example.org") == 0 && port == 443);
    if(!OK_OR(socks5_proxy_sendreply(s, SOCKS5_SUCCESS, &addr,
          inject_deadline()), ECANCELED))
        goto out;
out:
    CHECK(hclose(s) == 0);
}

static void run_socks5(void) {
    int s[3] = {-1, -1, -1}; /* client, proxy, the proxy's coroutine */
    struct dill_ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 80, 0) == 0);
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[2] = go(proxy(s[1])))) goto out;
    s[1] = -1; /* the proxy's now */
    if(!OK(socks5_client_connect(s[0], "u", "p", &addr, inject_deadline())))
        goto out;
    if(!OK(socks5_client_connectbyname(s[0], "u", "p", "example.org", 443,
          inject_deadline())))
        goto out;
    if(!OK(bundle_wait(s[2], inject_deadline()))) goto out;
out:
    close_all(s, 3);
}

/* ---- TLS ---------------------------------------------------------------------- */

#if defined HAVE_TLS
static char dir[] = "/tmp/dill-inject-tls-XXXXXX";
static char cert[256], key[256];

/* A self-signed certificate by the openssl program, as tests/tls does. */
static void make_cert(void) {
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout %s -out %s -days 1 "
        "-subj /CN=localhost >/dev/null 2>&1", key, cert);
    int rc = system(cmd);
    if(rc != 0) {
        fprintf(stderr, "inject_protocols: openssl req failed (status %d): "
            "apt-get install openssl\n", rc);
        exit(1);
    }
}

static void remove_cert(void) {
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

coroutine static void tls_server(int s, int *out) {
    if(!OK_OR(s = tls_attach_server(s, cert, key, inject_deadline()),
          ECANCELED))
        return;
    *out = s;
}

static void run_tls(void) {
    struct dill_tls_storage mem;
    int s[3] = {-1, -1, -1}; /* client, server, the server's coroutine */
    int server = -1;
    char buf[6];
    if(!OK(ipc_pair(s))) goto out;
    if(!OK(s[2] = go(tls_server(s[1], &server)))) goto out;
    s[1] = -1; /* the server's now */
    if(!OK(s[0] = tls_attach_client_mem(take(&s[0]), &mem,
          inject_deadline())))
        goto out;
    if(!OK(bundle_wait(s[2], inject_deadline()))) goto out;
    s[1] = take(&server);
    if(s[1] < 0) goto out;
    if(!OK(bsend(s[0], "hello", 5, inject_deadline()))) goto out;
    if(!OK(brecv(s[1], buf, 5, inject_deadline()))) goto out;
    CHECK(memcmp(buf, "hello", 5) == 0);
    if(!OK(bsend(s[1], "world!", 6, inject_deadline()))) goto out;
    if(!OK(brecv(s[0], buf, 6, inject_deadline()))) goto out;
    CHECK(memcmp(buf, "world!", 6) == 0);
    if(!OK(tls_done(s[0], inject_deadline()))) goto out;
    if(!OK(tls_done(s[1], inject_deadline()))) goto out;
    if(!OK(s[1] = tls_detach(take(&s[1]), inject_deadline()))) goto out;
    if(!OK(s[0] = tls_detach(take(&s[0]), inject_deadline()))) goto out;
out:
    if(s[2] >= 0) CHECK(hclose(take(&s[2])) == 0);
    if(server >= 0) s[1] = server;
    close_all(s, 3);
}

/* DTLS over a pair of UDP sockets. A failed handshake closes its socket,
   but UDP tells the peer nothing: both handshakes run in coroutines and
   the scenario stops waiting for them as soon as it is aborted. */
coroutine static void dtls_end(int u, int server, int *out) {
    int h;
    if(!OK_OR(h = server ? dtls_attach_server(u, cert, key,
          inject_deadline()) : dtls_attach_client(u, inject_deadline()),
          ECANCELED))
        return;
    *out = h;
}

/* Until the bundle's coroutines have ended (0) or the scenario is
   aborted (-1). */
static int wait_or_abort(int b) {
    for(;;) {
        if(!OK_OR(bundle_wait(b, now() + 2), ETIMEDOUT)) return -1;
        if(errno != ETIMEDOUT) return 0;
        if(inject_aborted()) return -1;
    }
}

static void run_dtls(void) {
    struct dill_ipaddr a[2];
    int u[2] = {-1, -1}, h[3] = {-1, -1, -1}; /* client, server, bundle */
    CHECK(ipaddr_local(&a[0], "127.0.0.1", 0, 0) == 0);
    CHECK(ipaddr_local(&a[1], "127.0.0.1", 0, 0) == 0);
    if(!OK(u[0] = udp_open(&a[0], NULL))) goto out;
    if(!OK(u[1] = udp_open(&a[1], &a[0]))) goto out;
    CHECK(hclose(take(&u[0])) == 0);
    if(!OK(u[0] = udp_open(&a[0], &a[1]))) goto out;
    if(!OK(h[2] = bundle())) goto out;
    if(!OK(bundle_go(h[2], dtls_end(u[0], 0, &h[0])))) goto out;
    u[0] = -1;
    if(!OK(bundle_go(h[2], dtls_end(u[1], 1, &h[1])))) goto out;
    u[1] = -1;
    if(wait_or_abort(h[2]) < 0) goto out;
    if(h[0] < 0 || h[1] < 0) goto out;
    if(messages(h[0], h[1]) < 0) goto out;
    if(!OK(dtls_done(h[0], inject_deadline()))) goto out;
    if(!OK(dtls_done(h[1], inject_deadline()))) goto out;
    if(!OK(h[1] = dtls_detach(take(&h[1]), inject_deadline()))) goto out;
    if(!OK(h[0] = dtls_detach(take(&h[0]), inject_deadline()))) goto out;
out:
    if(h[2] >= 0) CHECK(hclose(take(&h[2])) == 0);
    close_all(h, 2);
    close_all(u, 2);
}
#endif

int main(void) {
    static const struct scenario scenarios[] = {
        {"prefix", run_prefix},
        {"suffix", run_suffix},
        {"term", run_term},
        {"http", run_http},
        {"ws_nohttp", run_ws_nohttp},
        {"ws", run_ws},
        {"ws_lent", run_ws_lent},
        {"socks5", run_socks5},
#if defined HAVE_TLS
        {"tls", run_tls, 0, 1},
        {"dtls", run_dtls, 0, 1},
#endif
    };
#if defined HAVE_TLS
    make_cert();
#endif
    inject_run(scenarios, sizeof(scenarios) / sizeof(scenarios[0]));
#if defined HAVE_TLS
    remove_cert();
#endif
    return 0;
}
