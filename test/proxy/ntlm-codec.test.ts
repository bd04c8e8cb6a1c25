// NTLM's pure parts: MD4 checked against OpenSSL's own (legacy provider), the NTLMv2 computations
// against MS-NLMP 4.2.4's inputs, the message codecs (the short CHALLENGE without a version field
// included), and Proxy-Authenticate parsing. The cryptography as a whole is checked by an
// independent acceptor in ntlm-acceptor.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseChallenges, offeredSchemes } from '../../src/proxy/auth/challenges.js';
import { ntlmCredentials, splitUserName, defaultWorkstation } from '../../src/proxy/auth/ntlm/credentials.js';
import { NtlmExchange } from '../../src/proxy/auth/ntlm/exchange.js';
import { md4 } from '../../src/proxy/auth/ntlm/md4.js';
import { AV, decodeAvPairs, decodeChallenge, encodeAvPairs, encodeNegotiate } from '../../src/proxy/auth/ntlm/messages.js';
import { ntHash, ntlmv2Hash, ntlmv2Response } from '../../src/proxy/auth/ntlm/ntlmv2.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** OpenSSL's MD4 (from the legacy provider): an implementation that is not ours. */
function opensslMd4(data: Buffer): string {
  const out = execFileSync('openssl', ['dgst', '-md4', '-provider', 'legacy', '-provider', 'default', '-r'], { input: data }).toString();
  return out.split(' ')[0]!;
}

describe('MD4', () => {
  it('agrees with OpenSSL on the RFC 1320 suite and on random inputs around the padding boundaries', () => {
    const inputs = ['', 'a', 'abc', 'message digest', 'abcdefghijklmnopqrstuvwxyz'].map((s) => Buffer.from(s));
    for (const length of [55, 56, 57, 63, 64, 65, 119, 120, 1000]) inputs.push(randomBytes(length));
    for (const input of inputs) assert.equal(md4(input).toString('hex'), opensslMd4(input), `length ${input.length}`);
  });
});

