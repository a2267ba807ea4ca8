/**
 * Loads a user-written handler (a TypeScript or JavaScript file whose default export extends
 * `Handler`) at run time, for the CLI and the extension alike.
 *
 * TypeScript is compiled with sucrase, not esbuild: sucrase is plain JavaScript that esbuild
 * bundles into dist/, while esbuild at run time would need its native binary in the VSIX and
 * make the extension platform-specific. Sucrase strips types without checking them (the editor
 * does that) and keeps line numbers; its source map gives exact columns for error locations.
 *
 * Imports of `flespi-receiver` (and `flespi-receiver/...`) get the handler API (`../api.ts`), so the
 * user's `Handler` is the receiver's own class. Relative imports of other `.ts` files are compiled
 * the same way; anything else is required by Node relative to the handler file.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire, SourceMap } from 'node:module';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { compileFunction } from 'node:vm';
import * as handlerApi from '../api';
import { Handler } from '../handler';

/** The module name user handlers import the library by. */
export const PUBLIC_MODULE = 'flespi-receiver';

export type HandlerClass = new (options?: Record<string, unknown>) => Handler;

/** A position in a handler source file; line and column count from 1. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** A handler file that cannot be compiled or evaluated, or whose default export is not a Handler class. */
export class HandlerLoadError extends Error {
  override readonly name = 'HandlerLoadError';

