/*
 * examples/socks5_proxy.c: a small SOCKS5 proxy (RFC 1928, CONNECT only)
 * on the socks5_proxy_* functions. Each client gets a coroutine that
 * authenticates it (username/password when -u and -P are given, else none),
 * reads its request, resolves the host with ipaddr_remote, connects with
 * tcp_connect, replies, and then relays bytes both ways until both sides
 * have finished. Try it with curl:
 *
 *     examples/socks5_proxy -p 1080 -u alice -P secret &
 *     curl --socks5-hostname 127.0.0.1:1080 --proxy-user alice:secret \
 *         http://example.com/
 *
 * Usage: socks5_proxy [-i LISTEN_ADDRESS] [-p PORT] [-u USER -P PASSWORD]
 * (defaults: 127.0.0.1, port 1080, no authentication). One line per
 * connection goes to stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libdill.h>

static const char *user;
static const char *password;

static int check_login(const char *username, const char *pass) {
    return strcmp(username, user) == 0 && strcmp(pass, password) == 0;
}

/* ---- Relaying one direction ------------------------------------------ */

/* brecv returns only when all the bytes asked for have come, and a relay
   cannot know how many the peer will send, so the reader takes one byte at
   a time (cheap: a TCP connection reads ahead in big pieces) and appends
   it to buf. The writer sends whatever has gathered as soon as it gets to
   run, which is whenever the reader waits for the network: bytes go out
   in big pieces, and a lone byte still goes out at once. */
struct pipe {
    int from, to;
    int ch[2];     /* ch[0]: the reader's end, ch[1]: the writer's */
    int ended;     /* the reader has stopped: 1 at the end of the stream,
                      -1 after an error */
    size_t len;    /* bytes waiting in buf */
    char buf[4096];
};

/* Wake the other coroutine if it waits on the channel. If it is busy
   instead, it looks at the buffer again before it waits: nothing is lost. */
static void nudge(int ch) {
    chsend(ch, NULL, 0, 0);
}

coroutine void reader(struct pipe *p) {
    for(;;) {
        /* Full: wait until the writer has taken the bytes. */
        while(p->len == sizeof(p->buf))
            if(chrecv(p->ch[0], NULL, 0, -1) < 0) return;
        /* Into c, not the buffer: the writer may empty it meanwhile. */
        char c;
        if(brecv(p->from, &c, 1, -1) < 0) break;
        p->buf[p->len++] = c;
        nudge(p->ch[0]);
    }
    /* EPIPE: the peer finished sending cleanly. */
    p->ended = errno == EPIPE ? 1 : -1;
    nudge(p->ch[0]);
}

/* Reports 0 on done when this direction has finished cleanly (the end of
   the stream passed on with tcp_done), -1 when it failed. */
coroutine void writer(struct pipe *p, int done) {
    char out[sizeof(p->buf)];
    int rc = 0;
    for(;;) {
        if(p->len == 0) {
            if(p->ended) break;
            if(chrecv(p->ch[1], NULL, 0, -1) < 0) return;
            continue;
        }
        size_t n = p->len;
        memcpy(out, p->buf, n);
        p->len = 0;
        nudge(p->ch[1]);
        if(bsend(p->to, out, n, -1) < 0) {
            rc = -1;
            break;
        }
    }
    if(rc == 0 && p->ended < 0) rc = -1;
    if(rc == 0) tcp_done(p->to, -1);
    chsend(done, &rc, sizeof(rc), -1);
}

/* Relay between a and b until both directions have ended, or one failed. */
static void relay(int a, int b) {
    struct pipe up = {.from = a, .to = b, .ch = {-1, -1}};
    struct pipe down = {.from = b, .to = a, .ch = {-1, -1}};
    int done[2] = {-1, -1};
    int workers = -1;
    if(chmake(up.ch) < 0 || chmake(down.ch) < 0 || chmake(done) < 0 ||
          (workers = bundle()) < 0 ||
          bundle_go(workers, reader(&up)) < 0 ||
          bundle_go(workers, writer(&up, done[0])) < 0 ||
          bundle_go(workers, reader(&down)) < 0 ||
          bundle_go(workers, writer(&down, done[0])) < 0)
        perror("relay");
    else {
        for(int i = 0; i < 2; i++) {
            int rc;
            if(chrecv(done[1], &rc, sizeof(rc), -1) < 0 || rc < 0) break;
        }
    }
    /* Stops whatever still runs (after a failure, the other direction).
       Closing -1, a handle never made, is a harmless EBADF. */
    hclose(workers);
    hclose(up.ch[0]), hclose(up.ch[1]);
    hclose(down.ch[0]), hclose(down.ch[1]);
    hclose(done[0]), hclose(done[1]);
}

