# tests/soak.mk: see tests/tests.mk. The soak test (tests/soak.c): built and
# run by `make soak`, never by make check. It runs SOAK_SECONDS seconds (60
# by default): `make soak SOAK_SECONDS=300`, or `make soak SOAK_MINUTES=5`,
# which wins when both are given. Run directly: tests/soak 90, 90s or 5m.
# It needs the socket layer and one scheduler per thread.
SOAK_SECONDS = 60
SOAK_MINUTES =
EXTRA_DIST += tests/soak.h
soak_program =
if SOCKETS
if THREADS
EXTRA_PROGRAMS += tests/soak
tests_soak_SOURCES = tests/soak.c tests/soak_wire.c tests/soak_client.c \
	tests/soak_server.c tests/soak_worker.c
tests_soak_LDADD = $(dill_test_ldadd) -lpthread
soak_program += tests/soak$(EXEEXT)
endif
endif

soak: $(soak_program)
	@if test -z '$(soak_program)'; then \
	    echo "soak: this build has no sockets or no threads"; exit 1; \
	fi; \
	d='$(SOAK_SECONDS)'; \
	if test -n '$(SOAK_MINUTES)'; then d='$(SOAK_MINUTES)m'; fi; \
	./$(soak_program) "$$d"
.PHONY: soak
