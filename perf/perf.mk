# perf/perf.mk: benchmarks, built and run by `make bench` (never by make
# check). Each program prints `name: N ns/op` lines; README.md lists them
# with their targets. They link the uninstalled libdill.la, as users would
# link the installed one.
perf_programs = \
	perf/ctxswitch \
	perf/spawn \
	perf/chan \
	perf/choose \
	perf/suite \
	perf/timers \
	perf/whispers \
	perf/million \
	perf/idle \
	perf/tcp_pingpong \
	perf/tcp_stream \
	perf/tcp_idle
EXTRA_PROGRAMS += $(perf_programs)
bench_programs += $(perf_programs)
EXTRA_DIST += perf/perf.h

perf_ctxswitch_LDADD = libdill.la
perf_spawn_LDADD = libdill.la
perf_chan_LDADD = libdill.la
perf_choose_LDADD = libdill.la
perf_suite_LDADD = libdill.la
perf_timers_LDADD = libdill.la
perf_whispers_LDADD = libdill.la
perf_million_LDADD = libdill.la
perf_idle_LDADD = libdill.la
perf_tcp_pingpong_LDADD = libdill.la
perf_tcp_stream_LDADD = libdill.la
perf_tcp_idle_LDADD = libdill.la

# Build everything first, so that compiler output does not interleave with
# the figures, then run the programs one at a time: they measure time and
# memory, so nothing else of ours should run beside them.
bench:
	@list=; for p in $(bench_programs); do list="$$list $$p$(EXEEXT)"; done; \
	if command -v go >/dev/null 2>&1; then list="$$list perf/million-go"; fi; \
	$(MAKE) $(AM_MAKEFLAGS) $$list
	@for p in $(bench_programs); do \
	    echo "== $$p"; \
	    ./$$p$(EXEEXT) || exit 1; \
	done
	@$(MAKE) $(AM_MAKEFLAGS) bench-suite-compare
.PHONY: bench

# HTTP: examples/httpd against perf/http_raw (a raw epoll responder) under
# wrk, with one and two server threads (perf/httpd.c; needs wrk).
EXTRA_PROGRAMS += perf/httpd perf/http_raw
bench_programs += perf/httpd
perf_http_raw_LDADD = -lpthread
EXTRA_perf_httpd_DEPENDENCIES = examples/httpd$(EXEEXT) perf/http_raw$(EXEEXT)

# WebSocket echo against the same bytes over plain TCP (perf/ws_echo.c).
EXTRA_PROGRAMS += perf/ws_echo
bench_programs += perf/ws_echo
perf_ws_echo_LDADD = libdill.la

# The Go baseline of perf/million, built only when `go` is installed
# (apt-get install golang-go); perf/million says so when it is missing.
EXTRA_DIST += perf/million.go
CLEANFILES += perf/million-go
perf/million-go: $(srcdir)/perf/million.go
	GOCACHE="$(abs_builddir)/perf/.gocache" GO111MODULE=off \
	    go build -o $@ $(srcdir)/perf/million.go
clean-local: clean-go-cache
clean-go-cache:
	rm -rf perf/.gocache
.PHONY: clean-go-cache

# perf/suite is the work of libdill's own perf/ programs. With
# LIBDILL_ORIG=/prefix (an install of the original libdill 2.x), make bench
# also builds the same source against it and prints ours/original per
# figure: make bench LIBDILL_ORIG=/usr/local
EXTRA_DIST += perf/suite-compare.sh perf/ctxswitch-compare.sh
CLEANFILES += perf/suite-orig
perf/suite-orig: $(srcdir)/perf/suite.c $(srcdir)/perf/perf.h
	$(CC) -O2 -I$(srcdir)/perf -I$(LIBDILL_ORIG)/include -o $@ \
	    $(srcdir)/perf/suite.c -L$(LIBDILL_ORIG)/lib \
	    -Wl,-rpath,$(LIBDILL_ORIG)/lib -ldill -lpthread
bench-suite-compare: perf/suite$(EXEEXT)
	@if test -n "$(LIBDILL_ORIG)"; then \
	    $(MAKE) $(AM_MAKEFLAGS) perf/suite-orig && \
	    echo "== perf/suite against libdill in $(LIBDILL_ORIG)" && \
	    $(srcdir)/perf/suite-compare.sh ./perf/suite$(EXEEXT) ./perf/suite-orig; \
	else \
	    echo "suite: no libdill baseline: set LIBDILL_ORIG to an install prefix of libdill 2.x (make bench LIBDILL_ORIG=/usr/local)"; \
	fi
.PHONY: bench-suite-compare
