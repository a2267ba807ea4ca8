import assert from 'node:assert/strict';
import { test } from 'node:test';
import { columnFor, formatIsoLocal, formatShortTime } from '../../webview/tail/columns';
import { compareSortValues } from '../../webview/tail/table';

test('a short time: time of day on the same local day as now, date and time otherwise; odd values as they are', () => {
  const now = new Date(2024, 4, 1, 23, 59, 0).getTime();
  assert.equal(formatShortTime(new Date(2024, 4, 1, 0, 0, 1, 999).getTime() / 1000, now), '00:00:01');
  assert.equal(formatShortTime(new Date(2024, 3, 30, 23, 59, 59).getTime() / 1000, now), '2024-04-30 23:59:59');
  assert.equal(formatShortTime(new Date(2024, 4, 2, 0, 0, 0).getTime() / 1000, now), '2024-05-02 00:00:00');
  assert.equal(formatShortTime('soon', now), 'soon');
  assert.equal(formatShortTime(undefined, now), '');
  assert.equal(formatShortTime(1e300, now), '1e+300');
});

test('ISO time in local time with its offset names the same instant', () => {
  const ms = Date.UTC(2024, 4, 1, 12, 0, 2, 123);
  const iso = formatIsoLocal(ms);
  assert.match(iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
  assert.equal(Date.parse(iso), ms);
});

test('sorting compares numbers by value before text, and text numeric-aware', () => {
  const values: Array<number | string> = ['dev-10', 9, 'dev-9', -1, 'Dev-2', 100];
  assert.deepEqual([...values].sort(compareSortValues), [-1, 9, 100, 'Dev-2', 'dev-9', 'dev-10']);
});

test('the position column is compact (5 decimals) with the full coordinates in its tooltip; it sorts by latitude', () => {
  const position = columnFor('position');
  const message = { 'position.latitude': 54.6872123, 'position.longitude': 25.2797001 };
  assert.equal(position.text(message), '54.68721, 25.2797');
  assert.equal(position.title?.(message), '54.6872123, 25.2797001');
  assert.equal(position.sortValue(message), 54.6872123);
  assert.equal(position.sortValue({}), undefined);
});
