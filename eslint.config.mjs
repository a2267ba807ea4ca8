import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.vscode-test/**', '.e2e/**', 'out/**', '**/*.d.ts', '.stryker-tmp/**', 'reports/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        performance: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        setImmediate: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Rules that need the types: a promise nobody awaits or catches is an error that vanishes, and a
    // switch over a union must say what it does with every member (a default counts).
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // The core library is shared by the CLI and the extension: it must never import vscode.
    files: ['src/core/**/*.ts', 'src/sandbox/**/*.ts', 'src/cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'The core library, sandbox and CLI must not depend on vscode.' }] }] },
  },
  {
    // Extension modules that run without VS Code, so plain Node tests can import them: keep it that way.
    files: [
      'src/shared/**/*.ts',
      'src/extension/markdown.ts',
      'src/extension/timeInput.ts',
      'src/extension/endpoints.ts',
      'src/extension/doctorReport.ts',
      'src/extension/channels/channelModel.ts',
      'src/extension/channels/history.ts',
      'src/extension/custom/scaffold.ts',
      'src/extension/forwarding/deadLetterFiles.ts',
      'src/extension/forwarding/folder.ts',
      'src/extension/forwarding/manager.ts',
      'src/extension/forwarding/records.ts',
      'src/extension/forwarding/startPosition.ts',
      'src/extension/sinks/createSinkHandler.ts',
      'src/extension/sinks/ndjsonFile.ts',
      'src/extension/sinks/sinkFields.ts',
      'src/extension/sinks/sinkModel.ts',
      'src/extension/sinks/sinkSchema.ts',
      'src/extension/sinks/sinkSecrets.ts',
      'src/extension/sinks/sinkStatus.ts',
      'src/extension/stableRows.ts',
      'src/extension/tail/tailExport.ts',
      'src/extension/tail/tailFeed.ts',
      'src/extension/tail/tailHtml.ts',
      'src/extension/tail/tailModel.ts',
      'src/extension/tail/tailSession.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'vscode', message: 'This module is tested without VS Code: pass what it needs from the vscode side instead.' }] },
      ],
    },
  },
  {
    // The webview runs in a browser frame: no Node, no vscode, and of the host's code only the shared protocol (and types, which vanish at run time).
    files: ['webview/**/*.ts', 'src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'Webview code talks to the extension only through postMessage (src/shared/tailProtocol.ts).' }],
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'os', 'child_process', 'net', 'http', 'https', 'crypto'],
              message: 'Webview code runs in a browser frame: no Node modules.',
            },
            {
              group: ['**/src/core/**', '**/src/extension/**', '**/src/cli/**', '**/src/sandbox/**', '../core/**', '../extension/**'],
              allowTypeImports: true,
              message: 'Webview code may import only src/shared (and types) from the host side.',
            },
          ],
        },
      ],
    },
  },
);
