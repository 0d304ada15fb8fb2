// Generates build/abi.js and build/abi.d.ts (the `#abi` import) from the core's sources: the
// error codes, stat fields and MAX_BATCH of assembly/index.ts, the check codes of
// assembly/check.ts (each with its trailing comment as the message), the magic, ABI version,
// shifts, header byte offsets, flags and slot states of assembly/layout.ts, and the size-class geometry
// of assembly/classes.ts, plus what follows from them: u32 word indices of the header fields
// (W_*), the check messages as a table and the 64 class sizes. The TypeScript shares these
// numbers with the core, so it takes them from here and never keeps a copy that could drift; as
// with Go's sizeclasses.go, the output is generated and never edited. Only simple constant
// expressions are understood (literals, names defined earlier in the same file, unary and binary
// integer operators, parentheses); anything else among the constants taken, a name the
// TypeScript imports that is not generated, or a value the built core disagrees with fails the
// build with the file and line. Run by scripts/build.js after the wasm is built (so that the
// values can be checked against it), or alone: `node scripts/abi.js`.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Which constants each file gives the TypeScript, by name.
const SOURCES = [
  { file: 'assembly/index.ts', take: [/^E_/, /^MAX_BATCH$/, /^CSTAT_/, /^STAT_/] },
  { file: 'assembly/check.ts', take: [/^E_CHECK_/], messages: true },
  {
    file: 'assembly/layout.ts',
    take: [/^MAGIC$/, /^ABI_VERSION$/, /^PAGE_SHIFT$/, /^GRANULE_SHIFT$/, /^WASM_PAGE_SHIFT$/, /^H_/, /^ST_/, /^FLAG_/],
  },
  { file: 'assembly/classes.ts', take: [/^NUM_CLASSES$/, /^NUM_SMALL$/, /^SMALL_STEP$/, /^PAGE_STEP$/, /^SMALL_RUN_PAGES$/] },
];
// What the generator itself needs for the tables it derives.
const NEEDED = ['NUM_CLASSES', 'NUM_SMALL', 'SMALL_STEP', 'PAGE_STEP', 'SMALL_RUN_PAGES', 'ABI_VERSION', 'MAGIC',
  'STAT_ABI', 'STAT_PAGES', 'CSTAT_SIZE', 'CSTAT_RUN_PAGES', 'PAGE_SHIFT', 'WASM_PAGE_SHIFT', 'H_MAGIC'];

export class AbiError extends Error {}

const fail = (where, why) => { throw new AbiError(`${where}: ${why}`); };

// ---- reading the sources -------------------------------------------------------------------------

// A top-level `[export] const NAME[: type] = expression; [// comment]` on one line.
const DECL = /^(?:export\s+)?const\s+([A-Za-z_]\w*)\s*(?::\s*(\w+))?\s*=\s*([^;]*?)\s*;\s*(?:\/\/\s*(.*?))?\s*$/;
const ANY_DECL = /^(?:export\s+)?const\s+([A-Za-z_]\w*)/;

// Every top-level constant of a file, unevaluated, in order.
function declarations(root, file) {
  const decls = new Map();
  const text = readFileSync(join(root, file), 'utf8');
  text.split('\n').forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    const any = ANY_DECL.exec(line);
    if (!any) return;
    const m = DECL.exec(line);
    if (!m) {
      decls.set(any[1], { name: any[1], where, bad: 'not a one-line `const NAME[: type] = expression;`' });
      return;
    }
    const [, name, type, expr, comment] = m;
    if (decls.has(name)) fail(where, `${name} is declared twice`);
    decls.set(name, { name, type, expr, comment, where, index: decls.size });
  });
  return decls;
}

// Integer constant expressions, evaluated as the core does for 32-bit integers.
const TOKEN = /\s*(0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*|[A-Za-z_]\w*|>>>|<<|>>|[-+*/%&|^~()])/y;
const BINARY = [['|'], ['^'], ['&'], ['<<', '>>', '>>>'], ['+', '-'], ['*', '/', '%']];
const INT_TYPES = { i32: (v) => v | 0, u32: (v) => v >>> 0, usize: (v) => v >>> 0, isize: (v) => v | 0 };

