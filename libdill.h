/*
 * libdill.h: the public API of this libdill 2.x replacement.
 *
 * Structured concurrency for C: coroutines launched with go(), grouped in
 * bundles, talking over channels, waiting on file descriptors and deadlines.
 * The launch macros at the bottom follow libdill's binary protocol exactly,
 * so programs built against the original header run on this library.
 */
#ifndef LIBDILL_H_INCLUDED
#define LIBDILL_H_INCLUDED

#include <errno.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#if defined __linux__
#include <alloca.h>
#endif

#if !defined __GNUC__ && !defined __clang__
#error "libdill needs GCC or clang: go() uses statement expressions and inline assembly"
#endif

/* ABI version, also the libtool -version-info (current:revision:age). */
#define DILL_VERSION_CURRENT 25
#define DILL_VERSION_REVISION 0
#define DILL_VERSION_AGE 5

#if (defined __GNUC__ && __GNUC__ < 4) || DILL_NO_EXPORTS
#define DILL_EXPORT
#else
#define DILL_EXPORT __attribute__((visibility("default")))
#endif

#if defined __arm__ || defined __thumb__
#define DILL_ALIGN __attribute__((aligned(__SIZEOF_POINTER__)))
#else
#define DILL_ALIGN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Handles ---------------------------------------------------------- */

DILL_EXPORT int dill_hown(int h);
DILL_EXPORT int dill_hclose(int h);

#if !defined DILL_DISABLE_RAW_NAMES
#define hown dill_hown
#define hclose dill_hclose
#endif

/* ---- Coroutines ------------------------------------------------------- */

/* Keeps a coroutine's body out of the launching function (see go(3)).
   GCC's interprocedural analysis would otherwise conclude that pointers
   passed to the coroutine do not escape, and miss writes the coroutine
   makes after it first blocks; noipa (GCC 8+) turns that analysis off. */
#if defined __GNUC__ && !defined __clang__ && __GNUC__ >= 8
#define dill_coroutine __attribute__((noinline, noipa))
#else
#define dill_coroutine __attribute__((noinline))
#endif

/* Written only by the portable stack switch so the compiler keeps it. */
DILL_EXPORT extern volatile void *dill_unoptimisable;

/* The launch protocol: go() calls dill_prologue, saves its own context into
   the buffer the library hands back, moves to the new stack, runs the
   expression and ends in dill_epilogue. */
DILL_EXPORT __attribute__((noinline)) int dill_prologue(sigjmp_buf **ctx,
    void **ptr, size_t len, int bndl, const char *file, int line);
/* Where go() saves its context with sigsetjmp, the compiler must know
   that the path of the new coroutine never comes back from dill_epilogue:
   it would otherwise see both paths out of sigsetjmp meet after go(), and
   may move code from after go() to before the branch, where it runs at the
   launch and again when the launcher resumes (gcc 12 for riscv64 moved a
   loop counter's decrement there). The register-saving asm of x86-64 and
   i386 is not a returns-twice call, and keeps the declaration as it was. */
#if (defined __x86_64__ || defined __i386__) && !defined DILL_ARCH_FALLBACK
DILL_EXPORT __attribute__((noinline)) void dill_epilogue(void);
#else
DILL_EXPORT __attribute__((noinline, noreturn)) void dill_epilogue(void);
#endif

#if defined __x86_64__ && !defined DILL_ARCH_FALLBACK
/* Save rbx, rbp, r12-r15, rsp and the resume address at the buffer in rdx.
   Yields 0 now, 1 when the library resumes it (with rdx = the buffer). */
