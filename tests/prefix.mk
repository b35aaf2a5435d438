# tests/prefix.mk: see tests/tests.mk. PREFIX over IPC pairs, TCP over
# loopback and an in-memory stream; the fuzz target of its header decoding.
check_PROGRAMS += tests/prefix
TESTS += tests/prefix
tests_prefix_LDADD = $(dill_test_ldadd)
EXTRA_DIST += tests/msgtest.h fuzz/prefix.c
