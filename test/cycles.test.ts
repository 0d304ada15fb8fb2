// The import graph of src/ has no cycle, and only src/node/ reaches Node. Imports run one way,
// core → pool → realms and sgl → mmsa, with policy pure below them all; a cycle means two files
// can only be understood (and loaded) together, so each one found is reported with a path
// through it. Imports are read with the TypeScript parser, not with patterns, so an import
// named in a comment or a string is not taken for one. Type imports count: a type-only cycle
// still ties the files' designs together, even though it is erased before anything runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** One module specifier in a file, and whether it survives compilation (verbatimModuleSyntax:
 *  only `import type`, `export type` and `import('…')` in a type position are erased). */
interface Ref { spec: string; typeOnly: boolean; line: number }

/** Every module specifier a TypeScript source names: import and export declarations (type-only
 *  ones too), side-effect imports, `import x = require(…)`, `import(…)` types and calls. */
function refsOf(fileName: string, text: string): Ref[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const refs: Ref[] = [];
  const literal = (n: ts.Node | undefined): string | undefined =>
    n && ts.isStringLiteralLike(n) ? n.text : undefined;
  const add = (n: ts.Node, spec: string | undefined, typeOnly: boolean): void => {
    if (spec !== undefined) refs.push({ spec, typeOnly, line: sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1 });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n)) {
      add(n, literal(n.moduleSpecifier), n.importClause?.isTypeOnly ?? false);
    } else if (ts.isExportDeclaration(n)) {
      add(n, literal(n.moduleSpecifier), n.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) {
      add(n, literal(n.moduleReference.expression), n.isTypeOnly);
    } else if (ts.isImportTypeNode(n)) {
      add(n, ts.isLiteralTypeNode(n.argument) ? literal(n.argument.literal) : undefined, true);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(n, literal(n.arguments[0]), false);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return refs;
}

const isRelative = (spec: string): boolean => spec.startsWith('./') || spec.startsWith('../');
const isNodeBuiltin = (spec: string): boolean =>
  spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!) || builtinModules.includes(spec);

/** The .ts file a relative specifier names (`./x.js` is written for `./x.ts`), or undefined. */
function resolveRef(fromFile: string, spec: string): string | undefined {
  const base = resolve(dirname(fromFile), spec);
  const candidates = spec.endsWith('.js')
    ? [base.slice(0, -3) + '.ts', base.slice(0, -3) + '.tsx', base]
    : [base, base + '.ts', join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && !c.endsWith(sep));
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

interface Edge { to: string; typeOnly: boolean }
type Graph = Map<string, Edge[]>;

interface Scan {
  graph: Graph; // src-relative path (posix) → the src files it imports
  files: number;
  edges: number;
  unresolved: string[]; // "file: spec" for relative specifiers that name no file
  outside: string[]; // "file: spec" for relative specifiers that leave src/
  nodeRefs: { file: string; spec: string; line: number }[]; // every Node built-in or src/node/ file named
}

const rel = (abs: string): string => relative(SRC, abs).split(sep).join('/');

function scan(): Scan {
  const graph: Graph = new Map();
  const s: Scan = { graph, files: 0, edges: 0, unresolved: [], outside: [], nodeRefs: [] };
  for (const abs of tsFiles(SRC)) {
    const from = rel(abs);
    s.files++;
    const edges = new Map<string, Edge>();
    for (const { spec, typeOnly, line } of refsOf(abs, readFileSync(abs, 'utf8'))) {
      if (isNodeBuiltin(spec)) { s.nodeRefs.push({ file: from, spec, line }); continue; }
      if (!isRelative(spec)) continue; // a package or an import map entry: #core, #abi, bare names
      const target = resolveRef(abs, spec);
      if (target === undefined) { s.unresolved.push(`${from}: ${spec}`); continue; }
      const to = rel(target);
      if (to.startsWith('../')) { s.outside.push(`${from}: ${spec}`); continue; }
      if (to.startsWith('node/')) s.nodeRefs.push({ file: from, spec: `src/${to}`, line });
      // A file importing another twice (a value and a type import) is one edge, erased only if
      // every import of it is.
      const prev = edges.get(to);
      edges.set(to, { to, typeOnly: (prev?.typeOnly ?? true) && typeOnly });
    }
    graph.set(from, [...edges.values()].sort((a, b) => a.to.localeCompare(b.to)));
    s.edges += edges.size;
  }
  return s;
}

/** Tarjan's strongly connected components; only the non-trivial ones (more than one file, or
 *  one that imports itself), each sorted, in a stable order. */
function cycles(graph: Graph): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const { to: w } of graph.get(v) ?? []) {
      if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); comp.push(w); } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).some((e) => e.to === v);
      if (comp.length > 1 || selfLoop) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** A shortest cycle through `start` that stays inside `comp` (breadth-first), as a path that
 *  ends where it starts. */
