#!/usr/bin/python3
"""New TLS connections with full handshakes, with SNI, for a bounded time (stdlib only).

    handshakes.py ADDRESS PORT SECONDS NAME [NAME...]

What `openssl s_time -new` does (TCP connect, full TLS handshake, close; no
request, no session reuse), but with SNI: s_time sends none, so with many
sites it cannot make the proxy pick a site's certificate. Each connection
sends the next NAME as SNI (round-robin over the list). The certificate
chain is not verified (self-signed placeholders), but the handshake's
signature is, as in every TLS client. Prints one JSON line:
{"connections": N, "errors": E, "seconds": T} (T = this process's own
measuring window). Run several in parallel (loadrun.py --parallel).
"""

import json
import socket
import ssl
import sys
import time


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    address, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    names = sys.argv[4:]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    n = errors = attempts = 0
    start = time.monotonic()
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        name = names[attempts % len(names)]
        attempts += 1
        try:
            with socket.create_connection((address, port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname=name):
                    pass
            n += 1
        except OSError:
            errors += 1
            if errors > 1000:
                break
            time.sleep(0.001)
    print(json.dumps({"connections": n, "errors": errors, "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main()
