# tests/ipc.mk: UNIX-domain stream sockets (see tests/tests.mk).
check_PROGRAMS += tests/ipc
tests_ipc_LDADD = $(dill_test_ldadd)
TESTS += tests/ipc