function cycleThrough(graph: Graph, comp: string[], start: string): string[] {
  const inComp = new Set(comp);
  const parent = new Map<string, string>();
  const queue = [start];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const { to: w } of graph.get(v) ?? []) {
      if (!inComp.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = parent.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!seen.has(w)) { seen.add(w); parent.set(w, v); queue.push(w); }
    }
  }
  return [];
}

/** What a failing run prints: each component, a shortest cycle through each of its files (each
 *  cycle once), and the imports inside it (those marked "type" are erased at compile time; the
 *  others also run). */
function describe(graph: Graph, comps: string[][]): string {
  const lines = [`${comps.length} strongly connected component(s) of imports in src/:`];
  for (const comp of comps) {
    const inComp = new Set(comp);
    lines.push(`- ${comp.length} files: ${comp.join(', ')}`);
    const seen = new Set<string>();
    for (const v of comp) {
      const path = cycleThrough(graph, comp, v);
      const ring = path.slice(0, -1);
      const first = ring.indexOf([...ring].sort()[0]!);
      const key = [...ring.slice(first), ...ring.slice(0, first)].join(' ');
      if (seen.has(key)) continue;
      seen.add(key);
      lines.push(`  cycle: ${path.join(' → ')}`);
    }
    lines.push('  imports inside it:');
    for (const v of comp) {
      for (const e of graph.get(v) ?? []) {
        if (inComp.has(e.to)) lines.push(`    ${v} → ${e.to}${e.typeOnly ? ' (type)' : ''}`);
      }
    }
  }
  return lines.join('\n');
}

const graphOf = (adj: Record<string, string[]>): Graph =>
  new Map(Object.entries(adj).map(([k, vs]) => [k, vs.map((to) => ({ to, typeOnly: false }))]));

test('the detector finds a known cycle, a self-import, and passes an acyclic graph', () => {
  const g = graphOf({
    'a.ts': ['b.ts', 'x.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts', 'x.ts'],
    'x.ts': ['y.ts'], 'y.ts': [], 's.ts': ['s.ts'], 'p.ts': ['q.ts'], 'q.ts': ['p.ts', 'a.ts'],
  });
  const comps = cycles(g);
  assert.equal(comps, [['a.ts', 'b.ts', 'c.ts'], ['p.ts', 'q.ts'], ['s.ts']]);
  assert.equal(cycleThrough(g, comps[0]!, 'a.ts'), ['a.ts', 'b.ts', 'c.ts', 'a.ts']);
  assert.equal(cycleThrough(g, comps[2]!, 's.ts'), ['s.ts', 's.ts']);
  assert.match(describe(g, comps), 'a.ts → b.ts → c.ts → a.ts');
  // The same shape with the back edges gone: a diamond and a chain, no component.
  const dag = graphOf({
    'a.ts': ['b.ts', 'x.ts'], 'b.ts': ['c.ts'], 'c.ts': ['x.ts'], 'x.ts': ['y.ts'], 'y.ts': [],
    'p.ts': ['q.ts'], 'q.ts': ['a.ts'],
  });
  assert.equal(cycles(dag), []);
});

