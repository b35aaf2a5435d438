# tests/term.mk: see tests/tests.mk. TERM over PREFIX, SUFFIX, UDP and
# TERM, on IPC pairs, TCP over loopback and an in-memory stream.
check_PROGRAMS += tests/term
TESTS += tests/term
tests_term_LDADD = $(dill_test_ldadd)