#define dill_setjmp(ctx) ({ \
    int dill_ret__; \
    __asm__ volatile( \
        "leaq 1f(%%rip), %%rcx\n\t" \
        "xorq %%rax, %%rax\n\t" \
        "movq %%rbx, (%%rdx)\n\t" \
        "movq %%rbp, 8(%%rdx)\n\t" \
        "movq %%r12, 16(%%rdx)\n\t" \
        "movq %%r13, 24(%%rdx)\n\t" \
        "movq %%r14, 32(%%rdx)\n\t" \
        "movq %%r15, 40(%%rdx)\n\t" \
        "movq %%rsp, 48(%%rdx)\n\t" \
        "movq %%rcx, 56(%%rdx)\n\t" \
        "1:\n\t" \
        : "=a" (dill_ret__) \
        : "d" (ctx) \
        : "memory", "cc", "rcx", "rsi", "rdi", "r8", "r9", "r10", "r11", \
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", \
          "xmm15"); \
    dill_ret__; \
})
#define dill_longjmp(ctx) \
    __asm__ volatile( \
        "movq 48(%%rdx), %%rsp\n\t" \
        "movq 40(%%rdx), %%r15\n\t" \
        "movq 32(%%rdx), %%r14\n\t" \
        "movq 24(%%rdx), %%r13\n\t" \
        "movq 16(%%rdx), %%r12\n\t" \
        "movq 8(%%rdx), %%rbp\n\t" \
        "movq (%%rdx), %%rbx\n\t" \
        "movl $1, %%eax\n\t" \
        "jmp *56(%%rdx)\n\t" \
        : : "d" (ctx) : "memory")
/* The dummy alloca makes the frame use rbp, so locals stay reachable. */
#define dill_setsp(x) \
    __asm__ volatile("" : : "r" (alloca(sizeof(size_t)))); \
    __asm__ volatile("movq %0, %%rsp" : : "r" (x) : "memory")
#elif defined __i386__ && !defined DILL_ARCH_FALLBACK
/* Save ebx, esi, edi, ebp, esp and the absolute resume address at the
   buffer in edx. Yields 0 now, 1 when the library resumes it (with edx =
   the buffer). The address comes from a call/pop, so the sequence needs no
   text relocation in a PIE or shared object; ebx (the GOT register under
   -fPIC) is only stored, never clobbered. The original's sequence wrote
   ecx without declaring it; here it is declared, with the x87 stack and
   the SSE registers the library's code may leave changed. */
#if defined __SSE__
#define DILL_I386_SSE_CLOBBERS_ , "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", \
    "xmm5", "xmm6", "xmm7"
#else
#define DILL_I386_SSE_CLOBBERS_
#endif
#define dill_setjmp(ctx) ({ \
    int dill_ret__; \
    __asm__ volatile( \
        "call 1f\n\t" \
        "1:\n\t" \
        "popl %%ecx\n\t" \
        "addl $(2f-1b), %%ecx\n\t" \
        "movl %%ebx, (%%edx)\n\t" \
        "movl %%esi, 4(%%edx)\n\t" \
        "movl %%edi, 8(%%edx)\n\t" \
        "movl %%ebp, 12(%%edx)\n\t" \
        "movl %%esp, 16(%%edx)\n\t" \
        "movl %%ecx, 20(%%edx)\n\t" \
        "xorl %%eax, %%eax\n\t" \
        "2:\n\t" \
        : "=a" (dill_ret__) \
        : "d" (ctx) \
        : "memory", "cc", "ecx", "st", "st(1)", "st(2)", "st(3)", "st(4)", \
          "st(5)", "st(6)", "st(7)" DILL_I386_SSE_CLOBBERS_); \
    dill_ret__; \
})
#define dill_longjmp(ctx) \
    __asm__ volatile( \
        "movl 16(%%edx), %%esp\n\t" \
        "movl 12(%%edx), %%ebp\n\t" \
        "movl 8(%%edx), %%edi\n\t" \
        "movl 4(%%edx), %%esi\n\t" \
        "movl (%%edx), %%ebx\n\t" \
        "movl $1, %%eax\n\t" \
        "jmp *20(%%edx)\n\t" \
        : : "d" (ctx) : "memory")
/* The dummy alloca makes the frame use ebp, so locals stay reachable. */
#define dill_setsp(x) \
    __asm__ volatile("" : : "r" (alloca(sizeof(size_t)))); \
    __asm__ volatile("movl %0, %%esp" : : "r" (x) : "memory")
#else
/* Portable path: a real sigjmp_buf, and a stack move by alloca, which only
   works when the new stack lies below the current one. */
#define dill_setjmp(ctx) sigsetjmp(ctx, 0)
#define dill_longjmp(ctx) siglongjmp(ctx, 1)
#define dill_setsp(x) \
    dill_unoptimisable = alloca((char *)alloca(sizeof(size_t)) - (char *)(x))
#endif

#define dill_go_(fn, ptr, len, bndl) \
    ({ \
        sigjmp_buf *dill_ctx__; \
        void *dill_stk__ = (ptr); \
        int dill_handle__ = dill_prologue(&dill_ctx__, &dill_stk__, (len), \
            (bndl), __FILE__, __LINE__); \
        if(dill_handle__ >= 0) { \
            if(!dill_setjmp(*dill_ctx__)) { \
                dill_setsp(dill_stk__); \
                fn; \
                dill_epilogue(); \
            } \
        } \
        dill_handle__; \
    })

