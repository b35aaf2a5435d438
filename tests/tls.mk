# tests/tls.mk: see tests/tests.mk. TLS and DTLS, built with --enable-tls
# only. tests/tls and tests/dtls run real openssl peers (apt-get install
# openssl) and fail saying so without them.
check_PROGRAMS += tests/tls tests/dtls
TESTS += tests/tls tests/dtls
tests_tls_LDADD = $(dill_test_ldadd)
tests_dtls_LDADD = $(dill_test_ldadd)
