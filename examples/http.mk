# examples/http.mk: see examples/examples.mk. examples/httpd is also built
# by make check, for tests/http_peers, which runs it against curl and wrk.
check_PROGRAMS += examples/httpd
examples_httpd_LDADD = libdill.la -lpthread