function evaluate(decl, decls) {
  if ('value' in decl) return decl.value;
  if (decl.bad) fail(decl.where, `cannot read ${decl.name}: ${decl.bad}`);
  const cast = decl.type === undefined ? INT_TYPES.i32 : INT_TYPES[decl.type];
  if (!cast) fail(decl.where, `${decl.name} has type ${decl.type}; only i32, u32, usize and isize constants are understood`);
  const tokens = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < decl.expr.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(decl.expr);
    if (!m) fail(decl.where, `cannot evaluate ${decl.name} = ${decl.expr}: unexpected "${decl.expr.slice(at).trim()}"`);
    tokens.push(m[1]);
  }
  let pos = 0;
  const bad = (why) => fail(decl.where, `cannot evaluate ${decl.name} = ${decl.expr}: ${why}`);
  const binary = (level) => {
    if (level === BINARY.length) return unary();
    let v = binary(level + 1);
    while (BINARY[level].includes(tokens[pos])) {
      const op = tokens[pos++];
      const w = binary(level + 1);
      if ((op === '/' || op === '%') && w === 0) bad('division by zero');
      v = {
        '|': v | w, '^': v ^ w, '&': v & w, '<<': v << w, '>>': v >> w, '>>>': v >>> w,
        '+': (v + w) | 0, '-': (v - w) | 0, '*': Math.imul(v, w), '/': Math.trunc(v / w) | 0, '%': v % w | 0,
      }[op];
    }
    return v;
  };
  const unary = () => {
    const t = tokens[pos++];
    if (t === undefined) bad('it ends early');
    if (t === '-') return -unary() | 0;
    if (t === '+') return unary();
    if (t === '~') return ~unary();
    if (t === '(') {
      const v = binary(0);
      if (tokens[pos++] !== ')') bad('a ")" is missing');
      return v;
    }
    if (/^\d/.test(t)) {
      const n = Number(t.replace(/_/g, ''));
      if (!Number.isSafeInteger(n) || n > 0xffffffff) bad(`${t} does not fit in 32 bits`);
      return n | 0;
    }
    if (/^[A-Za-z_]/.test(t)) {
      const d = decls.get(t);
      if (!d || d.index >= decl.index) bad(`${t} is not a constant defined earlier in this file`);
      return evaluate(d, decls) | 0;
    }
    return bad(`unexpected "${t}"`);
  };
  const v = binary(0);
  if (pos !== tokens.length) bad(`unexpected "${tokens[pos]}"`);
  decl.value = cast(v);
  return decl.value;
}

// The constants taken from assembly/, by name: { value, where, comment }.
export function readAbi(root) {
  const out = new Map();
  const messages = new Map();
  for (const src of SOURCES) {
    const decls = declarations(root, src.file);
    for (const d of decls.values()) {
      if (!src.take.some((p) => p.test(d.name))) continue;
      if (out.has(d.name)) fail(d.where, `${d.name} is also defined at ${out.get(d.name).where}`);
      out.set(d.name, { value: evaluate(d, decls), where: d.where, comment: d.comment });
      if (src.messages) {
        if (!d.comment) fail(d.where, `${d.name} needs a trailing comment: it is the check's message`);
        messages.set(d.value, d.comment);
      }
    }
    for (const p of src.take) {
      if (![...decls.keys()].some((name) => p.test(name))) fail(src.file, `no constant matches ${p}`);
    }
  }
  for (const name of NEEDED) if (!out.has(name)) fail(SOURCES.find((s) => s.take.some((p) => p.test(name)))?.file ?? 'assembly/', `${name} is missing`);
  const v = (name) => out.get(name).value;
  for (const [name, c] of out) {
    if (!name.startsWith('H_')) continue;
    if (c.value % 4 !== 0) fail(c.where, `${name} (${c.value}) is not at a u32 boundary`);
  }
  const sizes = [];
  for (let c = 0; c < v('NUM_CLASSES'); c++) {
    // As classSize() in assembly/classes.ts.
    sizes.push(c < v('NUM_SMALL') ? v('SMALL_STEP') * (c + 1) : v('PAGE_STEP') * (c - v('NUM_SMALL') + 1));
  }
  return { constants: out, messages, sizes };
}

// ---- checking against the built core and the TypeScript ------------------------------------------