#define dill_go(fn) dill_go_(fn, NULL, 0, -1)
#define dill_go_mem(fn, ptr, len) dill_go_(fn, ptr, len, -1)
#define dill_bundle_go(bndl, fn) dill_go_(fn, NULL, 0, bndl)
#define dill_bundle_go_mem(bndl, fn, ptr, len) dill_go_(fn, ptr, len, bndl)

struct dill_bundle_storage { char _[64]; } DILL_ALIGN;

DILL_EXPORT int dill_bundle(void);
DILL_EXPORT int dill_bundle_mem(struct dill_bundle_storage *mem);
DILL_EXPORT int dill_bundle_wait(int h, int64_t deadline);
DILL_EXPORT int dill_yield(void);

#if !defined DILL_DISABLE_RAW_NAMES
#define coroutine dill_coroutine
#define go dill_go
#define go_mem dill_go_mem
#define bundle_go dill_bundle_go
#define bundle_go_mem dill_bundle_go_mem
#define bundle_storage dill_bundle_storage
#define bundle dill_bundle
#define bundle_mem dill_bundle_mem
#define bundle_wait dill_bundle_wait
#define yield dill_yield
#endif

/* ---- Time and file descriptors ---------------------------------------- */

DILL_EXPORT int dill_fdclean(int fd);
DILL_EXPORT int dill_fdin(int fd, int64_t deadline);
DILL_EXPORT int dill_fdout(int fd, int64_t deadline);
DILL_EXPORT int64_t dill_now(void);
DILL_EXPORT int dill_msleep(int64_t deadline);

#if !defined DILL_DISABLE_RAW_NAMES
#define fdclean dill_fdclean
#define fdin dill_fdin
#define fdout dill_fdout
#define now dill_now
#define msleep dill_msleep
#endif

/* ---- Channels --------------------------------------------------------- */

#define DILL_CHSEND 1
#define DILL_CHRECV 2

struct dill_chclause {
    int op;
    int ch;
    void *val;
    size_t len;
};

struct dill_chstorage { char _[144]; } DILL_ALIGN;

DILL_EXPORT int dill_chmake(int chv[2]);
DILL_EXPORT int dill_chmake_mem(struct dill_chstorage *mem, int chv[2]);
DILL_EXPORT int dill_chsend(int ch, const void *val, size_t len,
    int64_t deadline);
DILL_EXPORT int dill_chrecv(int ch, void *val, size_t len, int64_t deadline);
DILL_EXPORT int dill_chdone(int ch);
DILL_EXPORT int dill_choose(struct dill_chclause *clauses, int nclauses,
    int64_t deadline);

#if !defined DILL_DISABLE_RAW_NAMES
#define CHSEND DILL_CHSEND
#define CHRECV DILL_CHRECV
#define chclause dill_chclause
#define chstorage dill_chstorage
#define chmake dill_chmake
#define chmake_mem dill_chmake_mem
#define chsend dill_chsend
#define chrecv dill_chrecv
#define chdone dill_chdone
#define choose dill_choose
#endif


/* ---- Sockets ---------------------------------------------------------- */

#if !defined DILL_DISABLE_SOCKETS

struct sockaddr;

/* One piece of a scattered buffer; a list ends at the element whose
   iol_next is NULL. iol_rsvd must be 0. */
struct dill_iolist {
    void *iol_base;
    size_t iol_len;
    struct dill_iolist *iol_next;
    int iol_rsvd;
};

/* Bytestream sockets: all-or-nothing sends and receives. */
DILL_EXPORT int dill_bsend(int s, const void *buf, size_t len,
    int64_t deadline);
DILL_EXPORT int dill_brecv(int s, void *buf, size_t len, int64_t deadline);
DILL_EXPORT int dill_bsendl(int s, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);
DILL_EXPORT int dill_brecvl(int s, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);

/* Message sockets: one message per call. */
DILL_EXPORT int dill_msend(int s, const void *buf, size_t len,
    int64_t deadline);
DILL_EXPORT ssize_t dill_mrecv(int s, void *buf, size_t len,
    int64_t deadline);
DILL_EXPORT int dill_msendl(int s, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);
DILL_EXPORT ssize_t dill_mrecvl(int s, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);

/* IP addresses: a sockaddr_in or sockaddr_in6 in 32 bytes. */
#define DILL_IPADDR_IPV4 1
#define DILL_IPADDR_IPV6 2
#define DILL_IPADDR_PREF_IPV4 3
#define DILL_IPADDR_PREF_IPV6 4
#define DILL_IPADDR_MAXSTRLEN 46

struct dill_ipaddr { char _[32]; };

