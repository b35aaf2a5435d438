# man/man.mk: the man pages (section 3), one per function or macro.
dist_man_MANS += man/go.3 man/go_mem.3 man/bundle_go.3 man/bundle_go_mem.3 man/coroutine.3 man/bundle.3 man/bundle_mem.3 man/bundle_wait.3 man/yield.3 man/msleep.3 man/now.3 man/chmake.3 man/chmake_mem.3 man/chsend.3 man/chrecv.3 man/chdone.3 man/choose.3 man/fdin.3 man/fdout.3 man/fdclean.3 man/hmake.3 man/hquery.3 man/hclose.3 man/hown.3
include man/bsock.mk
include man/ipaddr.mk
include man/tcp.mk
include man/ipc.mk
include man/udp.mk
include man/prefix.mk
include man/suffix.mk
include man/term.mk
include man/http.mk
include man/ws.mk
include man/socks5.mk
include man/happyeyeballs.mk
include man/tls.mk
