// The part of autocannon's API that bench/server/load.ts uses (autocannon ships no types).
declare module 'autocannon' {
  interface Instance {
    on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): Instance;
    stop(): void;
  }
  function autocannon(opts: Record<string, unknown>, cb: (err: Error | null, result: never) => void): Instance;
  export default autocannon;
}
