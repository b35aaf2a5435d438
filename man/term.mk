# man/term.mk: the TERM pages (see man/man.mk).
dist_man_MANS += man/term_attach.3 man/term_attach_mem.3 man/term_done.3 man/term_detach.3
