# tests/bsock.mk: the bytestream and message front ends, and iolist
# validation by the real sockets (see tests/tests.mk).
check_PROGRAMS += tests/bsock tests/msock tests/iol
tests_bsock_LDADD = $(dill_test_ldadd)
tests_msock_LDADD = $(dill_test_ldadd)
tests_iol_LDADD = $(dill_test_ldadd)
TESTS += tests/bsock tests/msock tests/iol
