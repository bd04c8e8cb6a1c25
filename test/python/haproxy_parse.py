"""Feed PROXY protocol v2 headers to real Twisted's parser and report what it makes of them.

Usage: /usr/bin/python3 haproxy_parse.py HEX [HEX...]

Each header is fed to a fresh twisted.protocols.haproxy V2Parser followed by b"PB" (the first
bytes of the relayed stream), so the length field is checked too. One JSON line per header:
{"source": A, "destination": A, "rest": HEX} with A = {"type", "host", "port"} or null
(LOCAL / unspecified), or {"error": "<module.Class>: message"}.
"""

import json
import sys

from twisted.protocols.haproxy._v2parser import V2Parser


def describe(addr):
    if addr is None:
        return None
    return {"type": type(addr).__name__, "host": addr.host, "port": addr.port}


for text in sys.argv[1:]:
    try:
        info, rest = V2Parser().feed(bytes.fromhex(text) + b"PB")
        if info is None:
            print(json.dumps({"error": "incomplete header"}))
            continue
        print(json.dumps({
            "source": describe(info.source),
            "destination": describe(info.destination),
            "rest": rest.hex(),
        }))
    except Exception as exc:
        cls = type(exc)
        print(json.dumps({"error": "%s.%s: %s" % (cls.__module__, cls.__qualname__, exc)}))