test('the reader sees every form of import, and none in comments or strings', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from './b.js';",
    "import { type C } from './c.js';",
    "import * as d from './d.js';",
    "import './e.js';",
    "export { f } from './f.js';",
    "export * from './g.js';",
    "export type { H } from './h.js';",
    "import i = require('./i.js');",
    "let j: import('./j.js').J;",
    "const k = await import('./k.js');",
    "import { l } from '#core';",
    "// import { no } from './comment.js';",
    "/* export * from './block.js'; */",
    "const s = \"import { no } from './string.js'\";",
    "const t = `export * from './template.js'`;",
    "void a, d, i, j, k, l, s, t;",
  ].join('\n');
  const refs = refsOf('x.ts', text);
  assert.equal(refs.map((r) => r.spec),
    ['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.js', './h.js', './i.js', './j.js', './k.js', '#core']);
  assert.equal(refs.filter((r) => r.typeOnly).map((r) => r.spec), ['./b.js', './h.js', './j.js']);
  assert.ok(isNodeBuiltin('node:fs') && isNodeBuiltin('fs') && isNodeBuiltin('fs/promises'));
  assert.not.ok(isNodeBuiltin('#core') || isNodeBuiltin('./fs.js') || isNodeBuiltin('uvu'));
});

const s = scan();

test('the scan of src/ reads its files, and every relative import names one of them', () => {
  assert.ok(s.files > 20, `${s.files} files under src/`);
  assert.ok(s.edges > 40, `${s.edges} imports between files of src/`);
  assert.ok(s.graph.has('mmsa.ts') && s.graph.has('index.ts'), 'src/mmsa.ts and src/index.ts were read');
  assert.equal(s.unresolved, [], 'relative imports that name no file');
  assert.equal(s.outside, [], 'relative imports that leave src/');
});

test('src/ has no import cycle', () => {
  const comps = cycles(s.graph);
  if (comps.length > 0) assert.unreachable(describe(s.graph, comps));
});

// The graph between rooms: a file's folder (core/, pool/, realms/, …), or the file itself at the top
// level, so that imports run one way between folders too, not only between files.
const roomOf = (file: string): string => (file.includes('/') ? `${file.split('/')[0]}/` : file);
function rooms(graph: Graph): Graph {
  const out: Graph = new Map();
  for (const [from, edges] of graph) {
    const r = roomOf(from);
    const list = out.get(r) ?? [];
    out.set(r, list);
    for (const e of edges) {
      const to = roomOf(e.to);
      if (to !== r && !list.some((x) => x.to === to)) list.push({ to, typeOnly: e.typeOnly });
    }
  }
  return out;
}

test('the folders of src/ import one way: no cycle between rooms', () => {
  const g = rooms(s.graph);
  assert.ok(g.has('pool/') && g.has('realms/') && g.has('mmsa.ts'), 'the rooms were found');
  assert.equal(cycles(rooms(graphOf({ 'a/x.ts': ['b/y.ts'], 'b/y.ts': ['a/z.ts'], 'a/z.ts': [] }))), [['a/', 'b/']], 'a folder cycle of acyclic files is found');
  const comps = cycles(g);
  if (comps.length > 0) assert.unreachable(describe(g, comps));
});

test('only src/node/ imports Node: no node: module or src/node/ file is named outside it', () => {
  const bad = s.nodeRefs.filter((r) => !r.file.startsWith('node/'));
  const found = s.nodeRefs.filter((r) => r.file.startsWith('node/'));
  assert.ok(found.some((r) => r.spec.startsWith('node:')), 'src/node/ itself imports node: (the check sees them)');
  if (bad.length > 0) {
    assert.unreachable(`outside src/node/:\n${bad.map((r) => `  src/${r.file}:${r.line} imports ${r.spec}`).join('\n')}`);
  }
});

test.run();