// The values the built core reports must be the ones read from its sources: its exported globals
// (the constants of assembly/index.ts), the ABI version and magic in a fresh arena's header, and
// every class's size and run length.
export function checkAgainstCore(abi, wasmFile) {
  const c = (name) => abi.constants.get(name).value;
  const mod = new WebAssembly.Module(readFileSync(wasmFile));
  const pages = 3; // the smallest arena init accepts
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const x = new WebAssembly.Instance(mod, { env: { memory } }).exports;
  const where = relative(process.cwd(), wasmFile);
  for (const e of WebAssembly.Module.exports(mod)) {
    if (e.kind !== 'global' || !abi.constants.has(e.name)) continue;
    const got = x[e.name].value;
    if (got !== c(e.name)) fail(abi.constants.get(e.name).where, `${e.name} reads ${c(e.name)} here but ${got} in ${where}`);
  }
  if (x.init(0, 1, 1) !== 0) fail(where, 'init failed on a fresh arena');
  const want = [
    ['STAT_ABI', x.arena_stat(c('STAT_ABI')), c('ABI_VERSION'), 'ABI_VERSION'],
    ['STAT_PAGES', x.arena_stat(c('STAT_PAGES')), (pages << c('WASM_PAGE_SHIFT')) >>> c('PAGE_SHIFT'), 'pages by WASM_PAGE_SHIFT and PAGE_SHIFT'],
    ['H_MAGIC', new Uint32Array(memory.buffer)[c('H_MAGIC') >>> 2], c('MAGIC'), 'MAGIC'],
  ];
  for (const [name, got, expected, what] of want) {
    if (got !== expected) fail(abi.constants.get(name).where, `${where} reads ${got} through ${name}, the sources say ${what} = ${expected}`);
  }
  abi.sizes.forEach((size, cls) => {
    const got = x.class_stat(cls, c('CSTAT_SIZE'));
    if (got !== size) fail(abi.constants.get('NUM_CLASSES').where, `class ${cls}: ${where} says ${got} B, the class table read from assembly/classes.ts ${size} B`);
  });
  if (x.class_stat(0, c('CSTAT_RUN_PAGES')) !== c('SMALL_RUN_PAGES')) {
    fail(abi.constants.get('SMALL_RUN_PAGES').where, `${where} gives class 0 runs of ${x.class_stat(0, c('CSTAT_RUN_PAGES'))} pages`);
  }
}

// Every name a file under src/ or test/ imports from '#abi' must be generated (tsc says so too,
// but the bundler would not).
export function checkImports(root, names) {
  const walk = (dir) => readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p) : /\.ts$/.test(e.name) ? [p] : [];
  });
  const IMPORT = /\b(?:import|export)\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"]#abi['"]/g;
  for (const file of [...walk('src'), ...walk('test')]) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const line = text.slice(0, m.index).split('\n').length;
      for (const item of m[1].split(',')) {
        const name = item.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0];
        if (name && !names.has(name)) fail(`${file}:${line}`, `imports ${name} from '#abi', which assembly/ does not define (or scripts/abi.js does not take)`);
      }
    }
  }
}

// ---- writing ---------------------------------------------------------------------------------------

export function writeAbi(abi, buildDir) {
  const js = ['// Generated by scripts/abi.js from assembly/. Do not edit: change assembly/ and rebuild.', ''];
  const dts = ['// Generated by scripts/abi.js from assembly/. Do not edit: change assembly/ and rebuild.', ''];
  const names = new Set();
  const emit = (name, value, doc) => {
    names.add(name);
    js.push(`export const ${name} = ${value};`);
    dts.push(`/** ${doc.replace(/\*\//g, '* /')} */`, `export declare const ${name}: ${value};`);
  };
  for (const [name, c] of abi.constants) emit(name, c.value, c.comment ? `${c.comment} (${c.where})` : c.where);
  js.push('', '// u32 indices of the header fields (H_* / 4).');
  dts.push('');
  for (const [name, c] of abi.constants) {
    if (name.startsWith('H_')) emit(`W_${name.slice(2)}`, c.value / 4, `u32 index of ${name} (byte ${c.value}, ${c.where})`);
  }
  const messages = [...abi.messages].map(([code, text]) => `  ${JSON.stringify(String(code))}: ${JSON.stringify(text)},`);
  js.push('', '// What each check code (E_CHECK_*) means: its comment in assembly/check.ts.',
    'export const CHECK_MESSAGES = Object.freeze({', ...messages, '});');
  dts.push('', '/** What each check code (E_CHECK_*) means: its comment in assembly/check.ts. */',
    'export declare const CHECK_MESSAGES: Readonly<Record<number, string>>;');
  js.push('', '// The size of each class, as classSize() in assembly/classes.ts computes it.',
    `export const CLASS_SIZES = Object.freeze([${abi.sizes.join(', ')}]);`, '');
  dts.push('', '/** The size of each class, as classSize() in assembly/classes.ts computes it. */',
    'export declare const CLASS_SIZES: readonly number[];', '');
  names.add('CHECK_MESSAGES').add('CLASS_SIZES');
  writeFileSync(join(buildDir, 'abi.js'), js.join('\n'));
  writeFileSync(join(buildDir, 'abi.d.ts'), dts.join('\n'));
  return names;
}

// Reads assembly/, checks it against the built core (when given) and the TypeScript's imports,
// and writes build/abi.js and build/abi.d.ts.
export function generateAbi(root, buildDir, wasmFile) {
  const abi = readAbi(root);
  if (wasmFile) checkAgainstCore(abi, wasmFile);
  const names = writeAbi(abi, buildDir);
  checkImports(root, names);
  return abi;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  try {
    generateAbi(root, join(root, 'build'), join(root, 'build', 'memsys.st.wasm'));
  } catch (e) {
    if (!(e instanceof AbiError)) throw e;
    console.error(`memsys: scripts/abi.js: ${e.message}`);
    process.exit(1);
  }
}
