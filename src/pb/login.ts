import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { PbError } from '../errors.js';
import type { Broker } from './broker.js';
import { PbFailure, PY, UnauthorizedLogin } from './values/failure.js';
import { Referenceable, RemoteReference, type RemoteCall } from './values/references.js';
import { tuple } from './values/values.js';

/** PB's challenge response: md5(md5(password) + challenge), as twisted.spread.pb.respond computes it. */
export function respond(challenge: Uint8Array, password: Uint8Array): Buffer {
  const hashed = createHash('md5').update(password).digest();
  return createHash('md5').update(hashed).update(challenge).digest();
}

function bytesOf(v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
}

/**
 * Logs in as `username` (client side) and returns the perspective. `mind` is
 * the object the server may call back; the broker serves its calls while the
 * login is still pending. Rejects with `UnauthorizedLogin` (code PB_UNAUTHORIZED)
 * for a wrong name or password.
 */
export async function login(broker: Broker, username: string | Uint8Array, password: string | Uint8Array, mind: Referenceable | null): Promise<RemoteReference> {
  await broker.ready;
  const reply = await broker.rootObject().callRemote('login', [bytesOf(username)]);
  const [challenge, challenger] = Array.isArray(reply) ? reply : [];
  if (!(challenge instanceof Uint8Array) || !(challenger instanceof RemoteReference)) {
    if (challenger instanceof RemoteReference) challenger.release();
    throw new PbError('PB_PROTOCOL', 'the server answered login() with something other than (challenge, challenger)');
  }
  let perspective;
  try {
    perspective = await challenger.callRemote('respond', [respond(challenge, bytesOf(password)), mind]);
  } finally {
    challenger.release();
  }
  if (!(perspective instanceof RemoteReference)) {
    throw new PbError('PB_PROTOCOL', 'the server accepted the login but sent no perspective');
  }
  return perspective;
}

/** What a server's portal decides: whose password is what, and which perspective a user gets. */
export interface Portal {
  /** The stored password for `username`, or undefined for an unknown user. */
  password(username: Buffer): Promise<Uint8Array | undefined> | Uint8Array | undefined;
  /** The perspective for an authenticated user; `logout` runs once, when the client drops it or disconnects. */
  avatar(username: Buffer, mind: RemoteReference | null, broker: Broker): Promise<Avatar> | Avatar;
}

export interface Avatar {
  perspective: Referenceable;
  logout?: () => void;
}

/** The root object of a PB login server (Twisted's _PortalWrapper), bound to one connection. */
export class PortalRoot extends Referenceable {
  constructor(
    private readonly portal: Portal,
    private readonly broker: () => Broker,
  ) {
    super();
  }

  remote_login(call: RemoteCall): unknown {
    const username = call.arg(0, 'username');
    if (!(username instanceof Uint8Array)) throw new PbFailure(PY.PbError, 'login() takes the user name as bytes');
    const challenge = createHash('md5').update(randomBytes(randomInt(15, 25))).digest();
    return tuple(challenge, new Challenger(this.portal, this.broker(), Buffer.from(username), challenge));
  }
}

class Challenger extends Referenceable {
  constructor(
    private readonly portal: Portal,
    private readonly broker: Broker,
    private readonly username: Buffer,
    private readonly challenge: Buffer,
  ) {
    super();
  }

  async remote_respond(call: RemoteCall): Promise<Referenceable> {
    const response = call.arg(0, 'response');
    const mind = call.arg(1, 'mind');
    const password = await this.portal.password(this.username);
    const expected = password === undefined ? undefined : respond(this.challenge, password);
    const ok = expected !== undefined && response instanceof Uint8Array && response.length === expected.length && timingSafeEqual(response, expected);
    // A refused login keeps no mind: the broker gives it back when this call ends.
    if (!ok) throw new UnauthorizedLogin();
    call.keep(mind);
    const avatar = await this.portal.avatar(this.username, mind instanceof RemoteReference ? mind : null, this.broker);
    if (avatar.logout) {
      let pending: (() => void) | undefined = avatar.logout;
      const logoutOnce = () => {
        const fn = pending;
        pending = undefined;
        fn?.();
      };
      this.broker.onRelease(avatar.perspective, logoutOnce);
    }
    return avatar.perspective;
  }
}
