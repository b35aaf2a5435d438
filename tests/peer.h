/*
 * tests/peer.h: running programs nobody here wrote (curl, wrk, openssl,
 * python3, microsocks, ...) as peers of a test, on loopback.
 *
 *   peer_require("curl", "curl")   fails the test, saying which package
 *                                  to install, when a program is missing
 *   peer_start(argv, log)          starts a peer in the background
 *   peer_wait_tcp(port, ms)        waits until it listens on 127.0.0.1
 *   peer_run(argv, out, len, ms)   runs one to its end, capturing stdout,
 *                                  while the test's coroutines keep running
 *   peer_stop(pid)                 ends one peer
 *
 * A peer that is a program of this build (examples/httpd, ...) runs
 * under DILL_TEST_EMULATOR when that is set: the command, with its
 * arguments, that runs the tests themselves on a machine of another kind
 * (cross builds: DILL_TEST_EMULATOR=qemu-aarch64). Such a peer is known by
 * its ELF header, which names the same machine as the test's own.
 *
 * Every peer started here dies with the test however it ends: an exit
 * (CHECK failing included) kills the ones still running, and each peer is
 * also told by the kernel to die if the test process dies (a crash).
 * Functions fail the test with a message rather than return errors.
 */
#ifndef DILL_TESTS_PEER_H
#define DILL_TESTS_PEER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"

#define PEER_MAX 32

static pid_t peer_pids[PEER_MAX];
static int peer_count;
static int peer_atexit_set;

static void peer_fail(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "FAIL: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    exit(1);
}

/* The full path of program on PATH (or program itself if it has a /), or
   NULL. */
static const char *peer_which(const char *program) {
    static char path[4096];
    if(strchr(program, '/')) return access(program, X_OK) == 0 ? program : NULL;
    const char *env = getenv("PATH");
    if(!env) env = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    while(*env) {
        const char *end = strchr(env, ':');
        size_t n = end ? (size_t)(end - env) : strlen(env);
        if(n && n + strlen(program) + 2 < sizeof(path)) {
            memcpy(path, env, n);
            path[n] = '/';
            strcpy(path + n + 1, program);
            if(access(path, X_OK) == 0) return path;
        }
        env += n;
        if(*env == ':') env++;
    }
    /* Administration tools (ip, iptables) live in sbin, which a user's
       PATH often leaves out. */
    const char *sbin[] = {"/usr/sbin/", "/sbin/"};
    for(size_t i = 0; i < 2; i++) {
        if(strlen(sbin[i]) + strlen(program) + 1 > sizeof(path)) continue;
        strcpy(path, sbin[i]);
        strcat(path, program);
        if(access(path, X_OK) == 0) return path;
    }
    return NULL;
}

/* Fail the test, with the command that installs it, when program is not
   installed. */
static void peer_require(const char *program, const char *package) {
    if(peer_which(program)) return;
    peer_fail("%s is not installed; this test needs it: "
        "apt-get install %s", program, package);
}

/* Fail the test unless python3 can import module (from package). */
static void peer_require_python(const char *module, const char *package) {
    peer_require("/usr/bin/python3", "python3");
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c 'import %s' 2>/dev/null",
        module);
    if(system(cmd) == 0) return;
    peer_fail("python3 module %s is missing; this test needs it: "
        "apt-get install %s", module, package);
}

/* The ELF machine field of a program (bytes 18-19 of its header), or -1
   if it is no ELF file. Compared raw: a machine's own byte order. */