DILL_EXPORT int dill_ipaddr_local(struct dill_ipaddr *addr, const char *name,
    int port, int mode);
DILL_EXPORT int dill_ipaddr_remote(struct dill_ipaddr *addr,
    const char *name, int port, int mode, int64_t deadline);
DILL_EXPORT int dill_ipaddr_remotes(struct dill_ipaddr *addrs, int naddrs,
    const char *name, int port, int mode, int64_t deadline);
DILL_EXPORT const char *dill_ipaddr_str(const struct dill_ipaddr *addr,
    char *ipstr);
DILL_EXPORT int dill_ipaddr_family(const struct dill_ipaddr *addr);
DILL_EXPORT const struct sockaddr *dill_ipaddr_sockaddr(
    const struct dill_ipaddr *addr);
DILL_EXPORT int dill_ipaddr_len(const struct dill_ipaddr *addr);
DILL_EXPORT int dill_ipaddr_port(const struct dill_ipaddr *addr);
DILL_EXPORT void dill_ipaddr_setport(struct dill_ipaddr *addr, int port);
DILL_EXPORT int dill_ipaddr_equal(const struct dill_ipaddr *addr1,
    const struct dill_ipaddr *addr2, int ignore_port);

/* TCP. */
struct dill_tcp_listener_storage { char _[56]; } DILL_ALIGN;
struct dill_tcp_storage { char _[72]; } DILL_ALIGN;

DILL_EXPORT int dill_tcp_listen(struct dill_ipaddr *addr, int backlog);
DILL_EXPORT int dill_tcp_listen_mem(struct dill_ipaddr *addr, int backlog,
    struct dill_tcp_listener_storage *mem);
DILL_EXPORT int dill_tcp_accept(int s, struct dill_ipaddr *addr,
    int64_t deadline);
DILL_EXPORT int dill_tcp_accept_mem(int s, struct dill_ipaddr *addr,
    struct dill_tcp_storage *mem, int64_t deadline);
DILL_EXPORT int dill_tcp_connect(const struct dill_ipaddr *addr,
    int64_t deadline);
DILL_EXPORT int dill_tcp_connect_mem(const struct dill_ipaddr *addr,
    struct dill_tcp_storage *mem, int64_t deadline);
DILL_EXPORT int dill_tcp_done(int s, int64_t deadline);
DILL_EXPORT int dill_tcp_close(int s, int64_t deadline);
DILL_EXPORT int dill_tcp_listener_fromfd(int fd);
DILL_EXPORT int dill_tcp_listener_fromfd_mem(int fd,
    struct dill_tcp_listener_storage *mem);
DILL_EXPORT int dill_tcp_fromfd(int fd);
DILL_EXPORT int dill_tcp_fromfd_mem(int fd, struct dill_tcp_storage *mem);

/* IPC: UNIX-domain stream sockets. */
struct dill_ipc_listener_storage { char _[24]; } DILL_ALIGN;
struct dill_ipc_storage { char _[72]; } DILL_ALIGN;
struct dill_ipc_pair_storage { char _[144]; } DILL_ALIGN;

DILL_EXPORT int dill_ipc_listen(const char *addr, int backlog);
DILL_EXPORT int dill_ipc_listen_mem(const char *addr, int backlog,
    struct dill_ipc_listener_storage *mem);
DILL_EXPORT int dill_ipc_accept(int s, int64_t deadline);
DILL_EXPORT int dill_ipc_accept_mem(int s, struct dill_ipc_storage *mem,
    int64_t deadline);
DILL_EXPORT int dill_ipc_connect(const char *addr, int64_t deadline);
DILL_EXPORT int dill_ipc_connect_mem(const char *addr,
    struct dill_ipc_storage *mem, int64_t deadline);
DILL_EXPORT int dill_ipc_sendfd(int s, int fd, int64_t deadline);
DILL_EXPORT int dill_ipc_recvfd(int s, int64_t deadline);
DILL_EXPORT int dill_ipc_done(int s, int64_t deadline);
DILL_EXPORT int dill_ipc_close(int s, int64_t deadline);
DILL_EXPORT int dill_ipc_listener_fromfd(int fd);
DILL_EXPORT int dill_ipc_listener_fromfd_mem(int fd,
    struct dill_ipc_listener_storage *mem);
DILL_EXPORT int dill_ipc_fromfd(int fd);
DILL_EXPORT int dill_ipc_fromfd_mem(int fd, struct dill_ipc_storage *mem);
DILL_EXPORT int dill_ipc_pair(int s[2]);
DILL_EXPORT int dill_ipc_pair_mem(struct dill_ipc_pair_storage *mem,
    int s[2]);