describe('NTLMv2 (MS-NLMP 4.2.4: user "User", domain "Domain", password "Password")', () => {
  // The spec's inputs: server challenge, client challenge aa×8, time 0, and the CHALLENGE's
  // target info (NbDomainName "Domain", NbComputerName "Server").
  const serverChallenge = hex('0123456789abcdef');
  const targetInfo = encodeAvPairs([
    { id: AV.NbDomainName, value: Buffer.from('Domain', 'utf16le') },
    { id: 1, value: Buffer.from('Server', 'utf16le') },
  ]);
  const key = ntlmv2Hash(ntHash('Password'), 'User', 'Domain');

  it('computes NTOWFv1, NTOWFv2, the LMv2 and NTLMv2 responses and the session base key as the spec lists them', () => {
    assert.equal(ntHash('Password').toString('hex'), 'a4f49c406510bdcab6824ee7c30fd852');
    assert.equal(key.toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f');
    const r = ntlmv2Response({ key, serverChallenge, clientChallenge: Buffer.alloc(8, 0xaa), time: 0n, targetInfo });
    assert.equal(r.lmResponse.toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    assert.equal(r.ntProofStr.toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c');
    assert.equal(r.sessionBaseKey.toString('hex'), '8de40ccadbc14a82f15cb0ad0de95ca3');
    // The blob after NTProofStr: version 1.1, Z(6), time, client challenge, Z(4), target info, Z(4).
    assert.deepEqual(r.ntResponse.subarray(16), Buffer.concat([hex('0101000000000000'), Buffer.alloc(8), Buffer.alloc(8, 0xaa), Buffer.alloc(4), targetInfo, Buffer.alloc(4)]));
  });

  it('upper-cases the user but not the domain in NTOWFv2', () => {
    assert.deepEqual(ntlmv2Hash(ntHash('Password'), 'user', 'Domain'), key);
    assert.notDeepEqual(ntlmv2Hash(ntHash('Password'), 'User', 'DOMAIN'), key);
  });
});

describe('NTLM messages', () => {
  it('sends a 40-byte NEGOTIATE with the version field and empty domain and workstation', () => {
    const m = encodeNegotiate(0xe2088297);
    assert.equal(m.length, 40);
    assert.equal(m.subarray(0, 12).toString('latin1'), 'NTLMSSP\0\x01\0\0\0');
    assert.equal(m.readUInt32LE(12), 0xe2088297);
    assert.deepEqual(m.subarray(16, 32), hex('0000000028000000 0000000028000000'));
  });

  it('reads squid ntlm_fake_auth\'s CHALLENGE: 40 fixed bytes, no target info, a TargetName offset pointing nowhere', () => {
    // As ntlm_fake_auth (squid 5.7) answered a NEGOTIATE, verbatim but for the server challenge.
    const fake = Buffer.from('TlRMTVNTUAACAAAACQAJAK6qqqoHggiiQn+gtXF15GoAAAAAAAA6AFdPUktHUk9VUA==', 'base64');
    const c = decodeChallenge(fake);
    assert.equal(c.serverChallenge.toString('hex'), '427fa0b57175e46a');
    assert.equal(c.targetInfo.length, 0);
    assert.equal(c.targetName.length, 0);
  });

  it('reads a CHALLENGE without the version field (48 fixed bytes) and one with it', () => {
    const info = encodeAvPairs([{ id: AV.NbDomainName, value: Buffer.from('SQ', 'utf16le') }]);
    const name = Buffer.from('SQ', 'utf16le');
    const build = (fixed: number) => {
      const m = Buffer.alloc(fixed + name.length + info.length);
      m.write('NTLMSSP\0', 0, 'latin1');
      m.writeUInt32LE(2, 8);
      m.writeUInt16LE(name.length, 12); m.writeUInt16LE(name.length, 14); m.writeUInt32LE(fixed, 16);
      m.writeUInt32LE(0x00820205 | 0x00800000, 20);
      hex('1122334455667788').copy(m, 24);
      m.writeUInt16LE(info.length, 40); m.writeUInt16LE(info.length, 42); m.writeUInt32LE(fixed + name.length, 44);
      name.copy(m, fixed);
      info.copy(m, fixed + name.length);
      return m;
    };
    for (const fixed of [48, 56]) {
      const c = decodeChallenge(build(fixed));
      assert.equal(c.serverChallenge.toString('hex'), '1122334455667788');
      assert.equal(c.targetName.toString('utf16le'), 'SQ');
      assert.deepEqual(decodeAvPairs(c.targetInfo), [{ id: AV.NbDomainName, value: Buffer.from('SQ', 'utf16le') }]);
    }
    // A 32-byte challenge (no target info at all) is read too.
    const old = Buffer.from(build(48).subarray(0, 32));
    old.fill(0, 12, 20);
    old.writeUInt32LE(0x00000205, 20);
    assert.equal(decodeChallenge(old).targetInfo.length, 0);
  });

  it('refuses a CHALLENGE that is not one, as PROXY_AUTH_PROTOCOL', () => {
    const bad = (bytes: Buffer, re: RegExp) => assert.throws(() => decodeChallenge(bytes), (e: Error & { code?: string }) => e.code === 'PROXY_AUTH_PROTOCOL' && re.test(e.message));
    bad(Buffer.from('short'), /shorter than any CHALLENGE/);
    bad(Buffer.alloc(48), /does not begin with the NTLMSSP signature/);
    const type3 = Buffer.alloc(48); type3.write('NTLMSSP\0', 0, 'latin1'); type3.writeUInt32LE(3, 8);
    bad(type3, /message type 3 where a CHALLENGE/);
    const overrun = Buffer.alloc(48); overrun.write('NTLMSSP\0', 0, 'latin1'); overrun.writeUInt32LE(2, 8); overrun.writeUInt32LE(0x00800000, 20); overrun.writeUInt16LE(100, 40); overrun.writeUInt32LE(40, 44);
    // Target info that does not fit is ignored, as ntlm_fake_auth's must be; malformed pairs inside are not.
    assert.equal(decodeChallenge(overrun).targetInfo.length, 0);
    assert.throws(() => decodeAvPairs(hex('0200ff00414141')), /pair \(id 2, 255 bytes\) that runs past its end/);
  });

  it('says a bare "NTLM" after NEGOTIATE and a non-base64 challenge are protocol errors', async () => {
    const ex = new NtlmExchange(ntlmCredentials('D\\u', { kind: 'password', password: 'p' }));
    assert.match(await ex.step(undefined), /^NTLM TlRMTVNTUAAB/);
    await assert.rejects(ex.step(undefined), /bare "NTLM", without a CHALLENGE/);
    await assert.rejects(ex.step('%%%'), /not base64/);
    assert.equal(ex.done, false);
  });
});

describe('NTLM credentials', () => {
  it('splits DOMAIN\\user and user@DOMAIN, and names the workstation as Windows does', () => {
    assert.deepEqual(splitUserName('CORP\\jane'), { domain: 'CORP', user: 'jane' });
    assert.deepEqual(splitUserName('jane@corp.example'), { user: 'jane', domain: 'corp.example' });
    assert.deepEqual(splitUserName('jane'), { user: 'jane', domain: '' });
    assert.equal(defaultWorkstation('build-host-number-twelve.corp.example'), 'BUILD-HOST-NUMB');
  });

  it('makes the same key from a password, its NT hash and its NTLMv2 hash', () => {
    const fromPassword = ntlmCredentials('CORP\\jane', { kind: 'password', password: 'Secret-pw1' }).key;
    assert.deepEqual(ntlmCredentials('CORP\\jane', { kind: 'nt-hash', hash: ntHash('Secret-pw1') }).key, fromPassword);
    assert.deepEqual(ntlmCredentials('CORP\\jane', { kind: 'ntlmv2-hash', hash: fromPassword }).key, fromPassword);
  });
});

describe('Proxy-Authenticate', () => {
  it('reads every challenge of every field: schemes alone, with parameters (commas inside quotes too), and with a token', () => {
    const c = parseChallenges(['NTLM', 'Negotiate, Basic realm="a, b", charset="UTF-8"', 'NTLM TlRMTVNTUAACAAAA==']);
    assert.deepEqual(c, [{ scheme: 'NTLM' }, { scheme: 'Negotiate' }, { scheme: 'Basic' }, { scheme: 'NTLM', token: 'TlRMTVNTUAACAAAA==' }]);
    assert.deepEqual(offeredSchemes(c), ['NTLM', 'Negotiate', 'Basic']);
    assert.deepEqual(parseChallenges(['', ' , ']), []);
  });
});
