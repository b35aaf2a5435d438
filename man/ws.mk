# man/ws.mk: the WebSocket pages (see man/man.mk).
dist_man_MANS += man/ws_attach_client.3 man/ws_attach_client_mem.3 man/ws_attach_server.3 man/ws_attach_server_mem.3 man/ws_send.3 man/ws_recv.3 man/ws_sendl.3 man/ws_recvl.3 man/ws_done.3 man/ws_detach.3 man/ws_status.3 man/ws_request_key.3 man/ws_response_key.3
