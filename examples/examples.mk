# examples/examples.mk: small programs to read first; make demo runs them.
EXTRA_PROGRAMS += examples/hello
examples_hello_LDADD = libdill.la
demo_programs = examples/hello$(EXEEXT)

if SOCKETS
EXTRA_PROGRAMS += examples/tcp_echo
examples_tcp_echo_LDADD = libdill.la
demo_programs += examples/tcp_echo$(EXEEXT)
include examples/http.mk
include examples/ws.mk
include examples/socks5.mk
endif

# Runs each example in turn; stops at the first that fails.
demo: $(demo_programs)
	@for p in $(demo_programs); do echo "== $$p"; ./$$p || exit 1; done
.PHONY: demo
