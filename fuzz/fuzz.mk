# fuzz/fuzz.mk: libFuzzer targets for every parser that reads the network,
# built with clang (-fsanitize=fuzzer,address,undefined) over the library's
# own sources and run by `make fuzz` for FUZZ_SECONDS each (never by make
# check). Every fuzz/NAME.c is a target; its seed corpus is
# fuzz/corpus/NAME/. `make fuzz FUZZ_TARGETS="dns http"` runs some only;
# FUZZ_JOBS=2 runs two at a time.
FUZZ_CC = clang
FUZZ_SECONDS = 30
FUZZ_TARGETS =
FUZZ_JOBS = 1
EXTRA_DIST += fuzz/run.sh fuzz/memsock.h fuzz/dns.c fuzz/corpus
# fuzz/tls.c is listed here, not in tests/tls.mk: that one is included
# only with --enable-tls, and a conditional EXTRA_DIST is not distributed
# by the other builds.
EXTRA_DIST += fuzz/tls.c

fuzz:
	@FUZZ_CC='$(FUZZ_CC)' FUZZ_CFLAGS='$(dill_lib_cflags)' FUZZ_JOBS='$(FUZZ_JOBS)' \
	    LIB_SOURCES='$(libdill_la_SOURCES)' FUZZ_LIBS='$(LIBS)' \
	    $(SHELL) $(srcdir)/fuzz/run.sh '$(srcdir)' '$(FUZZ_SECONDS)' \
	    $(FUZZ_TARGETS)
.PHONY: fuzz

clean-local: clean-fuzz
clean-fuzz:
	-rm -rf fuzz/build
.PHONY: clean-fuzz