/* UDP. */
struct dill_udp_storage { char _[72]; } DILL_ALIGN;

DILL_EXPORT int dill_udp_open(struct dill_ipaddr *local,
    const struct dill_ipaddr *remote);
DILL_EXPORT int dill_udp_open_mem(struct dill_ipaddr *local,
    const struct dill_ipaddr *remote, struct dill_udp_storage *mem);
DILL_EXPORT int dill_udp_send(int s, const struct dill_ipaddr *addr,
    const void *buf, size_t len);
DILL_EXPORT ssize_t dill_udp_recv(int s, struct dill_ipaddr *addr, void *buf,
    size_t len, int64_t deadline);
DILL_EXPORT int dill_udp_sendl(int s, const struct dill_ipaddr *addr,
    struct dill_iolist *first, struct dill_iolist *last);
DILL_EXPORT ssize_t dill_udp_recvl(int s, struct dill_ipaddr *addr,
    struct dill_iolist *first, struct dill_iolist *last, int64_t deadline);

/* PREFIX: messages framed by a length header, over any bytestream. */
#define DILL_PREFIX_BIG_ENDIAN 0
#define DILL_PREFIX_LITTLE_ENDIAN 1

struct dill_prefix_storage { char _[56]; } DILL_ALIGN;

DILL_EXPORT int dill_prefix_attach(int s, size_t hdrlen, int flags);
DILL_EXPORT int dill_prefix_attach_mem(int s, size_t hdrlen, int flags,
    struct dill_prefix_storage *mem);
DILL_EXPORT int dill_prefix_detach(int s);

/* SUFFIX: messages ended by a delimiter, over any bytestream. */
struct dill_suffix_storage { char _[128]; } DILL_ALIGN;

DILL_EXPORT int dill_suffix_attach(int s, const void *suffix,
    size_t suffixlen);
DILL_EXPORT int dill_suffix_attach_mem(int s, const void *suffix,
    size_t suffixlen, struct dill_suffix_storage *mem);
DILL_EXPORT int dill_suffix_detach(int s, int64_t deadline);

/* TERM: a terminal message that ends each direction of a message socket. */
struct dill_term_storage { char _[88]; } DILL_ALIGN;

DILL_EXPORT int dill_term_attach(int s, const void *buf, size_t len);
DILL_EXPORT int dill_term_attach_mem(int s, const void *buf, size_t len,
    struct dill_term_storage *mem);
DILL_EXPORT int dill_term_done(int s, int64_t deadline);
DILL_EXPORT int dill_term_detach(int s, int64_t deadline);

/* HTTP/1.1 request and response heads. */
struct dill_http_storage { char _[1296]; } DILL_ALIGN;

DILL_EXPORT int dill_http_attach(int s);
DILL_EXPORT int dill_http_attach_mem(int s, struct dill_http_storage *mem);
DILL_EXPORT int dill_http_done(int s, int64_t deadline);
DILL_EXPORT int dill_http_detach(int s, int64_t deadline);
DILL_EXPORT int dill_http_sendrequest(int s, const char *command,
    const char *resource, int64_t deadline);
DILL_EXPORT int dill_http_recvrequest(int s, char *command, size_t commandlen,
    char *resource, size_t resourcelen, int64_t deadline);
DILL_EXPORT int dill_http_sendstatus(int s, int status, const char *reason,
    int64_t deadline);
DILL_EXPORT int dill_http_recvstatus(int s, char *reason, size_t reasonlen,
    int64_t deadline);
DILL_EXPORT int dill_http_sendfield(int s, const char *name,
    const char *value, int64_t deadline);
DILL_EXPORT int dill_http_recvfield(int s, char *name, size_t namelen,
    char *value, size_t valuelen, int64_t deadline);

#if !defined DILL_DISABLE_TLS

/* TLS over any bytestream (built with --enable-tls). */
struct dill_tls_storage { char _[72]; } DILL_ALIGN;

DILL_EXPORT int dill_tls_attach_server(int s, const char *cert,
    const char *pkey, int64_t deadline);
DILL_EXPORT int dill_tls_attach_server_mem(int s, const char *cert,
    const char *pkey, struct dill_tls_storage *mem, int64_t deadline);
DILL_EXPORT int dill_tls_attach_client(int s, int64_t deadline);
DILL_EXPORT int dill_tls_attach_client_mem(int s,
    struct dill_tls_storage *mem, int64_t deadline);
