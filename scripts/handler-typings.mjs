// The typings "flespi: New Handler…" writes next to a new handler: the declarations tsc emits for
// src/core/api.ts (what `import ... from 'flespi-receiver'` gives a handler file) and the files they
// import, as one `declare module 'flespi-receiver'` text. Generated from the source, never by hand.
// Usage: node scripts/handler-typings.mjs OUTFILE   (scripts/build.mjs writes dist/handler-typings.d.ts)
import { writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = 'src/core/api.ts';

/** The `declare module 'flespi-receiver'` text for the handler API entry. */
export function handlerTypings(root = ROOT) {
  const emitted = emitDeclarations(root);
  const entry = join(root, ENTRY).replace(/\.ts$/, '.d.ts');
  const files = closure(entry, emitted);
  const namespaceOf = (file) =>
    '_' +
    relative(join(root, 'src'), file)
      .replace(/\.d\.ts$/, '')
      .replace(/\W/g, '_');
  /** `import * as _node_x from 'node:x'` lines at the top of the module: namespaces cannot import from modules. */
  const externals = new Map();

  const body = files.map((file) => {
    const source = ts.createSourceFile(file, emitted.get(file), ts.ScriptTarget.ES2022, true);
    const target = (specifier) => {
      const path = resolveRelative(file, specifier, emitted);
      if (!path) throw new Error(`${relative(root, file)}: cannot find the declarations of '${specifier}'`);
      return namespaceOf(path);
    };
    const external = (specifier, name) => {
      const bare = specifier.replace(/^node:/, '');
      if (!builtinModules.includes(bare)) {
        throw new Error(
          `${relative(root, file)} imports '${specifier}': the typings of the handler API (${ENTRY}) may use Node's modules only, as a handler folder has no other packages installed`,
        );
      }
      const alias = `_${specifier.replace(/\W/g, '_')}`;
      externals.set(alias, `import * as ${alias} from '${specifier}';`);
      return `${alias}.${name}`;
    };
    const statements = source.statements.flatMap((statement) => rewrite(statement, source, target, external, file === entry));
    const text = statements.join('\n');
    return file === entry ? text : `namespace ${namespaceOf(file)} {\n${indent(text)}\n}`;
  });

  return [
    `// Types of the 'flespi-receiver' API for handler files, written by the flespi extension and`,
    `// generated from its source (${ENTRY}). At run time the extension (or the flespi-receiver CLI)`,
    `// provides the real implementation.`,
    ``,
    `declare module 'flespi-receiver' {`,
    indent([...externals.values(), ...body, '// Only what the API exports above is exported.', 'export {};'].join('\n')),
    `}`,
    ``,
  ].join('\n');
}

/** tsc's declarations of the entry and what it imports, by absolute path, in memory. */
function emitDeclarations(root) {
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'src/tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail([d]) });
  if (!config) throw new Error('cannot read src/tsconfig.json');
  const options = {
    ...config.options,
    noEmit: false,
    declaration: true,
    emitDeclarationOnly: true,
    declarationMap: false,
    outDir: join(root, 'dist/types'),
    rootDir: join(root, 'src'),
  };
  const program = ts.createProgram([join(root, ENTRY)], options);
  const emitted = new Map();
  const result = program.emit(
    undefined,
    (name, text) => emitted.set(resolve(name).replace(join(root, 'dist/types'), join(root, 'src')), text),
    undefined,
    true,
  );
  // Type errors are `npm run typecheck`'s to report (esbuild builds without them too); only what stops the emit fails here.
  fail(
    [...program.getOptionsDiagnostics(), ...program.getSyntacticDiagnostics(), ...result.diagnostics].filter((d) => d.category === ts.DiagnosticCategory.Error),
  );
  return emitted;
}

function fail(diagnostics) {
  if (diagnostics.length === 0) return;
  const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\n' };
  throw new Error(`the typings of the handler API cannot be emitted:\n${ts.formatDiagnostics(diagnostics, host)}`);
}

/** The entry and every declaration file it reaches through relative imports, the entry first. */
function closure(entry, emitted) {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = ts.createSourceFile(file, emitted.get(file), ts.ScriptTarget.ES2022, true);
    const specifiers = [];
    const collect = (node) => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
        specifiers.push(node.moduleSpecifier.text);
      if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal))
        specifiers.push(node.argument.literal.text);
      ts.forEachChild(node, collect);
    };
    collect(source);
    for (const specifier of specifiers.filter((s) => s.startsWith('.'))) {
      const path = resolveRelative(file, specifier, emitted);
      if (path) visit(path);
    }
  };
  visit(entry);
  return [...seen];
}

