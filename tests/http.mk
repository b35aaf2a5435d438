# tests/http.mk: HTTP heads (see tests/tests.mk).
check_PROGRAMS += tests/http
tests_http_LDADD = $(dill_test_ldadd)
TESTS += tests/http
