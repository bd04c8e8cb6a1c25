/** HOST:PORT, the host in brackets when it is an IPv6 address: how URLs, CONNECT and logs write one. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
