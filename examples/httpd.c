/*
 * examples/httpd.c: a small HTTP/1.1 server on libdill's http_* functions.
 *
 *     httpd PORT [THREADS [ADDRESS]]     (defaults: 1 thread, 127.0.0.1)
 *
 * GET / answers 200 with a short text, GET /big 200 with 1 MiB of text
 * (see big_byte), anything else 404. Connections are kept alive: after a
 * response the next request is read on the same connection, until the
 * client closes it, asks for "Connection: close", or stays idle 30 s.
 *
 * One request, as the http_* functions see it: attach the HTTP layer to
 * the TCP connection, read the request line and the fields up to the empty
 * line (EPIPE), send the status line and fields, detach (which sends the
 * empty line and gives the TCP connection back, positioned after the
 * request head), then move the bodies with brecv and bsend on the TCP
 * connection itself. The HTTP object lives in a struct http_storage on the
 * connection's coroutine stack, so a request allocates nothing.
 *
 * Using every core: a libdill scheduler belongs to one thread, so each
 * thread runs its own. Every thread opens its own listening socket on the
 * same port with SO_REUSEPORT, and the kernel spreads new connections over
 * them; a connection then stays in the thread that accepted it. Nothing is
 * shared between threads but the read-only 1 MiB body.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libdill.h>

#define BIG_SIZE (1024 * 1024)
#define IDLE_MS 30000   /* how long a kept-alive connection may stay quiet */
#define IO_MS 10000     /* how long any one request or response may take */

static const char hello[] = "Hello from libdill's httpd\n";
static const char not_found[] = "Not found\n";
static char *big;

/* The body of /big, byte i: text that changes along the whole MiB, so a
   lost, doubled or moved block shows. tests/http_peers.c checks it. */
static char big_byte(size_t i) {
    return "0123456789abcdefghijklmnopqrstuv"[(i ^ (i >> 5) ^ (i >> 10)) & 31];
}

struct options {
    struct sockaddr_in addr;
    int threads;
};

/* The three responses. The lengths are written out once, here, rather
   than formatted for every request. */
struct response {
    int status;
    const char *reason;
    const char *body;
    size_t len;
    const char *len_text;
};

_Static_assert(sizeof(hello) - 1 == 27 && sizeof(not_found) - 1 == 10,
    "the length texts below are wrong");
static struct response root = {200, "OK", hello, sizeof(hello) - 1, "27"};
static struct response big_file = {200, "OK", NULL, BIG_SIZE, "1048576"};
static struct response nothing = {404, "Not Found", not_found,
    sizeof(not_found) - 1, "10"};

/* What a request asks for. */
struct request {
    const struct response *response;
    int close;           /* the client asked for Connection: close */
    long content_length; /* of the request's own body, to be skipped */
};

/* Read the head of one request from the HTTP socket h. 0, or -1 when the
   connection should simply be dropped (closed by the client, bad input,
   timeout). */
static int read_request(int h, struct request *rq, int64_t idle) {
    char cmd[16], res[256];
    if(http_recvrequest(h, cmd, sizeof(cmd), res, sizeof(res), idle) < 0)
        return -1;
    int get = strcmp(cmd, "GET") == 0;
    if(get && strcmp(res, "/") == 0) rq->response = &root;
    else if(get && strcmp(res, "/big") == 0) rq->response = &big_file;
    else rq->response = &nothing;
    rq->close = 0;
    rq->content_length = 0;
    int64_t deadline = now() + IO_MS;
    for(;;) {
        char name[64], value[256];
        if(http_recvfield(h, name, sizeof(name), value, sizeof(value),
              deadline) < 0) {
            /* EPIPE: the empty line, the head is complete. */
            if(errno == EPIPE) return 0;
            /* A field we cannot parse or hold is not ours to care about. */
            if(errno == EPROTO || errno == EMSGSIZE) continue;
            return -1;
        }
        if(strcasecmp(name, "Connection") == 0 &&
              strcasecmp(value, "close") == 0)
            rq->close = 1;
        else if(strcasecmp(name, "Content-Length") == 0)
            rq->content_length = strtol(value, NULL, 10);
        else if(strcasecmp(name, "Transfer-Encoding") == 0)
            return -1; /* chunked request bodies are not handled here */
    }
}

