# examples/examples.mk: small programs to read first; make demo runs them.
EXTRA_PROGRAMS += examples/hello
examples_hello_LDADD = libdill.la

demo: examples/hello$(EXEEXT)
	./examples/hello$(EXEEXT)
.PHONY: demo
