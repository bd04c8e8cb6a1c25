#!/usr/bin/env python3
"""An independent NTLM acceptor for bbgate's tests: gss-ntlmssp (Debian's GSSAPI NTLM mechanism)
driven by python3-gssapi, so that bbgate's NTLMv2 responses are checked by code that is not ours.

One conversation per process, line based on stdin/stdout:
  in:  the client's NEGOTIATE, base64   -> out: "CHALLENGE <base64>"
  in:  the client's AUTHENTICATE, base64 -> out: "ACCEPTED <initiator name>" or "REFUSED <reason>"
The caller sets NTLM_USER_FILE (DOMAIN:USER:PASSWORD lines) and OPENSSL_CONF (a config that
activates OpenSSL's legacy provider beside the default one: gss-ntlmssp computes MD4).
"""
import base64
import sys

import gssapi

NTLMSSP = gssapi.OID.from_int_seq('1.3.6.1.4.1.311.2.2.10')


def main() -> None:
    creds = gssapi.Credentials(usage='accept', mechs=[NTLMSSP])
    ctx = gssapi.SecurityContext(creds=creds, usage='accept')
    for line in sys.stdin:
        token = base64.b64decode(line.strip())
        try:
            out = ctx.step(token)
        except gssapi.exceptions.GSSError as err:
            print('REFUSED ' + ' '.join(str(err).split()), flush=True)
            return
        if ctx.complete:
            name = str(ctx.initiator_name).rstrip('\0')
            print('ACCEPTED ' + name, flush=True)
            return
        print('CHALLENGE ' + base64.b64encode(out or b'').decode(), flush=True)


if __name__ == '__main__':
    main()
