#!/usr/bin/python3
"""HAProxy's counters from its admin socket, summed (stdlib only).

    haproxy_stats.py SOCKET [FRONTEND]

Sends `show stat` and prints one JSON line: over every server row,
"connect" (connections opened to servers) and "reuse" (requests sent on an
idle server connection); the FRONTEND's (default https) "req_tot"
(requests received) and "conn_tot" (client connections accepted); and
"servers", the number of server rows. Run it before and after a load run:
the differences say how often HAProxy had to open a new backend connection.
"""

import json
import socket
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    frontend = sys.argv[2] if len(sys.argv) > 2 else "https"
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    out = {"connect": 0, "reuse": 0, "req_tot": 0, "conn_tot": 0, "servers": 0}

    def num(v):
        return int(v) if v.isdigit() else 0

    for line in lines[1:]:
        if not line:
            continue
        row = dict(zip(header, line.split(",")))
        if row["svname"] == "FRONTEND":
            if row["pxname"] == frontend:
                out["req_tot"] = num(row.get("req_tot", ""))
                out["conn_tot"] = num(row.get("conn_tot", ""))
        elif row["svname"] != "BACKEND":
            out["servers"] += 1
            out["connect"] += num(row.get("connect", ""))
            out["reuse"] += num(row.get("reuse", ""))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