/* ---- One client ------------------------------------------------------- */

/* The reply for a failed connect. */
static int reply_for(int err) {
    switch(err) {
    case ECONNREFUSED: return SOCKS5_CONNECTION_REFUSED;
    case ENETUNREACH: return SOCKS5_NETWORK_UNREACHABLE;
    case EHOSTUNREACH: case EADDRNOTAVAIL: return SOCKS5_HOST_UNREACHABLE;
    case ETIMEDOUT: return SOCKS5_TTL_EXPIRED;
    default: return SOCKS5_GENERAL_FAILURE;
    }
}

static void reply(int client, int code) {
    /* A CONNECT reply carries the proxy's bound address; 0.0.0.0:0 is
       what clients expect when there is none to tell. */
    struct ipaddr none;
    ipaddr_local(&none, NULL, 0, IPADDR_IPV4);
    socks5_proxy_sendreply(client, code, &none, now() + 1000);
}

coroutine void serve(int client, struct ipaddr from) {
    char peer[IPADDR_MAXSTRLEN];
    ipaddr_str(&from, peer);
    /* The handshake and the connect have 10 seconds; the tunnel has no
       time limit. */
    int64_t deadline = now() + 10000;
    if(socks5_proxy_auth(client, user ? check_login : NULL, deadline) < 0) {
        fprintf(stderr, "%s: authentication: %s\n", peer, strerror(errno));
        hclose(client);
        return;
    }
    char host[256];
    int port;
    int cmd = socks5_proxy_recvcommandbyname(client, host, &port, deadline);
    if(cmd < 0) {
        fprintf(stderr, "%s: request: %s\n", peer, strerror(errno));
        if(errno == EPROTO) reply(client, SOCKS5_GENERAL_FAILURE);
        hclose(client);
        return;
    }
    if(cmd != SOCKS5_CONNECT) {
        fprintf(stderr, "%s: command %d not supported\n", peer, cmd);
        reply(client, SOCKS5_COMMAND_NOT_SUPPORTED);
        hclose(client);
        return;
    }
    struct ipaddr addr;
    int server = -1;
    if(ipaddr_remote(&addr, host, port, 0, deadline) == 0)
        server = tcp_connect(&addr, deadline);
    if(server < 0) {
        fprintf(stderr, "%s: %s:%d: %s\n", peer, host, port, strerror(errno));
        reply(client, reply_for(errno));
        hclose(client);
        return;
    }
    fprintf(stderr, "%s: connected to %s:%d\n", peer, host, port);
    reply(client, SOCKS5_SUCCESS);
    relay(client, server);
    /* Both directions ended: finish politely, within a second. */
    tcp_close(server, now() + 1000);
    tcp_close(client, now() + 1000);
}

int main(int argc, char *argv[]) {
    const char *ip = "127.0.0.1";
    int port = 1080;
    int opt;
    while((opt = getopt(argc, argv, "i:p:u:P:")) != -1) {
        switch(opt) {
        case 'i': ip = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': user = optarg; break;
        case 'P': password = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-i address] [-p port] "
                "[-u user -P password]\n", argv[0]);
            return 1;
        }
    }
    if(!user != !password) {
        fprintf(stderr, "%s: -u and -P go together\n", argv[0]);
        return 1;
    }
    struct ipaddr addr;
    if(ipaddr_local(&addr, ip, port, 0) < 0) {
        perror(ip);
        return 1;
    }
    int listener = tcp_listen(&addr, 64);
    if(listener < 0) {
        perror("tcp_listen");
        return 1;
    }
    fprintf(stderr, "socks5_proxy: listening on %s port %d%s\n", ip,
        ipaddr_port(&addr), user ? ", username/password required" : "");
    int clients = bundle();
    if(clients < 0) {
        perror("bundle");
        return 1;
    }
    for(;;) {
        struct ipaddr from;
        int client = tcp_accept(listener, &from, -1);
        if(client < 0) {
            /* Out of file descriptors, most likely: wait a little. */
            perror("tcp_accept");
            msleep(now() + 100);
            continue;
        }
        if(bundle_go(clients, serve(client, from)) < 0) {
            perror("bundle_go");
            hclose(client);
        }
    }
}
