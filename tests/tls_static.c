/*
 * tests/tls_static.c: a --enable-tls libdill links into a fully static
 * program with what its pkg-config file says. Builds, with the compiler
 * and CFLAGS of this build, a program that runs a TLS handshake and an
 * exchange between our client and our server over ipc_pair, linked with
 * `-static` and `pkg-config --static --cflags --libs libdill` (the
 * libdill.pc of this build, pointed at this build's .libs and headers:
 * Requires.private brings in openssl's static dependencies); checks that
 * the result has no program interpreter and no dynamic section (a fully
 * static ELF file), runs it and checks its output. glibc warns at link time
 * that libcrypto's getaddrinfo/dlopen need the shared glibc at run time
 * when used; OpenSSL only uses them for features we do not touch.
 *
 * A build with -fsanitize cannot link statically (the sanitizer runtimes
 * exist only as shared libraries for this): the test says so and reports
 * SKIP (exit 77). A build with --disable-static has no libdill.a: the test
 * fails saying so. Needs pkg-config, the static OpenSSL libraries
 * (libssl-dev) and the openssl command (for the certificate).
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#ifndef TEST_CC
#error "tests/tls.mk defines TEST_CC, TEST_CFLAGS, TEST_SRCDIR, TEST_BUILDDIR"
#endif

static const char program[] =
    "#include <libdill.h>\n"
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "static const char *cert, *key;\n"
    "coroutine static void server(int s) {\n"
    "    s = tls_attach_server(s, cert, key, now() + 10000);\n"
    "    char buf[6];\n"
    "    if(s < 0 || brecv(s, buf, 6, now() + 10000) < 0) return;\n"
    "    bsend(s, buf, 6, now() + 10000);\n"
    "    hclose(s);\n"
    "}\n"
    "int main(int argc, char **argv) {\n"
    "    if(argc != 3) return 2;\n"
    "    cert = argv[1];\n"
    "    key = argv[2];\n"
    "    int p[2];\n"
    "    if(ipc_pair(p) < 0) return 1;\n"
    "    int b = bundle();\n"
    "    if(b < 0 || bundle_go(b, server(p[1])) < 0) return 1;\n"
    "    int s = tls_attach_client(p[0], now() + 10000);\n"
    "    char buf[6];\n"
    "    if(s < 0 || bsend(s, \"static\", 6, now() + 10000) < 0 ||\n"
    "       brecv(s, buf, 6, now() + 10000) < 0) { perror(\"tls\"); return 1; }\n"
    "    printf(\"%.6s over TLS\\n\", buf);\n"
    "    hclose(s);\n"
    "    hclose(b);\n"
    "    return 0;\n"
    "}\n";

/* Whether the ELF file at path asks for no dynamic linking at all. */
static int fully_static(const char *path) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    Elf64_Ehdr eh;
    CHECK(fread(&eh, sizeof(eh), 1, f) == 1);
    CHECK(memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0);
    CHECK(eh.e_ident[EI_CLASS] == ELFCLASS64);
    int dynamic = 0;
    for(int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        CHECK(fseek(f, (long)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize),
            SEEK_SET) == 0);
        CHECK(fread(&ph, sizeof(ph), 1, f) == 1);
        if(ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC) dynamic = 1;
    }
    fclose(f);
    return !dynamic;
}

static void run(const char *cmd) {
    fprintf(stderr, "+ %s\n", cmd);
    int rc = system(cmd);
    if(rc != 0) {
        fprintf(stderr, "FAIL: the command above failed (status %d)\n", rc);
        exit(1);
    }
}

int main(void) {
    if(strstr(TEST_CFLAGS, "-fsanitize")) {
        fprintf(stderr, "SKIP: this build uses -fsanitize (%s); the sanitizer "
            "runtimes cannot be linked into a static program\n", TEST_CFLAGS);
        return 77;
    }
    if(access(TEST_BUILDDIR "/.libs/libdill.a", R_OK) != 0) {
        fprintf(stderr, "FAIL: no %s/.libs/libdill.a: configure without "
            "--disable-static to test static linking\n", TEST_BUILDDIR);
        return 1;
    }
    if(system("command -v pkg-config >/dev/null") != 0) {
        fprintf(stderr, "FAIL: pkg-config is not installed: "
            "apt-get install pkg-config\n");
        return 1;
    }
    if(system("command -v openssl >/dev/null") != 0) {
        fprintf(stderr, "FAIL: openssl is not installed: "
            "apt-get install openssl\n");
        return 1;
    }
    const char *dir = "tests/tls_static.tmp";
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
    run(cmd);
    char src[256];
    snprintf(src, sizeof(src), "%s/prog.c", dir);
    FILE *f = fopen(src, "w");
    CHECK(f != NULL);
    CHECK(fputs(program, f) >= 0);
    CHECK(fclose(f) == 0);
    snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout %s/key.pem -out "
        "%s/cert.pem -days 2 -subj /CN=localhost 2>/dev/null", dir, dir);
    run(cmd);
    /* This build's libdill.pc, with libdir and includedir pointed at the
       build instead of the install prefix (a copy: --define-variable would
       change openssl's libdir too). */
    snprintf(cmd, sizeof(cmd), "sed -e 's|^libdir=.*|libdir=%s/.libs|' "
        "-e 's|^includedir=.*|includedir=%s|' %s/libdill.pc > %s/libdill.pc",
        TEST_BUILDDIR, TEST_SRCDIR, TEST_BUILDDIR, dir);
    run(cmd);
    char pc[1024];
    snprintf(pc, sizeof(pc), "PKG_CONFIG_PATH=%s pkg-config --static "
        "--cflags --libs libdill", dir);
    snprintf(cmd, sizeof(cmd), "echo \"flags: $(%s)\" >&2 && "
        "%s %s -static -o %s/prog %s $(%s)", pc, TEST_CC, TEST_CFLAGS, dir,
        src, pc);
    run(cmd);
    char prog[256];
    snprintf(prog, sizeof(prog), "%s/prog", dir);
    CHECK(fully_static(prog));
    snprintf(cmd, sizeof(cmd), "%s %s/cert.pem %s/key.pem > %s/out.txt",
        prog, dir, dir, dir);
    run(cmd);
    char out[64] = {0};
    snprintf(src, sizeof(src), "%s/out.txt", dir);
    f = fopen(src, "r");
    CHECK(f != NULL);
    CHECK(fread(out, 1, sizeof(out) - 1, f) > 0);
    fclose(f);
    CHECK(strcmp(out, "static over TLS\n") == 0);
    return 0;
}
