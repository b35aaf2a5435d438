# tests/ws.mk: see tests/tests.mk. WebSockets, and SHA-1 and base64 under
# them. sha1.c and base64.c are internal (hidden by -fvisibility=hidden):
# their tests compile them in, with the library's flags, and link nothing.
# tests/ws runs real peers: /usr/bin/python3 with python3-websockets
# (Debian packages python3, python3-websockets) through tests/ws_peer.py,
# and examples/ws_echo (built by make check, see examples/ws.mk).
check_PROGRAMS += tests/sha1 tests/base64 tests/ws
TESTS += tests/sha1 tests/base64 tests/ws
tests_sha1_SOURCES = tests/sha1.c sha1.c sha1.h
tests_sha1_CFLAGS = $(dill_lib_cflags)
tests_base64_SOURCES = tests/base64.c base64.c base64.h
tests_base64_CFLAGS = $(dill_lib_cflags)
tests_ws_LDADD = $(dill_test_ldadd) -lpthread
if THREADS
tests_ws_CPPFLAGS = -DDILL_TEST_THREADS
endif
EXTRA_DIST += tests/ws_peer.py
EXTRA_DIST += fuzz/ws_frames.c fuzz/ws_handshake.c
