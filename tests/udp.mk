# tests/udp.mk: UDP sockets (see tests/tests.mk).
check_PROGRAMS += tests/udp
tests_udp_LDADD = $(dill_test_ldadd)
TESTS += tests/udp
