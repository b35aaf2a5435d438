/*
 * perf/million.c: one million coroutines alive at once, each with a default
 * (256 KiB) library stack and each blocked in chrecv on one shared channel
 * that nobody sends to, started cold (in a fresh process). Then every
 * handle is closed, which cancels its coroutine. Prints the time per
 * coroutine for both phases and the resident memory each blocked coroutine
 * adds (target: at most 4.25 KiB).
 *
 * Go's goroutines doing the same work (perf/million.go, GOMAXPROCS=1) are
 * the baseline: make bench builds perf/million-go when `go` is installed.
 * Five rounds of each run alternately, each in a fresh process, the order
 * swapped every round, and the best of each is compared (target: starting
 * a coroutine costs no more than starting a goroutine). The original
 * libdill stops at about 32,700 coroutines: every guarded stack costs two
 * memory mappings.
 */
#include <sys/wait.h>
#include <libdill.h>
#include "perf.h"

#define COROUTINES 1000000
#define ROUNDS 5
#define GO_BASELINE "perf/million-go"
#define TARGET_KIB 4.25

struct round {
    double go_ns;     /* per coroutine started */
    double close_ns;  /* per coroutine closed */
    double kib;       /* resident memory per blocked coroutine */
};

static int cancelled;

static coroutine void waiter(int ch) {
    int val;
    int rc = chrecv(ch, &val, sizeof(val), -1);
    PERF_CHECK(rc == -1 && errno == ECANCELED);
    cancelled++;
}

static void one_round(struct round *r) {
    int *handles = calloc(COROUTINES, sizeof(int));
    PERF_CHECK(handles);
    int ch[2];
    PERF_CHECK(chmake(ch) == 0);
    long rss_before = perf_rss_kib();
    int64_t start = perf_ns();
    for(int i = 0; i < COROUTINES; i++) {
        handles[i] = go(waiter(ch[1]));
        if(handles[i] < 0) {
            fprintf(stderr, "million: go() failed after %d coroutines: %s\n",
                i, strerror(errno));
            exit(1);
        }
    }
    r->go_ns = (double)(perf_ns() - start) / COROUTINES;
    r->kib = (double)(perf_rss_kib() - rss_before) / COROUTINES;
    start = perf_ns();
    for(int i = 0; i < COROUTINES; i++) PERF_CHECK(hclose(handles[i]) == 0);
    r->close_ns = (double)(perf_ns() - start) / COROUTINES;
    PERF_CHECK(cancelled == COROUTINES);
    PERF_CHECK(hclose(ch[0]) == 0);
    PERF_CHECK(hclose(ch[1]) == 0);
    free(handles);
}

/* A round in a fresh process, so that every one starts cold. */
static void forked_round(struct round *r) {
    int p[2];
    PERF_CHECK(pipe(p) == 0);
    fflush(stdout);
    pid_t pid = fork();
    PERF_CHECK(pid >= 0);
    if(pid == 0) {
        one_round(r);
        PERF_CHECK(write(p[1], r, sizeof(*r)) == (ssize_t)sizeof(*r));
        _exit(0);
    }
    close(p[1]);
    PERF_CHECK(read(p[0], r, sizeof(*r)) == (ssize_t)sizeof(*r));
    close(p[0]);
    int status;
    PERF_CHECK(waitpid(pid, &status, 0) == pid);
    PERF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* One run of the Go program; 0 when it is not there. */
static int go_round(struct round *r) {
    if(access(GO_BASELINE, X_OK) != 0) return 0;
    FILE *f = popen(GO_BASELINE, "r");
    PERF_CHECK(f);
    char line[256];
    int found = 0;
    while(fgets(line, sizeof(line), f)) {
        found += sscanf(line, "go_million_go: %lf ns/op", &r->go_ns);
        found += sscanf(line, "go_million_close: %lf ns/op", &r->close_ns);
        found += sscanf(line, "go_million_kib: %lf", &r->kib);
    }
    PERF_CHECK(pclose(f) == 0);
    PERF_CHECK(found == 3);
    return 1;
}

static void keep_best(struct round *best, const struct round *r) {
    if(r->go_ns < best->go_ns) best->go_ns = r->go_ns;
    if(r->close_ns < best->close_ns) best->close_ns = r->close_ns;
    if(r->kib < best->kib) best->kib = r->kib;
}

static void our_round(int i, struct round *ours) {
    struct round r;
    forked_round(&r);
    printf("million round %d: go() %.1f ns, hclose() %.1f ns, "
        "%.2f KiB per coroutine\n", i + 1, r.go_ns, r.close_ns, r.kib);
    keep_best(ours, &r);
}

/* Returns 0 when there is no Go baseline to run. */
static int goroutine_round(int i, struct round *go) {
    struct round r;
    if(!go_round(&r)) return 0;
    printf("million round %d: Go goroutine %.1f ns, return %.1f ns, "
        "%.2f KiB per goroutine\n", i + 1, r.go_ns, r.close_ns, r.kib);
    keep_best(go, &r);
    return 1;
}

int main(void) {
    struct round ours = {1e18, 1e18, 1e18}, go = {1e18, 1e18, 1e18};
    int have_go = 1;
    for(int i = 0; i < ROUNDS; i++) {
        /* Every other round Go goes first: whichever runs second reuses
           memory the first has just given back, which the kernel hands
           out faster than memory untouched for a while. */
        if(i % 2 && have_go) have_go = goroutine_round(i, &go);
        our_round(i, &ours);
        if(i % 2 == 0 && have_go) have_go = goroutine_round(i, &go);
        fflush(stdout);
    }
    printf("million_go: %.1f ns/op\n", ours.go_ns);
    printf("million_hclose: %.1f ns/op\n", ours.close_ns);
    printf("million: %d coroutines alive at once, %.2f KiB resident per "
        "blocked coroutine (target <= %.2f KiB)\n", COROUTINES, ours.kib,
        TARGET_KIB);
    if(!have_go) {
        printf("million: no Go baseline: install golang-go "
            "(apt-get install golang-go) and run make bench again\n");
        return 0;
    }
    printf("million_go_goroutine: %.1f ns/op (Go, GOMAXPROCS=1), "
        "%.2f KiB per goroutine\n", go.go_ns, go.kib);
    printf("goroutine/coroutine start = %.2fx (target >= 1.00x)\n",
        go.go_ns / ours.go_ns);
    return 0;
}
