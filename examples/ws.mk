# examples/ws.mk: see examples/examples.mk. examples/ws_echo is also built
# by make check, for tests/ws, which runs it against python3-websockets.
check_PROGRAMS += examples/ws_echo
examples_ws_echo_LDADD = libdill.la
demo_programs += examples/ws_echo$(EXEEXT)
