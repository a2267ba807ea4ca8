import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { filterMatches, parseTopicFilter, TopicFilterError, TopicTrie } from '../../src/sandbox/mqtt/topic-filter';

describe('topic filters', () => {
  const levels = (topic: string) => topic.split('/');

  test('parses $share, $filter and comma lists together', () => {
    const filter = parseTopicFilter(`$share/workers/$filter/payload=${encodeURIComponent('speed>5')}/flespi/message/gw/channels/10,20/+`);
    assert.equal(filter.shareGroup, 'workers');
    assert.equal(filter.unshared, `$filter/payload=${encodeURIComponent('speed>5')}/flespi/message/gw/channels/10,20/+`);
    assert.deepEqual(filter.patterns, [levels('flespi/message/gw/channels/10/+'), levels('flespi/message/gw/channels/20/+')]);
    assert.equal(filter.payloadFilter?.({ speed: 6 }), true);
    assert.equal(filter.payloadFilter?.({ speed: 4 }), false);
    assert.equal(filter.payloadFilter?.({}), false, 'a missing parameter fails the filter');
  });

  test('matches like MQTT: # includes the parent level, wildcards skip $ topics', () => {
    assert.equal(filterMatches(parseTopicFilter('a/#'), levels('a')), true);
    assert.equal(filterMatches(parseTopicFilter('a/+'), levels('a')), false);
    assert.equal(filterMatches(parseTopicFilter('a/+/c'), levels('a/b/c')), true);
    assert.equal(filterMatches(parseTopicFilter('#'), levels('$SYS/x')), false);
    assert.equal(filterMatches(parseTopicFilter('+/x'), levels('$SYS/x')), false);
    assert.equal(filterMatches(parseTopicFilter('$SYS/#'), levels('$SYS/x')), true);
  });

  test('refuses malformed filters with a reason', () => {
    assert.throws(() => parseTopicFilter('a/#/b'), TopicFilterError);
    assert.throws(() => parseTopicFilter('a/x#'), TopicFilterError);
    assert.throws(() => parseTopicFilter('$share//a'), TopicFilterError);
    assert.throws(() => parseTopicFilter('$filter/payload=%E0%A4%A/a'), /URL encoding/);
    assert.throws(() => parseTopicFilter('$filter/modified_since>1/a'), /only \$filter\/payload=/);
    assert.throws(() => parseTopicFilter(`$filter/payload=${encodeURIComponent('speed>')}/a`), /bad \$filter expression 'speed>': expected a value/);
  });

  test('the trie finds the same subscriptions as matching every filter one by one', () => {
    const filters = ['#', 'a/#', 'a/+', 'a/b', 'a/+/c', '+/+/+', 'a/b,x/c', 'x/#', 'a/b/c/#'].map((raw) => parseTopicFilter(raw));
    const trie = new TopicTrie<string>();
    for (const filter of filters) for (const pattern of filter.patterns) trie.add(pattern, filter.raw);
    trie.remove(levels('x/#'), 'x/#');
    const live = filters.filter((f) => f.raw !== 'x/#');
    for (const topic of ['a', 'a/b', 'a/b/c', 'a/x/c', 'x/y', 'a/b/c/d', 'b']) {
      const found: string[] = [];
      trie.match(levels(topic), found);
      const expected = live.filter((f) => filterMatches(f, levels(topic))).map((f) => f.raw);
      assert.deepEqual(found.sort(), expected.sort(), topic);
    }
  });
});

describe('flespi topic filter extensions', () => {
  test('sticky shared subscriptions: $share/{name}:{count}/ and $share/{name}:{from}:{count}/; a plain name may hold a colon', () => {
    assert.deepEqual(parseTopicFilter('$share/by_ident:6/flespi/message/gw/channels/+/+').sticky, { from: 0, count: 6 });
    const byDevice = parseTopicFilter('$share/by_device:4:1/flespi/+/gw/devices/+/#');
    assert.deepEqual(byDevice.sticky, { from: 4, count: 1 });
    assert.equal(byDevice.shareGroup, 'by_device:4:1');
    assert.equal(parseTopicFilter('$share/a:b/x').sticky, undefined);
    assert.equal(parseTopicFilter('$share/plain/x').sticky, undefined);
    assert.throws(() => parseTopicFilter('$share/none:0/x'), /at least one topic level/);
  });

  test('$filter/cid= takes an account id, combines with $share and $filter/payload=', () => {
    const filter = parseTopicFilter(`$share/w/$filter/cid=123/$filter/payload=${encodeURIComponent('n>1')}/a/+`);
    assert.equal(filter.cid, '123');
    assert.equal(filter.shareGroup, 'w');
    assert.equal(filter.payloadFilter?.({ n: 2 }), true);
    assert.throws(() => parseTopicFilter('$filter/cid=x1/a'), /needs an account id/);
    assert.throws(() => parseTopicFilter('$filter/cid=1/$filter/cid=2/a'), /match nothing/);
  });
});
