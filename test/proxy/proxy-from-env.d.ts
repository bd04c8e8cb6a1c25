// proxy-from-env 2.x ships no types; this test uses it as the reference for NO_PROXY and variable choice.
declare module 'proxy-from-env' {
  export function getProxyForUrl(url: string | URL): string;
}
