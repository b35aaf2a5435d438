/*
 * examples/ws_echo.c: a WebSocket echo server on libdill's ws_* functions.
 *
 *     ws_echo PORT     serve on 127.0.0.1:PORT until killed
 *     ws_echo          serve on a port the kernel picks, talk to it with
 *                      our own client, and exit (what `make demo` runs)
 *
 * Each connection gets a coroutine: the opening handshake with
 * ws_attach_server over the TCP connection, then every message is sent
 * back with the type it came with (text or binary), whatever its size up
 * to 1 MiB, and whether the peer fragmented it or not. Pings are answered
 * by the library while ws_recv waits. When the peer closes (ws_recv fails
 * with EPIPE), its status code and reason are read with ws_status and
 * returned in our own close frame by ws_detach, which gives the TCP
 * connection back for an orderly tcp_close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdill.h>

#define MAX_MESSAGE (1024 * 1024)
#define IDLE_MS 60000   /* how long a connection may stay quiet */

static coroutine void serve(int conn) {
    char resource[256], host[256] = "";
    int ws = ws_attach_server(conn, WS_BINARY, resource, sizeof(resource),
        host, sizeof(host), now() + 5000);
    if(ws < 0) {
        /* Not a WebSocket handshake: the connection is closed already. */
        perror("ws_attach_server");
        return;
    }
    char *buf = malloc(MAX_MESSAGE);
    if(!buf) {
        hclose(ws);
        return;
    }
    for(;;) {
        int flags;
        ssize_t n = ws_recv(ws, &flags, buf, MAX_MESSAGE, now() + IDLE_MS);
        if(n < 0) break;
        if(ws_send(ws, flags, buf, (size_t)n, now() + 5000) < 0) break;
    }
    int err = errno;
    free(buf);
    if(err != EPIPE) {
        /* A broken connection, a protocol error, or a message too big. */
        fprintf(stderr, "ws_echo: connection ends: %s\n", strerror(err));
        hclose(ws);
        return;
    }
    /* The peer's close frame: say the same back. */
    int status;
    char reason[125];
    ssize_t len = ws_status(ws, &status, reason, sizeof(reason));
    if(len < 0) {
        hclose(ws);
        return;
    }
    int tcp = ws_detach(ws, status, reason, (size_t)len, now() + 1000);
    if(tcp < 0) {
        hclose(ws);
        return;
    }
    tcp_close(tcp, now() + 1000);
}

static coroutine void server(int listener, int workers) {
    for(;;) {
        int conn = tcp_accept(listener, NULL, -1);
        if(conn < 0) return;
        if(bundle_go(workers, serve(conn)) < 0) hclose(conn);
    }
}

/* The demo's client: a few messages, then a close with a status. */
static int client(int port) {
    struct ipaddr addr;
    if(ipaddr_remote(&addr, "127.0.0.1", port, 0, now() + 1000) < 0)
        return -1;
    int tcp = tcp_connect(&addr, now() + 1000);
    if(tcp < 0) { perror("tcp_connect"); return -1; }
    int ws = ws_attach_client(tcp, WS_TEXT, "/", "127.0.0.1", now() + 1000);
    if(ws < 0) { perror("ws_attach_client"); return -1; }
    const char *lines[] = {"hello", "from a coroutine", "over a WebSocket"};
    for(int i = 0; i < 3; i++) {
        char in[64];
        /* msend and mrecv carry text: the socket was attached WS_TEXT. */
        ssize_t n = -1;
        if(msend(ws, lines[i], strlen(lines[i]), now() + 1000) == 0)
            n = mrecv(ws, in, sizeof(in) - 1, now() + 1000);
        if(n < 0) { perror("echo"); hclose(ws); return -1; }
        in[n] = 0;
        printf("client: sent \"%s\", got \"%s\" back\n", lines[i], in);
        if(strcmp(in, lines[i]) != 0) { hclose(ws); return -1; }
    }
    int tcp2 = ws_detach(ws, 1000, "bye", 3, now() + 1000);
    if(tcp2 < 0) { perror("ws_detach"); hclose(ws); return -1; }
    printf("client: closed with status 1000, the server said the same\n");
    return tcp_close(tcp2, now() + 1000);
}

int main(int argc, char *argv[]) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct ipaddr addr;
    if(ipaddr_local(&addr, "127.0.0.1", port, IPADDR_IPV4) < 0) {
        perror("ipaddr_local");
        return 1;
    }
    int listener = tcp_listen(&addr, 64);
    if(listener < 0) { perror("tcp_listen"); return 1; }
    int workers = bundle();
    if(workers < 0) { perror("bundle"); return 1; }
    if(argc > 1) {
        /* Serve until killed. */
        server(listener, workers);
        return 1;
    }
    printf("server: listening on 127.0.0.1:%d\n", ipaddr_port(&addr));
    int srv = go(server(listener, workers));
    if(srv < 0) { perror("go"); return 1; }
    int rc = client(ipaddr_port(&addr));
    hclose(srv);
    bundle_wait(workers, now() + 1000);
    hclose(workers);
    hclose(listener);
    printf(rc == 0 ? "done: every message came back\n" : "failed\n");
    return rc == 0 ? 0 : 1;
}