DILL_EXPORT int dill_tls_done(int s, int64_t deadline);
DILL_EXPORT int dill_tls_detach(int s, int64_t deadline);

/* DTLS over any message socket (built with --enable-tls). */
struct dill_dtls_storage { char _[88]; } DILL_ALIGN;

DILL_EXPORT int dill_dtls_attach_server(int s, const char *cert,
    const char *pkey, int64_t deadline);
DILL_EXPORT int dill_dtls_attach_server_mem(int s, const char *cert,
    const char *pkey, struct dill_dtls_storage *mem, int64_t deadline);
DILL_EXPORT int dill_dtls_attach_client(int s, int64_t deadline);
DILL_EXPORT int dill_dtls_attach_client_mem(int s,
    struct dill_dtls_storage *mem, int64_t deadline);
DILL_EXPORT int dill_dtls_done(int s, int64_t deadline);
DILL_EXPORT int dill_dtls_detach(int s, int64_t deadline);

#endif /* !DILL_DISABLE_TLS */

/* WebSockets (RFC 6455), with or without the HTTP opening handshake. */
#define DILL_WS_BINARY 0
#define DILL_WS_TEXT 1
#define DILL_WS_NOHTTP 2

/* Room for a key and its NUL; the only name of this macro. */
#define WS_KEY_SIZE 32

struct dill_ws_storage { char _[176]; } DILL_ALIGN;

DILL_EXPORT int dill_ws_attach_client(int s, int flags, const char *resource,
    const char *host, int64_t deadline);
DILL_EXPORT int dill_ws_attach_client_mem(int s, int flags,
    const char *resource, const char *host, struct dill_ws_storage *mem,
    int64_t deadline);
DILL_EXPORT int dill_ws_attach_server(int s, int flags, char *resource,
    size_t resourcelen, char *host, size_t hostlen, int64_t deadline);
DILL_EXPORT int dill_ws_attach_server_mem(int s, int flags, char *resource,
    size_t resourcelen, char *host, size_t hostlen,
    struct dill_ws_storage *mem, int64_t deadline);
DILL_EXPORT int dill_ws_send(int s, int flags, const void *buf, size_t len,
    int64_t deadline);
DILL_EXPORT ssize_t dill_ws_recv(int s, int *flags, void *buf, size_t len,
    int64_t deadline);
DILL_EXPORT int dill_ws_sendl(int s, int flags, struct dill_iolist *first,
    struct dill_iolist *last, int64_t deadline);
DILL_EXPORT ssize_t dill_ws_recvl(int s, int *flags,
    struct dill_iolist *first, struct dill_iolist *last, int64_t deadline);
DILL_EXPORT int dill_ws_done(int s, int status, const void *buf, size_t len,
    int64_t deadline);
DILL_EXPORT int dill_ws_detach(int s, int status, const void *buf,
    size_t len, int64_t deadline);
DILL_EXPORT ssize_t dill_ws_status(int s, int *status, void *buf,
    size_t len);
DILL_EXPORT int dill_ws_request_key(char *request_key);
DILL_EXPORT int dill_ws_response_key(const char *request_key,
    char *response_key);

/* SOCKS5 (RFC 1928, RFC 1929 authentication), in place on a bytestream. */
#define DILL_SOCKS5_CONNECT (0x01)
#define DILL_SOCKS5_BIND (0x02)
#define DILL_SOCKS5_UDP_ASSOCIATE (0x03)

#define DILL_SOCKS5_SUCCESS (0x00)
#define DILL_SOCKS5_GENERAL_FAILURE (0x01)
#define DILL_SOCKS5_CONNECTION_NOT_ALLOWED (0x02)
#define DILL_SOCKS5_NETWORK_UNREACHABLE (0x03)
#define DILL_SOCKS5_HOST_UNREACHABLE (0x04)
#define DILL_SOCKS5_CONNECTION_REFUSED (0x05)
#define DILL_SOCKS5_TTL_EXPIRED (0x06)
#define DILL_SOCKS5_COMMAND_NOT_SUPPORTED (0x07)
#define DILL_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED (0x08)

/* A proxy's check of a username and password: non-zero accepts. */
typedef int dill_socks5_auth_function(const char *username,
    const char *password);

DILL_EXPORT int dill_socks5_client_connect(int s, const char *username,
    const char *password, struct dill_ipaddr *addr, int64_t deadline);
DILL_EXPORT int dill_socks5_client_connectbyname(int s, const char *username,
    const char *password, const char *hostname, int port, int64_t deadline);
