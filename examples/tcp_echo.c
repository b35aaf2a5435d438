/*
 * examples/tcp_echo.c: a TCP echo server and its client in one program.
 * The server listens on 127.0.0.1 (port chosen by the kernel) and runs one
 * coroutine per connection; the client sends a few lines and checks each
 * comes back. Every call has a deadline, and everything is closed in the
 * end: the connections with the orderly tcp_close. Run it with `make demo`.
 */
#include <stdio.h>
#include <string.h>
#include <libdill.h>

/* Echo one connection until the client finishes sending. */
coroutine void serve(int conn) {
    char buf[64];
    for(;;) {
        /* Messages are 64-byte records here: brecv never returns less. */
        if(brecv(conn, buf, sizeof(buf), now() + 5000) != 0) break;
        if(bsend(conn, buf, sizeof(buf), now() + 5000) != 0) break;
    }
    /* EPIPE means the client called tcp_done: finish politely. */
    tcp_close(conn, now() + 1000);
}

/* Accept connections until this coroutine is cancelled by hclose. */
coroutine void server(int listener, int workers) {
    for(;;) {
        int conn = tcp_accept(listener, NULL, -1);
        if(conn < 0) return;
        if(bundle_go(workers, serve(conn)) != 0) {
            hclose(conn);
            return;
        }
    }
}

static int client(struct ipaddr *addr) {
    int conn = tcp_connect(addr, now() + 1000);
    if(conn < 0) { perror("tcp_connect"); return -1; }
    const char *lines[] = {"hello", "from a coroutine", "over TCP"};
    for(int i = 0; i < 3; i++) {
        char out[64] = {0}, in[64];
        snprintf(out, sizeof(out), "%s", lines[i]);
        if(bsend(conn, out, sizeof(out), now() + 1000) != 0 ||
              brecv(conn, in, sizeof(in), now() + 1000) != 0) {
            perror("echo");
            hclose(conn);
            return -1;
        }
        printf("client: sent \"%s\", got \"%s\" back\n", out, in);
        if(strcmp(out, in) != 0) { hclose(conn); return -1; }
    }
    /* tcp_close says we are done, waits for the server to finish too. */
    if(tcp_close(conn, now() + 1000) != 0) { perror("tcp_close"); return -1; }
    return 0;
}

int main(void) {
    struct ipaddr addr;
    if(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) != 0) {
        perror("ipaddr_local");
        return 1;
    }
    /* Port 0: the kernel picks one and tcp_listen writes it back. */
    int listener = tcp_listen(&addr, 10);
    if(listener < 0) { perror("tcp_listen"); return 1; }
    printf("server: listening on 127.0.0.1:%d\n", ipaddr_port(&addr));
    int workers = bundle();
    int srv = go(server(listener, workers));
    if(workers < 0 || srv < 0) { perror("go"); return 1; }
    int rc = client(&addr);
    /* Stop accepting, then wait for the connection coroutines. */
    hclose(srv);
    bundle_wait(workers, now() + 1000);
    hclose(workers);
    hclose(listener);
    printf(rc == 0 ? "done: every line came back\n" : "failed\n");
    return rc == 0 ? 0 : 1;
}
