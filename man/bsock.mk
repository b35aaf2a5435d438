# man/bsock.mk: the bytestream and message front ends and iolists (see
# man/man.mk).
dist_man_MANS += man/bsend.3 man/brecv.3 man/bsendl.3 man/brecvl.3 man/msend.3 man/mrecv.3 man/msendl.3 man/mrecvl.3 man/iolist.3