function resolveRelative(from, specifier, emitted) {
  const base = resolve(dirname(from), specifier).replace(/\.js$/, '');
  return [`${base}.d.ts`, join(base, 'index.d.ts')].find((path) => emitted.has(path));
}

/**
 * One top-level statement of a declaration file as it stands inside the module (the entry) or
 * inside the file's namespace: imports become aliases of the other files' namespaces, `declare`
 * goes (the module is ambient already).
 */
function rewrite(statement, source, target, external, isEntry) {
  const where = () => `${source.fileName}:${source.getLineAndCharacterOfPosition(statement.getStart()).line + 1}`;
  if (ts.isImportDeclaration(statement)) {
    const specifier = statement.moduleSpecifier.text;
    const clause = statement.importClause;
    if (!clause) return [];
    if (clause.name) throw new Error(`${where()}: default imports are not supported here; import by name`);
    const bindings = clause.namedBindings;
    if (!bindings) return [];
    if (ts.isNamespaceImport(bindings)) {
      if (!specifier.startsWith('.')) throw new Error(`${where()}: import Node's modules by name`);
      return [`import ${bindings.name.text} = ${target(specifier)};`];
    }
    return bindings.elements.map((element) => {
      const name = (element.propertyName ?? element.name).text;
      const from = specifier.startsWith('.') ? `${target(specifier)}.${name}` : external(specifier, name);
      return `import ${element.name.text} = ${from};`;
    });
  }
  if (ts.isExportDeclaration(statement)) {
    if (!statement.moduleSpecifier) {
      if (!statement.exportClause || (ts.isNamedExports(statement.exportClause) && statement.exportClause.elements.length === 0)) return []; // `export {};`
      throw new Error(`${where()}: export the declaration itself, or re-export from a file`);
    }
    const specifier = statement.moduleSpecifier.text;
    if (!specifier.startsWith('.') || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) {
      throw new Error(`${where()}: re-export names from one of our files (export { a } from './x'); 'export *' is not supported here`);
    }
    const from = target(specifier);
    return statement.exportClause.elements.map((element) => `export import ${element.name.text} = ${from}.${(element.propertyName ?? element.name).text};`);
  }
  if (isEntry) throw new Error(`${where()}: ${ENTRY} only re-exports`);
  return [withoutDeclare(statement, source, target)];
}

/** The statement's text with its leading comments, without `declare`, and `import('./x').A` as a namespace path. */
function withoutDeclare(statement, source, target) {
  const start = statement.getFullStart();
  const edits = [];
  const declare = ts.canHaveModifiers(statement) ? ts.getModifiers(statement)?.find((m) => m.kind === ts.SyntaxKind.DeclareKeyword) : undefined;
  if (declare) edits.push([declare.getStart(), source.text.slice(declare.end).match(/^\s*/)[0].length + declare.end, '']);
  const visit = (node) => {
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      const specifier = node.argument.literal.text;
      if (!specifier.startsWith('.') || node.isTypeOf) throw new Error(`${source.fileName}: unsupported import type ${node.getText()}`);
      const qualified = [target(specifier), node.qualifier?.getText()].filter(Boolean).join('.');
      const typeArguments = node.typeArguments ? `<${node.typeArguments.map((t) => t.getText()).join(', ')}>` : '';
      edits.push([node.getStart(), node.end, qualified + typeArguments]);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(statement);
  let text = source.text.slice(start, statement.end);
  for (const [from, to, replacement] of edits.sort((a, b) => b[0] - a[0])) text = text.slice(0, from - start) + replacement + text.slice(to - start);
  return text.replace(/^\n+/, '');
}

function indent(text) {
  return text
    .split('\n')
    .map((line) => (line ? `  ${line}` : line))
    .join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node scripts/handler-typings.mjs OUTFILE');
    process.exit(2);
  }
  writeFileSync(out, handlerTypings());
}
