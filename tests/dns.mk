# tests/dns.mk: the DNS message code (see tests/tests.mk). dns.c's functions
# are internal, hidden in libdill.so by -fvisibility=hidden, so the test
# compiles dns.c into itself, with the library's flags, and links nothing.
check_PROGRAMS += tests/dns
TESTS += tests/dns
tests_dns_SOURCES = tests/dns.c dns.c dns.h
tests_dns_CFLAGS = $(dill_lib_cflags)
