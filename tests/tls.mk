# tests/tls.mk: see tests/tests.mk. TLS and DTLS, built with --enable-tls
# only. tests/tls runs real openssl peers (apt-get install openssl) and
# fails saying so without them.
check_PROGRAMS += tests/tls
TESTS += tests/tls
tests_tls_LDADD = $(dill_test_ldadd)
