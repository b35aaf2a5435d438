# tests/socks5.mk: see tests/tests.mk. SOCKS5 client and proxy functions;
# tests/socks5 runs microsocks and curl (apt-get install microsocks curl)
# and examples/socks5_proxy, built for it by examples/socks5.mk.
check_PROGRAMS += tests/socks5
TESTS += tests/socks5
tests_socks5_LDADD = $(dill_test_ldadd)
EXTRA_DIST += fuzz/socks5_client.c fuzz/socks5_proxy.c
