#!/usr/bin/python3
"""Twisted's side of bench/banana.ts: the same Buildbot update stream through real
twisted.spread.banana (dialect "pb") and jelly, timed the same way.

    /usr/bin/python3 bench/twisted_banana.py MESSAGES.json STREAM.bin SECONDS

MESSAGES.json is a list of [requestId, luid, T] (T: the call's argument tuple in
the tagged form of test/python/tagged.py); STREAM.bin is bbgate's encoding of
them.  Prints one JSON line: bytes, identical (whether Twisted's encoding is
byte for byte bbgate's), and encode, decode (framing and unjelly) and frame
(framing alone) throughput in bytes per second.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "python"))

from twisted.spread import jelly  # noqa: E402

from tagged import from_tagged  # noqa: E402
from twisted_codec import _banana, _DecodeInvoker  # noqa: E402

CHUNK = 64 * 1024


def encode(proto, transport, messages):
    # What Broker.sendCall writes for callRemote("update", *args).
    transport.chunks = []
    for request_id, luid, args in messages:
        proto.sendEncoded([
            b"message", request_id, luid, b"update", 1,
            jelly.jelly(args, jelly.globalSecurity, None, None),
            jelly.jelly({}, jelly.globalSecurity, None, None),
        ])
    return transport.chunks


def decode(proto, stream, on_call):
    """Hands each call's arguments to on_call, which may drop them as a broker serving the call would."""
    invoker = _DecodeInvoker()

    def received(sexp):
        # What Broker.proto_message unserializes: the arguments and keywords.
        on_call(
            jelly.unjelly(sexp[5], jelly.globalSecurity, None, invoker),
            jelly.unjelly(sexp[6], jelly.globalSecurity, None, invoker),
        )

    proto.expressionReceived = received
    for start in range(0, len(stream), CHUNK):
        proto.dataReceived(stream[start:start + CHUNK])


def drop(args, kwargs):
    pass


def frame(proto, stream):
    """Banana framing alone: expressions are built and dropped, nothing is unjellied."""
    proto.expressionReceived = lambda sexp: None
    for start in range(0, len(stream), CHUNK):
        proto.dataReceived(stream[start:start + CHUNK])


def rate(run, nbytes, seconds):
    """Bytes per CPU second over whole passes, repeated for at least `seconds` of CPU time."""
    passes = 0
    started = time.process_time()
    while True:
        run()
        passes += 1
        elapsed = time.process_time() - started
        if elapsed >= seconds:
            return passes * nbytes / elapsed


def main():
    messages_path, stream_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(messages_path) as f:
        messages = [(rid, luid, from_tagged(args)) for rid, luid, args in json.load(f)]
    with open(stream_path, "rb") as f:
        ours = f.read()

    proto, transport = _banana("pb")
    stream = b"".join(encode(proto, transport, messages))
    decoded = []
    decode(_banana("pb")[0], stream, lambda args, kwargs: decoded.append(args))
    if decoded != [args for _, _, args in messages]:
        raise SystemExit("Twisted decodes its own stream differently")

    encode_rate = rate(lambda: encode(proto, transport, messages), len(stream), seconds)
    # A fresh Banana per pass, as a new connection would be.
    decode_rate = rate(lambda: decode(_banana("pb")[0], stream, drop), len(stream), seconds)
    frame_rate = rate(lambda: frame(_banana("pb")[0], stream), len(stream), seconds)
    print(json.dumps({
        "bytes": len(stream),
        "identical": stream == ours,
        "encode": encode_rate,
        "decode": decode_rate,
        "frame": frame_rate,
    }))


if __name__ == "__main__":
    main()
