# tests/http.mk: HTTP heads (see tests/tests.mk).
check_PROGRAMS += tests/http
tests_http_LDADD = $(dill_test_ldadd)
TESTS += tests/http
# Our HTTP code against curl, wrk and python3's http.server (Debian
# packages curl, wrk, python3); it runs examples/httpd.
check_PROGRAMS += tests/http_peers
tests_http_peers_LDADD = $(dill_test_ldadd)
TESTS += tests/http_peers
EXTRA_DIST += fuzz/http.c
