# man/tls.mk: the TLS and DTLS pages (see man/man.mk). Installed in every
# build, since libdill.h declares the functions in every build; each page
# says the function exists only in --enable-tls builds.
dist_man_MANS += man/tls_attach_client.3 man/tls_attach_client_mem.3 man/tls_attach_server.3 man/tls_attach_server_mem.3 man/tls_done.3 man/tls_detach.3 man/dtls_attach_client.3 man/dtls_attach_client_mem.3 man/dtls_attach_server.3 man/dtls_attach_server_mem.3 man/dtls_done.3 man/dtls_detach.3
