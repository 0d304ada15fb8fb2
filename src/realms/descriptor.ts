// The checks every descriptor that crosses between realms goes through (share descriptors,
// handoffs, channel ports): any object can arrive by postMessage, so each field is checked before
// anything is taken from it, and the error names the field, its value and the rule.

import { MemsysTypeError, isIntIn, show } from '../errors.js';

/** @internal */
export class DescriptorCheck {
  // `what`: "a share descriptor"; `makeWith`: how a good one is made, for the first error.
  constructor(private readonly what: string, private readonly makeWith: string) {}

  bad(why: string): MemsysTypeError {
    return new MemsysTypeError('ERR_MEMSYS_DESCRIPTOR', `not ${this.what}: ${why}`);
  }

  // An object of one of `kinds`, version 1.
  shape(d: unknown, kinds: readonly string[]): Record<string, unknown> {
    const o = d as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || (kinds.length === 1 && o.kind !== kinds[0])) {
      throw this.bad(`got ${show(d)} (make one with ${this.makeWith})`);
    }
    if (!kinds.includes(o.kind as string)) throw this.bad(`kind ${show(o.kind)} is not ${kinds.map((k) => `"${k}"`).join(' or ')}`);
    if (o.v !== 1) throw this.bad(`version ${show(o.v)} is not 1`);
    return o;
  }

  int(o: Record<string, unknown>, k: string, lo: number, hi: number, rule = `an integer ${lo} … ${hi}`): void {
    if (!isIntIn(o[k], lo, hi)) throw this.bad(`${k} ${show(o[k])} is not ${rule}`);
  }
}
