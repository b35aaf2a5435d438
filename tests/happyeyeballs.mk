# tests/happyeyeballs.mk: see tests/tests.mk. happyeyeballs_connect, in
# mount and network namespaces of its own: it needs root, ip (iproute2),
# iptables and ip6tables (iptables); without them it fails saying so.
check_PROGRAMS += tests/happyeyeballs
TESTS += tests/happyeyeballs
tests_happyeyeballs_LDADD = $(dill_test_ldadd)
