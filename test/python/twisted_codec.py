#!/usr/bin/python3
"""Codec oracle: real Twisted Banana/Jelly driven by JSON lines on stdio.

Run with /usr/bin/python3 (Debian's, which has Twisted).  One JSON request
per stdin line, one JSON response per stdout line.  See README.md.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from twisted.python import reflect  # noqa: E402
from twisted.spread import banana, jelly, pb  # noqa: E402

from tagged import from_tagged, to_tagged  # noqa: E402

DIALECTS = ("pb", "none")


class _Collector:
    """Minimal transport: Banana only ever calls write() when encoding."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(data)

    def loseConnection(self):
        # Banana calls this on a failed dialect negotiation; we never
        # negotiate, so reaching here is a bug worth surfacing.
        raise RuntimeError("Banana tried to drop the connection")

    def value(self):
        return b"".join(self.chunks)


class _DecodeInvoker:
    """Just enough of a pb.Broker for unjelly to build RemoteReferences.

    PB unjellies with the broker as invoker; without one, ["remote", luid]
    cannot be decoded at all.  Dropped references must not try to send
    decrefs anywhere, so sendDecRef is a no-op.
    """

    unserializingPerspective = None
    serializingPerspective = None

    def sendDecRef(self, luid):
        pass


def _banana(dialect):
    """A fresh Banana in `dialect`, set up the way a live connection is.

    makeConnection() runs connectionMade (prefix limit, no dialect yet); as
    a client it sends nothing.  _selectDialect is what Banana itself calls
    once negotiation finishes, so the dialect handshake bytes never appear.
    """
    if dialect not in DIALECTS:
        raise ValueError("unknown dialect %r" % (dialect,))
    proto = banana.Banana(isClient=1)
    transport = _Collector()
    proto.makeConnection(transport)
    proto._selectDialect(dialect.encode("ascii"))
    return proto, transport


def _parse_hex(text):
    if not isinstance(text, str):
        raise ValueError("hex must be a string")
    return bytes.fromhex(text)


def _feed(req):
    """Feed the request's bytes to a fresh Banana; return expressions."""
    proto, _ = _banana(req.get("dialect", "pb"))
    data = _parse_hex(req.get("hex"))
    chunk = req.get("chunk")
    if chunk is None:
        chunk = max(len(data), 1)
    if type(chunk) is not int or chunk < 1:
        raise ValueError("chunk must be a positive integer")
    expressions = []
    proto.expressionReceived = expressions.append
    for start in range(0, len(data), chunk):
        proto.dataReceived(data[start : start + chunk])
    # Bytes left in the buffer or an open list mean a truncated expression.
    incomplete = bool(proto.buffer) or bool(proto.listStack)
    return expressions, incomplete


def op_encode(req):
    value = from_tagged(req["value"])
    proto, transport = _banana(req.get("dialect", "pb"))
    # Broker.serialize jellies with its security options and itself as
    # invoker; for plain data the invoker is never consulted.
    proto.sendEncoded(jelly.jelly(value, jelly.globalSecurity, None, None))
    return {"hex": transport.value().hex(), "value": to_tagged(value)}


def op_decode(req):
    expressions, incomplete = _feed(req)
    values = [
        jelly.unjelly(sexp, jelly.globalSecurity, None, _DecodeInvoker())
        for sexp in expressions
    ]
    return {"values": [to_tagged(v) for v in values], "incomplete": incomplete}


def op_sexp(req):
    expressions, incomplete = _feed(req)
    return {"values": [to_tagged(e) for e in expressions], "incomplete": incomplete}


def op_respond(req):
    challenge = _parse_hex(req["challenge_hex"])
    password = _parse_hex(req["password_hex"])
    return {"hex": pb.respond(challenge, password).hex()}


def op_parents(req):
    cls = reflect.namedAny(req["exception"])
    try:
        exc = cls()
    except TypeError:
        # Some exceptions need constructor arguments; the MRO is all we need.
        exc = cls.__new__(cls)
    state = pb.CopyableFailure(exc).getStateToCopy()
    return {
        "type": state["type"].decode("utf-8"),
        "parents": state["parents"],
        "value": state["value"],
    }


OPS = {
    "encode": op_encode,
    "decode": op_decode,
    "sexp": op_sexp,
    "respond": op_respond,
    "parents": op_parents,
}


def handle(line):
    """Answer one request line; every failure becomes an error response."""
    req = None
    try:
        req = json.loads(line)
        if not isinstance(req, dict):
            raise ValueError("request must be a JSON object")
        op = OPS.get(req.get("op"))
        if op is None:
            raise ValueError("unknown op %r" % (req.get("op"),))
        resp = {"ok": True}
        resp.update(op(req))
    except BaseException as e:  # noqa: B902 - the server must never die
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        resp = {"ok": False, "error": "%s: %s" % (reflect.qual(type(e)), e)}
    if isinstance(req, dict) and "id" in req:
        # Echoed so a client may pipeline requests and match answers.
        resp["id"] = req["id"]
    return resp


def serve():
    for line in sys.stdin:
        if not line.strip():
            continue
        sys.stdout.write(json.dumps(handle(line)) + "\n")
        sys.stdout.flush()


def selftest():
    def ask(**req):
        return handle(json.dumps(req))

    # Vocabulary word in dialect pb: ["None"] -> list of 1, VOCAB 1.
    r = ask(op="encode", value=["none"])
    assert r == {"ok": True, "hex": "0180" + "0187", "value": ["none"]}, r
    r = ask(op="encode", value=["none"], dialect="none")
    assert r["hex"] == "0180" + "0482" + b"None".hex(), r

    # Cyclic list survives a round trip through real jelly.
    cyc = ["shared", 1, ["list", [["same", 1]]]]
    r = ask(op="encode", value=cyc)
    assert r["ok"] and r["value"] == cyc, r
    d = ask(op="decode", hex=r["hex"], chunk=1)
    assert d == {"ok": True, "values": [cyc], "incomplete": False}, d

    value = [
        "tuple",
        [
            ["int", str(2**70)],
            ["int", "-5"],
            ["float", "8000000000000000"],
            ["str", "h\u00e9"],
            ["bytes", "00ff"],
            ["bool", True],
            ["dict", [[["str", "k"], ["frozenset", [["int", "1"]]]]]],
        ],
    ]
    r = ask(op="encode", value=value)
    d = ask(op="decode", hex=r["hex"])
    assert d["values"] == [value], d

    bad = ask(op="decode", hex="0282" + "6f73")  # top-level string is fine
    assert bad["values"] == [["bytes", "6f73"]], bad
    bad = ask(op="decode", hex="ff")
    assert bad["ok"] is False and "NotImplementedError" in bad["error"], bad
    insecure = jelly.jelly(os.system)
    hexed = (banana.encode(insecure)).hex()
    bad = ask(op="decode", hex=hexed, dialect="none")
    assert bad["error"].startswith("twisted.spread.jelly.InsecureJelly"), bad
    assert handle("not json")["ok"] is False

    r = ask(op="respond", challenge_hex="00", password_hex=b"secret".hex())
    assert len(r["hex"]) == 32, r
    r = ask(op="parents", exception="twisted.cred.error.UnauthorizedLogin")
    assert r["parents"][0] == "twisted.cred.error.UnauthorizedLogin", r
    print("OK")


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        selftest()
    else:
        serve()