static int peer_elf_machine(const char *path) {
    unsigned char h[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if(fd < 0) return -1;
    ssize_t n = read(fd, h, sizeof(h));
    close(fd);
    if(n != (ssize_t)sizeof(h) || memcmp(h, "\177ELF", 4) != 0) return -1;
    return h[18] << 8 | h[19];
}

/* The argv that runs path with argv's arguments: argv itself, or, for a
   program built for the machine the test runs on while DILL_TEST_EMULATOR
   is set, the emulator's words, then path, then the arguments. The
   strings live in static storage until the next call. */
static char *const *peer_command(const char *path, char *const argv[]) {
    static char words[1024], program[4096];
    static char *cmd[64];
    const char *emulator = getenv("DILL_TEST_EMULATOR");
    if(!emulator || !*emulator) return argv;
    int machine = peer_elf_machine(path);
    if(machine < 0 || machine != peer_elf_machine("/proc/self/exe"))
        return argv;
    CHECK(strlen(emulator) < sizeof(words) && strlen(path) < sizeof(program));
    strcpy(words, emulator);
    strcpy(program, path);
    int n = 0;
    for(char *w = strtok(words, " \t"); w; w = strtok(NULL, " \t")) {
        CHECK(n < 48);
        cmd[n++] = w;
    }
    CHECK(n > 0);
    cmd[n++] = program;
    for(int i = 1; argv[i]; i++) {
        CHECK(n < 63);
        cmd[n++] = argv[i];
    }
    cmd[n] = NULL;
    return cmd;
}

static void peer_kill_all(void) {
    for(int i = 0; i < peer_count; i++) {
        if(peer_pids[i] <= 0) continue;
        kill(peer_pids[i], SIGKILL);
        waitpid(peer_pids[i], NULL, 0);
        peer_pids[i] = 0;
    }
    peer_count = 0;
}

static void peer_forget(pid_t pid) {
    for(int i = 0; i < peer_count; i++)
        if(peer_pids[i] == pid) peer_pids[i] = 0;
}

/* fork + exec argv with stdout to out_fd (-1: the log) and stderr to the
   log file (NULL: /dev/null). The child dies with us. */
static pid_t peer_spawn(char *const argv[], int out_fd, const char *log) {
    if(!peer_atexit_set) {
        atexit(peer_kill_all);
        peer_atexit_set = 1;
    }
    CHECK(peer_count < PEER_MAX);
    const char *path = peer_which(argv[0]);
    if(!path) peer_fail("%s is not installed%s", argv[0], "");
    char *const *cmd = peer_command(path, argv);
    if(cmd != argv) {
        path = peer_which(cmd[0]);
        if(!path) peer_fail("DILL_TEST_EMULATOR: %s is not installed%s",
            cmd[0], "");
    }
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if(getppid() != parent) _exit(127);
        int err = open(log ? log : "/dev/null",
            O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = open("/dev/null", O_RDONLY);
        if(in >= 0) dup2(in, 0);
        if(err >= 0) dup2(err, 2);
        dup2(out_fd >= 0 ? out_fd : (err >= 0 ? err : 2), 1);
        /* Nothing of the test's (listening sockets, pipes) leaks into the
           peer. */
        for(int fd = 3; fd < 1024; fd++) close(fd);
        execv(path, cmd);
        _exit(127);
    }
    peer_pids[peer_count++] = pid;
    return pid;
}

/* A peer running in the background until peer_stop or the end of the
   test; its output goes to log (NULL: nowhere). */
static pid_t peer_start(char *const argv[], const char *log) {
    return peer_spawn(argv, -1, log);
}

/* End a background peer: SIGTERM, then SIGKILL if it lingers. Returns its
   wait status. */
static int peer_stop(pid_t pid) {
    int status = 0;
    kill(pid, SIGTERM);
    for(int i = 0; i < 200; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if(r == pid) {
            peer_forget(pid);
            return status;
        }
        /* The peer is another process: yield the thread to it. */
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    peer_forget(pid);
    return status;
}

/* Run argv to its end, within ms milliseconds (it is killed after that),
   with its stdout in out (NUL-terminated, at most len - 1 bytes kept; out
   may be NULL). The test's coroutines run meanwhile: the output is read
   with fdin. Returns the exit status (WEXITSTATUS), or -1 if it was killed
   by a signal or timed out. */
static int peer_run(char *const argv[], char *out, size_t len, int64_t ms,
      const char *log) {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = peer_spawn(argv, p[1], log);
    close(p[1]);
    CHECK(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
    int64_t deadline = now() + ms;
    size_t used = 0;
    char scratch[4096];
    int timed_out = 0;
    for(;;) {
        char *to = out && used + 1 < len ? out + used : scratch;
        size_t room = out && used + 1 < len ? len - 1 - used : sizeof(scratch);
        ssize_t n = read(p[0], to, room);
        if(n > 0) {
            if(to != scratch) used += (size_t)n;
            continue;
        }
        if(n == 0) break;
        if(errno == EINTR) continue;
        CHECK(errno == EAGAIN);
        if(fdin(p[0], deadline) < 0) {
            CHECK(errno == ETIMEDOUT);
            timed_out = 1;
            break;
        }
    }
    fdclean(p[0]);
    close(p[0]);
    if(out && len) out[used] = 0;
    if(timed_out) kill(pid, SIGKILL);
    int status;
    /* Its stdout is closed: it is exiting, or killed. */
    CHECK(waitpid(pid, &status, 0) == pid);
    peer_forget(pid);
    if(timed_out || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static int peer_listening(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, (struct sockaddr *)&a, sizeof(a));
    close(s);
    return rc == 0;
}

/* Wait, up to ms, until a peer listens on 127.0.0.1:port: a condition,
   looked at every 10 ms (with msleep, so coroutines run meanwhile). */
static void peer_wait_tcp(int port, int64_t ms) {
    int64_t deadline = now() + ms;
    while(!peer_listening(port)) {
        if(now() >= deadline) {
            char p[16];
            snprintf(p, sizeof(p), "%d", port);
            peer_fail("no peer listening on 127.0.0.1:%s after the wait%s",
                p, "");
        }
        CHECK(msleep(now() + 10) == 0);
    }
}

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
static int peer_free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
    close(s);
    return ntohs(a.sin_port);
}

/* A fresh directory for the test's files (certificates, scripts, logs),
   removed by nobody: it lives under the build's tests/ folder. */
static const char *peer_dir(const char *name) {
    static char dir[256];
    snprintf(dir, sizeof(dir), "tests/%s.tmp", name);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    CHECK(system(cmd) == 0);
    return dir;
}

#endif
