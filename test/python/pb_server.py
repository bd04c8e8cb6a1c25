#!/usr/bin/python3
"""A real Twisted PB server with cred login, for testing a TS PB client.

Usage: /usr/bin/python3 test/python/pb_server.py [haproxy]

With "haproxy" it listens through Twisted's PROXY protocol endpoint
(haproxy:tcp:...), so the peer it reports is the one a PROXY header names.

Prints `PORT <n>` first, then one JSON event per line.  Exits when stdin
closes so a crashed test runner never leaves it behind.  Set
BBGATE_PY_LOG=1 to get Twisted's log on stderr (off by default: an unread
stderr pipe would eventually block the server).
"""

import json
import os
import sys
import threading

from zope.interface import implementer

from twisted.cred import checkers, credentials, error, portal
from twisted.internet import defer, endpoints, reactor, task
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.spread import pb

USERS = {"alice": b"secret", "bob": b"hunter2"}


def emit_line(text):
    """One line on stdout, flushed so the test sees it at once."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader is gone; there is no one left to serve.
        os._exit(0)


def emit(event):
    emit_line(json.dumps(event))


def _text(name):
    # PB carries whatever the client sent: Buildbot sends bytes, a Python
    # client given a str sends str.  Accept both.
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


@implementer(checkers.ICredentialsChecker)
class Checker:
    """In-memory users; PB's challenger provides IUsernameHashedPassword."""

    credentialInterfaces = (credentials.IUsernameHashedPassword,)

    def requestAvatarId(self, creds):
        user = _text(creds.username)
        password = USERS.get(user)
        if password is None:
            emit({"event": "login-failed", "user": user, "reason": "no such user"})
            return defer.fail(error.UnauthorizedLogin())
        # checkPassword hashes the plain password with the challenge and
        # compares it with the client's response.
        d = defer.maybeDeferred(creds.checkPassword, password)

        def checked(ok):
            if ok:
                return user
            emit({"event": "login-failed", "user": user, "reason": "bad password"})
            raise error.UnauthorizedLogin()

        return d.addCallback(checked)


class Counter(pb.Referenceable):
    def __init__(self):
        self.total = 0

    def remote_increment(self, n=1):
        self.total += n
        return self.total

    def remote_ping(self):
        return "pong"


class User(pb.Avatar):
    def __init__(self, name, mind):
        self.name = name
        self.mind = mind

    def perspective_echo(self, *args, **kw):
        return [list(args), kw]

    def perspective_add(self, a, b):
        return a + b

    def perspective_fail(self, kind):
        if kind == "value":
            raise ValueError("boom")
        if kind == "pb":
            # pb.Error takes the "expected error" path (no traceback logged).
            raise pb.Error("pb boom")
        if kind == "key":
            raise KeyError("k")
        raise ValueError("unknown kind %r" % (kind,))

    def perspective_callMind(self, name, *args, **kw):
        # Returning the Deferred makes PB answer when the mind answers, and
        # relay the mind's failure as this call's error.
        return self.mind.callRemote(name, *args, **kw)

    def perspective_makeRef(self):
        return Counter()

    def perspective_makeRefs(self, n):
        return [Counter() for _ in range(n)]

    def perspective_printRefs(self, n):
        # What a hostile master could do with a Buildbot worker's print():
        # hand it references it has no use for. Twisted lets no more than
        # MAX_BROKER_REFS be live at once, so the mind must give them back.
        return self.mind.callRemote("print", [Counter() for _ in range(n)])

    def perspective_localObjectCount(self):
        # Every object this broker has handed to the peer and not yet had
        # decref'd, plus the "root" entry.
        return len(self.mind.broker.localObjects)

    def perspective_twice(self):
        counter = Counter()
        # Same instance twice: jelly emits ["remote", luid] twice and the
        # broker increfs, so the peer owes two decrefs.
        return (counter, counter)

    def perspective_slow(self, seconds, value):
        return task.deferLater(reactor, seconds, lambda: value)

    def perspective_disconnect(self):
        self.mind.broker.transport.loseConnection()
        return defer.Deferred()  # never answered


@implementer(portal.IRealm)
class Realm:
    @defer.inlineCallbacks
    def requestAvatar(self, avatarId, mind, *interfaces):
        if pb.IPerspective not in interfaces:
            raise NotImplementedError("only IPerspective")
        if mind is not None:
            # Like the Buildbot master: talk to the mind before the login
            # (the answer to "respond") is sent.  A failure fails the login.
            try:
                yield mind.callRemote("print", message="attached")
            except Exception as e:
                emit({"event": "login-failed", "user": avatarId,
                      "reason": "mind print failed: %r" % (e,)})
                raise
        peer = mind.broker.transport.getPeer() if mind is not None else None
        emit({"event": "login", "user": avatarId,
              "peer": getattr(peer, "host", None)})
        avatar = User(avatarId, mind)

        def logout():
            # PB calls this once: when the peer decrefs the avatar or the
            # connection drops, whichever comes first.
            emit({"event": "logout", "user": avatarId})

        return (pb.IPerspective, avatar, logout)


def setup_logging():
    """Send Twisted's log to stderr only when asked to.

    Without an observer Twisted still prints errors to stderr, and PB logs a
    traceback for every failing call; a test runner that never reads stderr
    would see the server block once the pipe fills, so discard by default.
    stdout must never be redirected into the log: it carries the events.
    """
    observers = [lambda event: None]
    if os.environ.get("BBGATE_PY_LOG"):
        observers = [textFileLogObserver(sys.stderr)]
    globalLogBeginner.beginLoggingTo(observers, redirectStandardIO=False)


def _exit_when_stdin_closes():
    def wait():
        for _ in sys.stdin.buffer:
            pass
        reactor.callFromThread(reactor.stop)

    threading.Thread(target=wait, daemon=True).start()


def main():
    setup_logging()
    p = portal.Portal(Realm(), [Checker()])
    factory = pb.PBServerFactory(p)
    _exit_when_stdin_closes()
    if sys.argv[1:] == ["haproxy"]:
        listening = endpoints.serverFromString(
            reactor, "haproxy:tcp:0:interface=127.0.0.1").listen(factory)
    else:
        listening = defer.succeed(
            reactor.listenTCP(0, factory, interface="127.0.0.1"))
    # Plain text, not JSON: the one line a launcher must parse first.
    listening.addCallback(lambda port: emit_line("PORT %d" % port.getHost().port))
    reactor.run()


if __name__ == "__main__":
    main()
