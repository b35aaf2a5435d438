/*
 * fuzz/tls.c: TLS and DTLS handshakes (tlsbio.c, tls.c, dtls.c) fed by a
 * peer that sends the fuzzer's input: the first byte picks our client or
 * our server, over a bytestream (TLS) or a message socket (DTLS, whose
 * datagrams are cut from the input by a 2-byte length before each). What
 * is checked: no crash, leak, sanitizer report or hang, and that a failed
 * handshake fails with an errno the man pages list. The record parsing is
 * OpenSSL's; what this exercises is ours: the BIO that hands out exactly
 * what OpenSSL asks for, the output queue, the DTLS timer loop, the error
 * mapping and the cleanup. Needs a --enable-tls build (FUZZ_NEEDS_TLS:
 * fuzz/run.sh skips it otherwise).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libdillimpl.h"
#include "memsock.h"

/* A message socket whose peer sends the datagrams cut from the input;
   sends are thrown away. */
struct memdgram {
    struct dill_hvfs hvfs;
    struct dill_msock_vfs mvfs;
    const uint8_t *data;
    size_t len;
    size_t pos;
};

static void *memdgram_query(struct dill_hvfs *hvfs, const void *type) {
    struct memdgram *m = (struct memdgram *)hvfs;
    if(type == dill_msock_type) return &m->mvfs;
    errno = ENOTSUP;
    return NULL;
}

static void memdgram_close(struct dill_hvfs *hvfs) {
    free(hvfs);
}

static int memdgram_msendl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    (void)mvfs;
    (void)first;
    (void)last;
    (void)deadline;
    return 0;
}

static ssize_t memdgram_mrecvl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    (void)last;
    (void)deadline;
    struct memdgram *m = (struct memdgram *)((char *)mvfs -
        offsetof(struct memdgram, mvfs));
    if(m->len - m->pos < 2) {
        m->pos = m->len;
        errno = EPIPE;
        return -1;
    }
    size_t n = (size_t)m->data[m->pos] << 8 | m->data[m->pos + 1];
    m->pos += 2;
    if(n > m->len - m->pos) n = m->len - m->pos;
    size_t room = first ? first->iol_len : 0;
    size_t copy = n < room ? n : room;
    if(first && first->iol_base) memcpy(first->iol_base, m->data + m->pos, copy);
    m->pos += n;
    /* A UDP socket truncates what does not fit. */
    return (ssize_t)copy;
}

static int memdgram_make(const uint8_t *data, size_t len) {
    struct memdgram *m = calloc(1, sizeof(*m));
    if(!m) abort();
    m->hvfs.query = memdgram_query;
    m->hvfs.close = memdgram_close;
    m->mvfs.msendl = memdgram_msendl;
    m->mvfs.mrecvl = memdgram_mrecvl;
    m->data = data;
    m->len = len;
    int h = dill_hmake(&m->hvfs);
    if(h < 0) abort();
    return h;
}

static const char cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBdTCCARugAwIBAgIUDQFbUBfNX1g1OsCGeD8K8lkil10wCgYIKoZIzj0EAwIw\n"
    "DzENMAsGA1UEAwwEZnV6ejAgFw0yNjEyMDIxMjMyNTdaGA8yMTI2MTEwODEyMzI1\n"
    "N1owDzENMAsGA1UEAwwEZnV6ejBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEWQ\n"
    "jzPUQtEO0qWlRVjw0kPXZrLi39K9DwtrdgNr+jnRe+Ha8vzGQ6xpl0GXrdnwZXi9\n"
    "HQoLw+vEKkol2yNFV7yjUzBRMB0GA1UdDgQWBBQfvL4dtI8rJCy88CRF1z08DdTr\n"
    "uTAfBgNVHSMEGDAWgBQfvL4dtI8rJCy88CRF1z08DdTruTAPBgNVHRMBAf8EBTAD\n"
    "AQH/MAoGCCqGSM49BAMCA0gAMEUCIDHZAwDdrpdzdD5IHpzqTDv8XGWOigfg45I4\n"
    "rh9EEoShAiEAkeEB9am6yDtV3adqNVr6AkuqxrsmRRrx757dw31feiw=\n"
    "-----END CERTIFICATE-----\n";
static const char key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+gs4pM+zwhYxrf1l\n"
    "x7ln1653JETdEuzjI0NvmX6AsSOhRANCAARFkI8z1ELRDtKlpUVY8NJD12ay4t/S\n"
    "vQ8La3YDa/o50Xvh2vL8xkOsaZdBl63Z8GV4vR0KC8PrxCpKJdsjRVe8\n"
    "-----END PRIVATE KEY-----\n";
static char cert[64], key[64];

static void write_file(char *path, const char *text) {
    snprintf(path, 64, "/tmp/dill-fuzz-XXXXXX");
    int fd = mkstemp(path);
    if(fd < 0) abort();
    size_t len = strlen(text);
    if(write(fd, text, len) != (ssize_t)len) abort();
    close(fd);
}

static void remove_files(void) {
    unlink(cert);
    unlink(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    write_file(cert, cert_pem);
    write_file(key, key_pem);
    atexit(remove_files);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if(size < 1) return 0;
    int mode = data[0] & 3;
    data++;
    size--;
    int dtls = mode & 2;
    int s = dtls ? memdgram_make(data, size) : memsock_make(data, size);
    int h;
    switch(mode) {
    case 0: h = dill_tls_attach_client(s, -1); break;
    case 1: h = dill_tls_attach_server(s, cert, key, -1); break;
    case 2: h = dill_dtls_attach_client(s, -1); break;
    default: h = dill_dtls_attach_server(s, cert, key, -1); break;
    }
    if(h < 0) {
        /* What a handshake over a peer that cannot block may end with. */
        if(errno != EFAULT && errno != EPIPE && errno != ETIMEDOUT &&
           errno != EMSGSIZE && errno != ENOMEM) abort();
        return 0;
    }
    /* Forged handshakes cannot succeed; if one does, read to the end. */
    char buf[64];
    if(dtls) dill_mrecv(h, buf, sizeof(buf), -1);
    else dill_brecv(h, buf, sizeof(buf), -1);
    dill_hclose(h);
    return 0;
}
