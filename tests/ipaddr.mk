# tests/ipaddr.mk: IP addresses and the resolver (see tests/tests.mk).
# tests/resolver needs root (it makes mount and network namespaces) and
# dnsmasq (Debian: dnsmasq-base); without them it fails and says so.
ipaddr_tests = tests/ipaddr tests/resolver
check_PROGRAMS += $(ipaddr_tests)
TESTS += $(ipaddr_tests)
tests_ipaddr_LDADD = $(dill_test_ldadd)
tests_resolver_LDADD = $(dill_test_ldadd)
