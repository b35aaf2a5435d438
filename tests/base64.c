/*
 * tests/base64.c: base64 (base64.c) against the test vectors of RFC 4648
 * §10 both ways, the whole alphabet, every byte value, output buffers one
 * byte too small (nothing written), and the lenient decoding WebSocket
 * keys get: whitespace skipped, decoding stopping at = or at a character
 * outside the alphabet, leftover bits dropped, and output limits.
 */
#include <stdint.h>
#include <string.h>

#include "base64.h"
#include "check.h"

static void test_rfc4648(void) {
    static const char *v[][2] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for(size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t len = strlen(v[i][0]);
        char out[16];
        memset(out, 'x', sizeof(out));
        CHECK(dill_base64_encode((const uint8_t *)v[i][0], len, out,
            sizeof(out)) == (long)strlen(v[i][1]));
        CHECK(strcmp(out, v[i][1]) == 0);
        CHECK(DILL_BASE64_LEN(len) == strlen(v[i][1]));
        /* Exactly big enough, and one byte short. */
        CHECK(dill_base64_encode((const uint8_t *)v[i][0], len, out,
            strlen(v[i][1]) + 1) == (long)strlen(v[i][1]));
        memset(out, 'x', sizeof(out));
        CHECK(dill_base64_encode((const uint8_t *)v[i][0], len, out,
            strlen(v[i][1])) == -1);
        CHECK(out[0] == 'x');
        uint8_t back[16];
        CHECK(dill_base64_decode(v[i][1], back, sizeof(back)) == (long)len);
        CHECK(memcmp(back, v[i][0], len) == 0);
    }
}

static void test_all_bytes(void) {
    uint8_t in[256];
    for(int i = 0; i < 256; i++) in[i] = (uint8_t)i;
    char enc[DILL_BASE64_LEN(256) + 1];
    CHECK(dill_base64_encode(in, 256, enc, sizeof(enc)) == 344);
    CHECK(strncmp(enc, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",
        44) == 0);
    CHECK(strcmp(enc + 336, "/P3+/w==") == 0);
    uint8_t back[256];
    CHECK(dill_base64_decode(enc, back, sizeof(back)) == 256);
    CHECK(memcmp(back, in, 256) == 0);
    /* The whole alphabet in order: 48 bytes whose encoding is it. */
    const char *alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t bytes[48];
    CHECK(dill_base64_decode(alphabet, bytes, sizeof(bytes)) == 48);
    char again[65];
    CHECK(dill_base64_encode(bytes, 48, again, sizeof(again)) == 64);
    CHECK(strcmp(again, alphabet) == 0);
}

static void test_lenient(void) {
    uint8_t out[32];
    /* Whitespace anywhere is skipped. */
    CHECK(dill_base64_decode(" Zm9v\tYm\r\nFy ", out, sizeof(out)) == 6);
    CHECK(memcmp(out, "foobar", 6) == 0);
    /* Padding ends decoding, whatever follows it. */
    CHECK(dill_base64_decode("Zg==Zm9v", out, sizeof(out)) == 1);
    CHECK(out[0] == 'f');
    CHECK(dill_base64_decode("Zm8=garbage", out, sizeof(out)) == 2);
    /* So does a character outside the alphabet. */
    CHECK(dill_base64_decode("Zm9v*Zm9v", out, sizeof(out)) == 3);
    CHECK(dill_base64_decode("Zm9v-_", out, sizeof(out)) == 3);
    CHECK(dill_base64_decode("\x80Zm9v", out, sizeof(out)) == 0);
    /* No padding needed; bits short of a byte are dropped. */
    CHECK(dill_base64_decode("Zm8", out, sizeof(out)) == 2);
    CHECK(dill_base64_decode("Z", out, sizeof(out)) == 0);
    CHECK(dill_base64_decode("Zm9vY", out, sizeof(out)) == 3);
    CHECK(dill_base64_decode("", out, sizeof(out)) == 0);
    /* A WebSocket key: 24 characters, 16 bytes. */
    CHECK(dill_base64_decode("dGhlIHNhbXBsZSBub25jZQ==", out,
        sizeof(out)) == 16);
    CHECK(memcmp(out, "the sample nonce", 16) == 0);
    /* More than fits: -1, the first outlen bytes written. */
    memset(out, 0, sizeof(out));
    CHECK(dill_base64_decode("Zm9vYmFy", out, 5) == -1);
    CHECK(memcmp(out, "fooba", 5) == 0);
    CHECK(dill_base64_decode("Zm9vYmFy", out, 6) == 6);
    CHECK(dill_base64_decode("Zg==", out, 0) == -1);
    CHECK(dill_base64_decode("", out, 0) == 0);
}

int main(void) {
    test_rfc4648();
    test_all_bytes();
    test_lenient();
    return 0;
}
