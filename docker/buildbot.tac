# buildbot.tac of bbgate's container image (docker/Dockerfile): configured
# entirely from the environment, with the variables of the official
# buildbot-worker image, so that a deployment can swap images and keep its
# settings. bbgate runs this file with its own evaluator (no Python in the
# image); buildbot-worker runs it as it is.
import fnmatch
import os
import sys

from twisted.application import service
from twisted.python.log import FileLogObserver
from twisted.python.log import ILogObserver

from buildbot_worker.bot import Worker

# The directory builds run in; by default the one this file is in.
basedir = os.environ.get("BUILDBOT_BASEDIR", os.path.abspath(os.path.dirname(__file__)))
application = service.Application('buildbot-worker')
# Log to stdout, where a container's log collector reads it, not to twistd.log.
application.setComponent(ILogObserver, FileLogObserver(sys.stdout).emit)

buildmaster_host = os.environ.get("BUILDMASTER", 'localhost')
port = int(os.environ.get("BUILDMASTER_PORT", 9989))
protocol = os.environ.get("BUILDMASTER_PROTOCOL", 'pb')
workername = os.environ.get("WORKERNAME", 'docker')
passwd = os.environ.get("WORKERPASS")

# bbgate's own: a Twisted client endpoint string for the master (tcp:, tls:,
# or a ws:// URL), which replaces BUILDMASTER and BUILDMASTER_PORT when set,
# and a proxy (tcp:HOST:PORT, http(s)://[USER:PASSWORD@]HOST:PORT or pac+URL).
connection_string = os.environ.get("BBGATE_CONNECTION") or None
if connection_string is not None:
    buildmaster_host = None
    port = None
proxy_connection_string = os.environ.get("BBGATE_PROXY") or None

# Build steps do not inherit the password, nor bbgate's settings that may hold
# credentials (the proxy string, the proxy's password, the probe's password),
# whatever WORKER_ENVIRONMENT_BLACKLIST says; they were read above (bbgate reads
# BBGATE_PROXY_PASSWORD before the tac's deletions apply). Steps run as the
# worker's user, though: /proc/$PPID/environ and /proc/1/environ, the
# environments the worker and dumb-init started with, still hold them.
for name in ["WORKERPASS", "BBGATE_PROXY", "BBGATE_PROXY_PASSWORD", "BBGATE_PASSWORD"]:
    os.environ.pop(name, None)

# Every other variable matching a pattern of WORKER_ENVIRONMENT_BLACKLIST
# (fnmatch patterns separated by spaces) leaves the environment too.
blacklist = os.environ.get("WORKER_ENVIRONMENT_BLACKLIST", "WORKERPASS").split()
for name in list(os.environ.keys()):
    for pattern in blacklist:
        if fnmatch.fnmatch(name, pattern):
            del os.environ[name]
            break

keepalive = 600
umask = None
maxdelay = 300
allow_shutdown = None
maxretries = 10
delete_leftover_dirs = False

s = Worker(buildmaster_host, port, workername, passwd, basedir,
           keepalive, umask=umask, maxdelay=maxdelay, protocol=protocol,
           allow_shutdown=allow_shutdown, maxRetries=maxretries,
           delete_leftover_dirs=delete_leftover_dirs,
           connection_string=connection_string,
           proxy_connection_string=proxy_connection_string)
s.setServiceParent(application)