DILL_EXPORT int dill_socks5_proxy_auth(int s,
    dill_socks5_auth_function *auth_fn, int64_t deadline);
DILL_EXPORT int dill_socks5_proxy_recvcommand(int s,
    struct dill_ipaddr *ipaddr, int64_t deadline);
DILL_EXPORT int dill_socks5_proxy_recvcommandbyname(int s, char *host,
    int *port, int64_t deadline);
DILL_EXPORT int dill_socks5_proxy_sendreply(int s, int reply,
    struct dill_ipaddr *ipaddr, int64_t deadline);

/* Happy eyeballs (RFC 8305): a TCP connection to a name, IPv6 and IPv4
   raced. */
DILL_EXPORT int dill_happyeyeballs_connect(const char *name, int port,
    int64_t deadline);

#if !defined DILL_DISABLE_RAW_NAMES
#define PREFIX_BIG_ENDIAN DILL_PREFIX_BIG_ENDIAN
#define PREFIX_LITTLE_ENDIAN DILL_PREFIX_LITTLE_ENDIAN
#define prefix_storage dill_prefix_storage
#define prefix_attach dill_prefix_attach
#define prefix_attach_mem dill_prefix_attach_mem
#define prefix_detach dill_prefix_detach
#define suffix_storage dill_suffix_storage
#define suffix_attach dill_suffix_attach
#define suffix_attach_mem dill_suffix_attach_mem
#define suffix_detach dill_suffix_detach
#define term_storage dill_term_storage
#define term_attach dill_term_attach
#define term_attach_mem dill_term_attach_mem
#define term_done dill_term_done
#define term_detach dill_term_detach
#define http_storage dill_http_storage
#define http_attach dill_http_attach
#define http_attach_mem dill_http_attach_mem
#define http_done dill_http_done
#define http_detach dill_http_detach
#define http_sendrequest dill_http_sendrequest
#define http_recvrequest dill_http_recvrequest
#define http_sendstatus dill_http_sendstatus
#define http_recvstatus dill_http_recvstatus
#define http_sendfield dill_http_sendfield
#define http_recvfield dill_http_recvfield
#define WS_BINARY DILL_WS_BINARY
#define WS_TEXT DILL_WS_TEXT
#define WS_NOHTTP DILL_WS_NOHTTP
#define ws_storage dill_ws_storage
#define ws_attach_client dill_ws_attach_client
#define ws_attach_client_mem dill_ws_attach_client_mem
#define ws_attach_server dill_ws_attach_server
#define ws_attach_server_mem dill_ws_attach_server_mem
#define ws_send dill_ws_send
#define ws_recv dill_ws_recv
#define ws_sendl dill_ws_sendl
#define ws_recvl dill_ws_recvl
#define ws_done dill_ws_done
#define ws_detach dill_ws_detach
#define ws_status dill_ws_status
#define ws_request_key dill_ws_request_key
#define ws_response_key dill_ws_response_key
#define SOCKS5_CONNECT DILL_SOCKS5_CONNECT
#define SOCKS5_BIND DILL_SOCKS5_BIND
#define SOCKS5_UDP_ASSOCIATE DILL_SOCKS5_UDP_ASSOCIATE
#define SOCKS5_SUCCESS DILL_SOCKS5_SUCCESS
#define SOCKS5_GENERAL_FAILURE DILL_SOCKS5_GENERAL_FAILURE
#define SOCKS5_CONNECTION_NOT_ALLOWED DILL_SOCKS5_CONNECTION_NOT_ALLOWED
#define SOCKS5_NETWORK_UNREACHABLE DILL_SOCKS5_NETWORK_UNREACHABLE
#define SOCKS5_HOST_UNREACHABLE DILL_SOCKS5_HOST_UNREACHABLE
#define SOCKS5_CONNECTION_REFUSED DILL_SOCKS5_CONNECTION_REFUSED
#define SOCKS5_TTL_EXPIRED DILL_SOCKS5_TTL_EXPIRED
#define SOCKS5_COMMAND_NOT_SUPPORTED DILL_SOCKS5_COMMAND_NOT_SUPPORTED
#define SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED DILL_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED
#define socks5_client_connect dill_socks5_client_connect
#define socks5_client_connectbyname dill_socks5_client_connectbyname
#define socks5_proxy_auth dill_socks5_proxy_auth
#define socks5_proxy_recvcommand dill_socks5_proxy_recvcommand
#define socks5_proxy_recvcommandbyname dill_socks5_proxy_recvcommandbyname
#define socks5_proxy_sendreply dill_socks5_proxy_sendreply
#define happyeyeballs_connect dill_happyeyeballs_connect
#if !defined DILL_DISABLE_TLS
#define tls_storage dill_tls_storage
#define tls_attach_server dill_tls_attach_server
#define tls_attach_server_mem dill_tls_attach_server_mem
#define tls_attach_client dill_tls_attach_client
#define tls_attach_client_mem dill_tls_attach_client_mem
#define tls_done dill_tls_done
#define tls_detach dill_tls_detach
#define dtls_storage dill_dtls_storage
#define dtls_attach_server dill_dtls_attach_server
#define dtls_attach_server_mem dill_dtls_attach_server_mem
#define dtls_attach_client dill_dtls_attach_client
#define dtls_attach_client_mem dill_dtls_attach_client_mem
#define dtls_done dill_dtls_done
#define dtls_detach dill_dtls_detach
#endif
#endif