/* The lines are held by the HTTP layer, not written yet. */
static int send_head(int h, const struct request *rq) {
    const struct response *r = rq->response;
    int64_t deadline = now() + IO_MS;
    if(http_sendstatus(h, r->status, r->reason, deadline) < 0) return -1;
    if(http_sendfield(h, "Content-Type", "text/plain", deadline) < 0)
        return -1;
    if(http_sendfield(h, "Content-Length", r->len_text, deadline) < 0)
        return -1;
    if(rq->close && http_sendfield(h, "Connection", "close", deadline) < 0)
        return -1;
    return 0;
}

/* Serve the requests of one TCP connection s, one after the other. */
static coroutine void serve(int s) {
    struct http_storage mem;
    for(;;) {
        int h = http_attach_mem(s, &mem);
        if(h < 0) return;
        struct request rq;
        if(read_request(h, &rq, now() + IDLE_MS) < 0 || send_head(h, &rq) < 0) {
            hclose(h);
            return;
        }
        /* The head leaves here, in one write (which the kernel sends in
           one segment with the body), and s is the TCP connection again,
           right after the request head. */
        s = http_detach(h, now() + IO_MS);
        if(s < 0) return;
        int64_t deadline = now() + IO_MS;
        /* A request body is read and dropped (brecv with no buffer). */
        if(rq.content_length < 0 || (rq.content_length > 0 &&
              brecv(s, NULL, (size_t)rq.content_length, deadline) < 0) ||
              bsend(s, rq.response->body, rq.response->len, deadline) < 0) {
            hclose(s);
            return;
        }
        if(rq.close) {
            /* Orderly: our FIN after the body, then wait for the client's. */
            tcp_close(s, now() + IO_MS);
            return;
        }
    }
}

/* A listening socket of our own on the shared port, as a libdill listener.
   SO_REUSEPORT must be set before bind. */
static int open_listener(const struct options *opt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if(fd < 0) return -1;
    int one = 1;
    if(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
          setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
          bind(fd, (const struct sockaddr *)&opt->addr,
              sizeof(opt->addr)) < 0 ||
          listen(fd, 1024) < 0) {
        close(fd);
        return -1;
    }
    int ls = tcp_listener_fromfd(fd);
    if(ls < 0) close(fd);
    return ls;
}

/* One thread: its scheduler, its listener, a coroutine per connection. */
static void *run(void *arg) {
    const struct options *opt = arg;
    int ls = open_listener(opt);
    if(ls < 0) {
        perror("httpd: listen");
        exit(1);
    }
    int conns = bundle();
    if(conns < 0) {
        perror("httpd: bundle");
        exit(1);
    }
    for(;;) {
        int s = tcp_accept(ls, NULL, -1);
        if(s < 0) {
            /* Out of descriptors or memory: drop this one, go on. */
            if(errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
                msleep(now() + 10);
                continue;
            }
            perror("httpd: accept");
            exit(1);
        }
        if(bundle_go(conns, serve(s)) < 0) hclose(s);
    }
    return NULL;
}

int main(int argc, char *argv[]) {
    if(argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s PORT [THREADS [ADDRESS]]\n", argv[0]);
        return 2;
    }
    struct options opt;
    memset(&opt, 0, sizeof(opt));
    int port = atoi(argv[1]);
    opt.threads = argc > 2 ? atoi(argv[2]) : 1;
    const char *ip = argc > 3 ? argv[3] : "127.0.0.1";
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons((uint16_t)port);
    if(port <= 0 || port > 65535 || opt.threads < 1 || opt.threads > 256 ||
          inet_pton(AF_INET, ip, &opt.addr.sin_addr) != 1) {
        fprintf(stderr, "httpd: bad port, thread count or address\n");
        return 2;
    }
    big = malloc(BIG_SIZE);
    if(!big) return 1;
    for(size_t i = 0; i < BIG_SIZE; i++) big[i] = big_byte(i);
    big_file.body = big;
    printf("httpd: listening on %s:%d with %d thread%s\n", ip, port,
        opt.threads, opt.threads > 1 ? "s" : "");
    fflush(stdout);
    /* The main thread is one of the servers. */
    for(int i = 1; i < opt.threads; i++) {
        pthread_t t;
        if(pthread_create(&t, NULL, run, &opt) != 0) {
            fprintf(stderr, "httpd: cannot start a thread\n");
            return 1;
        }
        pthread_detach(t);
    }
    run(&opt);
    return 0;
}
