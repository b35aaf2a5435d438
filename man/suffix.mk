# man/suffix.mk: the SUFFIX pages (see man/man.mk).
dist_man_MANS += man/suffix_attach.3 man/suffix_attach_mem.3 man/suffix_detach.3
