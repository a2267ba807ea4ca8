// Issue 11, case 8: texts from flespi, sink servers and settings go into the Markdown tooltips of the
// Channels and Sinks views (vscode.MarkdownString, with theme icons on in the Sinks view). Whatever they
// hold, they must show as text: no link, image, theme icon, code span, heading or HTML of their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelSummary, parseChannels } from '../../src/extension/channels/channelModel';
import { escapeMarkdown } from '../../src/extension/markdown';
import { sinkRow, type SinkUse } from '../../src/extension/sinks/sinkStatus';

const HOSTILE =
  'x](https://evil.test/a) ![p](https://evil.test/p.png) $(zap) `tick` <img src=x> *bold* _em_ ~~s~~ | cell |\n# heading\n[link]: https://evil.test \u001b]0;title\u0007 \u009b2J';

/** Characters that start Markdown syntax, where they appear without a backslash before them. */
function unescaped(markdown: string, specials: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < markdown.length; i++) {
    if (markdown[i] === '\\') {
      i++; // the escaped character
      continue;
    }
    if (specials.includes(markdown[i]!)) found.push(markdown[i]!);
  }
  return found;
}

test('escapeMarkdown: every syntax character escaped, control characters and line breaks flattened, the text still readable', () => {
  const md = escapeMarkdown(HOSTILE);
  assert.deepEqual(unescaped(md, '[]`<>$!*_~|#&'), []);
  // eslint-disable-next-line no-control-regex -- checking for control characters
  assert.doesNotMatch(md, /[\u0000-\u001f\u007f-\u009f]/);
  // eslint-disable-next-line no-control-regex -- the same control characters, flattened
  assert.equal(md.replace(/\\(.)/g, '$1'), HOSTILE.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' '), 'unescaping gives back the text');
});

test('a hostile channel name, protocol and URI: the Channels tooltip shows them as text only', () => {
  const [channel] = parseChannels([{ id: 5, name: HOSTILE, protocol_name: HOSTILE, uri: HOSTILE, enabled: true }]);
  const { tooltip } = channelSummary(channel!, { state: 'running', messages: 1, sinks: [HOSTILE] });
  assert.ok(tooltip.includes(escapeMarkdown(HOSTILE)));
  for (const line of tooltip.split('\n')) assert.doesNotMatch(line, /^\s*(#|\[link\])/, `no line of the tooltip comes from the channel: ${line}`);
  // Only the tooltip's own code span (the id) and bold name remain as syntax.
  assert.deepEqual(unescaped(tooltip, '[]<>$!_~|#&'), []);
  assert.deepEqual(unescaped(tooltip, '`'), ['`', '`']);
});

test('a hostile sink error, health detail, channel name and sink URL with a password: the Sinks tooltip shows them as text, without the password', () => {
  const sink = { name: 'hook', type: 'http', url: 'http://user:s3cret@example.com/in' };
  const use: SinkUse = {
    channelId: 2,
    channelName: HOSTILE,
    forwardingState: 'retrying',
    stats: { started: true, totalMessages: 3, totalFailures: 1, consecutiveFailures: 1, lastError: HOSTILE, health: { connected: false, detail: HOSTILE } },
  };
  const row = sinkRow(sink, [use]);
  assert.doesNotMatch(row.tooltip, /s3cret/);
  assert.doesNotMatch(row.description, /s3cret/);
  assert.match(row.tooltip, /http:\/\/\\\*\\\*\\\*@example\.com\/in/);
  for (const line of row.tooltip.split('\n')) assert.doesNotMatch(line, /^\s*(#|\[link\])/, `no line of the tooltip comes from the error: ${line}`);
  // The Sinks view renders theme icons: `$(` must never come from the error text. (`#` is the tooltip's own "#2".)
  assert.deepEqual(unescaped(row.tooltip, '[]<>$!`_~|&'), []);
  const broken = sinkRow({ name: HOSTILE, type: 'custom', file: 'h/Rec.ts' }, [], HOSTILE);
  assert.deepEqual(unescaped(broken.tooltip.replace('$(error)', ''), '[]<>$!`_~|#&'), [], 'only the tooltip’s own $(error) icon');
});
