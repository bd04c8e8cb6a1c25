#!/usr/bin/python3
"""A real Twisted PB client, for testing a PB server written in TS.

Usage: /usr/bin/python3 test/python/pb_client.py HOST PORT USER PASSWORD SCENARIO

SCENARIO is `basic` or `badpass`.  Prints one JSON object per line on
stdout (results in tagged form, see README.md) and exits 0; a non-zero exit
means an unexpected crash or the overall timeout.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from twisted.cred import credentials  # noqa: E402
from twisted.internet import defer, reactor  # noqa: E402
from twisted.logger import globalLogBeginner, textFileLogObserver  # noqa: E402
from twisted.python import reflect  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402
from twisted.spread import pb  # noqa: E402

from tagged import to_tagged  # noqa: E402

TIMEOUT = 15  # seconds; the caller is promised an exit within 20
exit_code = 0


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def failure_info(fail):
    """Type, parents and value of a Failure, local or copied from the peer.

    A CopiedFailure carries the remote class name as bytes and the value as
    the remote str(); a local Failure (e.g. connection refused) has a class.
    """
    kind = fail.type
    if isinstance(kind, bytes):
        kind = kind.decode("utf-8", "replace")
    elif not isinstance(kind, str):
        kind = reflect.qual(kind)
    value = fail.value
    if not isinstance(value, str):
        value = str(value)
    parents = [p.decode("utf-8", "replace") if isinstance(p, bytes) else p
               for p in getattr(fail, "parents", [])]
    return {"type": kind, "parents": parents, "value": value}


class Mind(pb.Referenceable):
    """The client object handed to the server at login."""

    def __init__(self):
        self.printed = []

    def remote_print(self, message):
        self.printed.append(message)

    def remote_whoami(self):
        return "python-mind"


def _capture(d):
    """Wait for a Deferred; give back ("result", value) or ("error", info)."""
    out = defer.Deferred()
    d.addCallbacks(
        lambda r: out.callback(("result", r)),
        lambda f: out.callback(("error", failure_info(f))),
    )
    return out


@defer.inlineCallbacks
def call(ref, name, *args, **kw):
    """Call a remote method and print the outcome; return the result."""
    outcome, value = yield _capture(ref.callRemote(name, *args, **kw))
    if outcome == "result":
        emit({"call": name, "result": to_tagged(value)})
        return value
    emit({"call": name, "error": value})
    return None


@defer.inlineCallbacks
def basic(persp):
    yield call(
        persp, "echo",
        1, -2, 2**31, -2**31 - 1, 2**70, 1.5, float("inf"), b"list", "text",
        None, True, False, [1, [2]], (3, 4), {"k": b"v", 5: (6,)}, {7, 8},
        frozenset({9}), kw1="x", kw2=None,
    )
    yield call(persp, "add", 2, 3)
    yield call(persp, "fail", "value")
    yield call(persp, "callMind", "whoami")
    ref = yield call(persp, "makeRef")
    if ref is not None:
        yield call(ref, "increment", 5)
        yield call(ref, "increment", 5)
    yield call(persp, "nosuch")


@defer.inlineCallbacks
def run(host, port, user, password, scenario):
    factory = pb.PBClientFactory()
    reactor.connectTCP(host, port, factory)
    mind = Mind()
    # Bytes, as the Buildbot worker sends them (it encodes before login).
    creds = credentials.UsernamePassword(user.encode("utf-8"), password.encode("utf-8"))
    outcome, persp = yield _capture(factory.login(creds, client=mind))
    if outcome == "error":
        emit(dict({"login": "failed"}, **persp))
    else:
        # Copy now: only what the server printed before login counts.
        emit({"login": "ok", "printed": list(mind.printed)})
        if scenario == "basic":
            yield basic(persp)
    emit({"done": True})
    yield disconnect(factory)


def disconnect(factory):
    """Close the connection and wait (briefly) until it is really closed."""
    broker = factory._broker
    if broker is None or broker.disconnected:
        return defer.succeed(None)
    done = defer.Deferred()
    broker.notifyOnDisconnect(lambda: done.called or done.callback(None))
    broker.transport.loseConnection()
    reactor.callLater(2, lambda: done.called or done.callback(None))
    return done


def main(argv):
    if len(argv) != 5 or argv[4] not in ("basic", "badpass"):
        sys.stderr.write(__doc__)
        return 2
    host, port, user, password, scenario = argv
    # Keep stdout for our JSON; Twisted's log goes to stderr, unredirected.
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(sys.stderr)], redirectStandardIO=False
    )

    def finished(result):
        global exit_code
        if isinstance(result, Failure):
            sys.stderr.write(result.getTraceback())
            exit_code = 1
        if reactor.running:
            reactor.stop()

    def timed_out():
        # Exit at once: a clean reactor shutdown would fail the pending
        # calls and print misleading lines after this one.
        emit({"error": "timeout"})
        os._exit(3)

    reactor.callLater(TIMEOUT, timed_out)
    reactor.callWhenRunning(
        lambda: run(host, int(port), user, password, scenario).addBoth(finished)
    )
    reactor.run()
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
