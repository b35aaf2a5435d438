#!/bin/sh
# man/check-enomem.sh: list the man pages whose ERRORS section has no
# ENOMEM entry, apart from the pages of functions that allocate nothing
# and do not create the thread's libdill context. Not part of CI; run it
# from the top of the tree after editing ERRORS sections:
#
#     sh man/check-enomem.sh
#
# Exit status 1 when a page is listed.

# Pages that need no ENOMEM, and why.
never='
coroutine        a specifier, not a function
iolist           a structure
now              reads the clock, never fails
ipaddr_equal     pure computation on its arguments
ipaddr_family    pure computation on its arguments
ipaddr_len       pure computation on its arguments
ipaddr_port      pure computation on its arguments
ipaddr_setport   pure computation on its arguments
ipaddr_sockaddr  pure computation on its arguments
ipaddr_str       inet_ntop into the caller'"'"'s buffer
ws_request_key   random bytes and base64, no context
ws_response_key  SHA-1 and base64, no context
'

dir=$(dirname "$0")
missing=0
for page in "$dir"/*.3; do
    name=$(basename "$page" .3)
    if printf '%s\n' "$never" | grep -q "^$name "; then continue; fi
    # An entry is ".TP" then ".B NAME" or ".BR NAME ..." (several names);
    # a mention in a paragraph does not count.
    if ! awk '/^\.SH /{s=($2=="ERRORS")}
              s && prev==".TP" && /^\.BR? .*ENOMEM/{found=1}
              {prev=$0} END{exit !found}' "$page"; then
        echo "$name: no ENOMEM in ERRORS"
        missing=1
    fi
done
exit $missing