  constructor(
    message: string,
    readonly file: string,
    readonly location?: SourceLocation,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What was compiled from each file, to map stack frames of the evaluated code back to the source. */
interface CompiledFile {
  map: SourceMap;
  sourceLines: string[];
  codeLines: string[];
}
const compiledFiles = new Map<string, CompiledFile>();

/**
 * Compiles and evaluates `file` and returns its default export, checked to be a Handler subclass.
 * Each call reads the file afresh (edits take effect on the next load).
 * @param api what `import ... from 'flespi-receiver'` gives; by default the handler API (`../api`).
 */
export async function loadHandlerClass(file: string, api?: object): Promise<HandlerClass> {
  const path = resolve(file);
  const exports = await new ModuleLoader(api ?? handlerApi).load(path);
  // Compiled ES modules are flagged __esModule and export `default`; plain CommonJS may assign the class to module.exports.
  const esModule = typeof exports === 'object' && exports !== null && (exports as { __esModule?: unknown }).__esModule === true;
  const candidate = esModule ? (exports as { default?: unknown }).default : exports;
  if (typeof candidate !== 'function' || !(candidate.prototype instanceof Handler)) {
    throw new HandlerLoadError(
      `${path}: the default export must be a class that extends Handler ("export default class MyHandler extends Handler" with Handler imported from '${PUBLIC_MODULE}'), but it is ${describeExport(candidate)}`,
      path,
    );
  }
  return candidate as HandlerClass;
}

/** Compiles TypeScript to CommonJS; syntax errors become HandlerLoadErrors with the position. */
export async function compileHandlerSource(source: string, file: string): Promise<{ code: string; sourceMap: SourceMap }> {
  // Imported on first use: sucrase is a large part of the bundle and only custom handlers need it.
  const { transform } = await import('sucrase');
  try {
    const result = transform(source, {
      transforms: extname(file) === '.ts' || extname(file) === '.mts' || extname(file) === '.cts' ? ['typescript', 'imports'] : ['imports'],
      filePath: file,
      sourceMapOptions: { compiledFilename: file },
    });
    return { code: result.code, sourceMap: new SourceMap(result.sourceMap as unknown as ConstructorParameters<typeof SourceMap>[0]) };
  } catch (error) {
    // Sucrase reports `Error transforming <file>: Unexpected token (3:5)` and a 1-based `loc`.
    const loc = (error as { loc?: { line?: unknown; column?: unknown } }).loc;
    const text = error instanceof Error ? error.message : String(error);
    const reason = text.replace(/^Error transforming .*?: /, '').replace(/ \(\d+:\d+\)$/, '');
    if (typeof loc?.line === 'number' && typeof loc.column === 'number') {
      const location = { file, line: loc.line, column: loc.column };
      throw new HandlerLoadError(`${where(location)}: syntax error: ${reason}`, file, location, { cause: error });
    }
    throw new HandlerLoadError(`${file}: cannot compile: ${reason}`, file, undefined, { cause: error });
  }
}

/**
 * Where in a loaded handler file `error` was thrown: the first stack frame that points into a
 * file this loader compiled, mapped back to the TypeScript source. Undefined when none does.
 */
export function locateError(error: unknown): SourceLocation | undefined {
  const stack = error instanceof Error ? error.stack : undefined;
  if (!stack || compiledFiles.size === 0) return undefined;
  for (const line of stack.split('\n')) {
    for (const [file, compiled] of compiledFiles) {
      const at = line.indexOf(`${file}:`);
      if (at < 0) continue;
      const position = /^:(\d+):(\d+)/.exec(line.slice(at + file.length));
      if (position) return { file, ...sourcePosition(compiled, Number(position[1]), Number(position[2])) };
    }
  }
  return undefined;
}

/** The error's message, with ` (at file:line:column)` when it was thrown by a loaded handler file: for logs and status lines. */
export function describeHandlerError(error: unknown): string {
  if (error instanceof HandlerLoadError) return error.message;
  const text = errorText(error);
  const location = locateError(error);
  return location ? `${text} (at ${where(location)})` : text;
}

/** `file:line:column` (the form editors and terminals turn into links). */
export function where(location: SourceLocation): string {
  return `${location.file}:${location.line}:${location.column}`;
}

/** Evaluates CommonJS modules compiled from the user's files, each once per load. */
class ModuleLoader {
  private readonly cache = new Map<string, { exports: unknown }>();

  constructor(private readonly api: object) {}

  async load(path: string): Promise<unknown> {
    const cached = this.cache.get(path);
    if (cached) return cached.exports;
    let source: string;
    try {
      source = await readFile(path, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist (check the path in the sink settings)' : errorText(error);
      throw new HandlerLoadError(`${path}: cannot read the handler: ${reason}`, path, undefined, { cause: error });
    }
    const { code, sourceMap } = await compileHandlerSource(source, path);
    compiledFiles.set(path, { map: sourceMap, sourceLines: source.split('\n'), codeLines: code.split('\n') });
    // Cached before its imports load, so an import cycle gets the partial exports, as in Node.
    const module = { exports: {} as unknown };
    this.cache.set(path, module);

    // Relative .ts imports are compiled too; they are loaded before evaluation because require() is synchronous.
    const localTs = new Map<string, string>();
    for (const id of requiredIds(code)) {
      const target = localTypeScript(path, id);
      if (target) localTs.set(id, target);
    }
    for (const target of new Set(localTs.values())) await this.load(target);

    const nodeRequire = createRequire(path);
    const userRequire = Object.assign(
      (id: string): unknown => {
        if (id === PUBLIC_MODULE || id.startsWith(`${PUBLIC_MODULE}/`)) return this.api;
        const local = localTs.get(id);
        if (local) return this.cache.get(local)?.exports;
        return nodeRequire(id);
      },
      { resolve: nodeRequire.resolve, cache: nodeRequire.cache },
    );
    let evaluate: (...args: unknown[]) => void;
    try {
      evaluate = compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: path }) as (...args: unknown[]) => void;
    } catch (error) {
      throw new HandlerLoadError(`${path}${syntaxErrorLine(error)}: ${errorText(error)}`, path, undefined, { cause: error });
    }
    try {
      evaluate(module.exports, userRequire, module, path, dirname(path));
    } catch (error) {
      this.cache.delete(path);
      const location = locateError(error);
      throw new HandlerLoadError(`${location ? where(location) : path}: ${errorText(error)} (while loading the handler)`, path, location, { cause: error });
    }
    return module.exports;
  }
}

/** The module ids the compiled code requires (sucrase turns every import into `require('...')`). */
function requiredIds(code: string): string[] {
  return [...code.matchAll(/\brequire\((['"])([^'"]+)\1\)/g)].map((m) => m[2]!);
}

/** The .ts file a relative import points at (`./util` → `./util.ts`), if there is one. */
function localTypeScript(from: string, id: string): string | undefined {
  if (!id.startsWith('.') && !isAbsolute(id)) return undefined;
  const base = resolve(dirname(from), id);
  const candidates = extname(base) === '.ts' ? [base] : [`${base}.ts`, resolve(base, 'index.ts')];
  return candidates.find((c) => existsSync(c));
}

/**
 * The source line and column (1-based) of a position in the compiled code. Sucrase keeps every
 * line on its line, so only the column can move, and only on lines where types were removed. Its
 * source map gives the column token by token, but drifts after a template literal with `${}`
 * (sucrase 3.35), so a mapped column is used only when the same token is found there; otherwise
 * the same occurrence of the token in the source line is taken (types are removed, code is not).
 */
function sourcePosition(compiled: CompiledFile, line: number, column: number): { line: number; column: number } {
  const code = compiled.codeLines[line - 1];
  const source = compiled.sourceLines[line - 1];
  if (code === undefined || source === undefined || code === source) return { line, column };
  const token = tokenAt(code, column - 1);
  if (!token) return { line, column };
  const entry = compiled.map.findEntry(line - 1, column - 1) as Partial<{
    generatedLine: number;
    generatedColumn: number;
    originalLine: number;
    originalColumn: number;
  }>;
  if (entry.generatedLine === line - 1 && entry.originalLine === line - 1 && entry.generatedColumn !== undefined && entry.originalColumn !== undefined) {
    const mapped = entry.originalColumn + (column - 1 - entry.generatedColumn);
    if (tokenAt(source, mapped) === token) return { line, column: mapped + 1 };
  }
  const nth = occurrences(code.slice(0, column - 1), token).length;
  const at = occurrences(source, token)[nth];
  return { line, column: at === undefined ? column : at + 1 };
}

/** The identifier (or else the single character) starting at `index`. */
function tokenAt(text: string, index: number): string | undefined {
  const rest = text.slice(index);
  return /^[A-Za-z_$][\w$]*/.exec(rest)?.[0] ?? (rest[0]?.trim() ? rest[0] : undefined);
}

/** Where `token` occurs in `text` as a whole word (identifiers) or anywhere (punctuation). */
function occurrences(text: string, token: string): number[] {
  const escaped = token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = /^[\w$]/.test(token) ? new RegExp(`(?<![\\w$])${escaped}(?![\\w$])`, 'g') : new RegExp(escaped, 'g');
  return [...text.matchAll(pattern)].map((m) => m.index!);
}

/** `:line` of a V8 SyntaxError, whose stack starts with `<file>:<line>`. */
function syntaxErrorLine(error: unknown): string {
  const first = error instanceof Error ? error.stack?.split('\n', 1)[0] : undefined;
  const match = first ? /:(\d+)$/.exec(first) : null;
  return match ? `:${match[1]}` : '';
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  return String(error);
}

function describeExport(value: unknown): string {
  if (value === undefined) return 'missing (the file has no default export)';
  if (typeof value === 'function') return `${value.name ? `"${value.name}"` : 'a function or class'} that does not extend Handler`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object (export the class itself, not an instance)';
  return `a ${typeof value}`;
}
