# tests/tls.mk: see tests/tests.mk. TLS and DTLS, built with --enable-tls
# only. tests/tls and tests/dtls run real openssl peers (apt-get install
# openssl) and fail saying so without them. tests/tls_static links a fully
# static program with `pkg-config --static --libs libdill` (needs
# pkg-config and libssl-dev's static libraries; SKIP under -fsanitize).
check_PROGRAMS += tests/tls tests/dtls tests/tls_static
TESTS += tests/tls tests/dtls tests/tls_static
tests_tls_LDADD = $(dill_test_ldadd)
tests_dtls_LDADD = $(dill_test_ldadd)
# The compiler and flags of this build, for the program it builds.
tests_tls_static_CPPFLAGS = -DTEST_CC='"$(CC)"' -DTEST_CFLAGS='"$(CFLAGS)"' \
	-DTEST_SRCDIR='"$(abs_top_srcdir)"' \
	-DTEST_BUILDDIR='"$(abs_top_builddir)"'