#if !defined DILL_DISABLE_RAW_NAMES
#define IPADDR_IPV4 DILL_IPADDR_IPV4
#define IPADDR_IPV6 DILL_IPADDR_IPV6
#define IPADDR_PREF_IPV4 DILL_IPADDR_PREF_IPV4
#define IPADDR_PREF_IPV6 DILL_IPADDR_PREF_IPV6
#define IPADDR_MAXSTRLEN DILL_IPADDR_MAXSTRLEN
#define ipaddr dill_ipaddr
#define ipaddr_local dill_ipaddr_local
#define ipaddr_remote dill_ipaddr_remote
#define ipaddr_remotes dill_ipaddr_remotes
#define ipaddr_str dill_ipaddr_str
#define ipaddr_family dill_ipaddr_family
#define ipaddr_sockaddr dill_ipaddr_sockaddr
#define ipaddr_len dill_ipaddr_len
#define ipaddr_port dill_ipaddr_port
#define ipaddr_setport dill_ipaddr_setport
#define ipaddr_equal dill_ipaddr_equal
#define tcp_listener_storage dill_tcp_listener_storage
#define tcp_storage dill_tcp_storage
#define tcp_listen dill_tcp_listen
#define tcp_listen_mem dill_tcp_listen_mem
#define tcp_accept dill_tcp_accept
#define tcp_accept_mem dill_tcp_accept_mem
#define tcp_connect dill_tcp_connect
#define tcp_connect_mem dill_tcp_connect_mem
#define tcp_done dill_tcp_done
#define tcp_close dill_tcp_close
#define tcp_listener_fromfd dill_tcp_listener_fromfd
#define tcp_listener_fromfd_mem dill_tcp_listener_fromfd_mem
#define tcp_fromfd dill_tcp_fromfd
#define tcp_fromfd_mem dill_tcp_fromfd_mem
#define ipc_listener_storage dill_ipc_listener_storage
#define ipc_storage dill_ipc_storage
#define ipc_pair_storage dill_ipc_pair_storage
#define ipc_listen dill_ipc_listen
#define ipc_listen_mem dill_ipc_listen_mem
#define ipc_accept dill_ipc_accept
#define ipc_accept_mem dill_ipc_accept_mem
#define ipc_connect dill_ipc_connect
#define ipc_connect_mem dill_ipc_connect_mem
#define ipc_sendfd dill_ipc_sendfd
#define ipc_recvfd dill_ipc_recvfd
#define ipc_done dill_ipc_done
#define ipc_close dill_ipc_close
#define ipc_listener_fromfd dill_ipc_listener_fromfd
#define ipc_listener_fromfd_mem dill_ipc_listener_fromfd_mem
#define ipc_fromfd dill_ipc_fromfd
#define ipc_fromfd_mem dill_ipc_fromfd_mem
#define ipc_pair dill_ipc_pair
#define ipc_pair_mem dill_ipc_pair_mem
#define udp_storage dill_udp_storage
#define udp_open dill_udp_open
#define udp_open_mem dill_udp_open_mem
#define udp_send dill_udp_send
#define udp_recv dill_udp_recv
#define udp_sendl dill_udp_sendl
#define udp_recvl dill_udp_recvl
#endif

#if !defined DILL_DISABLE_RAW_NAMES
#define iolist dill_iolist
#define bsend dill_bsend
#define brecv dill_brecv
#define bsendl dill_bsendl
#define brecvl dill_brecvl
#define msend dill_msend
#define mrecv dill_mrecv
#define msendl dill_msendl
#define mrecvl dill_mrecvl
#endif

#endif /* !DILL_DISABLE_SOCKETS */

#ifdef __cplusplus
}
#endif

#endif
