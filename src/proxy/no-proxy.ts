import { BlockList, isIP } from 'node:net';

/**
 * NO_PROXY matching. Names follow proxy-from-env (and so curl's older rules):
 * `*` matches everything; an entry starting with `.` or `*` matches by suffix;
 * any other name matches only itself, so `example.org` does not cover
 * `www.example.org`; `HOST:PORT` also requires the port. On top of that, IP
 * entries match IP targets numerically (`::1` = `0:0::1`), and CIDR ranges
 * (`10.0.0.0/8`, `fd00::/8`) match IP targets inside them. A target given as
 * a name is never resolved to match IP entries: the proxy may be there
 * precisely because this machine cannot resolve the master.
 */
export function noProxyMatch(noProxy: string, host: string, port: number): string | undefined {
  const target = bare(host.toLowerCase());
  return entries(noProxy).find((entry) => matches(entry, target, port));
}

/**
 * Entries without a leading dot that are a parent domain of the host: they do
 * not match it (see noProxyMatch), which surprises people used to Go or Python.
 */
export function parentDomainEntries(noProxy: string, host: string): string[] {
  const target = bare(host.toLowerCase());
  return entries(noProxy).filter((entry) => /^[^.*]/.test(entry) && !isIP(entry) && target.endsWith(`.${entry}`));
}

function entries(noProxy: string): string[] {
  return noProxy.toLowerCase().split(/[,\s]+/).filter((e) => e !== '');
}

function matches(entry: string, target: string, port: number): boolean {
  if (entry === '*') return true;
  const cidr = /^\[?([0-9a-f:.]+)\]?\/(\d{1,3})$/.exec(entry);
  if (cidr) return inRange(target, cidr[1]!, Number(cidr[2]));
  const [name, entryPort] = splitPort(entry);
  if (entryPort !== undefined && entryPort !== port) return false;
  if (isIP(name)) return sameAddress(target, name);
  if (name.startsWith('*') || name.startsWith('.')) return target.endsWith(name.replace(/^\*/, ''));
  return target === name;
}

function splitPort(entry: string): [string, number | undefined] {
  if (isIP(entry)) return [entry, undefined];
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? /^(.+):(\d+)$/.exec(entry);
  if (!m) return [entry, undefined];
  return [m[1]!, m[2] === undefined ? undefined : Number(m[2])];
}

function inRange(target: string, base: string, prefix: number): boolean {
  const family = isIP(base);
  if (family === 0 || family !== isIP(target) || prefix > (family === 4 ? 32 : 128)) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addSubnet(base, prefix, type);
  return list.check(target, type);
}

function sameAddress(target: string, address: string): boolean {
  const family = isIP(address);
  return family === isIP(target) && inRange(target, address, family === 4 ? 32 : 128);
}

function bare(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
