# tests/suffix.mk: see tests/tests.mk. SUFFIX over IPC pairs, TCP over
# loopback and an in-memory stream; the fuzz target of its scanning.
check_PROGRAMS += tests/suffix
TESTS += tests/suffix
tests_suffix_LDADD = $(dill_test_ldadd)
EXTRA_DIST += fuzz/suffix.c
