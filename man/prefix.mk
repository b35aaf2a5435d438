# man/prefix.mk: the PREFIX pages (see man/man.mk).
dist_man_MANS += man/prefix_attach.3 man/prefix_attach_mem.3 man/prefix_detach.3
