import type { TLSSocket } from 'node:tls';
import { hasEnded } from '../stream-end.js';

/**
 * In TLS 1.3 the client's handshake is over before the server has read the client's
 * certificate: a server that refuses it, or wanted one, says so a round trip later, with an
 * alert or by hanging up. Waiting for the server's first word (a session ticket, data, an alert,
 * or the end) turns that into a handshake failure instead of a broken connection later.
 * Start watching before the handshake: a ticket can arrive right after it.
 */
export function watchAcceptance(socket: TLSSocket): (ms: number) => Promise<'accepted' | 'closed'> {
  let ticket = false;
  socket.once('session', () => (ticket = true));
  return (ms) =>
    new Promise((resolve, reject) => {
      // A server that hung up (right after a ticket, or under TLS 1.2) has not accepted us.
      if (hasEnded(socket)) return resolve('closed');
      if (ticket || socket.getProtocol() !== 'TLSv1.3') return resolve('accepted');
      const finish = (then: () => void) => {
        clearTimeout(timer);
        socket.off('session', onTicket).off('readable', onReadable).off('error', onError).off('close', onClose);
        then();
      };
      const onTicket = () => finish(() => resolve('accepted'));
      // 'readable' only signals; the data stays buffered for whoever reads the socket next.
      const onReadable = () => finish(() => resolve(socket.readableLength > 0 ? 'accepted' : 'closed'));
      const onError = (err: Error) => finish(() => reject(err));
      const onClose = () => finish(() => resolve('closed'));
      // A server that sends neither tickets nor data has accepted us as far as we can tell.
      const timer = setTimeout(() => finish(() => resolve('accepted')), ms);
      socket.on('session', onTicket).on('readable', onReadable).on('error', onError).on('close', onClose);
    });
}
