# tests/tcp.mk: see tests/tests.mk. TCP listeners and connections. Part of
# tests/tcp runs in a network namespace of its own: it needs root and the
# ip (iproute2) and iptables commands, and fails saying so without them.
check_PROGRAMS += tests/tcp
TESTS += tests/tcp
tests_tcp_LDADD = $(dill_test_ldadd) -lpthread
