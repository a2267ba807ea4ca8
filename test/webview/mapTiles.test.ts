import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TILE_URL, mapTiles } from '../../src/extension/tail/mapTiles';
import { tailContentSecurityPolicy } from '../../src/extension/tail/tailHtml';

test('not set: OpenStreetMap standard tiles, credited, and the CSP allows images from that host only', () => {
  const tiles = mapTiles(undefined);
  assert.equal(tiles.settings.tileUrl, DEFAULT_TILE_URL);
  assert.equal(tiles.settings.attribution, '© OpenStreetMap contributors');
  assert.equal(tiles.settings.attributionUrl, 'https://www.openstreetmap.org/copyright');
  assert.equal(tiles.imgSource, 'https://tile.openstreetmap.org');
  const csp = tailContentSecurityPolicy('https://webview.example', 'n0nce', tiles.imgSource);
  assert.match(csp, /(^|; )img-src https:\/\/webview\.example data: https:\/\/tile\.openstreetmap\.org(;|$)/);
  assert.match(csp, /default-src 'none'/);
});

test('a local tile server: its origin with the port; a {s} subdomain becomes a wildcard of that domain', () => {
  assert.deepEqual(mapTiles('http://127.0.0.1:8123/tiles/{z}/{x}/{y}.png'), {
    settings: { tileUrl: 'http://127.0.0.1:8123/tiles/{z}/{x}/{y}.png', attribution: 'Tiles: 127.0.0.1:8123' },
    imgSource: 'http://127.0.0.1:8123',
  });
  assert.equal(mapTiles('https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png').imgSource, 'https://*.tile.openstreetmap.org');
  assert.equal(mapTiles('https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png').settings.attribution, '© OpenStreetMap contributors');
});

test("empty: no tiles and no image origin beyond the webview's own; a bad setting says why and loads nothing", () => {
  for (const empty of ['', '   ']) {
    const tiles = mapTiles(empty);
    assert.equal(tiles.settings.tileUrl, '');
    assert.equal(tiles.settings.problem, undefined);
    assert.equal(tiles.imgSource, undefined);
    assert.equal(
      tailContentSecurityPolicy('https://w', 'n', tiles.imgSource)
        .split('; ')
        .find((d) => d.startsWith('img-src')),
      'img-src https://w data:',
    );
  }
  const bad: Array<[unknown, RegExp]> = [
    [42, /must be a string/],
    ['https://tiles.example/{z}/{x}.png', /needs \{y\}/],
    ['ftp://tiles.example/{z}/{x}/{y}.png', /https:\/\//],
    ['javascript:alert(1)//{z}/{x}/{y}', /https:\/\//],
    ['https://user:secret@tiles.example/{z}/{x}/{y}.png', /user name or password/],
    ['https://tiles.{s}.example/{z}/{x}/{y}.png', /\{s\} may only stand for the first part/],
    ['not a url {z}{x}{y}', /not a URL/],
  ];
  for (const [setting, problem] of bad) {
    const tiles = mapTiles(setting);
    assert.equal(tiles.settings.tileUrl, '', String(setting));
    assert.match(tiles.settings.problem ?? '', problem, String(setting));
    assert.equal(tiles.imgSource, undefined, String(setting));
  }
});
