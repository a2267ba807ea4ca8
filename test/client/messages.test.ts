// The whole text of every error the client builds from an answer: what a user reads must say what
// happened and what to do, so each is checked word for word (against the fake flespi).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { startFakeFlespi, type FakeAnswer } from '../support/fakeFlespi';

const TOKENS = 'https://flespi.io/#/panel/tokens';
const API = 'check that the base URL points at the flespi REST API (https://flespi.io or https://ru.flespi.io)';

test('every HTTP status: its kind and its whole message', async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const on = `on GET token info at ${server.url}`;
  const cases: [FakeAnswer, string, string][] = [
    [
      { status: 400, body: { errors: [{ reason: 'bad filter' }, { reason: '' }, { code: 2 }, { reason: 'second' }] } },
      'bad-request',
      `flespi rejected the request parameters (400 Bad Request: bad filter; second) ${on}: fix the parameter it names (e.g. the filter expression) and try again`,
    ],
    [{ status: 401, body: {} }, 'auth', `flespi rejected the token (401 Unauthorized) ${on}: check the token at ${TOKENS} or set a new one`],
    [
      { status: 403, body: { errors: [{ reason: 'blocked' }] } },
      'forbidden',
      `flespi refused access (403 Forbidden: blocked) ${on}: the token or account is blocked, or the token's ACL does not allow this; check the token and the account limits at https://flespi.io/#/panel`,
    ],
    [{ status: 404, body: { errors: [] } }, 'not-found', `token info not found (404 Not Found) at ${server.url}: check the id and the base URL`],
    [
      { status: 429, body: {}, headers: { 'Retry-After': '7' } },
      'rate-limited',
      `flespi rate limit hit (429 Too Many Requests) ${on}: too many requests for this account; wait 7 s and retry, or poll less often`,
    ],
    [
      { status: 429, body: {} },
      'rate-limited',
      `flespi rate limit hit (429 Too Many Requests) ${on}: too many requests for this account; wait a little and retry, or poll less often`,
    ],
    ...(
      [
        [500, 'Internal Server Error'],
        [502, 'Bad Gateway'],
        [503, 'Service Unavailable'],
        [504, 'Gateway Timeout'],
        [599, 'HTTP error'],
      ] as const
    ).map(([status, text]): [FakeAnswer, string, string] => [
      { status, body: {} },
      'server',
      `flespi server error (${status} ${text}) ${on}: usually temporary; retry later, and check https://status.flespi.io if it persists`,
    ]),
    [{ status: 418, body: {} }, 'malformed', `unexpected answer (418 HTTP error) ${on}: ${API}`],
    [{ status: 302, body: '' }, 'malformed', `unexpected answer (302 HTTP error) ${on}: ${API}`],
  ];
  for (const [answer, kind, message] of cases) {
    server.on('GET', '/auth/info', answer);
    await assert.rejects(client.authInfo(), (error: unknown) => {
      assert.ok(error instanceof FlespiError);
      assert.equal(error.kind, kind);
      assert.equal(error.message, message);
      assert.equal(error.status, answer.status);
      return true;
    });
  }
});

test('errors inside a 200 and answers that are no envelope: their kind and whole message', async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const with_ = `flespi answered GET channel 5 at ${server.url} with`;
  const listHint = 'list channels with `flespi-receiver channels`';
  const malformed = (what: string) => `${with_} ${what} instead of its JSON envelope (HTTP 200): ${API}; retry if it was a glitch`;
  const cases: [unknown, string, string][] = [
    [{ result: [], errors: [{ code: 3, reason: 'no ACL' }] }, 'forbidden', `${with_} errors: no ACL (code 3); check the token's ACL at ${TOKENS}`],
    [{ result: [], errors: [{ code: 401, reason: 'expired' }] }, 'auth', `${with_} errors: expired (code 401); check the token at ${TOKENS} or set a new one`],
    [
      { result: [], errors: [{ code: 404, id: 5 }] },
      'not-found',
      `${with_} errors: error (code 404) [id 5]; channel 5 not found: check the channel id; ${listHint}`,
    ],
    [
      { result: [], errors: [{ code: 2, reason: 'field x' }, {}] },
      'bad-request',
      `${with_} errors: field x (code 2); error; check the channel id; ${listHint}`,
    ],
    ['', 'malformed', malformed('an empty body')],
    ['null', 'malformed', malformed('"null"')],
    ['[1]', 'malformed', malformed('"[1]"')],
    ['  "a\n text"  ', 'malformed', malformed('""a text""')], // whitespace, line breaks included, is collapsed
    ['x'.repeat(61), 'malformed', malformed(`"${'x'.repeat(60)}…"`)],
    ['x'.repeat(60), 'malformed', malformed(`"${'x'.repeat(60)}"`)],
    [{ errors: [] }, 'malformed', `${with_} no "result" array instead of its JSON envelope (HTTP 200): ${API}; retry if it was a glitch`],
  ];
  for (const [body, kind, message] of cases) {
    server.on('GET', '/gw/channels/5/messages', { status: 200, body });
    await assert.rejects(client.channelMessages(5), (error: unknown) => {
      assert.ok(error instanceof FlespiError);
      assert.equal(error.kind, kind, message);
      assert.equal(error.message, message);
      return true;
    });
  }
});
